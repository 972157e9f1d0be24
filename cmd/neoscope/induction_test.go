package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
)

// TestInductionCLI: `neoscope induction --tokens rep_tokens --json` gives
// the fixture's scores, second-half loss and ablation table (at the
// fixture's tolerances).
func TestInductionCLI(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	tok := probeTokens(t, ref, "rep_tokens")
	var res struct {
		P         int         `json:"period"`
		Induction [][]float64 `json:"induction_score"`
		Prev      [][]float64 `json:"prev_token_score"`
		Loss      float64     `json:"rep_loss_second_half"`
		Abl       [][]float64 `json:"rep_head_ablation_loss"`
		Top       []struct {
			Head  string  `json:"head"`
			Score float64 `json:"score"`
		} `json:"top_induction_heads"`
	}
	probeJSON(t, &res, "induction", "--model", ref.Dir, "--backend", "cpu", "--tokens", tok, "--json")
	if res.P != 10 {
		t.Errorf("period %d, want 10", res.P)
	}
	ref.Check(t, "induction_score", flat2(res.Induction), "induction_score")
	ref.Check(t, "prev_token_score", flat2(res.Prev), "prev_token_score")
	ref.Check(t, "rep_loss_second_half", []float64{res.Loss}, "rep_loss_second_half")
	ref.Check(t, "rep_head_ablation_loss", flat2(res.Abl), "rep_head_ablation_loss")
	if len(res.Top) != 16 || res.Top[0].Head != "0.1" {
		t.Errorf("top induction head %v, want 0.1 first (score 0.0944 in the fixture)", res.Top[:1])
	}

	// Random tokens: the table prints, the ranking lines use layer.head.
	png := filepath.Join(t.TempDir(), "ind.png")
	stdout, stderr, code := runCLI(t, "induction", "--model", ref.Dir, "--backend", "cpu", "--period", "5", "--batch", "3", "--seed", "2", "--no-ablation", "--plot", png)
	if code != 0 || !strings.Contains(stdout, "top induction heads") || !strings.Contains(stdout, "  1. ") {
		t.Errorf("random tokens: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, p := range []string{png, strings.TrimSuffix(png, ".png") + "-prev.png"} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("heatmap %s not written: %v", p, err)
		}
	}
}

func TestInductionCLIErrors(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	data, _ := json.Marshal([][]int{{1, 2, 3, 1, 2, 4}})
	fixtures.Must(t, os.WriteFile(bad, data, 0o644))
	base := []string{"induction", "--model", ref.Dir, "--backend", "cpu"}
	expectUsage(t, "not a repeated sequence", append(base, "--tokens", bad)...)
	expectUsage(t, "exceed the model's context", append(base, "--period", "40")...)
	expectUsage(t, "period 1", append(base, "--period", "1")...)
	expectUsage(t, "not both", append(base, "--tokens", bad, "--seed", "3")...)
}
