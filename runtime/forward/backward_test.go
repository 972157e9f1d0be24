package forward_test

import (
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestBackwardNeoXVariantsFD checks the backward pass on GPT-NeoX block
// recipes the fixture does not cover (it is parallel-residual with
// rotary_pct 0.25): tiny-neox's weights under a rewritten config.json with
// use_parallel_residual false and rotary_pct 0.5 or 1. The gradient of the
// mean next-token loss at hook points inside block 1 (before and after
// rotary, after each LayerNorm, the residual between attention and MLP, the
// MLP's erf GELU input) is compared with central differences of the
// float32 forward pass along one direction per hook, edited in by a
// replacing hook. The direction leans on the gradient (3 g/rms(g) plus unit
// noise) so that the directional derivative is O(10..60). With eps = 1e-3,
// float32 rounding of the loss (~1e-6) over 2 eps moves the difference by
// ~1e-3 absolute, and the truncation error, O(eps^2), measured 1e-5..6e-4
// relative (it was 100x larger at eps = 1e-2); the tolerance is 2e-3
// relative. Leaving out the inverse rotation of d q, d k misses by 5-25%.
func TestBackwardNeoXVariantsFD(t *testing.T) {
	src := filepath.Join(fixtures.Root(), "tiny-neox")
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatalf("ground truth missing: %v", err)
	}
	ref := fixtures.Load(t, "tiny-neox")
	tok := ref.Get(t, "tokens")
	B, T := 2, 11 // the first rows and positions of the fixture's tokens
	all := tok.Ints()
	var tokens []int32
	for b := 0; b < B; b++ {
		tokens = append(tokens, all[b*tok.Shape[1]:b*tok.Shape[1]+T]...)
	}
	for _, v := range []struct {
		name     string
		parallel bool
		rotary   float64
	}{{"parallel rotary 0.25", true, 0.25}, {"sequential rotary 0.5", false, 0.5}, {"sequential rotary 1", false, 1}} {
		t.Run(v.name, func(t *testing.T) {
			var cfg map[string]any
			fixtures.Must(t, json.Unmarshal(raw, &cfg))
			cfg["use_parallel_residual"], cfg["rotary_pct"] = v.parallel, v.rotary
			dir := t.TempDir()
			data, err := json.Marshal(cfg)
			fixtures.Must(t, err)
			fixtures.Must(t, os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644))
			fixtures.Must(t, os.Symlink(filepath.Join(src, "model.safetensors"), filepath.Join(dir, "model.safetensors")))
			m, err := forward.Open(cpu.New(), dir)
			fixtures.Must(t, err)
			defer m.Close()
			hooks := []string{"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
				"attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_z", "hook_attn_out", "ln2.hook_normalized", "mlp.hook_pre", "hook_mlp_out"}
			if !v.parallel {
				hooks = append(hooks, "hook_resid_mid")
			}
			gh := &forward.Hooks{}
			for _, h := range hooks {
				gh.Observe("blocks.1." + h)
			}
			tp, err := m.Record(tokens, B, T, nil)
			fixtures.Must(t, err)
			_, err = tp.Backward(forward.NextTokenLoss(0), forward.BackwardOptions{Hooks: gh})
			tp.Close()
			fixtures.Must(t, err)
			r := rand.New(rand.NewSource(11))
			for _, h := range hooks {
				name := "blocks.1." + h
				gr, ok := gh.Cache[name]
				if !ok {
					t.Fatalf("no gradient at %s", name)
				}
				var ss float64
				for _, x := range gr.Data {
					ss += float64(x) * float64(x)
				}
				rms := math.Sqrt(ss / float64(len(gr.Data)))
				d := make([]float32, len(gr.Data))
				var an float64
				for i, x := range gr.Data {
					d[i] = float32(r.NormFloat64() + 3*float64(x)/rms)
					an += float64(x) * float64(d[i])
				}
				J := func(e float64) float64 {
					step := make([]float32, len(d))
					for i := range d {
						step[i] = float32(e) * d[i]
					}
					edit := (&forward.Hooks{}).Replace(name, func(a *forward.Act) error {
						st, err := a.BE.Upload(step, a.M.Rows, a.M.Cols)
						if err != nil {
							return err
						}
						defer a.BE.Free(st)
						return a.BE.Add(a.M, a.M, backend.Whole(st))
					})
					s, _, err := m.Run(tokens, B, T, edit, false)
					fixtures.Must(t, err)
					defer s.Close()
					l, err := m.MeanLoss(s, 0)
					fixtures.Must(t, err)
					return l
				}
				const eps = 1e-3
				num := (J(eps) - J(-eps)) / (2 * eps)
				if diff := math.Abs(num - an); diff > 2e-3*math.Max(1, math.Abs(num)) {
					t.Errorf("%s: analytic %.7g, finite difference %.7g (|diff| %.3g)", name, an, num, diff)
				} else {
					t.Logf("%s: analytic %.7g, finite difference %.7g", name, an, num)
				}
			}
			if v.parallel {
				if _, ok := gh.Cache["blocks.1.hook_resid_mid"]; ok {
					t.Error("a parallel block has no hook_resid_mid, but its gradient was written")
				}
			}
		})
	}
}
