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
// Seen 2026-11-29 (2 AMD EPYC cores, OpenBLAS 0.3.21, a training run and
// other jobs sharing the machine; B=8, T=2x10, induction second-half loss):
//
//	                                   threads  load   wall      configs/s  CPU s/config
//	(a) one config per pass, 144 singles     2   ~3   117.8 s    1.22      0.834
//	(b) batched engine, 144 singles          2   ~3    50.8 s    2.84      0.361
//	(c) PyTorch hook loop, 144 singles       2   ~3   616.7 s    0.233     4.39 (OpenMP spinning against the other jobs)
//	(b) batched engine, 144 singles          1   ~2.5  50.1 s    2.88      0.346
//	(c) PyTorch hook loop, 36 of 144         1   ~2.4  22.4 s    1.61      (89.7 s for 144)
//	(b) pairs(*.0, *.1), 276 pairs           1   ~2    87.0 s    3.17      0.311
//
// So (b) is 2.4x (a) and, thread for thread, 1.8x (c) on singles; the
// ceiling at equal matrix-product speed is about 2x: a single costs on
// average 6.5 of 12 blocks plus the unembedding of the 72 predicting rows,
// against 12 blocks and 160 rows of logits for the hook loop. Pairs share
// more (5.0 blocks per pair over the whole space, measured by simulating
// the plan; 5.3 for pairs(*.0, *.1)): about 3.3 configs/s, 2.1x (c), all
// 10,296 pairs in ~51 min on one thread. Against PyTorch run with 2 threads
// on the shared machine (its OpenMP threads collapse when a third process
// competes) (b) was 12x; against the quiet-machine figure in
// ../shared/bench/README.md (73.6 s) it would be 1.45x on what was
// effectively one free core.
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
	cfgs, err := sweep.Parse(*space, sweep.Dims{Layers: m.Cfg.Layers, Heads: m.Cfg.Heads})
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
