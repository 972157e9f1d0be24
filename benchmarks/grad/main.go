// Command grad-bench times attribution patching on a checkpoint, in units
// of the forward pass (logits for the same B x T batch) timed beside it:
// AtP over every head, position and MLP, and EAP over every edge, from a
// clean forward, a corrupt forward and one backward pass; and the parameter
// gradient of the mean next-token loss (neoscope grad).
//
//	go run -tags openblas ./benchmarks/grad -model benchmarks/model -threads 2
//
// The PyTorch anchor computing the same gradients by autograd at the same
// threads is torch_grad.py here; benchmarks/grad/run.sh runs both. The
// machine is shared: compare the ratios printed in one run, not absolute
// times across runs.
//
// Seen 2026-12-05 on benchmarks/model (random F32, GPT-Neo-125M shapes),
// 2 cores, the machine otherwise quiet, OpenBLAS 0.3.21 (OpenMP) under both
// engines, 2 threads, B=8 T=20, median of 3, bash benchmarks/grad/run.sh
// (neoscope, then PyTorch; wall s / forwards, CPU s beside):
//
//	                        18:14 UTC (before)   19:54 UTC (now)     PyTorch 19:54 UTC     PyTorch / neoscope (wall, CPU)
//	forward (logits)        0.164 s  1.00        0.162 s  1.00       0.166 s  1.00
//	AtP                     0.488 s  2.97        0.437 s  2.70       0.562 s  3.39          1.29x, 1.39x
//	EAP, 32,491 edges       0.726 s  4.42        0.614 s  3.79       1.577 s  9.51          2.57x, 2.90x
//	parameter gradients     0.644 s  3.92        0.578 s  3.56       0.613 s  3.70          1.06x, 1.16x
//
// (Five more runs between 19:23 and 19:53 UTC, with other jobs' load
// coming and going, gave EAP 3.14-3.94 forwards and the parameter
// gradients 1.00x-1.07x PyTorch's wall time.) What the changes between
// them cut:
//   - the backward kernels (LayerNorm, GELU, softmax-cross-entropy,
//     attention, column sums) in vectorised C (cpu/native.c) instead of
//     scalar Go; gelu_new' stays in double, with a vectorised e^x;
//   - those kernels split over the OpenMP team OpenBLAS uses, not over
//     goroutines: its workers spin after every product, and goroutines
//     beside them made three threads for two cores (libgomp's spinning
//     was 7.5% of an EAP profile, 0.6% now);
//   - EAP's ln_1 input gradient summed from the 3*NH receiver products
//     the pass makes anyway (backend.LNStats' sum), skipping the three
//     whole q, k, v products of each layer (7 GFLOP);
//   - the edge graph shared per shape (runtime/graph), so EAP no longer
//     formats and hashes 32,491 edge names each call (about 30 ms).
//
// Where the time goes now, EAP (0.61 s): the corrupt forward and the
// clean recorded forward without logits (about 0.25 s; Record copies each
// block's activations out), the blocks' backward (about 0.15 s: the dX
// products, 20 GFLOP), the 432 receiver products with their ln_1 backward
// (about 0.05 s), the senders' output differences (144 head products,
// 2.3 GFLOP) and the score products G @ D^T (about 0.07 s, 12 GFLOP of
// which a third scores senders that feed none of the receivers gathered:
// gathering one layer at a time wastes little but reads D 13 times, and
// was no faster: GatherBytes 0 against 96 MB, 19:30 UTC). Parameter gradients: the FLOPs of PyTorch's plus first
// touching 500 MB of fresh gradient buffers (Go zeroes recycled heap
// memory on the allocating goroutine: 10-20 ms in profiles).
//
// At 8 x 128 tokens, peak RSS (/usr/bin/time, -only, 19:56 UTC): forward
// with logits 950 MB, AtP 861 MB (activations recomputed per block), EAP
// 1615 MB (the senders' output differences, 157 x B*T*C floats, are most
// of the extra), parameter gradients 1182 MB: all under twice the
// forward's (1900 MB), as before these changes.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/probes/attrib"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

func main() {
	model := flag.String("model", "benchmarks/model", "model directory")
	threads := flag.Int("threads", 2, "CPU threads")
	B := flag.Int("batch", 8, "prompts")
	T := flag.Int("seq", 20, "tokens per prompt")
	runs := flag.Int("runs", 3, "timed repetitions of each (median reported)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of -profile runs to FILE and exit")
	profWhat := flag.String("profile", "eap", "what -cpuprofile profiles: forward, atp, eap or grad")
	only := flag.String("only", "", "time only this one (forward, atp, eap or grad), e.g. to read its peak RSS with /usr/bin/time -v")
	flag.Parse()
	be := cpu.New()
	be.SetThreads(*threads)
	m, err := forward.Open(be, *model)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer m.Close()
	rng := rand.New(rand.NewSource(1))
	V := m.Cfg.Vocab
	clean := make([]int32, *B**T)
	for i := range clean {
		clean[i] = int32(rng.Intn(V))
	}
	corrupt := append([]int32(nil), clean...)
	io, s := make([]int32, *B), make([]int32, *B)
	for b := 0; b < *B; b++ {
		for _, t := range []int{2, *T / 2} { // two replaced names per prompt, as in IOI
			corrupt[b**T+t] = int32(rng.Intn(V))
		}
		io[b], s[b] = clean[b**T+2], clean[b**T+*T/2]
	}
	task := attrib.Task{Clean: clean, Corrupt: corrupt, B: *B, T: *T, Pos: *T - 1, IO: io, S: s}
	g := graph.New(m.Cfg.Layers, m.Cfg.Heads, m.Cfg.ParallelAt)

	fwd := func() error {
		st, _, err := m.Run(clean, *B, *T, nil, true)
		if err == nil {
			st.Close()
		}
		return err
	}
	atp := func() error { _, err := attrib.AtP(m, task); return err }
	eap := func() error { _, err := attrib.EAP(m, task); return err }
	pgrad := func() error {
		tp, err := m.Record(clean, *B, *T, nil)
		if err != nil {
			return err
		}
		defer tp.Close()
		_, err = tp.Backward(forward.NextTokenLoss(0), forward.BackwardOptions{Params: true})
		return err
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		run := map[string]func() error{"forward": fwd, "atp": atp, "eap": eap, "grad": pgrad}[*profWhat]
		if run == nil {
			err = fmt.Errorf("-profile %q: want forward, atp, eap or grad", *profWhat)
		}
		if err == nil {
			for i := 0; i < 3 && err == nil; i++ {
				err = run()
			}
			pprof.StopCPUProfile()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *only != "" {
		run := map[string]func() error{"forward": fwd, "atp": atp, "eap": eap, "grad": pgrad}[*only]
		if run == nil {
			fmt.Fprintf(os.Stderr, "-only %q: want forward, atp, eap or grad\n", *only)
			os.Exit(2)
		}
		t0 := time.Now()
		if err := run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s: %.3f s\n", *only, time.Since(t0).Seconds())
		return
	}
	names := []string{"forward (logits)", "AtP, all heads/positions/MLPs", fmt.Sprintf("EAP, all %d edges", len(g.Edges)), "parameter gradients (loss)"}
	fns := []func() error{fwd, atp, eap, pgrad}
	times := make([][]float64, len(fns))
	cpus := make([][]float64, len(fns))
	for i, f := range fns { // warm-up
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, names[i], err)
			os.Exit(1)
		}
	}
	for r := 0; r < *runs; r++ { // interleaved, so load changes hit all alike
		for i, f := range fns {
			t0, c0 := time.Now(), cpuSeconds()
			if err := f(); err != nil {
				fmt.Fprintln(os.Stderr, names[i], err)
				os.Exit(1)
			}
			times[i] = append(times[i], time.Since(t0).Seconds())
			cpus[i] = append(cpus[i], cpuSeconds()-c0)
		}
	}
	med := func(x []float64) float64 {
		y := append([]float64(nil), x...)
		sort.Float64s(y)
		return y[len(y)/2]
	}
	f0, c0 := med(times[0]), med(cpus[0])
	fmt.Printf("neoscope %s, %d threads, B=%d T=%d, median of %d (wall; CPU seconds of the process beside)\n", be.Name(), *threads, *B, *T, *runs)
	for i, n := range names {
		fmt.Printf("  %-34s %7.3f s wall %5.2f forwards   %7.3f s CPU %5.2f forwards\n", n, med(times[i]), med(times[i])/f0, med(cpus[i]), med(cpus[i])/c0)
	}
}

// cpuSeconds is the process's user+system CPU time: it moves less than wall
// time with other jobs' load (OpenMP spin-waiting counts, though).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
