package cpu_test

import (
	"testing"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/backend/conformance"
	"github.com/neoscope/neoscope/runtime/forward"
)

// TestConformance: the backend conformance suite (every op against float64,
// whole forward passes, every hook and the ablation figures against the
// fixtures at their recorded tolerances) on this build's kernels: OpenBLAS
// and native C with -tags openblas, gonum and Go otherwise (make test runs
// both).
func TestConformance(t *testing.T) {
	conformance.Run(t, func() backend.Backend { return cpu.New() }, conformance.Options{})
}

// TestNarrow: a state narrowed to its first rows computes what a state
// started with those rows does (the sweep engine's padding skip), pattern
// hooks included, and Narrow refuses row counts outside 1..B.
func TestNarrow(t *testing.T) {
	ref := fixtures.Load(t, "tiny-neo")
	m, err := forward.Open(cpu.New(), ref.Dir)
	fixtures.Must(t, err)
	defer m.Close()
	tok := ref.Get(t, "tokens")
	B, T := tok.Shape[0], tok.Shape[1]
	if B < 2 {
		t.Fatalf("tokens: a batch of %d rows; TestNarrow needs at least 2", B)
	}
	ids := tok.Ints()
	want, _, err := m.Run(ids[:(B-1)*T], B-1, T, nil, false)
	fixtures.Must(t, err)
	defer want.Close()
	wantLoss, err := m.NextTokenLosses(want, 0)
	fixtures.Must(t, err)

	s, err := m.Start(ids, B, T, nil)
	fixtures.Must(t, err)
	defer s.Close()
	if err := s.Narrow(B); err != nil {
		t.Fatal(err)
	}
	if s.Narrow(0) == nil || s.Narrow(B+1) == nil {
		t.Fatal("Narrow accepted a row count outside 1..B")
	}
	fixtures.Must(t, s.Narrow(B-1))
	h := (&forward.Hooks{}).Observe("blocks.*.attn.hook_pattern")
	fixtures.Must(t, m.Blocks(s, 0, m.Cfg.Layers, h))
	fixtures.Must(t, m.FinalNorm(s, nil))
	got, err := m.NextTokenLosses(s, 0)
	fixtures.Must(t, err)
	// Rows are independent: exact here with gonum and both OpenBLAS builds;
	// 1e-6 leaves room for a BLAS whose summation order follows the row count.
	fixtures.Close(t, "narrowed losses", got, wantLoss, 1e-6)
	if p := h.Cache["blocks.0.attn.hook_pattern"]; p == nil || len(p.Data) != (B-1)*m.Cfg.Heads*T*T {
		t.Fatalf("pattern hook on the narrowed state: %v", p)
	}
}
