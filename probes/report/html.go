package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/probes/plot"
)

var (
	//go:embed assets/page.html.tmpl
	pageTmpl string
	//go:embed assets/style.css
	styleCSS string
	//go:embed assets/check.js
	checkJS string
)

// generatorMark is in every page Write makes; an existing output folder is
// replaced only when its index.html has it.
const generatorMark = `<meta name="generator" content="neoscope report">`

// Page is what Write renders.
type Page struct {
	Title   string    // page heading
	Command string    // the command line that made it, shown at the top
	Version string    // neoscope's version (module version and commit), shown with it
	Time    time.Time // when it was made (zero: now)
	Results []*Result // one or two models, shown side by side
	TopK    int       // heads listed under each heatmap (default 5)
	// Circuits are `neoscope circuit` results shown in their own section.
	Circuits []Circuit
}

// Circuit is one discovered circuit: its drawing (a PNG file, copied beside
// the page) and its facts.
type Circuit struct {
	Title string
	PNG   string
	Facts []KV
	Edges []KV // kept edges and their effects
}

// circuitView is a Circuit as the template shows it.
type circuitView struct {
	Title        string
	Chart        image
	Facts, Edges []KV
}

// CheckOut reports whether Write may write dir: it does not exist, is an
// empty folder, or holds an earlier report. Call it before long computations.
func CheckOut(dir string) error {
	if dir == "" {
		return errors.New("no output folder given")
	}
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s exists and is not a folder", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil || !bytes.Contains(b, []byte(generatorMark)) {
		return fmt.Errorf("refusing to replace %s: it is not empty and holds no neoscope report", dir)
	}
	return nil
}

// image is one chart: its file beside index.html and the same bytes inline.
type image struct {
	File string
	Alt  string
	Src  template.URL
	// Scale is a heat map's colour scale, e.g. "0 to 0.9, shared by the 2
	// models" (empty for other charts).
	Scale string
}

type headRow struct {
	Head  string
	Value string
}

type layerRow struct {
	Layer       int
	Type        string
	Attn, MLP   string
	Attn0, MLP0 string // the ablated losses themselves
}

// missRow is one large disagreement of an estimate with exact patching.
type missRow struct{ Name, Estimate, Exact, Diff string }

type lensRow struct{ Layer, Loss, KL string }

type projRow struct{ Layer, Mean, Std, Norm, Cos, Share string }

type column struct {
	R         *Result
	Card      []KV
	Embed     []KV
	Proj      []projRow
	Lens      []lensRow
	IOI       []KV
	IOIPatch  image
	IOIDLA    image
	TopPatch  []headRow
	TopDLA    []headRow
	Induction image
	Prev      image
	Ablation  image
	TopInd    []headRow
	TopPrev   []headRow
	TopAbl    []headRow
	Layers    []layerRow
	Baseline  string
	RepLoss   string

	// Attribution patching vs exact patching.
	Attrib      []KV
	AttribGap   string // set when the IOI gap is too small or reversed
	AttribNodes image
	AttribEdges image
	WorstNodes  []missRow
	WorstEdges  []missRow
}

type view struct {
	Title, Command, Time string
	Version              string
	Cols                 []column
	Two                  bool
	TopK                 int
	LayerChart           image
	LensChart            image
	EmbedChart           image
	Circuits             []circuitView
	CSS                  template.CSS
	JS                   template.JS
	Mark                 template.HTML
}

// Write renders p into dir (index.html, the charts as PNG files and
// results.json), building it in a temporary folder and renaming it into place.
func Write(dir string, p Page) (err error) {
	if len(p.Results) == 0 {
		return errors.New("report: no results to write")
	}
	if err := CheckOut(dir); err != nil {
		return err
	}
	if p.TopK <= 0 {
		p.TopK = 5
	}
	if p.Time.IsZero() {
		p.Time = time.Now()
	}
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}

	v := view{Title: p.Title, Command: p.Command, Version: p.Version, Time: p.Time.UTC().Format("2006-01-02 15:04 UTC"),
		Two: len(p.Results) > 1, TopK: p.TopK,
		CSS: template.CSS(styleCSS), JS: template.JS(checkJS), Mark: template.HTML(generatorMark)}
	var series []plot.Series
	for i, r := range p.Results {
		slug := fmt.Sprintf("m%d", i+1)
		L, NH := r.Cfg.Layers, r.Cfg.Heads
		rowL, colL := labels(L), labels(NH)
		c := column{R: r, Card: r.Card()}
		// mk draws one heat map of this model. Its colour scale is chosen
		// over that chart's tables of every model on the page (plot.Scale),
		// so compared models' charts share colours; the page says which.
		mk := func(name, title, bar string, get func(*Result) [][]float64) (image, error) {
			file := slug + "-" + name + ".png"
			full := title
			if len(title)+len(r.Name) <= 44 { // longer titles overflow a small model's figure
				full += " — " + r.Name
			}
			var all [][][]float64
			for _, o := range p.Results {
				if v := get(o); v != nil {
					all = append(all, v)
				}
			}
			lo, hi := plot.Scale(all...)
			if err := plot.Heatmap(filepath.Join(tmp, file), full, "head", "layer", rowL, colL, get(r),
				plot.BarLabel(bar), plot.Range(lo, hi)); err != nil {
				return image{}, fmt.Errorf("%s: %w", file, err)
			}
			img, err := embedImage(tmp, file, title+" of "+r.Name)
			img.Scale = fmt.Sprintf("%.3g to %.3g", lo, hi)
			if len(all) > 1 {
				img.Scale += fmt.Sprintf(", shared by the %d models", len(all))
			}
			return img, err
		}
		ind := func(r *Result) [][]float64 { return r.Induction.Induction }
		prev := func(r *Result) [][]float64 { return r.Induction.PrevToken }
		abl := func(r *Result) [][]float64 { return r.HeadDelta }
		if c.Induction, err = mk("induction", "Induction score", "induction score", ind); err != nil {
			return err
		}
		if c.Prev, err = mk("prev-token", "Previous-token score", "previous-token score", prev); err != nil {
			return err
		}
		if c.Ablation, err = mk("ablation", "Loss increase, head ablated", "loss increase (nats)", abl); err != nil {
			return err
		}
		c.Embed = embedRows(r)
		for l, e := range r.EmbedProj {
			c.Proj = append(c.Proj, projRow{fmt.Sprint(l), fmt.Sprintf("%.4g", e.Mean), fmt.Sprintf("%.4g", e.Std),
				fmt.Sprintf("%.4g", e.MeanNorm), fmt.Sprintf("%.4f", e.MeanCos), fmt.Sprintf("%.4f", e.MeanShare)})
		}
		for l := range r.Lens.Loss {
			c.Lens = append(c.Lens, lensRow{fmt.Sprint(l), fmt.Sprintf("%.4f", r.Lens.Loss[l]), fmt.Sprintf("%.4f", r.Lens.KL[l])})
		}
		if r.IOI != nil {
			c.IOI = ioiRows(r)
			patch := func(r *Result) [][]float64 {
				if r.IOI == nil {
					return nil
				}
				return r.IOI.PatchHeadZ
			}
			dla := func(r *Result) [][]float64 {
				if r.IOI == nil {
					return nil
				}
				return r.IOI.DLA.Head
			}
			if c.IOIPatch, err = mk("ioi-patch", "IOI head patching", "(patched − corrupt) / (clean − corrupt)", patch); err != nil {
				return err
			}
			if c.IOIDLA, err = mk("ioi-dla", "IOI direct logit attribution", "direct effect on logit(IO) − logit(S)", dla); err != nil {
				return err
			}
			c.TopPatch = top(rankAbs(r.IOI.PatchHeadZ), p.TopK, "%+.3f")
			c.TopDLA = top(rankAbs(r.IOI.DLA.Head), p.TopK, "%+.3f")
		}
		if r.Attribution != nil {
			if err := c.attribution(tmp, slug, r, p.TopK); err != nil {
				return err
			}
		}
		c.TopInd = top(r.Induction.TopInduction, p.TopK, "%.3f")
		c.TopPrev = top(r.Induction.TopPrevToken, p.TopK, "%.3f")
		c.TopAbl = top(r.TopAblation, p.TopK, "%+.4f")
		c.Baseline = fmt.Sprintf("%.4f", r.Ablation.Baseline)
		c.RepLoss = fmt.Sprintf("%.4f", r.Induction.LossSecondHalf)
		x := make([]float64, L)
		for l := range L {
			x[l] = float64(l)
			typ := ""
			if l < len(r.Cfg.LayerTypes) {
				typ = r.Cfg.LayerTypes[l]
			}
			c.Layers = append(c.Layers, layerRow{Layer: l, Type: typ,
				Attn: fmt.Sprintf("%+.4f", r.AttnDelta[l]), MLP: fmt.Sprintf("%+.4f", r.MLPDelta[l]),
				Attn0: fmt.Sprintf("%.4f", r.Ablation.Attn[l]), MLP0: fmt.Sprintf("%.4f", r.Ablation.MLP[l])})
		}
		series = append(series,
			plot.Series{Name: "attention, " + r.Name, X: x, Y: r.AttnDelta},
			plot.Series{Name: "MLP, " + r.Name, X: x, Y: r.MLPDelta})
		v.Cols = append(v.Cols, c)
	}
	if err := v.globalCharts(tmp, p.Results); err != nil {
		return err
	}
	if err := plot.Lines(filepath.Join(tmp, "layers.png"), "Loss increase when a whole layer part is zero-ablated",
		"layer", "loss increase (nats)", series); err != nil {
		return fmt.Errorf("layers.png: %w", err)
	}
	if v.LayerChart, err = embedImage(tmp, "layers.png", "Loss increase per ablated attention layer and MLP"); err != nil {
		return err
	}

	for i, c := range p.Circuits {
		file := fmt.Sprintf("circuit-%d.png", i+1)
		b, err := os.ReadFile(c.PNG)
		if err != nil {
			return fmt.Errorf("report: circuit drawing: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, file), b, 0o644); err != nil {
			return err
		}
		img, err := embedImage(tmp, file, c.Title)
		if err != nil {
			return err
		}
		v.Circuits = append(v.Circuits, circuitView{Title: c.Title, Chart: img, Facts: c.Facts, Edges: c.Edges})
	}

	t, err := template.New("page").Funcs(template.FuncMap{"add1": func(i int) int { return i + 1 }}).Parse(pageTmpl)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "index.html"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	doc := map[string]any{"command": p.Command, "neoscope_version": p.Version, "time": v.Time, "models": p.Results}
	js, err := json.MarshalIndent(doc, "", " ")
	var uv *json.UnsupportedValueError
	if errors.As(err, &uv) { // NaN (e.g. an undefined correlation): written as null
		safe, _ := outfile.NullNaN(doc)
		js, err = json.MarshalIndent(safe, "", " ")
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return replaceDir(tmp, dir)
}

// replaceDir renames tmp to dir, moving an earlier report out of the way
// first (CheckOut has vetted it) and deleting it afterwards.
func replaceDir(tmp, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	if err := CheckOut(dir); err != nil {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("%w (and restoring the earlier report failed: %v; it is in %s)", err, rerr, old)
		}
		return err
	}
	return os.RemoveAll(old)
}

// globalCharts draws the charts with every model on one set of axes: the
// logit-lens loss and the residual's cosine with the mean-embedding
// direction, per layer (by layer fraction l/L when the depths differ).
func (v *view) globalCharts(tmp string, rs []*Result) error {
	frac := false
	for _, r := range rs {
		frac = frac || r.Cfg.Layers != rs[0].Cfg.Layers
	}
	xlabel := "layer (resid_pre; L = final residual)"
	if frac {
		xlabel = "layer / L"
	}
	var lensS, cosS []plot.Series
	for _, r := range rs {
		L := r.Cfg.Layers
		xs := func(n int) []float64 {
			x := make([]float64, n)
			for i := range x {
				x[i] = float64(i)
				if frac {
					x[i] /= float64(L)
				}
			}
			return x
		}
		lensS = append(lensS, plot.Series{Name: r.Name, X: xs(len(r.Lens.Loss)), Y: r.Lens.Loss})
		cos := make([]float64, len(r.EmbedProj))
		for i, e := range r.EmbedProj {
			cos[i] = e.MeanCos
		}
		cosS = append(cosS, plot.Series{Name: r.Name, X: xs(len(cos)), Y: cos})
	}
	if err := plot.Lines(filepath.Join(tmp, "lens.png"), "Logit lens: next-token loss per layer", xlabel, "loss (nats)", lensS); err != nil {
		return fmt.Errorf("lens.png: %w", err)
	}
	var err error
	if v.LensChart, err = embedImage(tmp, "lens.png", "Logit-lens loss per layer"); err != nil {
		return err
	}
	if err := plot.Lines(filepath.Join(tmp, "embed-direction.png"), "Residual stream vs the mean-embedding direction u", xlabel, "mean cos(resid, u)", cosS); err != nil {
		return fmt.Errorf("embed-direction.png: %w", err)
	}
	v.EmbedChart, err = embedImage(tmp, "embed-direction.png", "Mean cosine of the residual with the mean-embedding direction, per layer")
	return err
}

func embedRows(r *Result) []KV {
	e := r.Embed
	return []KV{
		{"V × C", fmt.Sprintf("%d × %d", e.V, e.C)},
		{"mean_norm", fmt.Sprintf("%.4f", e.MeanNorm)},
		{"norm_of_mean", fmt.Sprintf("%.4f", e.NormOfMean)},
		{"mean_pairwise_cos", fmt.Sprintf("%.4f", e.MeanPairwiseCos)},
		{"mean_pairwise_cos_centered", fmt.Sprintf("%.4f", e.MeanPairwiseCosCentered)},
		{"mean_abs_pairwise_cos_centered", fmt.Sprintf("%.4f", e.MeanAbsPairwiseCosCentered)},
		{"embed_self_top1", fmt.Sprintf("%.4f", e.SelfTop1)},
		{"embed_self_top1_ln", fmt.Sprintf("%.4f", e.SelfTop1LN)},
	}
}

func ioiRows(r *Result) []KV {
	x := r.IOI
	return []KV{
		{"prompts", fmt.Sprint(x.N)},
		{"logit difference, clean", fmt.Sprintf("%.4f", x.LDClean)},
		{"logit difference, corrupt (ABC)", fmt.Sprintf("%.4f", x.LDCorrupt)},
		{"IO preferred over S", fmt.Sprintf("%.1f%%", 100*x.IOPreferred)},
		{"heads' share of patching effect", fmt.Sprintf("%.3f", x.Summary.PatchHeadShare)},
		{"heads' share of DLA", fmt.Sprintf("%.3f", x.Summary.DLAHeadShare)},
		{"heads or MLPs?", x.Summary.Answer},
	}
}

// attribution fills the column's attribution section: facts, the two
// scatter charts (AtP over heads and MLPs, EAP over edges) and the k worst
// disagreements of each.
func (c *column) attribution(tmp, slug string, r *Result, k int) error {
	a := r.Attribution
	corr := func(v *attrib.Verification) string {
		return fmt.Sprintf("Pearson %s, Spearman %s", fmtCorr(v.Pearson), fmtCorr(v.Spearman))
	}
	c.Attrib = []KV{
		{"prompts", fmt.Sprint(a.Prompts)},
		{"logit difference, clean / corrupt", fmt.Sprintf("%.4f / %.4f", a.LDClean, a.LDCorrupt)},
		{fmt.Sprintf("AtP vs exact, %d heads and MLPs", len(a.Nodes.Names)), corr(a.Nodes)},
		{fmt.Sprintf("EAP vs exact, %d edges", len(a.Edges.Names)), corr(a.Edges)},
	}
	if a.EdgesSampled {
		c.Attrib = append(c.Attrib, KV{"edges patched exactly", fmt.Sprintf("%d of the graph's %d: the %d largest |EAP| and a uniform sample of the rest",
			len(a.Edges.Names), a.GraphEdges, len(a.Edges.Names)/2)})
	}
	if r.IOI != nil && r.IOI.Summary.Gap.TooSmall {
		g := r.IOI.Summary.Gap
		c.AttribGap = g.Reason
		if g.Mean < 0 && !r.IOI.GapReversed { // the reason speaks of noise only
			c.AttribGap = "its sign is reversed (on average the clean prompts prefer IO less than the corrupted ones), and " + g.Reason
		}
	}
	for _, x := range []struct {
		v     *attrib.Verification
		name  string
		title string
		est   string
		dst   *image
		rows  *[]missRow
	}{
		{a.Nodes, "atp-scatter", "AtP vs exact patching, heads and MLPs", "AtP estimate", &c.AttribNodes, &c.WorstNodes},
		{a.Edges, "eap-scatter", "EAP vs exact patching, edges", "EAP estimate", &c.AttribEdges, &c.WorstEdges},
	} {
		pts := make([]plot.Point, len(x.v.Names))
		for i, n := range x.v.Names {
			pts[i] = plot.Point{Name: n, X: x.v.Exact[i], Y: x.v.Estimate[i]}
		}
		file := slug + "-" + x.name + ".png"
		title := x.title
		if len(title)+len(r.Name) <= 44 {
			title += " — " + r.Name
		}
		if err := plot.Scatter(filepath.Join(tmp, file), title, "exact change of the logit difference (patched − clean)", x.est, pts, k); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		img, err := embedImage(tmp, file, x.title+" of "+r.Name)
		if err != nil {
			return err
		}
		*x.dst = img
		for _, i := range x.v.Worst[:min(k, len(x.v.Worst))] {
			*x.rows = append(*x.rows, missRow{x.v.Names[i], fmt.Sprintf("%+.4f", x.v.Estimate[i]),
				fmt.Sprintf("%+.4f", x.v.Exact[i]), fmt.Sprintf("%+.4f", x.v.Estimate[i]-x.v.Exact[i])})
		}
	}
	return nil
}

// fmtCorr prints a correlation, "undefined" for NaN (constant values or
// fewer than 3 points).
func fmtCorr(x float64) string {
	if math.IsNaN(x) {
		return "undefined"
	}
	return fmt.Sprintf("%.3f", x)
}

func embedImage(dir, file, alt string) (image, error) {
	path := filepath.Join(dir, file)
	if err := os.Chmod(path, 0o644); err != nil { // the plot's temp-file mode is 0600
		return image{}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return image{}, err
	}
	mime := "image/png"
	if strings.HasSuffix(file, ".svg") {
		mime = "image/svg+xml"
	}
	return image{File: file, Alt: alt,
		Src: template.URL("data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b))}, nil
}

// rankAbs lists every head by |value|, largest first (ties by layer, head).
func rankAbs(x [][]float64) []induction.HeadScore {
	r := induction.Rank(x)
	sort.SliceStable(r, func(i, j int) bool { return math.Abs(r[i].Score) > math.Abs(r[j].Score) })
	return r
}

func labels(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i)
	}
	return s
}

func top(x []induction.HeadScore, k int, format string) []headRow {
	var out []headRow
	for i, h := range x {
		if i == k {
			break
		}
		out = append(out, headRow{h.Head, fmt.Sprintf(format, h.Score)})
	}
	return out
}
