package sweep_test

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// BenchmarkEdgePatch removes every 40th edge of a model's graph, one per
// configuration (8 prompts x 20 random tokens, 4 positions resampled in the
// corrupt copy, metric ld), through EvalCircuits: b.N sweeps. The model is
// NEOSCOPE_BENCH_MODEL (e.g. the GPT-Neo-125M-shaped checkpoint of
// ../shared/bench/make_bench_model.py); the benchmark is skipped without
// it. Reports edges/s. benchmarks/patch/run.sh times the same against
// PyTorch from the command line.
func BenchmarkEdgePatch(b *testing.B) {
	dir := os.Getenv("NEOSCOPE_BENCH_MODEL")
	if dir == "" {
		b.Skip("set NEOSCOPE_BENCH_MODEL to a model directory")
	}
	m, err := forward.Open(cpu.New(), dir)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const B, T = 8, 20
	r := rand.New(rand.NewPCG(1, 2))
	V := m.Cfg.Vocab
	task := sweep.Task{B: B, T: T, Metric: sweep.LD, Pos: T - 1}
	for i := 0; i < B*T; i++ {
		task.Tokens = append(task.Tokens, int32(r.IntN(V)))
	}
	task.Corrupt = append([]int32(nil), task.Tokens...)
	for b := 0; b < B; b++ {
		for k := 0; k < 4; k++ {
			task.Corrupt[b*T+r.IntN(T)] = int32(r.IntN(V))
		}
		task.A = append(task.A, int32(r.IntN(V)))
		task.C = append(task.C, int32(r.IntN(V)))
	}
	g := graph.New(m.Cfg.Layers, m.Cfg.Heads, nil)
	var cfgs []sweep.Config
	for i := 0; i < len(g.Edges); i += 40 {
		cfgs = append(cfgs, sweep.EdgeConfig(m.Cfg.Layers, g.Edges[i:i+1]))
	}
	e, err := sweep.New(m, task, sweep.Options{Mode: sweep.Noise})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.EvalCircuits(cfgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(cfgs)*b.N)/b.Elapsed().Seconds(), "edges/s")
}
