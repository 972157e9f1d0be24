package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAttnHeads: this build's attention kernel on one thread at
// GPT-Neo-125M's 12 heads of 64, causal (window 0) and local (256), at the
// forward table's 8 x 128 and at 1 x 2048, where attention is about half a
// pass. Reports attention GFLOP/s (q.k and p.v, 4 x HS flops per pair kept).
func BenchmarkAttnHeads(b *testing.B) {
	for _, tc := range []struct{ B, T, window int }{{8, 128, 0}, {1, 2048, 0}, {1, 2048, 256}} {
		const NH, HS = 12, 64
		b.Run(fmt.Sprintf("%dx%d_window%d", tc.B, tc.T, tc.window), func(b *testing.B) {
			C := NH * HS
			rows := tc.B * tc.T
			r := rand.New(rand.NewPCG(5, 6))
			qkv := make([]float32, rows*3*C)
			for i := range qkv {
				qkv[i] = float32(r.NormFloat64())
			}
			z := make([]float32, rows*C)
			a := attnArgs{q: qkv, k: qkv[C:], v: qkv[2*C:], z: z, qs: 3 * C, ks: 3 * C, vs: 3 * C, zs: C,
				T: tc.T, HS: HS, NH: NH, window: tc.window, scale: 1}
			prob := make([]float32, tc.T)
			pairs := 0
			for i := 0; i < tc.T; i++ {
				n := i + 1
				if tc.window > 0 && n > tc.window {
					n = tc.window
				}
				pairs += n
			}
			pairs *= tc.B * NH
			for b.Loop() {
				attnHeads(&a, 0, tc.B*NH, prob)
			}
			b.ReportMetric(4*HS*float64(pairs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
