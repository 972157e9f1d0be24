package forward_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestBlockOpts: a block run on a tail of positions (BlockOpts.From) or
// from a given attention output (BlockOpts.AttnOut, here the one Attention
// computes on another state), or both, equals the plain block where it is
// defined: the residual stream at positions From.. and hook_mlp_out there
// (seen as [B, T-From, C]); before From the residual keeps the block's
// input. On every fixture family (sequential and parallel residuals), at a
// middle and the last layer.
func TestBlockOpts(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			tok := ref.Get(t, "tokens")
			B, T, C := tok.Shape[0], tok.Shape[1], m.Cfg.DModel
			host := func(s *forward.State) []float32 {
				out := make([]float32, B*T*C)
				fixtures.Must(t, m.BE.DownloadMat(out, backend.Whole(s.Resid).RowSlice(0, B*T)))
				return out
			}
			for _, l := range []int{m.Cfg.Layers / 2, m.Cfg.Layers - 1} {
				// run: blocks 0..l-1 plain, then block l with o; the
				// residual before and after block l, and hook_mlp_out.
				run := func(o forward.BlockOpts) (in, out, mlp []float32, hm *forward.HostTensor) {
					s, err := m.Start(tok.Ints(), B, T, nil)
					fixtures.Must(t, err)
					defer s.Close()
					fixtures.Must(t, m.Blocks(s, 0, l, nil))
					in = host(s)
					h := (&forward.Hooks{}).Observe(fmt.Sprintf("blocks.%d.hook_mlp_out", l))
					var from int
					h.Replace(fmt.Sprintf("blocks.%d.hook_mlp_out", l), func(a *forward.Act) error { from = a.From; return nil })
					fixtures.Must(t, m.Block(s, l, h, o))
					if from != o.From {
						t.Errorf("layer %d: hook_mlp_out saw From %d, want %d", l, from, o.From)
					}
					hm = h.Cache[fmt.Sprintf("blocks.%d.hook_mlp_out", l)]
					return in, host(s), hm.Data, hm
				}
				_, want, wantMLP, _ := run(forward.BlockOpts{})
				given := func(ao backend.Mat) error {
					s, err := m.Start(tok.Ints(), B, T, nil)
					if err != nil {
						return err
					}
					defer s.Close()
					if err := m.Blocks(s, 0, l, nil); err != nil {
						return err
					}
					_, a, err := m.Attention(s, l, nil)
					if err != nil {
						return err
					}
					return m.BE.Copy(ao, a)
				}
				for _, o := range []forward.BlockOpts{{From: T / 2}, {From: T - 1}, {AttnOut: given}, {AttnOut: given, From: T / 3}} {
					what := fmt.Sprintf("layer %d, from %d, given attention %v", l, o.From, o.AttnOut != nil)
					in, got, gotMLP, hm := run(o)
					if len(hm.Shape) != 3 || hm.Shape[0] != B || hm.Shape[1] != T-o.From || hm.Shape[2] != C {
						t.Fatalf("%s: hook_mlp_out shape %v, want [%d %d %d]", what, hm.Shape, B, T-o.From, C)
					}
					worst, worstIn, worstMLP := 0.0, 0.0, 0.0
					for b := 0; b < B; b++ {
						for p := 0; p < T; p++ {
							for c := 0; c < C; c++ {
								i := (b*T+p)*C + c
								if p < o.From {
									worstIn = math.Max(worstIn, math.Abs(float64(got[i]-in[i])))
									continue
								}
								worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
								worstMLP = math.Max(worstMLP, math.Abs(float64(gotMLP[(b*(T-o.From)+p-o.From)*C+c]-wantMLP[i])))
							}
						}
					}
					// The same float32 arithmetic on fewer rows: rounding only.
					if worst > 1e-5 || worstMLP > 1e-5 || worstIn != 0 {
						t.Errorf("%s: max |diff| %.3g (residual), %.3g (hook_mlp_out), %.3g (untouched positions)", what, worst, worstMLP, worstIn)
					}
				}
			}
			s, err := m.Start(tok.Ints(), B, T, nil)
			fixtures.Must(t, err)
			defer s.Close()
			for _, o := range []forward.BlockOpts{{From: T}, {From: -1}} {
				if err := m.Block(s, 0, nil, o); err == nil {
					t.Errorf("Block accepted From %d of %d positions", o.From, T)
				}
			}
		})
	}
}

// TestLogitsUnzeroed: the logits tensor comes unzeroed from the CPU
// backend's pool (backend.Unzeroed); a recycled buffer full of NaN must not
// leak into the logits.
func TestLogitsUnzeroed(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	be := cpu.New()
	m, err := forward.Open(be, ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	tok := ref.Get(t, "tokens")
	B, T, V := tok.Shape[0], tok.Shape[1], m.Cfg.Vocab
	s, want, err := m.Run(tok.Ints(), B, T, nil, true)
	fixtures.Must(t, err)
	dirty, err := be.New(B*T, V)
	fixtures.Must(t, err)
	nan := make([]float32, B*T*V)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	fixtures.Must(t, be.Copy(backend.Whole(dirty), backend.Mat{T: mustUpload(t, be, nan, B*T, V), Rows: B * T, Cols: V, Stride: V}))
	be.Free(dirty) // back to the pool, NaN inside
	lt, err := m.LogitsTensor(s, nil)
	fixtures.Must(t, err)
	defer be.Free(lt)
	s.Close()
	got := make([]float32, lt.Len())
	fixtures.Must(t, be.Download(got, lt))
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("logit %d: %g, want %g", i, got[i], want[i])
		}
	}
}

func mustUpload(t *testing.T, be *cpu.Backend, data []float32, shape ...int) backend.Tensor {
	t.Helper()
	x, err := be.Upload(data, shape...)
	fixtures.Must(t, err)
	return x
}
