package lens

import (
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
)

// BenchmarkRunB3T24L4V512: the logit lens with both variants on tiny-neo's
// 3 x 24 tokens (L=4, V=512, C=64).
func BenchmarkRunB3T24L4V512(b *testing.B) {
	ref := fixtures.Load(b, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	tok := ref.Get(b, "tokens")
	b.ResetTimer()
	for range b.N {
		if _, err := Run(m, tok.Ints(), 3, 24, Options{FinalBlock: true, Centered: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKLStepN768C64V512: one tuned-lens objective and gradient
// evaluation on the host (N=768 rows, C=64, V=512), the unit of Fit's cost.
func BenchmarkKLStepN768C64V512(b *testing.B) {
	N, C, V := 768, 64, 512
	d := &layerData{N: N, C: C, V: V, Eps: 1e-5, H: make([]float64, N*C), WU: make([]float64, V*C),
		G: make([]float64, C), Beta: make([]float64, C), P: make([]float64, N*V), LogP: make([]float64, N*V)}
	for i := range d.H {
		d.H[i] = float64(i%7) - 3
	}
	for i := range d.WU {
		d.WU[i] = float64(i%5)*0.1 - 0.2
	}
	for i := range d.G {
		d.G[i] = 1
	}
	for i := range d.P {
		d.P[i], d.LogP[i] = 1/float64(V), -6.238324625 // uniform over 512
	}
	tr := identity(C)
	w := newWork(d)
	gA, gb := make([]float64, C*C), make([]float64, C)
	b.ResetTimer()
	for range b.N {
		kl(d, &tr, w, gA, gb)
	}
}
