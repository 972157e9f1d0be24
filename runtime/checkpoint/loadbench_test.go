package checkpoint_test

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
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
// run holds one model's float32 copies at a time. With -benchtime 1x it also
// reports the process's peak RSS and, after the load, its anonymous and
// file-backed resident MiB (/proc/self/status: VmHWM, RssAnon, RssFile).
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
		if b.N == 1 {
			for _, f := range []string{"VmHWM", "RssAnon", "RssFile"} {
				if kib, ok := statusKiB(f); ok {
					b.ReportMetric(float64(kib)/1024, f+"-MiB")
				}
			}
		}
		w.Close()
		w = nil
		runtime.GC()
		debug.FreeOSMemory()
		b.StartTimer()
	}
}

// statusKiB reads one "Name: N kB" field of /proc/self/status.
func statusKiB(name string) (int, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n, err == nil
		}
	}
	return 0, false
}
