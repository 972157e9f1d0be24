package cpu_test

import (
	"math/rand/v2"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/runtime/backend"
)

// BenchmarkGELUPythia160M: the MLP activation of one Pythia-160M layer on
// 8x128 tokens ([1024, 3072], a copy of fresh inputs included), exact erf
// GELU beside the tanh gelu_new.
func BenchmarkGELUPythia160M(b *testing.B) {
	be := cpu.New()
	be.SetThreads(2)
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 1024*3072)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, c := range []struct {
		name string
		op   func(backend.Mat) error
	}{{"erf", be.GELUErf}, {"tanh", be.GELUNew}} {
		b.Run(c.name, func(b *testing.B) {
			src, _ := be.Upload(x, 1024, 3072)
			t, _ := be.New(1024, 3072)
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				// Fresh inputs each time: GELU applied repeatedly drives values into denormals.
				if err := be.Copy(backend.Whole(t), backend.Whole(src)); err != nil {
					b.Fatal(err)
				}
				if err := c.op(backend.Whole(t)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
