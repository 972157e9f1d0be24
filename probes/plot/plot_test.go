package plot

import (
	"bytes"
	"encoding/xml"
	"html"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkFile asserts path exists and is a valid PNG (decodes, at least
// minW x minH pixels) or a well-formed SVG document with an <svg> root.
// readPNG decodes the PNG at path, failing the test when it cannot.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", path, err)
	}
	return img
}

func checkFile(t *testing.T, path string, minW, minH int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		t.Fatalf("%s: empty", path)
	}
	switch filepath.Ext(path) {
	case ".png":
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", path, err)
		}
		b := img.Bounds()
		if b.Dx() < minW || b.Dy() < minH {
			t.Fatalf("%s: %dx%d pixels, want at least %dx%d", path, b.Dx(), b.Dy(), minW, minH)
		}
		// Not blank: some pixel differs from the top-left one.
		c0 := img.At(b.Min.X, b.Min.Y)
		r0, g0, b0, _ := c0.RGBA()
		varied := false
		for y := b.Min.Y; y < b.Max.Y && !varied; y += 3 {
			for x := b.Min.X; x < b.Max.X; x += 3 {
				r, g, bb, _ := img.At(x, y).RGBA()
				if r != r0 || g != g0 || bb != b0 {
					varied = true
					break
				}
			}
		}
		if !varied {
			t.Fatalf("%s: image is a single colour", path)
		}
	case ".svg":
		dec := xml.NewDecoder(bytes.NewReader(data))
		root := ""
		for {
			tok, err := dec.Token()
			if err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: not well-formed XML: %v", path, err)
			}
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		if root != "svg" {
			t.Fatalf("%s: root element %q, want svg", path, root)
		}
	}
}

func TestLines(t *testing.T) {
	dir := t.TempDir()
	s := []Series{
		{Name: "tiny-neo", X: []float64{0, 0.25, 0.5, 0.75, 1}, Y: []float64{6.5, 6.3, 6.1, 5.9, 5.7}},
		{Name: "tiny-gpt2", X: []float64{0, 0.25, 0.5, 0.75, 1}, Y: []float64{6.4, math.NaN(), 6.0, 5.8, 5.5}},
	}
	for _, name := range []string{"lines.png", "lines.svg"} {
		p := filepath.Join(dir, name)
		if err := Lines(p, "logit lens", "layer / L", "loss (nats)", s); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, 600, 400) // 7 x 4.5 in at 96 dpi = 672 x 432
	}
	if out := os.Getenv("NEOSCOPE_PLOT_OUT"); out != "" { // for looking at it
		Lines(filepath.Join(out, "lines.png"), "logit lens", "layer / L", "loss (nats)", s)
	}
}

func TestHeatmap(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{4, 12, 16} {
		v := make([][]float64, n)
		rows := make([]string, n)
		for r := range v {
			rows[r] = "L" + string(rune('0'+r%10))
			v[r] = make([]float64, n)
			for c := range v[r] {
				v[r][c] = math.Sin(float64(r*n+c)) * float64(r+1) / float64(n)
			}
		}
		v[0][1] = math.NaN()
		for _, ext := range []string{".png", ".svg"} {
			p := filepath.Join(dir, "heat"+string(rune('a'+n))+ext)
			if err := Heatmap(p, "scores", "head", "layer", rows, nil, v); err != nil {
				t.Fatal(err)
			}
			checkFile(t, p, 400, 300)
		}
		if out := os.Getenv("NEOSCOPE_PLOT_OUT"); out != "" {
			Heatmap(filepath.Join(out, "heat"+string(rune('a'+n))+".png"), "scores", "head", "layer", rows, nil, v)
		}
	}
	// One row and one column (per-layer tables).
	for _, v := range [][][]float64{{{0.1, -0.2, 0.3, 0.4}}, {{1}, {2}, {3}}} {
		p := filepath.Join(dir, "thin.svg")
		if err := Heatmap(p, "thin", "", "", nil, nil, v); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, 0, 0)
	}
	// Sequential (all positive) and constant tables.
	p := filepath.Join(dir, "pos.png")
	if err := Heatmap(p, "", "", "", nil, nil, [][]float64{{1, 2}, {3, 4}}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, 100, 100)
	if err := Heatmap(p, "", "", "", nil, nil, [][]float64{{2, 2}, {2, 2}}); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"ext", Lines(filepath.Join(dir, "x.gif"), "", "", "", []Series{{X: []float64{1}, Y: []float64{1}}}), "unsupported file type"},
		{"none", Lines(filepath.Join(dir, "x.png"), "", "", "", nil), "no series"},
		{"len", Lines(filepath.Join(dir, "x.png"), "", "", "", []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}), `series "a" has 2 x values`},
		{"nan", Lines(filepath.Join(dir, "x.png"), "", "", "", []Series{{X: []float64{1}, Y: []float64{math.NaN()}}}), "no finite points"},
		{"ragged", Heatmap(filepath.Join(dir, "x.png"), "", "", "", nil, nil, [][]float64{{1, 2}, {3}}), "row 1 has 1 values"},
		{"labels", Heatmap(filepath.Join(dir, "x.png"), "", "", "", []string{"a"}, nil, [][]float64{{1}, {3}}), "1 row labels"},
		{"empty", Heatmap(filepath.Join(dir, "x.svg"), "", "", "", nil, nil, nil), "empty table"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, c.err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.png")); err == nil {
		t.Errorf("a failed plot left x.png behind")
	}
}

// TestCellLabelNaN: a NaN cell carries no "nan" text.
func TestCellLabelNaN(t *testing.T) {
	if got := cellLabel(math.NaN()); got != "" {
		t.Errorf("cellLabel(NaN) = %q, want no text", got)
	}
	if got := cellLabel(0.125); got != "0.125" {
		t.Errorf("cellLabel(0.125) = %q", got)
	}
}

func TestHeatmapsSharedScale(t *testing.T) {
	dir := t.TempDir()
	a := Panel{Title: "small", Values: [][]float64{{0, 1}, {0.5, 0.25}}}
	b := Panel{Title: "large", Values: [][]float64{{0, 10}, {2, 3}, {4, 5}}, RowLabels: []string{"x", "y", "z"}}
	if lo, hi := Scale(a.Values, b.Values); lo != 0 || hi != 10 {
		t.Fatalf("shared colour scale [%g, %g], want [0, 10] over both panels", lo, hi)
	}
	// Both signs anywhere: diverging and symmetric over all panels.
	if lo, hi := Scale(a.Values, [][]float64{{-3}}); lo != -3 || hi != 3 {
		t.Fatalf("diverging shared scale [%g, %g], want [-3, 3]", lo, hi)
	}
	one, two := filepath.Join(dir, "one.png"), filepath.Join(dir, "two.png")
	if err := Heatmaps(one, "", "head", "layer", []Panel{a}); err != nil {
		t.Fatal(err)
	}
	if err := Heatmaps(two, "induction score", "head", "layer", []Panel{a, b}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, one, 300, 200)
	checkFile(t, two, 600, 200)
	if err := Heatmaps(filepath.Join(dir, "bad.png"), "", "", "", []Panel{a, {Values: [][]float64{{1}}, RowLabels: []string{"p", "q"}}}); err == nil {
		t.Fatal("mismatched row labels accepted")
	}
	if err := Heatmaps(filepath.Join(dir, "none.png"), "", "", "", nil); err == nil {
		t.Fatal("no panels accepted")
	}
}

// svgTexts returns the text of every <text> element of an SVG file.
func svgTexts(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?s)<text[^>]*>(.*?)</text>`).FindAllSubmatch(data, -1) {
		out = append(out, html.UnescapeString(string(m[1])))
	}
	if len(out) == 0 {
		t.Fatalf("%s: no <text> elements", path)
	}
	return out
}

// TestHeatmapText (issue 18, charts): the colour bar carries its label (the
// given one, else the title); NaN and infinite cells carry no "nan"/"inf"
// text; a fixed Range gives two figures of different values the same colour
// bar (the same tick labels).
func TestHeatmapText(t *testing.T) {
	dir := t.TempDir()
	v := [][]float64{{0.5, math.NaN()}, {math.Inf(1), -0.25}}
	p := filepath.Join(dir, "h.svg")
	if err := Heatmap(p, "induction score per head", "head", "layer", nil, nil, v, BarLabel("score (attention to i-P+1)")); err != nil {
		t.Fatal(err)
	}
	texts := svgTexts(t, p)
	if !slices.Contains(texts, "score (attention to i-P+1)") {
		t.Errorf("colour bar label missing; texts %q", texts)
	}
	for _, s := range texts {
		if l := strings.ToLower(s); strings.Contains(l, "nan") || strings.Contains(l, "inf") {
			t.Errorf("cell text %q", s)
		}
	}
	if err := Heatmap(p, "loss increase", "head", "layer", nil, nil, v); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(svgTexts(t, p), "\n"), "loss increase"); n != 2 {
		t.Errorf("the title should label the colour bar by default: %d occurrences, want 2", n)
	}
	ticks := func(path string) []string {
		var out []string
		for _, s := range svgTexts(t, path) {
			if _, err := strconv.ParseFloat(strings.ReplaceAll(s, "−", "-"), 64); err == nil {
				out = append(out, s)
			}
		}
		return out
	}
	a, b := [][]float64{{0.13, 0.17}}, [][]float64{{0.43, 0.87}}
	lo, hi := Scale(a, b)
	pa, pb := filepath.Join(dir, "a.svg"), filepath.Join(dir, "b.svg")
	if err := Heatmap(pa, "m1", "", "", nil, nil, a, Range(lo, hi)); err != nil {
		t.Fatal(err)
	}
	if err := Heatmap(pb, "m2", "", "", nil, nil, b, Range(lo, hi)); err != nil {
		t.Fatal(err)
	}
	// Cell labels differ (0.13 vs 0.43); remove them and the axes' indices,
	// the colour bars' ticks must be the same.
	strip := func(ts []string, cells [][]float64) []string {
		var out []string
		for _, s := range ts {
			if s == "0" || s == "1" || s == cellLabel(cells[0][0]) || s == cellLabel(cells[0][1]) {
				continue
			}
			out = append(out, s)
		}
		return out
	}
	if ta, tb := strip(ticks(pa), a), strip(ticks(pb), b); !slices.Equal(ta, tb) || len(ta) < 2 {
		t.Errorf("colour bars of a shared Range differ: %q vs %q", ta, tb)
	}
}

// TestInsideFrame (issue 18, charts): nothing a chart draws, legends and
// tick labels included, touches the figure's edge: a white margin of at
// least 4 px runs round every kind of chart. Lines' legend used to sit on
// the right edge, its thumbnails cut off.
func TestInsideFrame(t *testing.T) {
	dir := t.TempDir()
	xs := []float64{0, 1, 2, 3}
	charts := map[string]func(string) error{
		"lines": func(p string) error {
			return Lines(p, "Loss increase when a whole layer part is zero-ablated", "layer", "loss (nats)", []Series{
				{Name: "attention, neo-tiny (bundled)", X: xs, Y: []float64{8.8, 7.9, -0.2, -0.3}},
				{Name: "MLP, neo-tiny (bundled)", X: xs, Y: []float64{7, -0.1, 0.9, 2.3}}})
		},
		"heatmap": func(p string) error {
			return Heatmap(p, "induction score", "head", "layer", nil, nil, [][]float64{{0.1, 0.8}, {0.3, -0.2}})
		},
		"heatmaps": func(p string) error {
			return Heatmaps(p, "zero ablation: loss increase per head", "head", "layer", []Panel{
				{Title: "tiny-neo (baseline 9.2336)", Values: [][]float64{{-0.02, 0.04}, {0.3, -0.1}}},
				{Title: "tiny-gpt2 (baseline 9.3143)", Values: [][]float64{{0.05, -0.14}, {0.31, 0.01}}}},
				BarLabel("loss increase (nats)"))
		},
		"scatter": func(p string) error {
			return Scatter(p, "EAP vs exact", "exact", "estimate", []Point{{"a", 0, 0.1}, {"b", 1, 0.7}, {"c", -0.5, 0.2}}, 1)
		},
	}
	for name, draw := range charts {
		p := filepath.Join(dir, name+".png")
		if err := draw(p); err != nil {
			t.Fatal(err)
		}
		img := readPNG(t, p)
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if x >= b.Min.X+4 && x < b.Max.X-4 && y >= b.Min.Y+4 && y < b.Max.Y-4 {
					continue
				}
				if r, g, bl, _ := img.At(x, y).RGBA(); r < 0xf000 || g < 0xf000 || bl < 0xf000 {
					t.Errorf("%s: drawn at (%d, %d), within 4 px of the %v figure's edge", name, x, y, b)
					x, y = b.Max.X, b.Max.Y
				}
			}
		}
	}
}

// TestColourBarWidth: the colour bar keeps its width beside its ticks and
// label, with one panel or several (its column is measured, not guessed:
// with two panels and a label, the bar had shrunk to a sliver under its
// own tick labels).
func TestColourBarWidth(t *testing.T) {
	dir := t.TempDir()
	v := [][]float64{{-1, -0.5}, {-0.2, 0.01}} // scale [-1, 1]: only the bar reaches its top colour
	top, err := colorMap(-1, 1).At(1)
	if err != nil {
		t.Fatal(err)
	}
	tr, tg, tb, _ := top.RGBA()
	near := func(a, b uint32) bool { return a>>8 <= b>>8+12 && b>>8 <= a>>8+12 }
	for name, panels := range map[string][]Panel{
		"one": {{Title: "a", Values: v}},
		"two": {{Title: "a", Values: v}, {Title: "b", Values: v}},
	} {
		p := filepath.Join(dir, name+".png")
		if err := Heatmaps(p, "t", "head", "layer", panels, BarLabel("a long colour bar label (nats)")); err != nil {
			t.Fatal(err)
		}
		img := readPNG(t, p)
		widest := 0
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			run := 0
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				if near(r, tr) && near(g, tg) && near(bl, tb) {
					run++
					widest = max(widest, run)
				} else {
					run = 0
				}
			}
		}
		if widest < 24 { // 0.25 in at 96 dpi
			t.Errorf("%s panel(s): the colour bar is %d px wide, want at least 24", name, widest)
		}
	}
}
