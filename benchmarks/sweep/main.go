// Command sweep-bench times the ablation-sweep engine on the induction task
// (B prompts of 2 x P tokens, second-half loss): configurations per second
// for the batched prefix-sharing engine and for one configuration per pass.
//
//	go run -tags openblas ./benchmarks/sweep -model benchmarks/model -space 'singles(heads)' -mode both
//
// Compare with /usr/bin/python3 ../shared/bench/torch_bench.py benchmarks/model --threads 2 --sweep
// (the PyTorch hook loop) run beside it: the machine is shared, so absolute
// figures drift; -cpuprofile writes a pprof profile of the batched run.
// benchmarks/sweep/run.sh runs all three.
//
// Seen 2026-11-29 (2 AMD EPYC cores, OpenBLAS 0.3.21's OpenMP build under
// both engines, 2 threads, quiet machine; B=8, T=2x10, induction second-half
// loss). At 06:59 UTC, bash benchmarks/sweep/run.sh after the vectorised
// native kernels:
//
//	                                       wall      configs/s  CPU s/config
//	(a) one config per pass, 144 singles   34.8 s    4.14       0.462
//	(b) batched engine, 144 singles        17.8 s    8.08       0.238
//	(b) every 24th pair, 429 of 10,296     62.9 s    6.82       0.272  (all pairs ~25 min)
//	(c) PyTorch hook loop, 144 singles     47.8 s    3.01
//
// At 07:27 UTC, once the engine stopped computing the ladder's padding slots
// (State.Narrow), three alternating pairs of (b) and (c) on the 144 singles
// gave 7.97 / 2.99, 8.20 / 2.66 and 7.67 / 2.49 configs/s: 2.7x, 3.1x and
// 3.1x, median 3.1x. Every 24th pair ran at 6.45 configs/s, about 2.2x.
// (c) alone drifts from 2.5 to 3.2 configs/s between runs.
//
// The engine is bound by its matrix products, and they run at the BLAS
// peak: a single cost 20.3 GFLOP then (6.5 of 12 blocks of 19 tokens x 8
// rows, plus the unembedding of the 72 predicting rows), and 8 configs/s
// is 162 GFLOP/s, against about 170 for OpenBLAS's sgemm on these shapes;
// the hook loop's 40 GFLOP a config at 3 configs/s is 120 GFLOP/s.
//
// 2026-12-05 (2 Intel Xeon cores, sgemm peak 352-374 GFLOP/s), after two
// cuts of that arithmetic (runtime/sweep/doc.go): the first block of a pass
// shares q, k, v and the attention (the unablated attention output, once
// per layer, plus each configuration's ablated heads' (fill - z_h) W_O[h]),
// and the last block runs W_O, ln2 and the MLP at the 9 positions the loss
// reads only. A single now costs 18.3 GFLOP (2,632 GFLOP for the 144,
// counted at the sgemm calls). At 20:12 UTC, bash benchmarks/sweep/run.sh 2 0:
//
//	                                       wall      configs/s  CPU s/config
//	(a) one config per pass, 144 singles   21.8 s    6.62       0.286
//	(b) batched engine, 144 singles        8.57 s    16.80      0.115  (8.80 s whole process)
//	(c) PyTorch hook loop, 144 singles     28.7 s    5.01              (31.27 s whole process)
//
// 3.35x the loop, 3.55x whole-process; 16.8 x 18.3 = 307 GFLOP/s, 82-87% of
// the sgemm peak (the products themselves ran at 329 GFLOP/s; LayerNorm,
// attention, GELU, log-sum-exp and copies take the rest). The unembedding
// is 30% of a configuration's arithmetic and needs every vocabulary entry
// for the log-sum-exp.
package main

import (
	"flag"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/sweep"
)

func main() {
	model := flag.String("model", "benchmarks/model", "model directory")
	space := flag.String("space", "singles(heads)", "configuration space")
	mode := flag.String("mode", "both", "batched, single (one configuration per pass, no sharing) or both")
	batch := flag.Int("batch", 8, "prompts")
	period := flag.Int("period", 10, "random tokens before the repeat")
	threads := flag.Int("threads", 2, "threads")
	chunk := flag.Int("chunk", 0, "configurations per pass for the batched engine (0: from -max-memory)")
	maxMem := flag.Int64("max-memory", sweep.DefaultMaxMemory, "activation budget in bytes")
	limit := flag.Int("limit", 0, "one-per-pass mode: time only this many configurations and extrapolate")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the batched run")
	every := flag.Int("every", 1, "time every N-th configuration of the space only (a sample; the rate for the whole space is estimated from it)")
	flag.Parse()
	goruntime.GOMAXPROCS(*threads)
	be := cpu.New()
	be.SetThreads(*threads)
	m, err := forward.Open(be, *model)
	check(err)
	defer m.Close()
	cfgs, err := sweep.Parse(*space, sweep.DimsOf(m.Cfg))
	check(err)
	total := len(cfgs)
	if *every > 1 {
		var sample []sweep.Config
		for i := 0; i < len(cfgs); i += *every {
			sample = append(sample, cfgs[i])
		}
		cfgs = sample
	}
	rows, err := induction.RepeatedTokens(induction.Candidates(m.Cfg.Vocab, nil), *batch, *period, 1)
	check(err)
	flat, B, T, err := m.CheckTokens(rows)
	check(err)
	task := sweep.Task{Tokens: flat, B: B, T: T, LossFrom: *period}
	fmt.Printf("model %s (%s), %d of the %d configurations of %s, B=%d T=%d, %d threads\n", *model, be.Name(), len(cfgs), total, *space, B, T, *threads)
	run := func(name string, opt sweep.Options, n int) []float64 {
		e, err := sweep.New(m, task, opt)
		check(err)
		defer e.Close()
		sub := cfgs[:n]
		start, cpu0 := time.Now(), cpuSeconds()
		var out []float64
		for _, ch := range e.Plan(sub) {
			batch := make([]sweep.Config, len(ch))
			for j, i := range ch {
				batch[j] = sub[i]
			}
			v, err := e.Eval(batch)
			check(err)
			out = append(out, v...)
		}
		el, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
		fmt.Printf("%-28s %6d configs in %8.2f s: %8.2f configs/s; %8.2f CPU s (%.3f CPU s/config) (K=%d per pass)", name, n, el, float64(n)/el, cpu, cpu/float64(n), e.K)
		if n < total {
			fmt.Printf("; all %d would take ~%.0f s", total, el*float64(total)/float64(n))
		}
		fmt.Println()
		return out
	}
	if *mode == "single" || *mode == "both" {
		n := len(cfgs)
		if *limit > 0 && *limit < n {
			n = *limit
		}
		run("one per pass (no sharing)", sweep.Options{Chunk: 1, NoShare: true}, n)
	}
	if *mode == "batched" || *mode == "both" {
		if *prof != "" {
			f, err := os.Create(*prof)
			check(err)
			check(pprof.StartCPUProfile(f))
			defer pprof.StopCPUProfile()
		}
		run("batched, prefix-shared", sweep.Options{Chunk: *chunk, MaxMemory: *maxMem}, len(cfgs))
	}
}

// cpuSeconds is the process's user+system CPU time: on a shared machine it
// moves less with other jobs' load than wall time does.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep-bench:", err)
		os.Exit(1)
	}
}
