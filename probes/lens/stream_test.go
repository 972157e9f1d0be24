package lens

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
)

func randomRows(m *forward.Model, B, T int, seed uint64) [][]int32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	rows := make([][]int32, B)
	for b := range rows {
		rows[b] = make([]int32, T)
		for t := range rows[b] {
			rows[b][t] = int32(rng.IntN(m.Cfg.Vocab))
		}
	}
	return rows
}

// TestGradBatchMatchesHost: the streamed gradient (products on the backend
// in float32) equals kl's float64 host gradient on the same positions, to
// float32 accuracy, for a random translator.
func TestGradBatchMatchesHost(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	B, T, L, C := 3, 10, m.Cfg.Layers, m.Cfg.DModel
	var tokens []int32
	for _, r := range randomRows(m, B, T, 5) {
		tokens = append(tokens, r...)
	}
	g, err := newGradBatch(m, tokens, B, T)
	fixtures.Must(t, err)
	defer g.close()
	// Host problem from the same capture.
	N, V := B*T, m.Cfg.Vocab
	d := &layerData{N: N, C: C, V: V, P: make([]float64, N*V), LogP: make([]float64, N*V), Eps: m.Cfg.LNEps, G: g.g, Beta: g.beta}
	for i := range d.P {
		d.P[i], d.LogP[i] = float64(g.p[i]), float64(g.logp[i])
	}
	um := m.Unembed()
	wu := make([]float32, um.Rows*um.Cols)
	fixtures.Must(t, m.BE.DownloadMat(wu, um))
	d.WU = f64(wu)
	rng := rand.New(rand.NewPCG(9, 9))
	for _, l := range []int{0, L - 1} {
		h, err := g.c.Host(l)
		fixtures.Must(t, err)
		d.H = f64(h)
		tr := Translator{A: make([]float64, C*C), B: make([]float64, C)}
		for i := range tr.A {
			tr.A[i] = rng.NormFloat64() * 0.05
		}
		for i := range tr.B {
			tr.B[i] = rng.NormFloat64() * 0.1
		}
		gA, gb := make([]float64, C*C), make([]float64, C)
		want := kl(d, &tr, newWork(d), gA, gb)
		params := append(append([]float64(nil), tr.A...), tr.B...)
		grad := make([]float64, len(params))
		got, err := g.layer(l, params, grad)
		fixtures.Must(t, err)
		// KL: float32 logits of order 10 carry ~1e-6 relative error.
		if math.Abs(got-want) > 1e-4*math.Max(1, want) {
			t.Fatalf("layer %d: streamed KL %.8f, host float64 %.8f", l, got, want)
		}
		var scale float64
		for i := 0; i < N; i++ {
			var mu, v float64
			for c := 0; c < C; c++ {
				mu += d.H[i*C+c]
			}
			mu /= float64(C)
			for c := 0; c < C; c++ {
				v += (d.H[i*C+c] - mu) * (d.H[i*C+c] - mu)
			}
			scale += v / float64(C)
		}
		scale /= float64(N)
		for i := range gA {
			gA[i] /= scale
		}
		// Gradients: float32 products over N*V terms (measured 3e-6 of the
		// largest); 2e-5 of the largest.
		check := func(what string, got, want []float64) {
			var mx, worst float64
			for i := range want {
				mx = math.Max(mx, math.Abs(want[i]))
				worst = math.Max(worst, math.Abs(got[i]-want[i]))
			}
			if mx == 0 || worst > 2e-5*mx {
				t.Fatalf("layer %d %s: max |streamed - host| %.3g of max |host| %.3g", l, what, worst, mx)
			}
			t.Logf("layer %d %s: max |streamed - host| %.3g of max %.3g", l, what, worst, mx)
		}
		check("dA", grad[:C*C], gA)
		check("db", grad[C*C:], gb)
	}
}

// TestFitStream: streamed fit with a ridge start and Adam on windows of
// random rows: the held-out tuned-lens KL is below the logit lens' at every
// layer; a run killed after 3 steps and resumed ends with exactly the
// uninterrupted run's parameters; a resume with another option or input is
// refused, naming the difference.
func TestFitStream(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	rows := randomRows(m, 20, 48, 1) // windows of 24: 40 windows, every 5th held out
	src := NewRowsSource("random", rows, 24)
	dir := t.TempDir()
	opt := StreamOptions{Steps: 6, Rows: 4, Holdout: 5, Every: 2, Checkpoint: filepath.Join(dir, "full.ckpt")}
	tl, rep, err := FitStream(m, src, 24, opt)
	fixtures.Must(t, err)
	if rep.TrainWindows != 32 || rep.HeldoutPositions != 8*24 {
		t.Fatalf("windows: %d training, %d held-out positions; want 32 and %d", rep.TrainWindows, rep.HeldoutPositions, 8*24)
	}
	for l := 0; l < m.Cfg.Layers; l++ {
		h := rep.Heldout
		t.Logf("layer %d (%s start, %s kept): held-out logit-lens KL %.4f, tuned %.4f", l, rep.Init[l], rep.Kept[l], h.LogitKL[l], h.TunedKL[l])
		if rep.Kept[l] != "trained" && rep.Kept[l] != "start" {
			t.Errorf("layer %d: kept %q", l, rep.Kept[l])
		}
		if !(h.TunedKL[l] < h.LogitKL[l]) {
			t.Errorf("layer %d: held-out tuned KL %.4f not below the logit lens' %.4f", l, h.TunedKL[l], h.LogitKL[l])
		}
	}
	// Killed after 3 steps, then resumed.
	o2 := opt
	o2.Checkpoint = filepath.Join(dir, "part.ckpt")
	o2.stopAt = 3
	if _, _, err := FitStream(m, src, 24, o2); !errors.Is(err, errStopped) {
		t.Fatalf("stopped run: %v", err)
	}
	o2.stopAt, o2.Resume = 0, true
	tl2, rep2, err := FitStream(m, src, 24, o2)
	fixtures.Must(t, err)
	if rep2.ResumedAt != 2 { // the last checkpoint before the kill (every 2 steps)
		t.Errorf("resumed at step %d, want 2", rep2.ResumedAt)
	}
	for l := range tl.Layers {
		for i, x := range tl.Layers[l].A {
			if tl2.Layers[l].A[i] != x {
				t.Fatalf("layer %d: resumed A[%d] = %g, uninterrupted %g", l, i, tl2.Layers[l].A[i], x)
			}
		}
	}
	// Refusals.
	o3 := o2
	o3.Rows = 2
	_, _, err = FitStream(m, src, 24, o3)
	var mm *ResumeMismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), "rows") {
		t.Fatalf("resume with other --rows: %v", err)
	}
	other := NewRowsSource("random", randomRows(m, 20, 48, 2), 24)
	if _, _, err = FitStream(m, other, 24, o2); !errors.As(err, &mm) || !strings.Contains(err.Error(), "input") {
		t.Fatalf("resume on other tokens: %v", err)
	}
}

// TestTextSource: windows of T tokens, every token once, the last window
// shorter; pieces are cut after newlines.
func TestTextSource(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.txt")
	text := strings.Repeat("abcdefg\n", 3) + "xyz"
	fixtures.Must(t, os.WriteFile(p, []byte(text), 0o644))
	enc := func(s string) []int {
		out := make([]int, len(s))
		for i := range s {
			out[i] = int(s[i])
		}
		return out
	}
	s, err := NewTextSource(p, 5, 256, enc)
	fixtures.Must(t, err)
	defer s.Close()
	for pass := 0; pass < 2; pass++ {
		var got []byte
		n := 0
		for {
			w, err := s.Next()
			if err != nil {
				break
			}
			n++
			if len(w) != 5 && len(got)+len(w) != len(text) {
				t.Fatalf("window %d has %d tokens before the end", n, len(w))
			}
			for _, id := range w {
				got = append(got, byte(id))
			}
		}
		if string(got) != text || n != 6 {
			t.Fatalf("pass %d: %d windows giving %q", pass, n, got)
		}
		fixtures.Must(t, s.Reset())
	}
	// An id outside the model's vocabulary is an error naming the file.
	small, err := NewTextSource(p, 5, 100, enc) // 'a' = 97, 'x' = 120
	fixtures.Must(t, err)
	defer small.Close()
	if _, err := small.Next(); err == nil || !strings.Contains(err.Error(), "outside the model's vocabulary of 100") {
		t.Fatalf("id 120 with a vocabulary of 100: %v", err)
	}
}
