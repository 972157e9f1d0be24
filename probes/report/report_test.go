package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/probes/ioi"
	"github.com/neoscope/neoscope/probes/report"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

func analyze(t *testing.T, name, dir string, rows [][]int32, opt report.Options) *report.Result {
	t.Helper()
	m, err := forward.Open(cpu.New(), dir)
	fixtures.Must(t, err)
	defer m.Close()
	r, err := report.Analyze(report.Input{Name: name, Dir: dir, Model: m, Rows: rows, RowsSource: "fixture tokens"}, opt)
	fixtures.Must(t, err)
	return r
}

// With the fixture's tokens given, the ablation and lens tables are the
// fixture's reference values, and the induction section is internally
// consistent.
func TestAnalyzeGolden(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			rows := ref.Get(t, "tokens").Rows()
			r := analyze(t, name, ref.Dir, rows, report.Options{RepBatch: 2, RepPeriod: 8, Seed: 3})
			tab := func(key string) []float64 {
				var out []float64
				var walk func(v any)
				walk = func(v any) {
					switch x := v.(type) {
					case []any:
						for _, e := range x {
							walk(e)
						}
					case float64:
						out = append(out, x)
					}
				}
				walk(ref.Cases["tables"].(map[string]any)[key])
				return out
			}
			var head []float64
			for _, row := range r.Ablation.Head {
				head = append(head, row...)
			}
			ref.CheckAgainst(t, "head ablation", head, tab("head_ablation_loss"), "head_ablation_loss")
			ref.CheckAgainst(t, "attn ablation", r.Ablation.Attn, tab("attn_layer_ablation_loss"), "attn_layer_ablation_loss")
			ref.CheckAgainst(t, "mlp ablation", r.Ablation.MLP, tab("mlp_ablation_loss"), "mlp_ablation_loss")
			ref.CheckAgainst(t, "lens loss", r.Lens.Loss, tab("logit_lens_loss"), "logit_lens_loss")
			ref.CheckAgainst(t, "lens kl", r.Lens.KL, tab("logit_lens_kl"), "logit_lens_kl")
			sc := ref.Cases["scalars"].(map[string]any)
			ref.CheckAgainst(t, "mean_norm", []float64{r.Embed.MeanNorm}, []float64{sc["mean_norm"].(float64)}, "mean_norm")
			ref.CheckAgainst(t, "baseline", []float64{r.Ablation.Baseline}, []float64{sc["loss"].(float64)}, "loss")
			for l := range r.HeadDelta {
				for h := range r.HeadDelta[l] {
					if d := r.Ablation.Head[l][h] - r.Ablation.Baseline; d != r.HeadDelta[l][h] {
						t.Fatalf("HeadDelta[%d][%d] = %v, want %v", l, h, r.HeadDelta[l][h], d)
					}
				}
			}
			if r.Induction.P != 8 || r.Induction.B != 2 {
				t.Errorf("induction on %d x 2x%d tokens, want 2 x 2x8", r.Induction.B, r.Induction.P)
			}
			if r.IOI != nil || !strings.Contains(r.IOINote, "no tokenizer") {
				t.Errorf("IOI on a model without tokenizer: %v, note %q", r.IOI != nil, r.IOINote)
			}
			if r.Attribution != nil || !strings.Contains(r.AttribNote, "no tokenizer") {
				t.Errorf("attribution section on a model without IOI prompts: %v, note %q", r.Attribution != nil, r.AttribNote)
			}
			if !strings.Contains(r.AblationTokens, "fixture tokens: 3 row(s) of 24 tokens") {
				t.Errorf("AblationTokens = %q", r.AblationTokens)
			}
		})
	}
}

// Write makes a self-contained page: every <img> is a data: URI of a PNG that
// also lies beside the page, every section is there, numbers come from the
// results, and results.json parses.
func TestWriteCompare(t *testing.T) {
	neo := fixtures.Load(t, "tiny-neo")
	gpt := fixtures.Load(t, "tiny-gpt2")
	opt := report.Options{RepBatch: 2, RepPeriod: 8}
	rs := []*report.Result{
		analyze(t, "tiny-neo", neo.Dir, nil, opt),
		analyze(t, "tiny-gpt2", gpt.Dir, nil, opt),
	}
	out := filepath.Join(t.TempDir(), "sub", "report")
	fixtures.Must(t, report.Write(out, report.Page{Title: "T <&> test", Command: "neoscope report", Results: rs}))
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	fixtures.Must(t, err)
	s := string(page)
	if strings.Contains(s, "ZgotmplZ") {
		t.Fatal("html/template rejected a value (ZgotmplZ in the page)")
	}
	if !strings.Contains(s, "T &lt;&amp;&gt; test") {
		t.Error("title not escaped")
	}
	for _, id := range []string{"card", "embed", "lens", "induction", "ablation", "layers", "ioi", "attribution", "method"} {
		if !strings.Contains(s, `<section id="`+id+`"`) || !strings.Contains(s, `href="#`+id+`"`) {
			t.Errorf("section %q or its contents entry missing", id)
		}
	}
	if regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).MatchString(s) {
		t.Error("page refers to an external resource")
	}
	imgs := regexp.MustCompile(`<img src="data:image/png;base64,(?:[A-Za-z0-9/=]|&#43;)+" alt="[^"]*" data-file="([^"]+)"(?: data-scale="([^"]*)")?>`).FindAllStringSubmatch(s, -1)
	if n := strings.Count(s, "<img "); n != len(imgs) || n != 9 {
		t.Fatalf("%d <img> tags, %d inline PNGs; want 9 of each (3 heatmaps x 2 models + 3 charts)", n, len(imgs))
	}
	// Issue 18 (charts): the compared models' heat maps of one quantity
	// share one colour scale, and the page says so.
	scales := map[string]string{}
	for _, im := range imgs {
		if name, ok := strings.CutPrefix(im[1], "m1-"); ok {
			scales[name] = im[2]
		}
	}
	for _, im := range imgs {
		if name, ok := strings.CutPrefix(im[1], "m2-"); ok {
			if im[2] == "" || im[2] != scales[name] || !strings.Contains(im[2], "shared by the 2 models") {
				t.Errorf("%s: colour scale %q, m1-%s's %q: want one scale shared by both models", im[1], im[2], name, scales[name])
			}
		}
	}
	if len(scales) != 3 {
		t.Errorf("%d heat maps of the first model carry a colour scale, want 3", len(scales))
	}
	for _, im := range imgs {
		f, err := os.Open(filepath.Join(out, im[1]))
		fixtures.Must(t, err)
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 100 || cfg.Height < 100 {
			t.Errorf("%s: %v (%dx%d)", im[1], err, cfg.Width, cfg.Height)
		}
	}
	for _, r := range rs {
		for _, want := range []string{
			fmt.Sprintf("%.4f", r.Ablation.Baseline),
			fmt.Sprintf("%.4f", r.Induction.LossSecondHalf),
			fmt.Sprintf("%.4f", r.Embed.MeanAbsPairwiseCosCentered),
			fmt.Sprintf("<td>%.4f</td>", r.Lens.Loss[len(r.Lens.Loss)-1]),
			"<td>" + r.TopAblation[0].Head + "</td>",
		} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: %q not in the page", r.Name, want)
			}
		}
	}
	var js struct{ Models []map[string]any }
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	fixtures.Must(t, err)
	fixtures.Must(t, json.Unmarshal(b, &js))
	if len(js.Models) != 2 {
		t.Errorf("results.json: %d models", len(js.Models))
	}
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Errorf("temporary folders left beside the report: %v", ents)
	}

	// A second Write replaces the report; a folder that is not a report is
	// never replaced.
	fixtures.Must(t, report.Write(out, report.Page{Title: "again", Results: rs[:1]}))
	if b, _ := os.ReadFile(filepath.Join(out, "index.html")); !bytes.Contains(b, []byte("again")) || bytes.Contains(b, []byte("m2-induction")) {
		t.Error("second Write did not replace the report")
	}
	other := t.TempDir()
	fixtures.Must(t, os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644))
	if err := report.Write(other, report.Page{Results: rs[:1]}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Write over a foreign folder: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "notes.txt")); string(b) != "mine" {
		t.Error("foreign folder was touched")
	}
	if err := report.CheckOut(filepath.Join(other, "notes.txt")); err == nil {
		t.Error("CheckOut accepted a file")
	}
}

// A tokenizer small enough for the fixture's 512-token embedding, with the
// IOI names and template words as tokens, gives an IOI section.
func TestIOISection(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		fixtures.Must(t, os.Symlink(filepath.Join(ref.Dir, f), filepath.Join(dir, f)))
	}
	writeTinyTokenizer(t, dir, 511)
	r := analyze(t, "tiny-neo+tok", dir, nil, report.Options{RepBatch: 2, RepPeriod: 8, IOIPrompts: 6, Seed: 1})
	if r.IOI == nil {
		t.Fatalf("no IOI section: %s", r.IOINote)
	}
	if r.IOI.N != 6 || len(r.IOI.PatchHeadZ) != 4 || r.IOIText == "" {
		t.Errorf("IOI: %d prompts, %d patch rows, example %q", r.IOI.N, len(r.IOI.PatchHeadZ), r.IOIText)
	}
	if !strings.Contains(r.LensTokens, "Genesis") {
		t.Errorf("lens tokens without --tokens on a model with a tokenizer: %q", r.LensTokens)
	}
	out := filepath.Join(t.TempDir(), "r")
	fixtures.Must(t, report.Write(out, report.Page{Results: []*report.Result{r}}))
	page, _ := os.ReadFile(filepath.Join(out, "index.html"))
	for _, f := range []string{"m1-ioi-patch.png", "m1-ioi-dla.png", "m1-atp-scatter.png", "m1-eap-scatter.png"} {
		if !bytes.Contains(page, []byte(`data-file="`+f+`"`)) {
			t.Errorf("%s not in the page", f)
		}
	}

	// Attribution vs exact patching on the same prompts: every head, MLP
	// and edge, the same clean logit difference as the IOI section, and the
	// worst disagreements named in the page.
	a := r.Attribution
	if a == nil {
		t.Fatalf("no attribution section: %s", r.AttribNote)
	}
	L, NH := r.Cfg.Layers, r.Cfg.Heads
	if a.Prompts != 6 || len(a.Nodes.Names) != L*NH+L || len(a.Nodes.Exact) != L*NH+L || len(a.Edges.Exact) != len(a.Edges.Names) || len(a.Edges.Names) == 0 {
		t.Fatalf("attribution: %d prompts, %d nodes, %d edges", a.Prompts, len(a.Nodes.Names), len(a.Edges.Names))
	}
	if math.Abs(a.LDClean-r.IOI.LDClean) > 1e-9 || math.Abs(a.LDCorrupt-r.IOI.LDCorrupt) > 1e-9 {
		t.Errorf("attribution LD clean/corrupt %v/%v, IOI section %v/%v", a.LDClean, a.LDCorrupt, r.IOI.LDClean, r.IOI.LDCorrupt)
	}
	for _, v := range []*attrib.Verification{a.Nodes, a.Edges} {
		if len(v.Worst) != 5 {
			t.Fatalf("%d worst disagreements, want TopK = 5", len(v.Worst))
		}
		for _, i := range v.Worst {
			if !bytes.Contains(page, []byte("<td>"+html.EscapeString(v.Names[i])+"</td>")) {
				t.Errorf("worst disagreement %s not in the page's table", v.Names[i])
			}
		}
	}
	gapNote := bytes.Contains(page, []byte("clean–corrupt gap is too small"))
	if gapNote != r.IOI.Summary.Gap.TooSmall {
		t.Errorf("gap too small %v, page's note shown %v", r.IOI.Summary.Gap.TooSmall, gapNote)
	}

	if a.EdgesSampled || len(a.Edges.Names) != a.GraphEdges {
		t.Errorf("default cap: %d of %d edges, sampled %v; want every edge of the small graph", len(a.Edges.Names), a.GraphEdges, a.EdgesSampled)
	}
	rc := analyze(t, "tiny-neo+tok", dir, nil, report.Options{RepBatch: 2, RepPeriod: 8, IOIPrompts: 6, Seed: 1, AttribEdges: 60})
	if ac := rc.Attribution; ac == nil || len(ac.Edges.Names) != 60 || !ac.EdgesSampled || ac.GraphEdges != a.GraphEdges {
		t.Errorf("AttribEdges 60: %+v", ac)
	}
	outc := filepath.Join(t.TempDir(), "rc")
	fixtures.Must(t, report.Write(outc, report.Page{Results: []*report.Result{rc}}))
	if pc, _ := os.ReadFile(filepath.Join(outc, "index.html")); !bytes.Contains(pc, []byte(fmt.Sprintf("60 of the graph’s %d", a.GraphEdges))) && !bytes.Contains(pc, []byte(fmt.Sprintf("60 of the graph&#39;s %d", a.GraphEdges))) {
		t.Error("the page does not say how many edges were patched exactly")
	}

	// An undefined correlation (constant values) reads "undefined" on the
	// page and null in results.json; the write does not fail.
	a.Nodes.Pearson = math.NaN()
	fixtures.Must(t, report.Write(out, report.Page{Results: []*report.Result{r}}))
	page, _ = os.ReadFile(filepath.Join(out, "index.html"))
	res, _ := os.ReadFile(filepath.Join(out, "results.json"))
	if !bytes.Contains(page, []byte("Pearson undefined")) || !bytes.Contains(res, []byte(`"pearson": null`)) {
		t.Error("a NaN correlation is not shown as undefined / null")
	}
}

// writeTinyTokenizer writes vocab.json and merges.txt: the 256 byte symbols,
// then left-to-right merges spelling a few one-token IOI names and the most
// frequent template words, up to size tokens.
func writeTinyTokenizer(t *testing.T, dir string, size int) {
	vocab := map[string]int{}
	for b := range 256 {
		vocab[tokenizer.ByteLevel([]byte{byte(b)})] = b
	}
	var merges []string
	add := func(word string) bool {
		sym := []rune(tokenizer.ByteLevel([]byte(word)))
		cur := string(sym[0])
		for _, r := range sym[1:] {
			next := cur + string(r)
			if _, ok := vocab[next]; !ok {
				if len(vocab) >= size {
					return false
				}
				vocab[next] = len(vocab)
				merges = append(merges, cur+" "+string(r))
			}
			cur = next
		}
		return true
	}
	for _, n := range []string{"John", "Mary", "Adam", "Amy", "Eric", "Kyle", "Sara", "Paul"} {
		add(" " + n)
	}
	count := map[string]int{}
	var words []string
	for _, tm := range append(append(append([]string{}, ioi.Templates...), ioi.Places...), ioi.Objects...) {
		for _, w := range regexp.MustCompile(`[A-Za-z]+`).FindAllString(tm, -1) {
			for _, v := range []string{" " + w, w} {
				if count[v] == 0 {
					words = append(words, v)
				}
				count[v]++
			}
		}
	}
	for _, w := range words {
		if count[w] > 1 || strings.HasPrefix(w, " ") {
			if !add(w) {
				break
			}
		}
	}
	vb, err := json.Marshal(vocab)
	fixtures.Must(t, err)
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "vocab.json"), vb, 0o644))
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"), 0o644))
}
