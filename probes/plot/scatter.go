package plot

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Point is one named point of a scatter chart.
type Point struct {
	Name string
	X, Y float64
}

// Scatter draws points (x, y) with the reference line y = x and writes the
// chart to path (.png or .svg): e.g. an attribution estimate (y) against
// the exact patching effect (x), one point per head or edge. Both axes span
// the same range, so y = x is the diagonal and a point's vertical distance
// from it is its disagreement. The label points farthest from y = x
// (largest |y - x|) are drawn in a second colour with their names. Points
// with a NaN or ±Inf coordinate are skipped; at least one must be finite.
func Scatter(path, title, xlabel, ylabel string, pts []Point, label int) error {
	if _, err := format(path); err != nil {
		return err
	}
	var fin []Point
	for _, p := range pts {
		if isFinite(p.X) && isFinite(p.Y) {
			fin = append(fin, p)
		}
	}
	if len(fin) == 0 {
		return fmt.Errorf("plot %s: no finite points to draw", path)
	}
	// The label points: largest |y - x| first.
	idx := make([]int, len(fin))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return math.Abs(fin[idx[a]].Y-fin[idx[a]].X) > math.Abs(fin[idx[b]].Y-fin[idx[b]].X)
	})
	label = max(0, min(label, len(fin)))
	worst := map[int]bool{}
	for _, i := range idx[:label] {
		worst[i] = true
	}
	var rest, bad plotter.XYs
	var badNames []string
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, p := range fin {
		lo, hi = math.Min(lo, math.Min(p.X, p.Y)), math.Max(hi, math.Max(p.X, p.Y))
		if worst[i] {
			bad = append(bad, plotter.XY{X: p.X, Y: p.Y})
			badNames = append(badNames, p.Name)
		} else {
			rest = append(rest, plotter.XY{X: p.X, Y: p.Y})
		}
	}
	pad := 0.06 * (hi - lo)
	if pad == 0 {
		pad = math.Max(math.Abs(lo)*0.5, 0.5)
	}
	lo, hi = lo-pad, hi+pad

	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), -vg.Points(16)
	p.Add(plotter.NewGrid())
	diag, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	diag.Color = color.Gray{Y: 0x60}
	diag.Width = vg.Points(1)
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(diag)
	p.Legend.Add("y = x", diag)
	// Points are small and translucent when there are many (an edge graph).
	r := vg.Points(3)
	alpha := uint8(0xd0)
	if len(fin) > 200 {
		r, alpha = vg.Points(2), 0x90
	}
	if len(rest) > 0 {
		s, err := plotter.NewScatter(rest)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: color.NRGBA{R: 0x1f, G: 0x5f, B: 0xb4, A: alpha}, Radius: r, Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%d points", len(fin)), s)
	}
	if len(bad) > 0 {
		s, err := plotter.NewScatter(bad)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, Radius: vg.Points(3.5), Shape: draw.CircleGlyph{}}
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%d largest |y − x|", len(bad)), s)
		// Names to the right of points in the left half, to the left in the
		// right half, so they stay inside the axes.
		mid := (lo + hi) / 2
		for _, right := range []bool{false, true} {
			var xys plotter.XYs
			var names []string
			for i, b := range bad {
				if (b.X > mid) == right {
					xys, names = append(xys, b), append(names, badNames[i])
				}
			}
			if len(xys) == 0 {
				continue
			}
			lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: names})
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			align, off := text.XLeft, vg.Points(5)
			if right {
				align, off = text.XRight, -off
			}
			for i := range lab.TextStyle {
				lab.TextStyle[i] = text.Style{Color: color.NRGBA{R: 0x90, G: 0x10, B: 0x10, A: 0xff},
					Font: font.From(plotter.DefaultFont, vg.Points(8)), XAlign: align, YAlign: text.YCenter,
					Handler: gplot.DefaultTextHandler}
			}
			lab.Offset = vg.Point{X: off}
			p.Add(lab)
		}
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi
	return write(path, 6*vg.Inch, 5.5*vg.Inch, func(dc draw.Canvas) { p.Draw(inset(dc)) })
}
