package main

import (
	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/runtime/forward"
)

// hookGrads is `run --grad PATTERNS`: the gradient of the mean next-token
// loss of the batch with respect to every hook point matched, added to
// tensors as "grad.<hook>" (same shape as the activation). It records its
// own clean pass (run's pass may edit activations; the gradient is of the
// unedited model).
func hookGrads(m *forward.Model, tokens []int32, B, T int, patterns string, tensors map[string]outfile.F32) error {
	if T < 2 {
		return usagef("--grad: rows of %d token(s) make no next-token prediction (want at least 2)", T)
	}
	h := (&forward.Hooks{}).Observe(patterns)
	if err := h.ValidateGrad(m); err != nil {
		return usageError{err}
	}
	tp, err := m.Record(tokens, B, T, nil)
	if err != nil {
		return err
	}
	defer tp.Close()
	if _, err := tp.Backward(forward.NextTokenLoss(0), forward.BackwardOptions{Hooks: h}); err != nil {
		return err
	}
	for name, t := range h.Cache {
		tensors["grad."+name] = outfile.F32{ShapeOf: t.Shape, Values: t.Data}
	}
	return nil
}
