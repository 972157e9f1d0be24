package lens

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestKLGradient checks the hand-written backward pass of kl against
// central finite differences on a small random problem (float64 throughout).
func TestKLGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	N, C, V := 5, 6, 7
	d := &layerData{N: N, C: C, V: V, Eps: 1e-5}
	rnd := func(n int, s float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64() * s
		}
		return x
	}
	d.H, d.WU, d.G, d.Beta = rnd(N*C, 2), rnd(V*C, 1), rnd(C, 0.3), rnd(C, 0.2)
	for c := range d.G {
		d.G[c] += 1
	}
	d.P, d.LogP = make([]float64, N*V), make([]float64, N*V)
	for i := 0; i < N; i++ {
		z := rnd(V, 1.5)
		var s float64
		for _, x := range z {
			s += math.Exp(x)
		}
		for v, x := range z {
			d.LogP[i*V+v] = x - math.Log(s)
			d.P[i*V+v] = math.Exp(d.LogP[i*V+v])
		}
	}
	tr := Translator{A: rnd(C*C, 0.2), B: rnd(C, 0.3)}
	w := newWork(d)
	gA, gb := make([]float64, C*C), make([]float64, C)
	kl(d, &tr, w, gA, gb)
	const h = 1e-6
	worst := 0.0
	check := func(p *float64, g float64) {
		old := *p
		*p = old + h
		up := kl(d, &tr, w, nil, nil)
		*p = old - h
		dn := kl(d, &tr, w, nil, nil)
		*p = old
		fd := (up - dn) / (2 * h)
		worst = math.Max(worst, math.Abs(fd-g))
		// Central differences in float64 with h = 1e-6 are good to ~1e-9
		// on a KL of order 1; 1e-6 catches any wrong term.
		if math.Abs(fd-g) > 1e-6 {
			t.Errorf("gradient %.9g, finite difference %.9g", g, fd)
		}
	}
	for i := range tr.A {
		check(&tr.A[i], gA[i])
	}
	for i := range tr.B {
		check(&tr.B[i], gb[i])
	}
	t.Logf("max |analytic - finite difference| = %.3g over %d parameters", worst, C*C+C)
}

// TestTunedLens: fit on 32 x 24 seeded random rows, evaluate on the
// fixture's held-out tokens: the tuned lens must have a lower KL to the
// final distribution than the logit lens at every layer but the last; the
// lens round-trips through safetensors.
func TestTunedLens(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	B, T := 32, 24
	rng := rand.New(rand.NewPCG(7, 11))
	train := make([]int32, B*T)
	for i := range train {
		train[i] = int32(rng.IntN(m.Cfg.Vocab))
	}
	start := time.Now()
	tl, rep, err := Fit(m, train, B, T, FitOptions{Steps: 10}) // 30-100 ms a step here, by load
	fixtures.Must(t, err)
	t.Logf("fit: %v", time.Since(start))
	for _, r := range rep {
		t.Logf("train layer %d: logit-lens KL %.4f, ridge %.4f, start %s, final %.4f", r.Layer, r.LogitKL, r.RidgeKL, r.Init, r.Final)
		if r.Final > r.LogitKL {
			t.Errorf("layer %d: training KL %.4f above the logit lens' %.4f", r.Layer, r.Final, r.LogitKL)
		}
	}
	path := filepath.Join(t.TempDir(), "lens.safetensors")
	fixtures.Must(t, tl.Save(path, map[string]string{"model": ref.Dir}))
	back, err := Load(path, m.Cfg.Layers, m.Cfg.DModel)
	fixtures.Must(t, err)
	if back.Meta["model"] != ref.Dir || back.Meta["steps"] != "10" {
		t.Errorf("metadata not kept: %v", back.Meta)
	}
	for l := range tl.Layers {
		// float32 storage: relative rounding 6e-8 of values of order 1.
		fixtures.Close(t, "reloaded weight", back.Layers[l].A, tl.Layers[l].A, 1e-6)
	}
	tok := ref.Get(t, "tokens")
	res, err := Eval(m, back, tok.Ints(), tok.Shape[0], tok.Shape[1])
	fixtures.Must(t, err)
	// The logit-lens columns of Eval are the golden logit_lens_kl.
	ref.Check(t, "eval logit_lens_kl", res.LogitKL, "logit_lens_kl")
	for l := 0; l < m.Cfg.Layers; l++ {
		t.Logf("held-out layer %d: logit lens KL %.4f loss %.4f | tuned KL %.4f loss %.4f", l, res.LogitKL[l], res.LogitLoss[l], res.TunedKL[l], res.TunedLoss[l])
		if !(res.TunedKL[l] < res.LogitKL[l]) {
			t.Errorf("layer %d: tuned-lens KL %.4f not below the logit lens' %.4f on held-out tokens", l, res.TunedKL[l], res.LogitKL[l])
		}
	}
	if _, err := Load(path, m.Cfg.Layers+1, m.Cfg.DModel); err == nil {
		t.Error("a 4-layer lens loaded for a 5-layer model")
	}
	if _, err := Load(path, m.Cfg.Layers-1, m.Cfg.DModel); err == nil {
		t.Error("a 4-layer lens loaded for a 3-layer model")
	}
}
