package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// benchModel is the GPT-Neo-125M-shaped checkpoint `make bench-model` writes.
func benchModel(b *testing.B) *forward.Model {
	dir := filepath.Join("..", "benchmarks", "model")
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		b.Skip("no benchmarks/model (run `make bench-model`)")
	}
	m, err := forward.Open(cpu.New(), dir)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkForwardNeo125M: full forward pass with logits, by batch x length.
func BenchmarkForwardNeo125M(b *testing.B) {
	m := benchModel(b)
	defer m.Close()
	for _, sh := range [][2]int{{1, 128}, {8, 128}, {32, 64}, {8, 20}} {
		B, T := sh[0], sh[1]
		b.Run(fmt.Sprintf("%dx%d", B, T), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			tok := make([]int32, B*T)
			for i := range tok {
				tok[i] = int32(r.IntN(m.Cfg.Vocab))
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				s, _, err := m.Run(tok, B, T, nil, false)
				if err != nil {
					b.Fatal(err)
				}
				lt, err := m.LogitsTensor(s, nil)
				if err != nil {
					b.Fatal(err)
				}
				m.BE.Free(lt)
				s.Close()
			}
			b.ReportMetric(float64(B*T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user+system CPU time in ns. On a shared machine
// it moves less than wall time when other jobs run, which makes it the
// figure to compare two builds by at --threads 1 (GOMAXPROCS=1).
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkMatMul on the model's shapes: (rows x 768) @ (768 x 3072) etc.
func BenchmarkMatMul(b *testing.B) {
	be := cpu.New()
	for _, sh := range [][3]int{{1024, 768, 768}, {1024, 768, 3072}, {1024, 3072, 768}, {160, 768, 768}, {128, 768, 3072}, {128, 3072, 768}, {128, 768, 50257}} {
		M, K, N := sh[0], sh[1], sh[2]
		b.Run(fmt.Sprintf("%dx%dx%d", M, K, N), func(b *testing.B) {
			a, _ := be.New(M, K)
			w, _ := be.New(N, K)
			c, _ := be.New(M, N)
			for b.Loop() {
				be.MatMul(backend.Whole(c), backend.Whole(a), backend.Whole(w), true, nil, false)
			}
			b.ReportMetric(2*float64(M*N*K)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
