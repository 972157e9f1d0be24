package conformance

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// Options select what the fixture-driven checks run.
type Options struct {
	// Fixtures are the fixture models to run; nil means fixtures.Names.
	Fixtures []string
	// Rows are the rows of each fixture batch that the whole-forward and
	// hook checks run (nil: all). Rows are independent, so row b of the
	// smaller batch is compared with row b of the references; the batch-mean
	// losses are compared only when every row runs. An emulated device runs
	// one row to keep the default test run short.
	Rows []int
	// ForwardRepOnly makes Forward run rep_tokens only: Hooks checks the
	// same quantities on tokens (logits, residual stream, patterns, z,
	// per-token losses), so an emulated device saves a pass per fixture.
	ForwardRepOnly bool
	// NoSweep skips the ablation figures (Sweep) in Run.
	NoSweep bool
	// SweepLastLayer restricts Sweep to the configurations that ablate in
	// the last layer (single heads, the attention layer, the MLP; zero and
	// mean): the engine starts them from the cached residual before that
	// layer, so an emulated device runs one block per configuration.
	SweepLastLayer bool
	// SweepKeys restricts Sweep to these reference tables (nil: all).
	SweepKeys []string
	// DeviceMath: a real GPU's expf/tanhf (see Ops).
	DeviceMath bool
}

func (o Options) names() []string {
	if o.Fixtures != nil {
		return o.Fixtures
	}
	return fixtures.Names
}

// Run runs every check: Ops, Forward, Hooks and (unless opt.NoSweep) Sweep,
// each on a fresh backend from newBackend (closed at the end of its subtest
// when it implements io.Closer).
func Run(t *testing.T, newBackend func() backend.Backend, opt Options) {
	t.Run("ops", func(t *testing.T) { Ops(t, open(t, newBackend), "", opt.DeviceMath) })
	t.Run("forward", func(t *testing.T) { Forward(t, newBackend, opt) })
	t.Run("hooks", func(t *testing.T) { Hooks(t, newBackend, opt) })
	if !opt.NoSweep {
		t.Run("sweep", func(t *testing.T) { Sweep(t, newBackend, opt) })
	}
}

func open(t *testing.T, newBackend func() backend.Backend) backend.Backend {
	be := newBackend()
	if c, ok := be.(io.Closer); ok {
		t.Cleanup(func() { c.Close() })
	}
	return be
}

func model(t *testing.T, newBackend func() backend.Backend, ref *fixtures.Ref) *forward.Model {
	t.Helper()
	m, err := forward.Open(open(t, newBackend), ref.Dir)
	fixtures.Must(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// batch picks rows of a [B, T] token tensor.
func batch(t *testing.T, tok *fixtures.Tensor, rows []int) (ids []int32, pick []int, T int) {
	t.Helper()
	all := tok.Rows()
	pick = rows
	if pick == nil {
		for b := range all {
			pick = append(pick, b)
		}
	}
	for _, b := range pick {
		if b < 0 || b >= len(all) {
			t.Fatalf("row %d outside the fixture batch of %d", b, len(all))
		}
		ids = append(ids, all[b]...)
	}
	return ids, pick, tok.Shape[1]
}

// sliceRows takes rows of a reference tensor whose batch axis is axis:
// for every index before that axis, the picked batch entries in order.
func sliceRows(x *fixtures.Tensor, axis int, rows []int) []float64 {
	outer, inner := 1, 1
	for _, d := range x.Shape[:axis] {
		outer *= d
	}
	for _, d := range x.Shape[axis+1:] {
		inner *= d
	}
	B := x.Shape[axis]
	var out []float64
	for o := 0; o < outer; o++ {
		for _, b := range rows {
			out = append(out, x.F[(o*B+b)*inner:(o*B+b+1)*inner]...)
		}
	}
	return out
}

func all(rows []int, B int) bool { return len(rows) == B }

// Forward runs whole forward passes of each fixture model on the fixtures'
// tokens and rep_tokens and compares with the references at their recorded
// tolerances (fixtures.Tol): logits, the residual stream before every block
// and after the last, attention patterns, z, per-token losses and the loss;
// rep_logits, rep_attn_pattern, rep_per_token_loss and the second-half loss.
func Forward(t *testing.T, newBackend func() backend.Backend, opt Options) {
	for _, name := range opt.names() {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m := model(t, newBackend, ref)
			L, NH := m.Cfg.Layers, m.Cfg.Heads
			for _, set := range []struct{ tokens, pre string }{{"tokens", ""}, {"rep_tokens", "rep_"}} {
				if opt.ForwardRepOnly && set.pre == "" {
					continue
				}
				tok := ref.Get(t, set.tokens)
				ids, rows, T := batch(t, tok, opt.Rows)
				B := len(rows)
				h := (&forward.Hooks{}).Observe("blocks.*.attn.hook_pattern")
				if set.pre == "" {
					h.Observe("blocks.*.hook_resid_pre", "blocks.*.attn.hook_z")
				}
				s, logits, err := m.Run(ids, B, T, h, true)
				fixtures.Must(t, err)
				defer s.Close()
				ref.CheckAgainst(t, set.pre+"logits", fixtures.F32(logits), sliceRows(ref.Get(t, set.pre+"logits"), 0, rows), set.pre+"logits")
				pat := sliceRows(ref.Get(t, set.pre+"attn_pattern"), 1, rows)
				np := B * NH * T * T
				for l := 0; l < L; l++ {
					got := h.Cache[fmt.Sprintf("blocks.%d.attn.hook_pattern", l)]
					fixtures.CloseTol(t, fmt.Sprintf("%sattn_pattern[%d]", set.pre, l), fixtures.F32(got.Data), pat[l*np:(l+1)*np], ref.Tol(t, set.pre+"attn_pattern"))
				}
				per, err := m.NextTokenLosses(s, 0)
				fixtures.Must(t, err)
				ref.CheckAgainst(t, set.pre+"per_token_loss", per, sliceRows(ref.Get(t, set.pre+"per_token_loss"), 0, rows), set.pre+"per_token_loss")
				if set.pre == "rep_" {
					P := T / 2
					if all(rows, tok.Shape[0]) {
						var sum float64
						for b := 0; b < B; b++ {
							for i := P; i <= 2*P-2; i++ {
								sum += per[b*(T-1)+i]
							}
						}
						fixtures.CloseTol(t, "rep_loss_second_half", []float64{sum / float64(B*(P-1))}, ref.Get(t, "rep_loss_second_half").F, ref.Tol(t, "rep_loss_second_half"))
					}
					continue
				}
				if all(rows, tok.Shape[0]) {
					fixtures.CloseTol(t, "loss", []float64{forward.Mean(per)}, ref.Get(t, "loss").F, ref.Tol(t, "loss"))
				}
				C := m.Cfg.DModel
				n := B * T * C
				resid := sliceRows(ref.Get(t, "resid"), 1, rows)
				z := sliceRows(ref.Get(t, "z"), 1, rows)
				for l := 0; l < L; l++ {
					got := h.Cache[fmt.Sprintf("blocks.%d.hook_resid_pre", l)]
					fixtures.CloseTol(t, fmt.Sprintf("resid[%d]", l), fixtures.F32(got.Data), resid[l*n:(l+1)*n], ref.Tol(t, "resid"))
					gz := h.Cache[fmt.Sprintf("blocks.%d.attn.hook_z", l)]
					fixtures.CloseTol(t, fmt.Sprintf("z[%d]", l), fixtures.F32(gz.Data), z[l*n:(l+1)*n], ref.Tol(t, "z"))
				}
				final := make([]float32, n)
				fixtures.Must(t, m.BE.Download(final, s.Resid))
				fixtures.CloseTol(t, fmt.Sprintf("resid[%d]", L), fixtures.F32(final), resid[L*n:], ref.Tol(t, "resid"))
			}
		})
	}
}

// hookShape is the TransformerLens shape of a hook point, by its name's
// last part; a hook with no rule fails the test (add its rule here).
func hookShape(name string, B, T int, m *forward.Model) ([]int, bool) {
	c := m.Cfg
	switch {
	case name == "logits":
		return []int{B, T, c.Vocab}, true
	case strings.HasSuffix(name, "attn.hook_q"), strings.HasSuffix(name, "attn.hook_k"),
		strings.HasSuffix(name, "attn.hook_v"), strings.HasSuffix(name, "attn.hook_z"),
		strings.HasSuffix(name, "attn.hook_rot_q"), strings.HasSuffix(name, "attn.hook_rot_k"):
		return []int{B, T, c.Heads, c.DHead}, true
	case strings.HasSuffix(name, "attn.hook_attn_scores"), strings.HasSuffix(name, "attn.hook_pattern"):
		return []int{B, c.Heads, T, T}, true
	case strings.HasSuffix(name, "mlp.hook_pre"), strings.HasSuffix(name, "mlp.hook_post"):
		return []int{B, T, c.DMLP}, true
	case strings.HasSuffix(name, ".hook_scale"): // LayerNorm scale, TransformerLens's [batch, pos, 1]
		return []int{B, T, 1}, true
	case strings.HasSuffix(name, "attn.hook_result"): // per-head output z_h @ W_O[h]
		return []int{B, T, c.Heads, c.DModel}, true
	case name == "hook_embed", name == "hook_pos_embed", strings.HasSuffix(name, ".hook_normalized"),
		strings.HasSuffix(name, "hook_resid_pre"), strings.HasSuffix(name, "hook_resid_mid"),
		strings.HasSuffix(name, "hook_resid_post"), strings.HasSuffix(name, "hook_attn_out"),
		strings.HasSuffix(name, "hook_mlp_out"):
		return []int{B, T, c.DModel}, true
	}
	return nil, false
}

// Hooks observes every hook point (the pattern "*") of each fixture model
// and checks that each was delivered, its shape, and its values: against the
// fixtures where they hold that tensor (the residual stream before and
// after each block, patterns, z, logits, hook_embed + hook_pos_embed =
// resid[0]; and the per-token losses), and otherwise against float64
// recomputations from the other hooks (scores from q and k with masked keys
// at -Inf, pattern = softmax(scores) with masked keys at exactly 0, z = pattern @ v, mlp.hook_post = gelu_new(mlp.hook_pre), the
// residual adds; TransformerLens's hook_scale and hook_result: see tlHooks). Finally a replacement of every pattern by itself (the
// AttnApply path), and of every attn.hook_result by itself (attn_out as the
// sum over heads + b_O, tlReplace), must leave the logits at the fixture's.
func Hooks(t *testing.T, newBackend func() backend.Backend, opt Options) {
	for _, name := range opt.names() {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m := model(t, newBackend, ref)
			cfg := m.Cfg
			tok := ref.Get(t, "tokens")
			ids, rows, T := batch(t, tok, opt.Rows)
			B := len(rows)
			h := (&forward.Hooks{}).Observe("*")
			s, logits, err := m.Run(ids, B, T, h, true)
			fixtures.Must(t, err)
			per, err := m.NextTokenLosses(s, 0)
			s.Close()
			fixtures.Must(t, err)
			ref.CheckAgainst(t, "per_token_loss", per, sliceRows(ref.Get(t, "per_token_loss"), 0, rows), "per_token_loss")
			for _, n := range m.HookNames() {
				a := h.Cache[n]
				if a == nil {
					t.Fatalf("hook %s not observed", n)
				}
				want, ok := hookShape(n, B, T, m)
				if !ok {
					t.Fatalf("hook %s: no shape rule in conformance.hookShape", n)
				}
				if fmt.Sprint(a.Shape) != fmt.Sprint(want) {
					t.Errorf("%s shape %v, want %v", n, a.Shape, want)
				}
				size := 1
				for _, d := range want {
					size *= d
				}
				if len(a.Data) != size {
					t.Fatalf("%s: %d values for shape %v", n, len(a.Data), want)
				}
			}
			get := func(n string) []float32 { return h.Cache[n].Data }
			L, C, NH, HS := cfg.Layers, cfg.DModel, cfg.Heads, cfg.DHead
			n := B * T * C
			resid := sliceRows(ref.Get(t, "resid"), 1, rows)
			pat := sliceRows(ref.Get(t, "attn_pattern"), 1, rows)
			zr := sliceRows(ref.Get(t, "z"), 1, rows)
			np := B * NH * T * T
			rt, pt, zt := ref.Tol(t, "resid"), ref.Tol(t, "attn_pattern"), ref.Tol(t, "z")
			ref.CheckAgainst(t, "logits hook", fixtures.F32(get("logits")), sliceRows(ref.Get(t, "logits"), 0, rows), "logits")
			fixtures.CloseTol(t, "logits hook = returned logits", fixtures.F32(get("logits")), fixtures.F32(logits), fixtures.Tol{Key: "same pass"})
			sum := func(a, b string) []float64 {
				x, y := get(a), get(b)
				out := make([]float64, len(x))
				for i := range x {
					out[i] = float64(x[i]) + float64(y[i])
				}
				return out
			}
			if h.Cache["hook_pos_embed"] != nil {
				fixtures.CloseTol(t, "hook_embed + hook_pos_embed", sum("hook_embed", "hook_pos_embed"), resid[:n], rt)
			} else { // no position embedding (GPT-NeoX: rotary)
				fixtures.CloseTol(t, "hook_embed", fixtures.F32(get("hook_embed")), resid[:n], rt)
			}
			// An add rounds once in float32 (half an ulp); a backend may fuse
			// it with the product feeding it: 1e-6 + 2.5e-7|x|.
			const addAbs, addRel = 1e-6, 2.5e-7
			for l := 0; l < L; l++ {
				p := fmt.Sprintf("blocks.%d.", l)
				fixtures.CloseTol(t, p+"hook_resid_pre", fixtures.F32(get(p+"hook_resid_pre")), resid[l*n:(l+1)*n], rt)
				fixtures.CloseTol(t, p+"hook_resid_post", fixtures.F32(get(p+"hook_resid_post")), resid[(l+1)*n:(l+2)*n], rt)
				fixtures.CloseTol(t, p+"attn.hook_pattern", fixtures.F32(get(p+"attn.hook_pattern")), pat[l*np:(l+1)*np], pt)
				fixtures.CloseTol(t, p+"attn.hook_z", fixtures.F32(get(p+"attn.hook_z")), zr[l*n:(l+1)*n], zt)
				if h.Cache[p+"hook_resid_mid"] != nil {
					compare(t, p+"resid_mid = resid_pre + attn_out", get(p+"hook_resid_mid"), sum(p+"hook_resid_pre", p+"hook_attn_out"), addAbs, addRel)
					compare(t, p+"resid_post = resid_mid + mlp_out", get(p+"hook_resid_post"), sum(p+"hook_resid_mid", p+"hook_mlp_out"), addAbs, addRel)
				}
				// The family's GELU of mlp.hook_pre in float64 (the gelu
				// op's bound): the tanh form (gelu_new) or the exact erf one.
				pre := get(p + "mlp.hook_pre")
				gw := make([]float64, len(pre))
				op := "gelu_new"
				if cfg.Act == arch.GELUErf {
					op = "gelu_erf"
				}
				for i, v := range pre {
					x := float64(v)
					if op == "gelu_erf" {
						gw[i] = 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
					} else {
						gw[i] = 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
					}
				}
				g := opTol[op]
				compare(t, p+"mlp.hook_post = "+op+"(mlp.hook_pre)", get(p+"mlp.hook_post"), gw, g[0], g[1])
				// Scores from q and k, softmax, and z from the pattern and v,
				// in float64 (the attention op's bound).
				q, k, v := get(p+"attn.hook_q"), get(p+"attn.hook_k"), get(p+"attn.hook_v")
				if h.Cache[p+"attn.hook_rot_q"] != nil { // rotary: scores read the rotated q and k
					q, k = get(p+"attn.hook_rot_q"), get(p+"attn.hook_rot_k")
				}
				sc, pa := get(p+"attn.hook_attn_scores"), get(p+"attn.hook_pattern")
				ws, wp, wz := make([]float64, len(sc)), make([]float64, len(sc)), make([]float64, B*T*C)
				W, scale := cfg.LayerWindow(l), float64(float32(cfg.AttnScale))
				for b := 0; b < B; b++ {
					for hd := 0; hd < NH; hd++ {
						for i := 0; i < T; i++ {
							o := ((b*NH+hd)*T + i) * T
							mx := math.Inf(-1)
							for j := 0; j < T; j++ {
								ws[o+j] = math.Inf(-1)
								if j > i || (W > 0 && i-j >= W) {
									if pa[o+j] != 0 {
										t.Fatalf("%sattn.hook_pattern[%d,%d,%d,%d] = %g at a masked key, want exactly 0", p, b, hd, i, j, pa[o+j])
									}
									continue
								}
								d := 0.0
								for e := 0; e < HS; e++ {
									d += float64(q[(b*T+i)*C+hd*HS+e]) * float64(k[(b*T+j)*C+hd*HS+e])
								}
								ws[o+j] = scale * d
								mx = math.Max(mx, ws[o+j])
							}
							den := 0.0
							for j := 0; j < T; j++ {
								if !math.IsInf(ws[o+j], -1) {
									wp[o+j] = math.Exp(ws[o+j] - mx)
									den += wp[o+j]
								}
							}
							for j := 0; j < T; j++ {
								wp[o+j] /= den
								for e := 0; e < HS; e++ {
									wz[(b*T+i)*C+hd*HS+e] += float64(pa[o+j]) * float64(v[(b*T+j)*C+hd*HS+e])
								}
							}
						}
					}
				}
				a := opTol["attention"]
				compare(t, p+"attn_scores from q, k", sc, ws, a[0], a[1])
				compare(t, p+"pattern = softmax(attn_scores)", pa, wp, a[0], a[1])
				compare(t, p+"z = pattern @ v", get(p+"attn.hook_z"), wz, a[0], a[1])
			}
			fixtures.CloseTol(t, "blocks.L-1.hook_resid_post", fixtures.F32(get(fmt.Sprintf("blocks.%d.hook_resid_post", L-1))), resid[L*n:], rt)
			tlHooks(t, ref, m, get, B, T, resid, rt) // hook_scale, hook_result

			// Replacing every pattern by itself goes through AttnApply.
			h2 := (&forward.Hooks{}).Replace("blocks.*.attn.hook_pattern", forward.EditHost(func(a *forward.Act, d []float32) error { return nil }))
			s2, logits2, err := m.Run(ids, B, T, h2, true)
			fixtures.Must(t, err)
			s2.Close()
			ref.CheckAgainst(t, "logits via AttnApply", fixtures.F32(logits2), sliceRows(ref.Get(t, "logits"), 0, rows), "logits")
			tlReplace(t, ref, m, ids, B, T, rows)
		})
	}
}

// Sweep evaluates the ablation figures through the sweep engine (batched,
// prefix-sharing, chunks that cut layers apart) on each fixture and compares
// them with the references: zero and mean ablation of every single head,
// attention layer and MLP and zero ablation of the 16 subsets of
// subset_heads on tokens; single heads on rep_tokens (second-half loss).
func Sweep(t *testing.T, newBackend func() backend.Backend, opt Options) {
	for _, name := range opt.names() {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m := model(t, newBackend, ref)
			tok := ref.Get(t, "tokens")
			task := sweep.Task{Tokens: tok.Ints(), B: tok.Shape[0], T: tok.Shape[1]}
			rep := ref.Get(t, "rep_tokens")
			repTask := sweep.Task{Tokens: rep.Ints(), B: rep.Shape[0], T: rep.Shape[1], LossFrom: rep.Shape[1] / 2}
			sh := ref.Get(t, "subset_heads").Ints()
			var parts []string
			for i := 0; i+1 < len(sh); i += 2 {
				parts = append(parts, fmt.Sprintf("%d.%d", sh[i], sh[i+1]))
			}
			subsets := "subsets(" + strings.Join(parts, ",") + ")"
			// Each space runs on its own (a union would merge the configurations
			// subsets and singles share); chunks of 7 mix configurations whose
			// first ablated layers differ and cut a layer's heads apart.
			type sweepCase struct {
				task  sweep.Task
				mode  sweep.Mode
				space string
				key   string
				last  int // SweepLastLayer: the reference's last entries compared
			}
			L, NH := m.Cfg.Layers, m.Cfg.Heads
			cases := []sweepCase{
				{task, sweep.Zero, subsets, "subset_ablation_loss", 0},
				{task, sweep.Zero, "singles(heads)", "head_ablation_loss", NH},
				{task, sweep.Zero, "singles(attn)", "attn_layer_ablation_loss", 1},
				{task, sweep.Zero, "singles(mlp)", "mlp_ablation_loss", 1},
				{task, sweep.Mean, "singles(heads)", "head_mean_ablation_loss", NH},
				{task, sweep.Mean, "singles(attn)", "attn_layer_mean_ablation_loss", 1},
				{task, sweep.Mean, "singles(mlp)", "mlp_mean_ablation_loss", 1},
				{repTask, sweep.Zero, "singles(heads)", "rep_head_ablation_loss", NH},
			}
			ran := 0
			for _, c := range cases {
				if opt.SweepKeys != nil && !slices.Contains(opt.SweepKeys, c.key) {
					continue
				}
				ran++
				want := ref.Get(t, c.key).F
				if opt.SweepLastLayer {
					if c.last == 0 {
						continue
					}
					last := map[string]string{"singles(heads)": fmt.Sprintf("singles(%d.*)", L-1),
						"singles(attn)": fmt.Sprintf("singles(attn.%d)", L-1), "singles(mlp)": fmt.Sprintf("singles(mlp.%d)", L-1)}
					c.space, want = last[c.space], want[len(want)-c.last:]
				}
				cfgs, err := sweep.Parse(c.space, sweep.Dims{Layers: L, Heads: NH})
				fixtures.Must(t, err)
				e, err := sweep.New(m, c.task, sweep.Options{Mode: c.mode, Chunk: 7})
				fixtures.Must(t, err)
				got := make([]float64, len(cfgs))
				for _, ch := range e.Plan(cfgs) {
					sub := make([]sweep.Config, len(ch))
					for j, i := range ch {
						sub[j] = cfgs[i]
					}
					v, err := e.Eval(sub)
					fixtures.Must(t, err)
					for j, i := range ch {
						got[i] = v[j]
					}
				}
				e.Close()
				ref.CheckAgainst(t, c.key+" via "+c.space+" ("+c.mode.String()+")", got, want, c.key)
			}
			if ran == 0 {
				t.Fatalf("no sweep table matches %v", opt.SweepKeys)
			}
		})
	}
}
