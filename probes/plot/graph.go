package plot

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	gplot "gonum.org/v1/plot"
)

// GraphNode is a box of a layered drawing: Rank is its row (0 at the
// bottom), Group picks its fill colour (-1: grey).
type GraphNode struct {
	Name  string
	Rank  int
	Group int
}

// GraphEdge joins node From (lower rank) to node To. Port places the arrow's
// end on To's lower side: 0 middle, -1 left, 1 right (a head's q, k, v).
// Weight in [0, 1] scales the line width; Color nil is grey.
type GraphEdge struct {
	From, To int
	Port     int
	Weight   float64
	Color    color.Color
}

// Graph is a layered drawing: nodes on horizontal rows by rank, in the order
// given within a row; edges as curves from the top of one box to the bottom
// of another. neoscope draws its circuits this way rather than through
// Graphviz (see runtime/circuit's WriteDOT for the .dot file).
type Graph struct {
	Title  string
	Nodes  []GraphNode
	Edges  []GraphEdge
	Legend []string // lines printed under the title
}

// DrawGraph renders g to path (.png or .svg).
func DrawGraph(path string, g Graph) error {
	if _, err := format(path); err != nil {
		return err
	}
	if len(g.Nodes) == 0 {
		return fmt.Errorf("plot %s: a graph with no nodes", path)
	}
	rows := map[int][]int{}
	maxRank, widest := 0, 0
	for i, n := range g.Nodes {
		if n.Rank < 0 {
			return fmt.Errorf("plot %s: node %q has negative rank %d", path, n.Name, n.Rank)
		}
		rows[n.Rank] = append(rows[n.Rank], i)
		maxRank = max(maxRank, n.Rank)
		widest = max(widest, len(rows[n.Rank]))
	}
	for _, e := range g.Edges {
		if e.From < 0 || e.From >= len(g.Nodes) || e.To < 0 || e.To >= len(g.Nodes) {
			return fmt.Errorf("plot %s: edge %d>%d outside the %d nodes", path, e.From, e.To, len(g.Nodes))
		}
	}
	boxW, boxH := vg.Length(0.8)*vg.Inch, vg.Length(0.32)*vg.Inch
	rowH := vg.Length(0.95) * vg.Inch
	head := vg.Length(0.35+0.2*float64(len(g.Legend))) * vg.Inch
	W := vg.Length(math.Max(6, 1.1*float64(widest)+0.6)) * vg.Inch
	for _, l := range append([]string{g.Title}, g.Legend...) {
		W = max(W, vg.Length(0.075*float64(len(l))+0.4)*vg.Inch) // ~12 pt text
	}
	H := rowH*vg.Length(maxRank+1) + head + 0.2*vg.Inch
	pos := make([]vg.Point, len(g.Nodes)) // box centres
	for r, ids := range rows {
		y := 0.1*vg.Inch + rowH*vg.Length(r) + rowH/2
		for j, i := range ids {
			x := W * vg.Length(float64(j)+0.5) / vg.Length(len(ids))
			pos[i] = vg.Point{X: x, Y: y}
		}
	}
	sty := func(size vg.Length, c color.Color) draw.TextStyle {
		return text.Style{Color: c, Font: font.From(plotter.DefaultFont, size),
			XAlign: text.XCenter, YAlign: text.YCenter, Handler: gplot.DefaultTextHandler}
	}
	return write(path, W, H, func(dc draw.Canvas) {
		// Edges first, under the boxes.
		for _, e := range g.Edges {
			a, b := pos[e.From], pos[e.To]
			a.Y += boxH / 2
			b.Y -= boxH / 2
			b.X += vg.Length(e.Port) * boxW / 3
			c := e.Color
			if c == nil {
				c = color.Gray{Y: 120}
			}
			w := math.Min(math.Max(e.Weight, 0), 1)
			var p vg.Path
			p.Move(a)
			mid := (a.Y + b.Y) / 2
			p.CubeTo(vg.Point{X: a.X, Y: mid}, vg.Point{X: b.X, Y: mid}, b)
			dc.SetLineStyle(draw.LineStyle{Color: c, Width: vg.Points(0.6 + 5*w)})
			dc.Stroke(p)
			// arrow head
			dc.FillPolygon(c, []vg.Point{b, {X: b.X - 3, Y: b.Y - 6}, {X: b.X + 3, Y: b.Y - 6}})
		}
		for i, n := range g.Nodes {
			c := pos[i]
			fill := color.Color(color.Gray{Y: 215})
			if n.Group >= 0 {
				fill = lighten(plotutil.Color(n.Group), 0.45)
			}
			box := []vg.Point{{X: c.X - boxW/2, Y: c.Y - boxH/2}, {X: c.X + boxW/2, Y: c.Y - boxH/2},
				{X: c.X + boxW/2, Y: c.Y + boxH/2}, {X: c.X - boxW/2, Y: c.Y + boxH/2}}
			dc.FillPolygon(fill, box)
			dc.SetLineStyle(draw.LineStyle{Color: color.Black, Width: vg.Points(0.7)})
			var p vg.Path
			p.Move(box[0])
			for _, q := range box[1:] {
				p.Line(q)
			}
			p.Close()
			dc.Stroke(p)
			dc.FillText(sty(10, color.Black), c, n.Name)
		}
		y := H - 0.2*vg.Inch
		dc.FillText(sty(12, color.Black), vg.Point{X: W / 2, Y: y}, g.Title)
		for _, l := range g.Legend {
			y -= 0.2 * vg.Inch
			dc.FillText(sty(9, color.Gray{Y: 60}), vg.Point{X: W / 2, Y: y}, l)
		}
	})
}

// lighten mixes c with white (f = 0: c, 1: white).
func lighten(c color.Color, f float64) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8)*(1-f) + 255*f) }
	return color.RGBA{R: mix(r), G: mix(g), B: mix(b), A: 255}
}
