package lens

import (
	"math"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

func table(t *testing.T, ref *fixtures.Ref, key string) []float64 {
	t.Helper()
	raw, ok := ref.Cases["tables"].(map[string]any)[key].([]any)
	if !ok {
		t.Fatalf("cases.json: no table %q", key)
	}
	out := make([]float64, len(raw))
	for i, v := range raw {
		out[i] = v.(float64)
	}
	return out
}

func TestGoldenLens(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			tok := ref.Get(t, "tokens")
			B, T := tok.Shape[0], tok.Shape[1]
			res, err := Run(m, tok.Ints(), B, T, Options{FinalBlock: true, Centered: true, Positions: []int{3, -1}, TopK: 5})
			fixtures.Must(t, err)
			for _, k := range []struct {
				key string
				got []float64
			}{
				{"logit_lens_loss", res.Loss},
				{"logit_lens_kl", res.KL},
				{"logit_lens_final_block_loss", res.FinalBlockLoss},
				{"logit_lens_loss_centered", res.LossCentered},
			} {
				// Both stores must agree: cases.json's 9 digits and reference.safetensors' float32.
				ref.CheckAgainst(t, k.key, k.got, table(t, ref, k.key), k.key)
				ref.Check(t, k.key+" (safetensors)", k.got, k.key)
			}
			// Top-k at the last layer equals the model's own logits' top-k.
			logits := ref.Get(t, "logits").F
			V := m.Cfg.Vocab
			if len(res.TopK) != 2*B {
				t.Fatalf("%d top-k entries, want %d", len(res.TopK), 2*B)
			}
			for _, tk := range res.TopK {
				row := logits[(tk.Row*T+tk.Pos)*V : (tk.Row*T+tk.Pos+1)*V]
				best := 0
				for v := range row {
					if row[v] > row[best] {
						best = v
					}
				}
				final := tk.Layers[m.Cfg.Layers]
				if len(final) != 5 || int(final[0].ID) != best {
					t.Errorf("row %d pos %d: final-layer top-1 %v, want id %d", tk.Row, tk.Pos, final, best)
				}
				for l, preds := range tk.Layers {
					for j := 1; j < len(preds); j++ {
						if preds[j].Prob > preds[j-1].Prob || math.IsNaN(preds[j].Prob) {
							t.Errorf("layer %d: top-k not in decreasing order: %v", l, preds)
						}
					}
				}
			}
			if res.TopK[B].Pos != T-1 { // entries: positions outer, rows inner
				t.Errorf("position -1 resolved to %d, want %d", res.TopK[B].Pos, T-1)
			}
		})
	}
}

func TestLensErrors(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	tok := []int32{1, 2, 3, 4}
	if _, err := Run(m, tok, 1, 4, Options{Positions: []int{4}, TopK: 3}); err == nil {
		t.Error("position 4 of 4 tokens accepted")
	}
	if _, err := Run(m, tok, 1, 4, Options{Positions: []int{1}}); err == nil {
		t.Error("positions without --topk accepted")
	}
	if _, err := Run(m, tok[:1], 1, 1, Options{}); err == nil {
		t.Error("a single token (no prediction) accepted")
	}
}

// TestKLChunks: KLs over chunks of 7 rows (a ragged last chunk of 2) equals
// the single-chunk pass.
func TestKLChunks(t *testing.T) {
	ref := fixtures.Load(t, "tiny-gpt2")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	tok := ref.Get(t, "tokens")
	c, err := NewCapture(m, tok.Ints(), tok.Shape[0], tok.Shape[1])
	fixtures.Must(t, err)
	defer c.Close()
	sc, err := NewScorer(c)
	fixtures.Must(t, err)
	defer sc.Close()
	var normed []backend.Mat
	for l := range c.Resid {
		x, err := m.BE.New(c.B*c.T, m.Cfg.DModel)
		fixtures.Must(t, err)
		defer m.BE.Free(x)
		_, err = sc.Lens(x, backend.Whole(c.Resid[l]))
		fixtures.Must(t, err)
		normed = append(normed, backend.Whole(x))
	}
	whole, err := sc.KLs(normed)
	fixtures.Must(t, err)
	sc.R = 7 // the logits buffer holds more rows; 72 = 10*7 + 2
	chunked, err := sc.KLs(normed)
	fixtures.Must(t, err)
	// The same rows through a differently shaped sgemm: OpenBLAS picks other
	// kernels and summation orders for 7-row blocks, so the float32 logits
	// differ in the last bits (1.4e-7 on KL of ~10 seen); gonum's are
	// identical. 1e-6 is float32 rounding of the KL's magnitude, not a
	// loosened tolerance: any chunking error (a skipped or repeated row)
	// moves KL by ~1e-2 here.
	fixtures.Close(t, "KL by chunks of 7", chunked, whole, 1e-6)
	ref.Check(t, "logit_lens_kl", whole, "logit_lens_kl")
}
