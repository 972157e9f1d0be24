// Command circuit-bench times ACDC (runtime/circuit) on a model: the first
// -evals evaluations of a real run (receivers from the logits down), with
// -per-pass circuits per forward pass against one circuit (one edge) per
// pass, at the same threads, on 8 prompts of 2 x 10 random tokens (corrupt:
// second half redrawn), metric KL.
//
//	go run -tags openblas ./benchmarks/circuit -model benchmarks/model -threads 2
//
// It prints evaluations/s for both and projects a whole run from the
// graph's edge count (an upper bound: 1 + E evaluations when no node dies
// early; real runs skip the incoming edges of dead nodes). The evaluator is
// the plain hook evaluator; the batched patching engine (runtime/sweep)
// plugs in behind the same circuit.Evaluator interface.
//
// Seen 2026-12-05 16:44 UTC (2 EPYC cores shared with 7 other engineers'
// jobs: 33 s of CPU in 112 s of wall; OpenBLAS, 2 threads), the
// GPT-Neo-125M-shaped random F32 checkpoint, 32,491 edges, 8 x 20 tokens:
//
//	 1 circuit/pass:  48 evaluations in 43.9 s, 1.09 evaluations/s
//	16 circuits/pass: 49 evaluations in 55.7 s, 0.88 evaluations/s
//
// The hook evaluator gains nothing from stacking circuits: every stacked
// circuit runs the whole model on its own rows (no shared prefix), and its
// host-side work (sender outputs z_h @ W_O for every removed sender, the
// patched inputs, their q/k/v) grows with the rows. At ~1 evaluation/s a
// whole run (at most 32,494 evaluations; dead nodes skip many) takes up to
// ~9 h on 2 cores. The speculative batches pay off with an evaluator that
// shares work between circuits, the batched patching engine of runtime/sweep
// (prefix sharing by the first layer touched). On a scratch merge with the
// patch branch (884afa3, its EvalCircuits behind circuit.Evaluator, Chunk =
// circuits per pass, NoShare for one per pass), same machine and load, the
// first 96 evaluations (the logits receiver, whose candidates share every
// block):
//
//	 1 circuit/pass (NoShare): 96 evaluations in 17.5 s,  5.50 evaluations/s
//	16 circuits/pass:          97 evaluations in  8.0 s, 12.16 evaluations/s
//
// Deeper receivers share less of the prefix, so a whole run's average is
// lower; a run at the full 32,494-evaluation bound would take ~0.7 h at the
// measured rate. Swap NewHookEvaluator for that adapter to time it here.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/probes/induction"
	"github.com/neoscope/neoscope/runtime/circuit"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
)

var errStop = errors.New("enough evaluations")

// limited stops a run after n evaluations.
type limited struct {
	circuit.Evaluator
	n, done int
}

func (l *limited) Eval(cs [][]bool) ([]float64, error) {
	if l.done >= l.n {
		return nil, errStop
	}
	l.done += len(cs)
	return l.Evaluator.Eval(cs)
}

func main() {
	model := flag.String("model", "benchmarks/model", "model directory")
	threads := flag.Int("threads", 2, "CPU threads")
	perPass := flag.Int("per-pass", 16, "circuits per pass in the batched run")
	evals := flag.Int("evals", 64, "evaluations timed per run")
	batch := flag.Int("batch", 8, "prompt rows")
	period := flag.Int("period", 10, "P: prompts are 2P tokens")
	tau := flag.Float64("threshold", 0.01, "ACDC threshold (KL)")
	flag.Parse()
	be := cpu.New()
	be.SetThreads(*threads)
	m, err := forward.Open(be, *model)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer m.Close()
	cands := induction.Candidates(m.Cfg.Vocab, nil)
	clean, err := induction.RepeatedTokens(cands, *batch, *period, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	corrupt, _ := induction.RedrawSecondHalf(clean, cands, 2)
	cf, B, T, _ := m.CheckTokens(clean)
	kf, _, _, _ := m.CheckTokens(corrupt)
	t := circuit.Task{Clean: cf, Corrupt: kf, B: B, T: T, Metric: circuit.KL}
	g := graph.New(m.Cfg.Layers, m.Cfg.Heads, m.Cfg.ParallelAt)
	fmt.Printf("model %s: %d layers x %d heads, %d edges; %d x %d tokens, KL, threshold %g, %d threads\n",
		*model, m.Cfg.Layers, m.Cfg.Heads, len(g.Edges), B, T, *tau, *threads)
	for _, k := range []int{1, *perPass} {
		t0 := time.Now()
		ev, err := circuit.NewHookEvaluator(m, g, t, k)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		setup := time.Since(t0)
		l := &limited{Evaluator: ev, n: *evals}
		t1 := time.Now()
		passes := 0
		_, err = circuit.Run(g, l, circuit.Options{Metric: circuit.KL, Threshold: *tau,
			Record: func(circuit.Decision) error { return nil }, Progress: func(int, int) {}})
		if err != nil && !errors.Is(err, errStop) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		passes = (l.done + k - 1) / k
		s := time.Since(t1).Seconds()
		rate := float64(l.done) / s
		fmt.Printf("%2d circuits/pass: %d evaluations in %.1f s (~%d passes): %.2f evaluations/s (setup %.1f s); whole run <= %d evaluations ~ %.1f h\n",
			k, l.done, s, passes, rate, setup.Seconds(), len(g.Edges)+3, float64(len(g.Edges)+3)/rate/3600)
	}
}
