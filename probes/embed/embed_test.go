package embed

import (
	"math"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

func TestGoldenEmbed(t *testing.T) {
	for _, name := range fixtures.Names {
		t.Run(name, func(t *testing.T) {
			ref := fixtures.Load(t, name)
			m, err := forward.Open(cpu.New(), ref.Dir)
			fixtures.Must(t, err)
			defer m.Close()
			// Small chunks (100 rows, a ragged last chunk of 12) exercise the blocking.
			calls, last := 0, 0
			st, err := Compute(m, Options{ChunkRows: 100, Progress: func(d, tot int) { calls++; last = d; _ = tot }})
			fixtures.Must(t, err)
			if calls != 18 || last != 18 { // 3 passes x ceil(512/100) chunks
				t.Errorf("progress: %d calls ending at %d, want 18", calls, last)
			}
			sc := ref.Cases["scalars"].(map[string]any)
			for _, k := range []struct {
				key string
				got float64
			}{
				{"mean_norm", st.MeanNorm},
				{"norm_of_mean", st.NormOfMean},
				{"mean_pairwise_cos", st.MeanPairwiseCos},
				{"mean_pairwise_cos_centered", st.MeanPairwiseCosCentered},
				{"mean_abs_pairwise_cos_centered", st.MeanAbsPairwiseCosCentered},
				{"embed_self_top1", st.SelfTop1},
				{"embed_self_top1_ln", st.SelfTop1LN},
			} {
				ref.CheckAgainst(t, k.key, []float64{k.got}, []float64{sc[k.key].(float64)}, k.key)
			}
			// Indices exactly.
			ref.Equal(t, "embed_top1_index", i2f(st.Top1Index), "embed_top1_index")
			ref.Equal(t, "embed_top1_index_ln", i2f(st.Top1IndexLN), "embed_top1_index_ln")
			t.Logf("rows decided in float64: %d", st.Rescored)

			// Whole-vocabulary chunk gives the same figures.
			st2, err := Compute(m, Options{})
			fixtures.Must(t, err)
			if math.Abs(st2.MeanAbsPairwiseCosCentered-st.MeanAbsPairwiseCosCentered) > 1e-9 || st2.SelfTop1LN != st.SelfTop1LN {
				t.Errorf("chunking changed the result: %+v vs %+v", st2, st)
			}
		})
	}
}

func TestProject(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	tok := ref.Get(t, "tokens")
	B, T := tok.Shape[0], tok.Shape[1]
	got, err := Project(m, tok.Ints(), B, T)
	fixtures.Must(t, err)
	if len(got) != m.Cfg.Layers+1 {
		t.Fatalf("%d layers, want %d", len(got), m.Cfg.Layers+1)
	}
	// Check layer 2 against a direct computation from the reference resid.
	u, err := MeanDirection(m)
	fixtures.Must(t, err)
	C := m.Cfg.DModel
	resid := ref.Get(t, "resid").F
	for _, l := range []int{0, 2, m.Cfg.Layers} {
		n := B * T
		var sum, sum2 float64
		for i := 0; i < n; i++ {
			var p float64
			for c := 0; c < C; c++ {
				p += resid[(l*n+i)*C+c] * u[c]
			}
			sum += p
			sum2 += p * p
		}
		mu := sum / float64(n)
		sd := math.Sqrt(sum2/float64(n) - mu*mu)
		// Our resid is within resid's tolerance of the reference per element;
		// a projection onto a unit vector moves by at most sqrt(C) times that
		// (Cauchy-Schwarz), and so do its mean and std over positions.
		tl := ref.Tol(t, "resid").Widen(math.Sqrt(float64(C)), "projection of C values onto a unit vector: |d(r.u)| <= sqrt(C) max|dr|")
		fixtures.CloseTol(t, "proj mean/std", []float64{got[l].Mean, got[l].Std}, []float64{mu, sd}, tl)
	}
	t.Logf("tiny-neo resid.u per layer: %+v", got)
	// GPT-Neo's shared offset: at layer 0 the residual is mostly along u.
	if got[0].MeanCos < 0.5 {
		t.Errorf("tiny-neo resid[0] mean cos with u = %.3f, expected the shared offset to dominate (> 0.5)", got[0].MeanCos)
	}
}

func i2f(x []int32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// uploads records the sizes of the tensors uploaded to a CPU backend.
type uploads struct {
	*cpu.Backend
	sizes []int
}

func (u *uploads) Upload(data []float32, shape ...int) (backend.Tensor, error) {
	u.sizes = append(u.sizes, len(data))
	return u.Backend.Upload(data, shape...)
}

// TestComputeCopies (issue 17): Compute multiplies by the model's own W_E
// and W_U and wraps its unit centered rows on a backend that can, so it
// uploads no [V, C] matrix; it uploaded the unit rows, W_E and (untied,
// tiny-neox) W_U, two or three copies beside the host rows.
func TestComputeCopies(t *testing.T) {
	for _, name := range fixtures.All {
		t.Run(name, func(t *testing.T) {
			be := &uploads{Backend: cpu.New()}
			m, err := forward.Open(be, fixtures.Dir(t, name))
			fixtures.Must(t, err)
			defer m.Close()
			be.sizes = nil
			_, err = Compute(m, Options{ChunkRows: 16})
			fixtures.Must(t, err)
			big := 0
			for _, n := range be.sizes {
				if n >= m.Cfg.Vocab*m.Cfg.DModel {
					big++
				}
			}
			if big > 0 {
				t.Errorf("Compute uploaded %d matrices of V*C = %d x %d values; uploads %v", big, m.Cfg.Vocab, m.Cfg.DModel, be.sizes)
			}
		})
	}
}
