package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/tokenizer"
)

// writeRefTokens saves a fixture's token rows as a --tokens file.
func writeRefTokens(t *testing.T, ref *fixtures.Ref, key, dir string) string {
	t.Helper()
	p := filepath.Join(dir, key+".json")
	data, _ := json.Marshal(ref.Get(t, key).Rows())
	fixtures.Must(t, os.WriteFile(p, data, 0o644))
	return p
}

func jsonFloats(t *testing.T, v any) []float64 {
	t.Helper()
	raw, ok := v.([]any)
	if !ok {
		t.Fatalf("not an array: %v", v)
	}
	out := make([]float64, len(raw))
	for i, x := range raw {
		out[i] = x.(float64)
	}
	return out
}

// TestLensCLI: `neoscope lens --json` prints the four golden tables of the
// fixture (at the fixture's tolerances), the top-k at a position, the
// --compare model's tables (lengths), and writes the plot.
func TestLensCLI(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	ref2 := fixtures.Load(t, "tiny-gpt2")
	dir := t.TempDir()
	tok := writeRefTokens(t, ref, "tokens", dir)
	png1 := filepath.Join(dir, "lens.png")
	out, stderr, code := runCLI(t, "lens", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok, "--json",
		"--positions", "-1", "--topk", "3", "--compare", ref2.Dir, "--plot", png1)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	fixtures.Must(t, json.Unmarshal([]byte(out), &got))
	cmp := got["compare"].(map[string]any)
	for _, k := range []string{"logit_lens_loss", "logit_lens_kl", "logit_lens_final_block_loss", "logit_lens_loss_centered"} {
		ref.Check(t, k, jsonFloats(t, got[k]), k)
		// The compared model runs on tiny-neo's token ids, not on its own
		// fixture's: only the table's length can be checked here.
		if n := len(jsonFloats(t, cmp[k])); n != len(ref2.Get(t, k).F) {
			t.Errorf("compare %s: %d values, want %d", k, n, len(ref2.Get(t, k).F))
		}
	}
	tk := got["topk"].([]any)
	if len(tk) != 3 { // one position x 3 rows
		t.Fatalf("%d top-k entries, want 3", len(tk))
	}
	layers := tk[0].(map[string]any)["layers"].([]any)
	if len(layers) != 5 || len(layers[0].([]any)) != 3 {
		t.Errorf("top-k: %d layers of %d, want 5 of 3", len(layers), len(layers[0].([]any)))
	}
	f, err := os.Open(png1)
	fixtures.Must(t, err)
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("--plot: %v", err)
	}

	// The table names every layer and the final one.
	out, stderr, code = runCLI(t, "lens", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"KL(final||lens)", "4 (final)", "9.5844", "16.0977"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Bad input exits 2.
	for _, args := range [][]string{
		{"--positions", "24"},
		{"--plot", filepath.Join(dir, "x.gif")},
		{"--topk", "0", "--positions", "1"},
	} {
		a := append([]string{"lens", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok}, args...)
		if _, stderr, code := runCLI(t, a...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

// TestEmbedCLI: `neoscope embed --json --indices` prints the fixture's scalars
// (at the fixture's tolerances) and the top-1 indices exactly.
func TestEmbedCLI(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	out, stderr, code := runCLI(t, "embed", "--model", ref.Dir, "--backend", "cpu", "--json", "--indices")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	fixtures.Must(t, json.Unmarshal([]byte(out), &got))
	sc := ref.Cases["scalars"].(map[string]any)
	for _, k := range []string{"mean_norm", "norm_of_mean", "mean_pairwise_cos", "mean_pairwise_cos_centered",
		"mean_abs_pairwise_cos_centered", "embed_self_top1", "embed_self_top1_ln"} {
		ref.CheckAgainst(t, k, []float64{got[k].(float64)}, []float64{sc[k].(float64)}, k)
	}
	ref.Equal(t, "embed_top1_index", jsonFloats(t, got["embed_top1_index"]), "embed_top1_index")
	ref.Equal(t, "embed_top1_index_ln", jsonFloats(t, got["embed_top1_index_ln"]), "embed_top1_index_ln")
	if n := len(got["resid_projection"].([]any)); n != 5 {
		t.Errorf("resid_projection has %d layers, want 5", n)
	}
}

// TestTunedLensCLI: fit on random rows, eval on the fixture's tokens: the
// JSON has the golden logit-lens KL and a lower tuned KL at layers 0..L-1.
func TestTunedLensCLI(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	tok := writeRefTokens(t, ref, "tokens", dir)
	train := writeRefTokens(t, ref, "rep_tokens", dir) // 4 x 20, a training set other than the held-out tokens
	lensFile := filepath.Join(dir, "lens.safetensors")
	if _, stderr, code := runCLI(t, "tunedlens", "fit", "--model", ref.Dir, "--backend", "cpu", "--tokens", train,
		"--out", lensFile, "--steps", "5"); code != 0 {
		t.Fatalf("fit: exit %d: %s", code, stderr)
	}
	out, stderr, code := runCLI(t, "tunedlens", "eval", "--model", ref.Dir, "--backend", "cpu", "--lens", lensFile, "--tokens", tok, "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	var got map[string]any
	fixtures.Must(t, json.Unmarshal([]byte(out), &got))
	lk := jsonFloats(t, got["logit_lens_kl"])
	ref.Check(t, "logit_lens_kl", lk, "logit_lens_kl")
	tk := jsonFloats(t, got["tuned_lens_kl"])
	for l := 0; l < 4; l++ {
		if !(tk[l] < lk[l]) {
			t.Errorf("layer %d: tuned KL %.4f not below the logit lens' %.4f", l, tk[l], lk[l])
		}
	}
	// Another model, a missing file, a missing --out: exit 2.
	other := fixtures.Dir(t, "tiny-gpt2")
	for _, args := range [][]string{
		{"eval", "--model", other, "--lens", lensFile, "--tokens", tok},
		{"eval", "--model", ref.Dir, "--lens", filepath.Join(dir, "none.safetensors"), "--tokens", tok},
		{"fit", "--model", ref.Dir, "--tokens", tok},
	} {
		if _, stderr, code := runCLI(t, append(append([]string{"tunedlens"}, args...), "--backend", "cpu")...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

// TestLensText: --text is cut into rows (the context length by default, or
// --seq; a remainder becomes a last row of the text's final tokens) through the model's tokenizer: a byte-level tokenizer with no
// merges (ids 0..255, within the fixture's vocabulary of 512) beside
// tiny-neo's weights.
func TestLensText(t *testing.T) {
	src := fixtures.Dir(t, "tiny-neo")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		fixtures.Must(t, err)
		fixtures.Must(t, os.WriteFile(filepath.Join(dir, f), data, 0o644))
	}
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[tokenizer.ByteLevel([]byte{byte(b)})] = b
	}
	vj, _ := json.Marshal(vocab)
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "vocab.json"), vj, 0o644))
	fixtures.Must(t, os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"), 0o644))
	text := filepath.Join(dir, "text.txt")
	fixtures.Must(t, os.WriteFile(text, []byte(strings.Repeat("the cat sat. ", 12)), 0o644)) // 156 bytes
	for _, c := range []struct {
		seq  string
		B, T float64
	}{{"0", 3, 64}, {"20", 8, 20}} { // the remainder is a last row of the final --seq tokens, never dropped
		out, stderr, code := runCLI(t, "lens", "--model", dir, "--backend", "cpu", "--text", text, "--seq", c.seq, "--json")
		if code != 0 {
			t.Fatalf("--seq %s: exit %d: %s", c.seq, code, stderr)
		}
		var got map[string]any
		fixtures.Must(t, json.Unmarshal([]byte(out), &got))
		if got["B"] != c.B || got["T"] != c.T {
			t.Errorf("--seq %s: B=%v T=%v, want %v x %v", c.seq, got["B"], got["T"], c.B, c.T)
		}
	}
	if _, _, code := runCLI(t, "lens", "--model", dir, "--backend", "cpu", "--text", text, "--seq", "65"); code != 2 {
		t.Errorf("--seq 65 beyond the context: exit %d, want 2", code)
	}
}
