package checkpoint_test

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// BenchmarkLoadModel loads the checkpoint in $NEOSCOPE_BENCH_MODEL (a model
// directory, e.g. /work/bench-models/gpt-neo-1.3B-f16; skipped when unset)
// once per iteration, for load-time profiles:
//
//	NEOSCOPE_BENCH_MODEL=DIR go test -run '^$' -bench LoadModel -benchtime 1x -cpuprofile cpu.out ./runtime/checkpoint/
//
// The weights are dropped and returned to the OS between iterations, so a
// run holds one model's float32 copies at a time.
func BenchmarkLoadModel(b *testing.B) {
	dir := os.Getenv("NEOSCOPE_BENCH_MODEL")
	if dir == "" {
		b.Skip("NEOSCOPE_BENCH_MODEL not set")
	}
	cfg, err := arch.Load(filepath.Join(dir, "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w, err := checkpoint.Load(dir, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		w.Close()
		w = nil
		runtime.GC()
		debug.FreeOSMemory()
		b.StartTimer()
	}
}
