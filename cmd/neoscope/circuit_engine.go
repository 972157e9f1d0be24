//go:build patchengine

// This file wires the batched patching engine of runtime/sweep (branch
// patch, commit 884afa3 "ENGINE-API") in as `neoscope circuit`'s evaluator.
// It needs that branch merged, hence the build tag: after the merge, delete
// the tag line above. Checked on a scratch merge (2026-12-05): ACDC through
// it keeps acdc.json's edges on tiny-gpt2 and tiny-neo, and its decisions
// equal the hook evaluator's at KL (the fixtures' TAU) and LD (TAU 0.05).
package main

import (
	"github.com/neoscope/neoscope/runtime/circuit"
	"github.com/neoscope/neoscope/runtime/forward"
	"github.com/neoscope/neoscope/runtime/graph"
	"github.com/neoscope/neoscope/runtime/sweep"
)

// engineEvaluator scores circuits with (*sweep.Engine).EvalCircuits.
type engineEvaluator struct {
	e *sweep.Engine
	g *graph.Graph
}

func (a engineEvaluator) Batch() int { return a.e.K }

func (a engineEvaluator) Eval(removed [][]bool) ([]float64, error) {
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

func init() {
	circuitEngine = func(m *forward.Model, g *graph.Graph, t circuit.Task, perPass int) (circuit.Evaluator, string, error) {
		met := sweep.KL
		if t.Metric == circuit.LD {
			met = sweep.LD
		}
		en, err := sweep.New(m, sweep.Task{Tokens: t.Clean, Corrupt: t.Corrupt, B: t.B, T: t.T, Metric: met,
			Pos: t.T - 1, A: t.IO, C: t.S}, sweep.Options{Mode: sweep.Noise, Chunk: perPass})
		if err != nil {
			return nil, "", err
		}
		return engineEvaluator{en, g}, "sweep engine", nil
	}
}
