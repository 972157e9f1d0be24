package cuda

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neoscope/neoscope/runtime/backend"
)

// sweepRows are the row counts of the sweep's passes on GPT-Neo-125M with
// the induction task (B=8 prompts of T=20 tokens = 160 rows a configuration):
// K = --max-memory / ConfigBytes configurations a pass, ConfigBytes = B*T rows
// x (9C + F) floats x 4 B x 2 = 12.8 MB, so the default 2 GiB gives K = 168,
// M = 26,880 rows; 32 configurations (M = 5,120) for a smaller pass.
var sweepRows = []int{5120, 26880}

// BenchmarkMatMulSweep times MatMul at the sweep's real shapes (GPT-Neo's
// nn.Linear weights [out, in], so transB) and reports TFLOP/s;
// benchmarks/gpu-check.sh runs torch.matmul on the same shapes beside it.
func BenchmarkMatMulSweep(b *testing.B) {
	be := openOrSkip(b)
	defer be.Close()
	for _, M := range sweepRows {
		for _, s := range []struct {
			name string
			N, K int
		}{{"QKVorOut", 768, 768}, {"MLPIn", 3072, 768}, {"MLPOut", 768, 3072}} {
			b.Run(fmt.Sprintf("%s_%dx%dx%d", s.name, M, s.N, s.K), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				a := sweepMust(be.Upload(sweepVec(r, M*s.K), M, s.K))
				w := sweepMust(be.Upload(sweepVec(r, s.N*s.K), s.N, s.K))
				c := sweepMust(be.New(M, s.N))
				defer be.Free(a)
				defer be.Free(w)
				defer be.Free(c)
				sec := timeGPU(b, be, func() error {
					return be.MatMul(backend.Whole(c), backend.Whole(a), backend.Whole(w), true, nil, false)
				})
				b.ReportMetric(2*float64(M)*float64(s.N)*float64(s.K)/sec/1e12, "TFLOP/s")
			})
		}
	}
}

// BenchmarkLogitStatsSweep times the fused unembedding reduction of a
// sweep pass: 9 predicting positions x 8 prompts x K configurations
// (K = 168: 12,096 rows) against GPT-Neo's 50,257 x 768 embedding, with one
// gathered id a row; TFLOP/s counts the logits' products.
func BenchmarkLogitStatsSweep(b *testing.B) {
	be := openOrSkip(b)
	defer be.Close()
	const V, C = 50257, 768
	for _, NR := range []int{72 * 32, 72 * 168} {
		b.Run(fmt.Sprintf("rows%d", NR), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 3))
			x := sweepMust(be.Upload(sweepVec(r, NR*C), NR, C))
			wte := sweepMust(be.Upload(sweepVec(r, V*C), V, C))
			defer be.Free(x)
			defer be.Free(wte)
			rows, idx := make([]int32, NR), make([]int32, NR)
			for i := range rows {
				rows[i], idx[i] = int32(i), int32(r.IntN(V))
			}
			lse, g := make([]float32, NR), make([]float32, NR)
			sec := timeGPU(b, be, func() error {
				return be.LogitStats(backend.Whole(x), backend.Whole(wte), rows, idx, lse, g)
			})
			b.ReportMetric(2*float64(NR)*V*C/sec/1e12, "TFLOP/s")
		})
	}
}

// timeGPU runs f once to warm up, then b.N times, and returns seconds per run
// (from the first launch to the end of the device's work).
func timeGPU(b *testing.B, be *Backend, f func() error) float64 {
	if err := f(); err != nil {
		b.Fatal(err)
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(t0).Seconds() / float64(b.N)
}

// sweepVec: n standard normal values (own name: the test files beside this
// one are being reorganised).
func sweepVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func sweepMust(t backend.Tensor, err error) backend.Tensor {
	if err != nil {
		panic(err)
	}
	return t
}
