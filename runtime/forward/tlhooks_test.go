package forward_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/checkpoint"
	"github.com/neoscope/neoscope/runtime/forward"
)

// wO returns W_O of layer l as x @ W_O uses it ([C_in, C_out], row-major,
// float64) and b_O (nil when the family has none), read from the file.
func wO(t *testing.T, w *checkpoint.Weights, c *arch.Config, l int) (W []float64, b []float64) {
	t.Helper()
	n := c.Spec.Names
	wt := w.Get(c.Spec.LayerName(l, n.O))
	if wt == nil {
		t.Fatalf("layer %d: no %s in the checkpoint", l, c.Spec.LayerName(l, n.O))
	}
	C := c.DModel
	W = make([]float64, C*C)
	for i := 0; i < C; i++ {
		for j := 0; j < C; j++ {
			if c.Spec.Storage == arch.LinearOutIn { // [out, in]
				W[i*C+j] = float64(wt.Data[j*C+i])
			} else {
				W[i*C+j] = float64(wt.Data[i*C+j])
			}
		}
	}
	if n.OBias != "" {
		if bt := w.Get(c.Spec.LayerName(l, n.OBias)); bt != nil {
			b = fixtures.F32(bt.Data)
		}
	}
	return W, b
}

// scale64 is sqrt(biased var + eps) of each C-row of x, in float64.
func scale64(x []float64, C int, eps float64) []float64 {
	out := make([]float64, len(x)/C)
	for r := range out {
		row := x[r*C : (r+1)*C]
		mean, v := 0.0, 0.0
		for _, e := range row {
			mean += e
		}
		mean /= float64(C)
		for _, e := range row {
			v += (e - mean) * (e - mean)
		}
		out[r] = math.Sqrt(v/float64(C) + eps)
	}
	return out
}

// TestTLHooks: the hook_scale points and attn.hook_result of every fixture
// against float64 recomputations from the fixtures' references and weights:
// ln1.hook_scale and ln_final.hook_scale from the reference residual stream
// (within its tolerance: the scale is an RMS of the centred row, so its
// error is at most the residual's), ln2.hook_scale from the input of ln2 of
// the same pass (hook_resid_mid, or hook_resid_pre in a parallel block),
// hook_normalized = (x - mean) / hook_scale * w + b, each head's
// hook_result from the reference z and W_O (z's tolerance carried through
// W_O), and sum over heads of hook_result + b_O = hook_attn_out.
func TestTLHooks(t *testing.T) {
	for _, name := range fixtures.All {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			cfg := m.Cfg
			w, err := checkpoint.Load(ref.Dir, cfg)
			fixtures.Must(t, err)
			defer w.Close()
			tok := ref.Get(t, "tokens")
			B, T := tok.Shape[0], tok.Shape[1]
			L, C, NH, HS := cfg.Layers, cfg.DModel, cfg.Heads, cfg.DHead
			h := (&forward.Hooks{}).Observe("*")
			s, _, err := m.Run(tok.Ints(), B, T, h, false)
			fixtures.Must(t, err)
			s.Close()
			get := func(n string, shape ...int) []float64 {
				a := h.Cache[n]
				if a == nil {
					t.Fatalf("%s not observed", n)
				}
				if fmt.Sprint(a.Shape) != fmt.Sprint(shape) {
					t.Fatalf("%s shape %v, want %v", n, a.Shape, shape)
				}
				return fixtures.F32(a.Data)
			}
			n := B * T * C
			resid, z := ref.Get(t, "resid").F, ref.Get(t, "z").F
			rt, zt := ref.Tol(t, "resid"), ref.Tol(t, "z")
			eps := float64(float32(cfg.LNEps))
			// Same-pass identities: float32 rounding of LayerNorm and adds.
			const abs, rel = 1e-5, 1e-5
			near := func(what string, got, want []float64, bound func(i int) float64) {
				t.Helper()
				worst := 0.0
				for i := range got {
					d := math.Abs(got[i] - want[i])
					b := bound(i)
					if !(d <= b) {
						t.Fatalf("%s[%d] = %.8g, want %.8g (|diff| %.3g > %.3g)", what, i, got[i], want[i], d, b)
					}
					worst = math.Max(worst, d/b)
				}
				t.Logf("%s: %d values, max diff/bound %.2f", what, len(got), worst)
			}
			// normalized checks hook_normalized = (x - mean)/scale * w + b.
			normalized := func(p string, x, sc []float64, wName, bName string) {
				lw, lb := w.Get(wName), w.Get(bName)
				want := make([]float64, len(x))
				for r := 0; r < len(x)/C; r++ {
					mean := 0.0
					for c := 0; c < C; c++ {
						mean += x[r*C+c]
					}
					mean /= float64(C)
					for c := 0; c < C; c++ {
						want[r*C+c] = (x[r*C+c]-mean)/sc[r]*float64(lw.Data[c]) + float64(lb.Data[c])
					}
				}
				near(p+"hook_normalized = (x-mean)/hook_scale*w+b", get(p+"hook_normalized", B, T, C), want,
					func(i int) float64 { return abs + rel*math.Abs(want[i]) })
			}
			nm := cfg.Spec.Names
			for l := 0; l < L; l++ {
				p := fmt.Sprintf("blocks.%d.", l)
				s1 := get(p+"ln1.hook_scale", B, T, 1)
				fixtures.CloseTol(t, p+"ln1.hook_scale from the reference resid", s1, scale64(resid[l*n:(l+1)*n], C, eps), rt)
				normalized(p+"ln1.", get(p+"hook_resid_pre", B, T, C), s1, cfg.Spec.LayerName(l, nm.LN1W), cfg.Spec.LayerName(l, nm.LN1B))
				in2 := p + "hook_resid_mid"
				if cfg.Parallel {
					in2 = p + "hook_resid_pre"
				}
				x2 := get(in2, B, T, C)
				s2, w2 := get(p+"ln2.hook_scale", B, T, 1), scale64(x2, C, eps)
				near(p+"ln2.hook_scale from "+in2, s2, w2, func(i int) float64 { return 2e-7 * w2[i] })
				normalized(p+"ln2.", x2, s2, cfg.Spec.LayerName(l, nm.LN2W), cfg.Spec.LayerName(l, nm.LN2B))

				res := get(p+"attn.hook_result", B, T, NH, C)
				W, bO := wO(t, w, cfg, l)
				zl := z[l*n : (l+1)*n]
				want := make([]float64, B*T*NH*C)
				bound := make([]float64, len(want))
				for r := 0; r < B*T; r++ {
					for hd := 0; hd < NH; hd++ {
						for c := 0; c < C; c++ {
							v, g := 0.0, 0.0
							for e := 0; e < HS; e++ {
								k := hd*HS + e
								v += zl[r*C+k] * W[k*C+c]
								g += zt.Bound(zl[r*C+k]) * math.Abs(W[k*C+c])
							}
							i := (r*NH+hd)*C + c
							want[i] = v
							bound[i] = g + fixtures.MinAbs*math.Max(1, math.Abs(v))
						}
					}
				}
				near(p+"attn.hook_result = z_h @ W_O[h] (reference z)", res, want, func(i int) float64 { return bound[i] })
				ao := get(p+"hook_attn_out", B, T, C)
				sum := make([]float64, n)
				for r := 0; r < B*T; r++ {
					for c := 0; c < C; c++ {
						for hd := 0; hd < NH; hd++ {
							sum[r*C+c] += res[(r*NH+hd)*C+c]
						}
						if bO != nil {
							sum[r*C+c] += bO[c]
						}
					}
				}
				near(p+"sum_h hook_result + b_O = hook_attn_out", sum, ao, func(i int) float64 { return abs + rel*math.Abs(ao[i]) })
			}
			sf := get("ln_final.hook_scale", B, T, 1)
			fixtures.CloseTol(t, "ln_final.hook_scale from the reference resid", sf, scale64(resid[L*n:(L+1)*n], C, eps), rt)
			normalized("ln_final.", get(fmt.Sprintf("blocks.%d.hook_resid_post", L-1), B, T, C), sf, nm.FinalLNW, nm.FinalLNB)
		})
	}
}

// TestTLHookReplace: replacing attn.hook_result feeds the sum over heads
// (+ b_O) downstream: an identity edit leaves the logits, zeroing one head's
// result equals zeroing its hook_z; replacing a hook_scale point or
// attn.hook_attn_scores is refused by Validate with a message naming the
// point, and observing them is not.
func TestTLHookReplace(t *testing.T) {
	for _, name := range fixtures.All {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			tok := ref.Get(t, "tokens")
			B, T := tok.Shape[0], tok.Shape[1]
			C, NH, HS, L := m.Cfg.DModel, m.Cfg.Heads, m.Cfg.DHead, m.Cfg.Layers
			run := func(h *forward.Hooks) []float64 {
				t.Helper()
				s, lg, err := m.Run(tok.Ints(), B, T, h, true)
				fixtures.Must(t, err)
				s.Close()
				return fixtures.F32(lg)
			}
			same := forward.EditHost(func(a *forward.Act, d []float32) error { return nil })
			ref.Check(t, "logits with every hook_result replaced by itself", run((&forward.Hooks{}).Replace("blocks.*.attn.hook_result", same)), "logits")
			l, hd := L-1, NH-1
			viaResult := run((&forward.Hooks{}).Replace(fmt.Sprintf("blocks.%d.attn.hook_result", l), forward.EditHost(func(a *forward.Act, d []float32) error {
				for r := 0; r < B*T; r++ {
					clear(d[(r*NH+hd)*C : (r*NH+hd+1)*C])
				}
				return nil
			})))
			viaZ := run((&forward.Hooks{}).Replace(fmt.Sprintf("blocks.%d.attn.hook_z", l), forward.EditHost(func(a *forward.Act, d []float32) error {
				for r := 0; r < B*T; r++ {
					clear(d[r*C+hd*HS : r*C+(hd+1)*HS])
				}
				return nil
			})))
			// Two float32 summation orders of the same products: the logits'
			// float32 tolerance.
			fixtures.CloseTol(t, fmt.Sprintf("logits, head %d.%d zeroed at hook_result vs at hook_z", l, hd), viaResult, viaZ, ref.Tol(t, "logits"))
			if func() bool { // the edit must have changed something
				base := run(nil)
				for i := range base {
					if base[i] != viaZ[i] {
						return false
					}
				}
				return true
			}() {
				t.Errorf("zeroing head %d.%d changed no logit", l, hd)
			}
			for _, p := range []string{"blocks.0.ln1.hook_scale", "blocks.*.ln2.hook_scale", "ln_final.hook_scale", "blocks.0.attn.hook_attn_scores", "*", "blocks.0.ln1.*"} {
				h := (&forward.Hooks{}).Replace(p, same)
				err := h.Validate(m)
				if err == nil || !strings.Contains(err.Error(), "can only be observed") || !strings.Contains(err.Error(), p) {
					t.Errorf("Replace(%q): Validate error %v, want one saying the point can only be observed", p, err)
				}
				if _, _, err2 := m.Run(tok.Ints(), B, T, h, false); err2 == nil {
					t.Errorf("Replace(%q): Run accepted it", p)
				}
			}
			// Without Validate (Blocks called directly) the pass refuses too.
			for _, p := range []string{"blocks.1.ln2.hook_scale", "blocks.1.attn.hook_attn_scores"} {
				st, err := m.Start(tok.Ints(), B, T, nil)
				fixtures.Must(t, err)
				err = m.Blocks(st, 0, L, (&forward.Hooks{}).Replace(p, same))
				st.Close()
				if err == nil || !strings.Contains(err.Error(), "can only be observed") {
					t.Errorf("Blocks with Replace(%q): error %v, want one saying the point can only be observed", p, err)
				}
			}
			if err := (&forward.Hooks{}).Observe("*.hook_scale", "blocks.*.attn.hook_result").Replace("blocks.*.attn.hook_result", same).Validate(m); err != nil {
				t.Errorf("observing hook_scale / replacing hook_result refused: %v", err)
			}
		})
	}
}

// counting counts the backend's products and uploads.
type counting struct {
	backend.Backend
	matmuls, uploads int
}

func (c *counting) MatMul(a, b, d backend.Mat, transB bool, bias backend.Tensor, acc bool) error {
	c.matmuls++
	return c.Backend.MatMul(a, b, d, transB, bias, acc)
}

func (c *counting) Upload(data []float32, shape ...int) (backend.Tensor, error) {
	c.uploads++
	return c.Backend.Upload(data, shape...)
}

// TestTLHooksCostNothingUnobserved: a pass that watches other points does no
// more products or uploads than one with no hooks; watching one layer's
// hook_result adds NH products, one hook_scale one upload.
func TestTLHooksCostNothingUnobserved(t *testing.T) {
	for _, name := range fixtures.All {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			be := &counting{Backend: cpu.New()}
			m, err := forward.Open(be, ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			tok := ref.Get(t, "tokens")
			B, T := tok.Shape[0], tok.Shape[1]
			count := func(h *forward.Hooks) (int, int) {
				be.matmuls, be.uploads = 0, 0
				s, _, err := m.Run(tok.Ints(), B, T, h, true)
				fixtures.Must(t, err)
				s.Close()
				return be.matmuls, be.uploads
			}
			mm0, up0 := count(nil)
			if mm, up := count((&forward.Hooks{}).Observe("blocks.*.hook_resid_pre", "blocks.*.ln1.hook_normalized", "blocks.*.attn.hook_z", "ln_final.hook_normalized")); mm != mm0 || up != up0 {
				t.Errorf("other hooks: %d products, %d uploads; without hooks %d, %d", mm, up, mm0, up0)
			}
			if mm, _ := count((&forward.Hooks{}).Observe("blocks.0.attn.hook_result")); mm != mm0+m.Cfg.Heads {
				t.Errorf("hook_result of one layer: %d products, want %d + %d heads", mm, mm0, m.Cfg.Heads)
			}
			if _, up := count((&forward.Hooks{}).Observe("blocks.0.ln2.hook_scale")); up != up0+1 {
				t.Errorf("one hook_scale: %d uploads, want %d + 1", up, up0)
			}
		})
	}
}
