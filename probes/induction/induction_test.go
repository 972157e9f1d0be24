package induction_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/probes/ablate"
	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/runtime/forward"
)

// expTol bounds the comparison with models/neo-tiny/expected.json, which
// PyTorch measured in float32 (no float64 reference, no recorded floor):
// both sides carry float32 rounding. Attention scores are means of
// probabilities (one float32 ulp ~6e-8; measured |diff| 1.9e-8 at step
// 1702): an assumed floor of 1e-7 gives 1e-6. Losses are means of
// log-sum-exp minus a logit over ~600 predictions, magnitude 1..10
// (measured 4e-7): an assumed floor of 1e-6 gives 1e-5.
var (
	expScoreTol = fixtures.Tol{Key: "expected.json scores (float32 vs float32)", Floor: 1e-7}
	expLossTol  = fixtures.Tol{Key: "expected.json losses (float32 vs float32)", Floor: 1e-6}
)

func flat(x [][]float64) []float64 {
	var out []float64
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

// TestGolden: scores, second-half loss and per-head ablation on the
// fixtures' rep_tokens (P=10).
func TestGolden(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			res, err := induction.Run(m, ref.Get(t, "rep_tokens").Rows(), true, nil)
			fixtures.Must(t, err)
			if res.P != 10 {
				t.Errorf("P = %d, want 10", res.P)
			}
			ref.Check(t, "induction_score", flat(res.Induction), "induction_score")
			ref.Check(t, "prev_token_score", flat(res.PrevToken), "prev_token_score")
			ref.Check(t, "rep_loss_second_half", []float64{res.LossSecondHalf}, "rep_loss_second_half")
			ref.Check(t, "rep_head_ablation_loss", flat(res.HeadAblation), "rep_head_ablation_loss")
			// Subsets of subset_heads on the same second half (the fixture's
			// bit rule: bit k of m set = k-th listed head ablated).
			rows := ref.Get(t, "rep_tokens")
			r, err := ablate.NewRunner(m, rows.Ints(), rows.Shape[0], rows.Shape[1], res.P)
			fixtures.Must(t, err)
			sh := ref.Get(t, "subset_heads").Ints()
			var heads []ablate.Head
			for i := 0; i+1 < len(sh); i += 2 {
				heads = append(heads, ablate.Head{Layer: int(sh[i]), Head: int(sh[i+1])})
			}
			sub, err := r.Subsets(heads, ablate.Zero)
			fixtures.Must(t, err)
			ref.Check(t, "rep_subset_ablation_loss", sub, "rep_subset_ablation_loss")
			// The rankings hold every head once, each with its reference
			// value, in non-increasing order.
			base := ref.Get(t, "rep_loss_second_half").F[0]
			effect := append([]float64(nil), ref.Get(t, "rep_head_ablation_loss").F...)
			for i := range effect {
				effect[i] -= base
			}
			checkRanking(t, ref, "top_induction_heads", res.TopInduction, ref.Get(t, "induction_score").F, "induction_score", 4)
			checkRanking(t, ref, "top_prev_token_heads", res.TopPrevToken, ref.Get(t, "prev_token_score").F, "prev_token_score", 4)
			checkRanking(t, ref, "top_ablation_effects", res.TopAblationEffects, effect, "rep_head_ablation_loss", 4)
		})
	}
}

// checkRanking: ranked holds every head of the [L][NH] table want once,
// each with its table value (tolerance of key), scores non-increasing.
func checkRanking(t *testing.T, ref *fixtures.Ref, what string, ranked []induction.HeadScore, want []float64, key string, NH int) {
	t.Helper()
	if len(ranked) != len(want) {
		t.Fatalf("%s: %d heads ranked, want %d", what, len(ranked), len(want))
	}
	seen := map[string]bool{}
	got, exp := make([]float64, len(ranked)), make([]float64, len(ranked))
	for i, hs := range ranked {
		var l, h int
		if _, err := fmt.Sscanf(hs.Head, "%d.%d", &l, &h); err != nil || l < 0 || h < 0 || h >= NH || l*NH+h >= len(want) {
			t.Fatalf("%s[%d]: head %q", what, i, hs.Head)
		}
		if seen[hs.Head] {
			t.Fatalf("%s: head %s twice", what, hs.Head)
		}
		seen[hs.Head] = true
		got[i], exp[i] = hs.Score, want[l*NH+h]
		if i > 0 && hs.Score > ranked[i-1].Score {
			t.Errorf("%s: %s (%.6g) ranked after %s (%.6g)", what, hs.Head, hs.Score, ranked[i-1].Head, ranked[i-1].Score)
		}
	}
	ref.CheckAgainst(t, what, got, exp, key)
}

func TestRepeatedTokens(t *testing.T) {
	cand := induction.Candidates(100, func(id int) bool { return id != 7 })
	rows, err := induction.RepeatedTokens(cand, 50, 10, 1)
	fixtures.Must(t, err)
	P, err := induction.CheckRepeated(rows)
	fixtures.Must(t, err)
	if P != 10 || len(rows) != 50 {
		t.Fatalf("P=%d rows=%d", P, len(rows))
	}
	for b, r := range rows {
		seen := map[int32]bool{}
		for _, id := range r[:P] {
			if seen[id] || id == 7 || id < 0 || id >= 100 {
				t.Fatalf("row %d: %v: repeated, excluded or out-of-range id", b, r)
			}
			seen[id] = true
		}
	}
	again, _ := induction.RepeatedTokens(cand, 50, 10, 1)
	other, _ := induction.RepeatedTokens(cand, 50, 10, 2)
	same, diff := true, false
	for b := range rows {
		for i := range rows[b] {
			same = same && rows[b][i] == again[b][i]
			diff = diff || rows[b][i] != other[b][i]
		}
	}
	if !same || !diff {
		t.Errorf("seeding: same seed equal %v, other seed different %v", same, diff)
	}
	if _, err := induction.RepeatedTokens(cand[:5], 1, 10, 1); err == nil {
		t.Error("5 candidates for 10 distinct tokens: no error")
	}
	for _, bad := range [][][]int32{{{1, 2, 3}}, {{1, 2, 1, 3}}, {{1, 2, 1, 2}, {1, 2, 1}}} {
		if _, err := induction.CheckRepeated(bad); err == nil {
			t.Errorf("CheckRepeated(%v): no error", bad)
		}
	}
}

// TestNeoTinyExpected checks the probe against the figures the bundled
// model's trainer measured in PyTorch (models/neo-tiny/expected.json, on
// induction_tokens.json): induction and previous-token scores, the
// second-half loss, that loss with each single head zero-ablated, and with
// the listed heads zero-ablated together. The bundled model and its figures
// are committed together: a missing file or key fails.
func TestNeoTinyExpected(t *testing.T) {
	dir := filepath.Join("..", "..", "models", "neo-tiny")
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	fixtures.Must(t, err)
	var exp struct {
		P       *int        `json:"induction_P"`
		Scores  [][]float64 `json:"induction_scores"`
		Prev    [][]float64 `json:"prev_token_scores"`
		Single  [][]float64 `json:"repeat_second_half_loss_single_head_ablated"`
		Heads   [][2]int    `json:"ablated_heads"`
		Second  *float64    `json:"repeat_second_half_loss"`
		Ablated *float64    `json:"repeat_second_half_loss_ablated"`
	}
	fixtures.Must(t, json.Unmarshal(raw, &exp))
	if exp.P == nil || exp.Scores == nil || exp.Prev == nil || exp.Single == nil || exp.Second == nil || exp.Ablated == nil || exp.Heads == nil {
		t.Fatalf("%s lacks an induction key (induction_P, induction_scores, prev_token_scores, repeat_second_half_loss[_single_head_ablated|_ablated], ablated_heads)", filepath.Join(dir, "expected.json"))
	}
	raw, err = os.ReadFile(filepath.Join(dir, "induction_tokens.json"))
	fixtures.Must(t, err)
	var rows [][]int32
	fixtures.Must(t, json.Unmarshal(raw, &rows))
	m, err := forward.Open(cpu.New(), dir)
	fixtures.Must(t, err)
	defer m.Close()
	res, err := induction.Run(m, rows, true, nil)
	fixtures.Must(t, err)
	if res.P != *exp.P {
		t.Fatalf("P = %d, expected.json says %d", res.P, *exp.P)
	}
	fixtures.CloseTol(t, "neo-tiny induction_scores", flat(res.Induction), flat(exp.Scores), expScoreTol)
	fixtures.CloseTol(t, "neo-tiny prev_token_scores", flat(res.PrevToken), flat(exp.Prev), expScoreTol)
	fixtures.CloseTol(t, "neo-tiny repeat_second_half_loss", []float64{res.LossSecondHalf}, []float64{*exp.Second}, expLossTol)
	fixtures.CloseTol(t, "neo-tiny repeat_second_half_loss_single_head_ablated", flat(res.HeadAblation), flat(exp.Single), expLossTol)
	tokens, B, T, err := m.CheckTokens(rows)
	fixtures.Must(t, err)
	r, err := ablate.NewRunner(m, tokens, B, T, res.P)
	fixtures.Must(t, err)
	var heads []ablate.Head
	for _, h := range exp.Heads {
		heads = append(heads, ablate.Head{Layer: h[0], Head: h[1]})
	}
	abl, err := r.HeadsLoss(heads, ablate.Zero)
	fixtures.Must(t, err)
	fixtures.CloseTol(t, "neo-tiny repeat_second_half_loss_ablated", []float64{abl}, []float64{*exp.Ablated}, expLossTol)
}
