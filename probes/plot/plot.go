package plot

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"   // registers png; measures text
	_ "gonum.org/v1/plot/vg/vgsvg" // registers svg

	"github.com/neoscope/neoscope/internal/outfile"
)

// Series is one named line: Y[i] at X[i].
type Series struct {
	Name string
	X, Y []float64
}

// format returns "png" or "svg" from the file name, or an error naming it.
func format(path string) (string, error) {
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	switch ext {
	case "png", "svg":
		return ext, nil
	}
	return "", fmt.Errorf("plot %s: unsupported file type %q (want .png or .svg)", path, filepath.Ext(path))
}

// write renders draw(canvas) into path atomically.
func write(path string, w, h vg.Length, fill func(dc draw.Canvas)) error {
	f, err := format(path)
	if err != nil {
		return err
	}
	c, err := draw.NewFormattedCanvas(w, h, f)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	dc := draw.New(c)
	// A white background for PNG (the raster canvas is transparent otherwise).
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	fill(dc)
	return outfile.Write(path, func(out io.Writer) error {
		_, err := c.WriteTo(out)
		return err
	})
}

// Lines draws every series on one chart with a legend and writes it to path
// (.png or .svg). Series need equal-length X and Y and at least one finite
// point among them all.
func Lines(path, title, xlabel, ylabel string, series []Series) error {
	if len(series) == 0 {
		return fmt.Errorf("plot %s: no series", path)
	}
	if _, err := format(path); err != nil {
		return err
	}
	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	finite, named := 0, 0
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot %s: series %q has %d x values and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		var xys plotter.XYs
		for j := range s.X {
			if isFinite(s.X[j]) && isFinite(s.Y[j]) {
				xys = append(xys, plotter.XY{X: s.X[j], Y: s.Y[j]})
			}
		}
		finite += len(xys)
		if len(xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("plot %s: series %q: %w", path, s.Name, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		pts.Color = plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		p.Add(l, pts)
		if s.Name != "" {
			p.Legend.Add(s.Name, l, pts)
			named++
		}
	}
	if finite == 0 {
		return fmt.Errorf("plot %s: no finite points to draw", path)
	}
	// Headroom above the data for the legend (top right): ~7% of the data
	// range per entry, so the legend does not cover the lines' high points.
	if n := named; n > 0 && p.Y.Max > p.Y.Min {
		p.Y.Max += (p.Y.Max - p.Y.Min) * 0.07 * float64(n)
	}
	// The legend sits inside the data area, clear of its frame.
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), -vg.Points(6)
	return write(path, 7*vg.Inch, 4.5*vg.Inch, func(dc draw.Canvas) { p.Draw(inset(dc)) })
}

// inset is the canvas less a margin on every side, so that nothing a chart
// draws (the last tick label, a legend) touches the figure's edge.
func inset(dc draw.Canvas) draw.Canvas {
	dc.Min.X += margin
	dc.Min.Y += margin
	dc.Max.X -= margin
	dc.Max.Y -= margin
	return dc
}

const margin = 0.12 * vg.Inch

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// grid adapts [rows][cols] values to plotter.GridXYZ with row 0 at the top.
type grid struct {
	v          [][]float64
	rows, cols int
}

func (g grid) Dims() (c, r int)          { return g.cols, g.rows }
func (g grid) Z(c, r int) float64        { return g.v[g.rows-1-r][c] }
func (g grid) X(c int) float64           { return float64(c) }
func (g grid) Y(r int) float64           { return float64(r) }
func (g grid) Min() float64              { lo, _ := g.rangeOf(); return lo }
func (g grid) Max() float64              { _, hi := g.rangeOf(); return hi }
func (g grid) rangeOf() (lo, hi float64) { return valueRange(g.v) }

// valueRange is the finite min and max of v (0, 0 when none).
func valueRange(v [][]float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, r := range v {
		for _, x := range r {
			if isFinite(x) {
				lo, hi = math.Min(lo, x), math.Max(hi, x)
			}
		}
	}
	if lo > hi {
		return 0, 0
	}
	return lo, hi
}

// Scale is the colour scale [lo, hi] Heatmap would choose over the tables
// together, as the package doc describes: symmetric about 0 when the values
// have both signs, else their range (widened when constant). Charts of one
// quantity on several models, drawn as separate figures, share colours by
// drawing each with Range(Scale(all of them...)).
func Scale(tables ...[][]float64) (lo, hi float64) {
	var all [][]float64
	for _, t := range tables {
		all = append(all, t...)
	}
	lo, hi = valueRange(all)
	if lo < 0 && hi > 0 {
		a := math.Max(-lo, hi)
		return -a, a
	}
	if lo == hi { // a constant table: give the colour bar some range
		d := math.Max(math.Abs(lo)*0.5, 0.5)
		lo, hi = lo-d, hi+d
	}
	return lo, hi
}

// colorMap is the diverging map (Moreland's smooth blue-red) over a scale
// that spans 0, else the sequential one (Kindlmann).
func colorMap(lo, hi float64) palette.ColorMap {
	var cm palette.ColorMap
	if lo < 0 && hi > 0 {
		cm = moreland.SmoothBlueRed()
	} else {
		cm = moreland.Kindlmann()
	}
	cm.SetMin(lo)
	cm.SetMax(hi)
	return cm
}

// Option changes a heat-map figure.
type Option func(*options)

type options struct {
	bar    string
	lo, hi float64
	fixed  bool
}

// BarLabel names what a colour means, beside the colour bar (default: the
// figure's title).
func BarLabel(s string) Option { return func(o *options) { o.bar = s } }

// Range fixes the colour scale to [lo, hi] (see Scale); values outside it
// take the end colours.
func Range(lo, hi float64) Option {
	return func(o *options) { o.lo, o.hi, o.fixed = lo, hi, hi > lo }
}

// luminance is the relative luminance (0 black .. 1 white) of c.
func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return (0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)) / 0xffff
}

// cellLabel formats a value with 3 significant digits; a NaN cell (not
// measured: the diagonal of an interaction table, a head not swept) is grey
// and unlabelled; an infinite one reads ∞ or −∞.
func cellLabel(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	if math.IsInf(x, 0) { // the end colour of the scale, labelled ∞ (not "+Inf")
		return map[bool]string{true: "∞", false: "−∞"}[x > 0]
	}
	if x != 0 && (math.Abs(x) >= 1000 || math.Abs(x) < 0.01) {
		return strconv.FormatFloat(x, 'e', 1, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// Heatmap draws values [rows][cols] as coloured, labelled cells with a colour
// bar and writes it to path (.png or .svg). rowLabels and colLabels may be
// nil (indices are used) or must match the table's dimensions.
func Heatmap(path, title, xlabel, ylabel string, rowLabels, colLabels []string, values [][]float64, opts ...Option) error {
	return Heatmaps(path, "", xlabel, ylabel, []Panel{{Title: title, RowLabels: rowLabels, ColLabels: colLabels, Values: values}}, opts...)
}

// Panel is one table of a Heatmaps figure.
type Panel struct {
	Title                string
	RowLabels, ColLabels []string // nil: indices
	Values               [][]float64
}

// Heatmaps draws the panels side by side with ONE colour scale (chosen over
// all their values as Heatmap chooses it for one table) and one colour bar,
// so equal colours mean equal values across panels, e.g. the same score on
// models of different sizes. title, when not empty, goes above the panels.
func Heatmaps(path, title, xlabel, ylabel string, panels []Panel, opts ...Option) error {
	if _, err := format(path); err != nil {
		return err
	}
	if len(panels) == 0 {
		return fmt.Errorf("plot %s: no tables", path)
	}
	for i := range panels {
		pn := &panels[i]
		rows := len(pn.Values)
		if rows == 0 || len(pn.Values[0]) == 0 {
			return fmt.Errorf("plot %s: empty table", path)
		}
		cols := len(pn.Values[0])
		for r, row := range pn.Values {
			if len(row) != cols {
				return fmt.Errorf("plot %s: row %d has %d values, row 0 has %d", path, r, len(row), cols)
			}
		}
		if pn.RowLabels == nil {
			pn.RowLabels = indexLabels(rows)
		}
		if pn.ColLabels == nil {
			pn.ColLabels = indexLabels(cols)
		}
		if len(pn.RowLabels) != rows || len(pn.ColLabels) != cols {
			return fmt.Errorf("plot %s: %d row labels and %d column labels for a %dx%d table", path, len(pn.RowLabels), len(pn.ColLabels), rows, cols)
		}
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if !o.fixed {
		tables := make([][][]float64, len(panels))
		for i, pn := range panels {
			tables[i] = pn.Values
		}
		o.lo, o.hi = Scale(tables...)
	}
	cm := colorMap(o.lo, o.hi)
	if o.bar == "" {
		o.bar = title
		if o.bar == "" {
			o.bar = panels[0].Title
		}
	}

	bar := gplot.New()
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true})
	bar.HideX()
	bar.Y.Padding = 0
	bar.Title.Text = " " // keeps the bar's top in line with the heat map's
	bar.Y.Label.Text = o.bar
	// The bar's column: a gap, its axis (ticks and label, measured), the
	// bar itself (barIn wide), a right margin.
	const gap, barIn, pad = 0.15 * vg.Inch, 0.3 * vg.Inch, 0.1 * vg.Inch
	probe := draw.New(vgimg.New(10*vg.Inch, 5*vg.Inch))
	axisW := probe.Size().X - bar.DataCanvas(probe).Size().X
	barW := gap + axisW + barIn + pad

	// Figure size: ~0.55in per cell plus margins, each panel within 5..12 in
	// wide, then the bar's column and the margins; the height fits the
	// tallest panel.
	cellIn := 0.55
	var widths []vg.Length
	var h vg.Length
	w := barW + 2*margin
	for _, pn := range panels {
		pw := vg.Length(math.Min(12, math.Max(5, cellIn*float64(len(pn.Values[0]))+2.5))-1.1) * vg.Inch
		widths = append(widths, pw)
		w += pw
		h = max(h, vg.Length(math.Min(12, math.Max(3.5, cellIn*float64(len(pn.Values))+1.8)))*vg.Inch)
	}
	titleH := vg.Length(0)
	if title != "" {
		titleH = 0.4 * vg.Inch
		h += titleH
	}
	h += 2 * margin
	var plots []*gplot.Plot
	for i, pn := range panels {
		plots = append(plots, heatPanel(pn, xlabel, ylabel, cm, widths[i], h-titleH-2*margin))
	}
	return write(path, w, h, func(dc draw.Canvas) {
		dc = inset(dc)
		if title != "" {
			top := dc
			top.Min.Y = dc.Max.Y - titleH
			top.FillText(text.Style{Color: color.Black, Font: font.From(plotter.DefaultFont, 13), XAlign: text.XCenter, YAlign: text.YCenter, Handler: gplot.DefaultTextHandler},
				vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - titleH/2}, title)
			dc.Max.Y -= titleH
		}
		x := dc.Min.X
		for i, p := range plots {
			c := dc
			c.Min.X, c.Max.X = x, x+widths[i]
			p.Draw(c)
			x = c.Max.X
		}
		right := dc
		right.Min.X = x + gap
		right.Max.X = right.Min.X + axisW + barIn
		bar.Draw(right)
	})
}

// heatPanel builds one heat map plot with cell labels, coloured by cm, for a
// panel drawn in w x h.
func heatPanel(pn Panel, xlabel, ylabel string, cm palette.ColorMap, w, h vg.Length) *gplot.Plot {
	values := pn.Values
	rows, cols := len(values), len(values[0])
	g := grid{v: values, rows: rows, cols: cols}
	hm := plotter.NewHeatMap(g, cm.Palette(255))
	hm.Min, hm.Max = cm.Min(), cm.Max()
	hm.NaN = color.Gray{Y: 0xb0}
	hm.Underflow, hm.Overflow = hm.Palette.Colors()[0], hm.Palette.Colors()[len(hm.Palette.Colors())-1]

	p := gplot.New()
	p.Title.Text = pn.Title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(hm)
	rev := make([]string, rows)
	for i := range rev {
		rev[i] = pn.RowLabels[rows-1-i]
	}
	p.NominalX(pn.ColLabels...)
	p.NominalY(rev...)

	// Cell labels, sized to the cell.
	cellPt := math.Min(float64(w-1.2*vg.Inch)/float64(cols), float64(h-1.2*vg.Inch)/float64(rows))
	size := vg.Points(math.Max(5, math.Min(10, cellPt/4)))
	var xys plotter.XYs
	var labels []string
	var styles []text.Style
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			x := values[r][c]
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(rows - 1 - r)})
			labels = append(labels, cellLabel(x))
			fg := color.Color(color.Black)
			if isFinite(x) {
				v := math.Min(math.Max(x, cm.Min()), cm.Max())
				if bg, err := cm.At(v); err == nil && luminance(bg) < 0.45 {
					fg = color.White
				}
			}
			styles = append(styles, text.Style{
				Color:   fg,
				Font:    font.From(plotter.DefaultFont, size),
				XAlign:  text.XCenter,
				YAlign:  text.YCenter,
				Handler: gplot.DefaultTextHandler,
			})
		}
	}
	p.Add(&plotter.Labels{XYs: xys, Labels: labels, TextStyle: styles})
	return p
}

func indexLabels(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}
