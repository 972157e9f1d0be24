package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// ioiTestModel assembles a model directory with a real tokenizer: the
// tiny-neo fixture's weights with the embedding grown to the 4096-token
// vocabulary of the bundled neo-tiny tokenizer (models/neo-tiny/vocab.json,
// merges.txt). Rows 512.. are copies of rows id%512 plus N(0, 0.05) noise
// (seeded), so every id has its own unembedding. The numbers mean nothing
// (random weights); the test checks the command end to end.
func ioiTestModel(t *testing.T) string {
	t.Helper()
	tokDir := filepath.Join("..", "..", "models", "neo-tiny")
	if !tokenizer.Available(tokDir) {
		t.Skip("models/neo-tiny has no tokenizer")
	}
	tok, err := tokenizer.Load(tokDir)
	fixtures.Must(t, err)
	src := fixtures.Dir(t, "tiny-neo")
	dir := t.TempDir()
	var cfg map[string]any
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	fixtures.Must(t, err)
	fixtures.Must(t, json.Unmarshal(raw, &cfg))
	V := tok.VocabSize()
	cfg["vocab_size"] = V
	if id, ok := tok.ID("<|endoftext|>"); ok {
		cfg["bos_token_id"], cfg["eos_token_id"] = id, id
	}
	raw, _ = json.Marshal(cfg)
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644))
	for _, n := range []string{"vocab.json", "merges.txt"} {
		b, err := os.ReadFile(filepath.Join(tokDir, n))
		fixtures.Must(t, err)
		fixtures.Must(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	ac, err := arch.Load(filepath.Join(src, "config.json"))
	fixtures.Must(t, err)
	w, err := checkpoint.Load(src, ac)
	fixtures.Must(t, err)
	defer w.Close()
	out := map[string]outfile.F32{}
	for name, x := range w.Tensors {
		if strings.HasSuffix(name, "attn.bias") || strings.HasSuffix(name, "masked_bias") || strings.HasSuffix(name, "attention.bias") {
			continue
		}
		out[name] = outfile.F32{ShapeOf: append([]int(nil), x.Shape...), Values: append([]float32(nil), x.Data...)}
	}
	wte := w.Get("wte.weight")
	C := wte.Shape[1]
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]float32, V*C)
	for id := 0; id < V; id++ {
		for c := 0; c < C; c++ {
			big[id*C+c] = wte.Data[(id%512)*C+c]
			if id >= 512 {
				big[id*C+c] += float32(0.05 * rng.NormFloat64())
			}
		}
	}
	out["wte.weight"] = outfile.F32{ShapeOf: []int{V, C}, Values: big}
	fixtures.Must(t, outfile.Safetensors(filepath.Join(dir, "model.safetensors"), out, nil))
	return dir
}

// TestIOICLI: `neoscope ioi` builds prompts with the model's tokenizer and
// runs every measurement: the DLA terms sum to the clean logit difference,
// and patching the embedding (blocks.0.hook_resid_pre) at a position where
// no prompt of the group changed does nothing.
func TestIOICLI(t *testing.T) {
	dir := ioiTestModel(t)
	const n = 12
	var res struct {
		N           int         `json:"prompts"`
		LDClean     float64     `json:"ioi_ld_clean"`
		LDCorrupt   float64     `json:"ioi_ld_corrupt"`
		IOPreferred float64     `json:"io_preferred_fraction"`
		HeadZ       [][]float64 `json:"patch_head_z"`
		Resid       [][]float64 `json:"patch_resid_pre"`
		ResidT      int         `json:"patch_resid_tokens"`
		DLASum      float64     `json:"dla_sum"`
		DLAHead     [][]float64 `json:"dla_head"`
		Names       []string    `json:"names"`
		Examples    []struct {
			Text    string  `json:"text"`
			Clean   []int32 `json:"clean_ids"`
			Corrupt []int32 `json:"corrupt_ids"`
		} `json:"examples"`
		Summary struct {
			Answer string `json:"answer"`
		} `json:"summary"`
	}
	probeJSON(t, &res, "ioi", "--model", dir, "--backend", "cpu", "--n", "12", "--seed", "3", "--show", "12", "--json")
	if res.N != n || len(res.Examples) != n {
		t.Fatalf("%d prompts, %d examples; want %d", res.N, len(res.Examples), n)
	}
	if len(res.Names) < 5 || res.IOPreferred < 0 || res.IOPreferred > 1 || len(res.HeadZ) != 4 || len(res.DLAHead) != 4 {
		t.Errorf("names %d, io preferred %g, tables %d %d", len(res.Names), res.IOPreferred, len(res.HeadZ), len(res.DLAHead))
	}
	// The DLA decomposition is exact up to float32 rounding of the pass: the
	// fixture's tolerance for ioi_ld_clean (here on a model of its own).
	fixtures.CloseTol(t, "dla_sum vs ioi_ld_clean", []float64{res.DLASum}, []float64{res.LDClean},
		fixtures.TolFor(t, fixtures.Dir(t, "tiny-neo"), "cases.json", "ioi_ld_clean"))
	same := 0
	for tt := 0; tt < res.ResidT; tt++ {
		changed := false
		for _, e := range res.Examples {
			if len(e.Clean) == res.ResidT && e.Clean[tt] != e.Corrupt[tt] {
				changed = true
			}
		}
		if !changed {
			same++
			// Identical inputs at t: the same computation, batched with other
			// experiments (runtime/sweep), so 0 up to the float32 rounding of
			// differently sized passes: 1e-6 on the logit difference itself,
			// before dividing by the clean-corrupt gap.
			if v := res.Resid[0][tt]; math.Abs(v*(res.LDClean-res.LDCorrupt)) > 1e-6 {
				t.Errorf("patch_resid_pre[0][%d] = %g, want 0: no prompt changes token %d", tt, v, tt)
			}
		}
	}
	if same == 0 {
		t.Error("no unchanged position in the resid group (BOS and the final ' to' should be)")
	}
	if !strings.Contains(res.Summary.Answer, "heads carry") {
		t.Errorf("summary %q", res.Summary.Answer)
	}
	t.Logf("e.g. %q; summary: %s", res.Examples[0].Text, res.Summary.Answer)

	svg := filepath.Join(t.TempDir(), "ioi.svg")
	stdout, stderr, code := runCLI(t, "ioi", "--model", dir, "--backend", "cpu", "--n", "4", "--no-resid", "--plot", svg)
	if code != 0 || !strings.Contains(stdout, "heads or MLPs?") || !strings.Contains(stdout, "logit difference IO - S") {
		t.Errorf("table: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, p := range []string{svg, strings.TrimSuffix(svg, ".svg") + "-dla.svg"} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("heatmap %s not written: %v", p, err)
		}
	}
}

func TestIOICLIErrors(t *testing.T) {
	ref := fixtures.Dir(t, "tiny-neo")
	expectUsage(t, "tokenizer", "ioi", "--model", ref, "--backend", "cpu")
	expectUsage(t, "--n 0", "ioi", "--model", ref, "--backend", "cpu", "--n", "0")
}
