package embed

import (
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/forward"
)

// BenchmarkComputeV512C64: all embedding statistics of a V=512, C=64 table
// (tiny-neo): three passes of [512,64] x [64,512] plus host reductions.
func BenchmarkComputeV512C64(b *testing.B) {
	m, err := forward.Open(cpu.New(), fixtures.Dir(b, "tiny-neo"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ResetTimer()
	for range b.N {
		if _, err := Compute(m, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
