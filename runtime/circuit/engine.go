package circuit

import (
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// engineEvaluator scores circuits with the batched patching engine,
// (*sweep.Engine).EvalCircuits: each circuit is one configuration of
// removed edges, started from the cached residual at the first layer it
// touches and batched with the others of the call.
type engineEvaluator struct {
	e *sweep.Engine
	g *graph.Graph
}

// NewEngineEvaluator is the fast Evaluator: runtime/sweep's batched patching
// engine in noise mode on t, perPass circuits per pass (0: as many as the
// engine's memory budget allows). Its decisions equal the hook evaluator's
// (TestEngineEqualsHooks); close it with Close when done.
func NewEngineEvaluator(m *forward.Model, g *graph.Graph, t Task, perPass int) (*engineEvaluator, error) {
	met := sweep.KL
	if t.Metric == LD {
		met = sweep.LD
	}
	e, err := sweep.New(m, sweep.Task{Tokens: t.Clean, Corrupt: t.Corrupt, B: t.B, T: t.T, Metric: met,
		Pos: t.T - 1, A: t.IO, C: t.S}, sweep.Options{Mode: sweep.Noise, Chunk: perPass})
	if err != nil {
		return nil, err
	}
	if err := checkLayout(m, g); err != nil {
		e.Close()
		return nil, err
	}
	return &engineEvaluator{e, g}, nil
}

func (a *engineEvaluator) Batch() int { return a.e.K }

func (a *engineEvaluator) Eval(removed [][]bool) ([]float64, error) {
	cfgs := make([]sweep.Config, len(removed))
	for i, r := range removed {
		var es []graph.Edge
		for e, rm := range r {
			if rm {
				es = append(es, a.g.Edges[e])
			}
		}
		cfgs[i] = sweep.EdgeConfig(a.g.Layers, es)
	}
	return a.e.EvalCircuits(cfgs)
}

// Close frees the engine's cached tensors.
func (a *engineEvaluator) Close() { a.e.Close() }
