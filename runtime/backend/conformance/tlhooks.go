package conformance

import (
	"fmt"
	"math"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
)

// tlHooks checks TransformerLens's extra hook points of one "*" pass (rows
// of the fixture batch, get returns an observed hook) in float64 with the
// weights read from the checkpoint file:
//   - blocks.l.ln1.hook_scale and ln_final.hook_scale = sqrt(var + eps) of the
//     reference residual rows (within the residual's tolerance: the scale is
//     the RMS of the centred row, so its error is at most the residual's);
//   - ln2.hook_scale from the ln2 input of the same pass (hook_resid_mid, or
//     hook_resid_pre in a parallel block);
//   - every hook_normalized = (x - mean) / hook_scale * w + b (layernorm bound);
//   - attn.hook_result[..., h, :] = hook_z[..., h, :] @ W_O[h] and
//     sum over heads + b_O = hook_attn_out (matmul bound).
func tlHooks(t *testing.T, ref *fixtures.Ref, m *forward.Model, get func(string) []float32, B, T int, resid []float64, rt fixtures.Tol) {
	t.Helper()
	cfg := m.Cfg
	w, err := checkpoint.Load(ref.Dir, cfg)
	fixtures.Must(t, err)
	defer w.Close()
	weight := func(n string) []float32 {
		x := w.Get(n)
		if x == nil {
			t.Fatalf("%s: no tensor %s", ref.Dir, n)
		}
		return x.Data
	}
	L, C, NH, HS := cfg.Layers, cfg.DModel, cfg.Heads, cfg.DHead
	n := B * T * C
	eps := float64(float32(cfg.LNEps))
	scale := func(x []float64) []float64 {
		out := make([]float64, len(x)/C)
		for r := range out {
			mean, v := 0.0, 0.0
			for _, e := range x[r*C : (r+1)*C] {
				mean += e
			}
			mean /= float64(C)
			for _, e := range x[r*C : (r+1)*C] {
				v += (e - mean) * (e - mean)
			}
			out[r] = math.Sqrt(v/float64(C) + eps)
		}
		return out
	}
	lnt := opTol["layernorm"]
	normalized := func(p string, x []float64, sc []float32, wn, bn string) {
		lw, lb := weight(wn), weight(bn)
		want := make([]float64, len(x))
		for r := 0; r < len(x)/C; r++ {
			mean := 0.0
			for c := 0; c < C; c++ {
				mean += x[r*C+c]
			}
			mean /= float64(C)
			for c := 0; c < C; c++ {
				want[r*C+c] = (x[r*C+c]-mean)/float64(sc[r])*float64(lw[c]) + float64(lb[c])
			}
		}
		compare(t, p+"hook_normalized = (x-mean)/hook_scale*w+b", get(p+"hook_normalized"), want, lnt[0], lnt[1])
	}
	nm, sp := cfg.Spec.Names, cfg.Spec
	mt := opTol["matmul"]
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("blocks.%d.", l)
		s1 := get(p + "ln1.hook_scale")
		fixtures.CloseTol(t, p+"ln1.hook_scale from resid", fixtures.F32(s1), scale(resid[l*n:(l+1)*n]), rt)
		normalized(p+"ln1.", fixtures.F32(get(p+"hook_resid_pre")), s1, sp.LayerName(l, nm.LN1W), sp.LayerName(l, nm.LN1B))
		in2 := p + "hook_resid_mid"
		if cfg.Parallel {
			in2 = p + "hook_resid_pre"
		}
		x2 := fixtures.F32(get(in2))
		s2 := get(p + "ln2.hook_scale")
		compare(t, p+"ln2.hook_scale from "+in2, s2, scale(x2), lnt[0], lnt[1])
		normalized(p+"ln2.", x2, s2, sp.LayerName(l, nm.LN2W), sp.LayerName(l, nm.LN2B))

		// W_O[k, c] as x @ W_O uses it, from the stored layout.
		wo := weight(sp.LayerName(l, nm.O))
		W := func(k, c int) float64 {
			if sp.Storage == arch.LinearOutIn {
				return float64(wo[c*C+k])
			}
			return float64(wo[k*C+c])
		}
		z, res := get(p+"attn.hook_z"), get(p+"attn.hook_result")
		want, sum := make([]float64, B*T*NH*C), make([]float64, n)
		for r := 0; r < B*T; r++ {
			for hd := 0; hd < NH; hd++ {
				for c := 0; c < C; c++ {
					v := 0.0
					for e := 0; e < HS; e++ {
						v += float64(z[r*C+hd*HS+e]) * W(hd*HS+e, c)
					}
					want[(r*NH+hd)*C+c] = v
					sum[r*C+c] += float64(res[(r*NH+hd)*C+c])
				}
			}
		}
		if nm.OBias != "" {
			b := weight(sp.LayerName(l, nm.OBias))
			for i := range sum {
				sum[i] += float64(b[i%C])
			}
		}
		compare(t, p+"attn.hook_result = z_h @ W_O[h]", res, want, mt[0], mt[1])
		compare(t, p+"hook_attn_out = sum_h hook_result + b_O", get(p+"hook_attn_out"), sum, mt[0], mt[1])
	}
	sf := get("ln_final.hook_scale")
	fixtures.CloseTol(t, "ln_final.hook_scale from resid", fixtures.F32(sf), scale(resid[L*n:(L+1)*n]), rt)
	normalized("ln_final.", fixtures.F32(get(fmt.Sprintf("blocks.%d.hook_resid_post", L-1))), sf, nm.FinalLNW, nm.FinalLNB)
}

// tlReplace: replacing every attn.hook_result by itself makes each layer's
// hook_attn_out the sum over heads + b_O (Copy, Add and a rank-1 product for
// the bias) instead of the fused product; the logits stay at the fixture's.
func tlReplace(t *testing.T, ref *fixtures.Ref, m *forward.Model, ids []int32, B, T int, rows []int) {
	t.Helper()
	h := (&forward.Hooks{}).Replace("blocks.*.attn.hook_result", forward.EditHost(func(a *forward.Act, d []float32) error { return nil }))
	s, logits, err := m.Run(ids, B, T, h, true)
	fixtures.Must(t, err)
	s.Close()
	ref.CheckAgainst(t, "logits via the sum of hook_result", fixtures.F32(logits), sliceRows(ref.Get(t, "logits"), 0, rows), "logits")
}
