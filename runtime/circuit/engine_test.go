package circuit

import (
	"math"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/runtime/graph"
)

// TestEngineEqualsHooks: ACDC through the batched patching engine (what
// `neoscope circuit` uses) makes the same decisions as through the plain
// hook evaluator, on every fixture, for KL at the fixture's threshold and
// LD at 0.05, one circuit a pass and speculative batches of 8.
func TestEngineEqualsHooks(t *testing.T) {
	for _, name := range circuitFixtures {
		for _, c := range []struct {
			metric Metric
			tau    float64
		}{{KL, -1}, {LD, 0.05}} {
			f := load(t, name, c.metric)
			tau := c.tau
			if tau < 0 {
				tau = f.acdc.Threshold
			}
			ref, err := Run(f.g, f.evaluator(t, 1), Options{Metric: c.metric, Threshold: tau, Batch: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, per := range []int{1, 8} {
				ev, err := NewEngineEvaluator(f.m, f.g, f.task, per)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Run(f.g, ev, Options{Metric: c.metric, Threshold: tau})
				ev.Close()
				if err != nil {
					t.Fatal(err)
				}
				for e := range ref.Removed {
					if ref.Removed[e] != got.Removed[e] {
						t.Errorf("%s %s tau %g, %d a pass: edge %s removed %v by the hook evaluator, %v by the engine",
							name, c.metric, tau, per, f.g.Edges[e], ref.Removed[e], got.Removed[e])
					}
				}
				// Both are float32 passes of the same circuit, summed in
				// different orders: the edge-patching floor (tol).
				if d := math.Abs(got.Metric - ref.Metric); d > tol(f.circ.Dev["edge_patch_"+string(c.metric)]) {
					t.Errorf("%s %s: circuit metric %.7g through the engine, %.7g through hooks", name, c.metric, got.Metric, ref.Metric)
				}
			}
		}
	}
}

// A graph of another residual layout than the model's is refused by both
// evaluators (its MLP edges would read the wrong residual).
func TestLayoutMismatch(t *testing.T) {
	f := load(t, "tiny-neox", KL)
	seq := graph.New(f.m.Cfg.Layers, f.m.Cfg.Heads, nil)
	if _, err := NewHookEvaluator(f.m, seq, f.task, 1); err == nil || !strings.Contains(err.Error(), "parallel-residual") {
		t.Errorf("hook evaluator, sequential graph on tiny-neox: %v", err)
	}
	if ev, err := NewEngineEvaluator(f.m, seq, f.task, 1); err == nil || !strings.Contains(err.Error(), "parallel-residual") {
		if ev != nil {
			ev.Close()
		}
		t.Errorf("engine evaluator, sequential graph on tiny-neox: %v", err)
	}
}
