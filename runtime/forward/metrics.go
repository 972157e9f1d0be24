package forward

import (
	"fmt"
	"math"
)

// NextTokenLosses returns the cross-entropy (natural log) of every prediction
// made at positions from..T-2 of every row, row-major [B][T-1-from]:
// -log softmax(logits[b,t])[tokens[b,t+1]]. It needs FinalNorm and never
// materialises more than a chunk of logits.
func (m *Model) NextTokenLosses(s *State, from int) ([]float64, error) {
	if s.Final == nil {
		return nil, fmt.Errorf("forward: NextTokenLosses before FinalNorm")
	}
	if from < 0 || from > s.T-2 {
		return nil, fmt.Errorf("loss: --loss-from %d leaves no prediction in sequences of %d tokens (want 0..%d)", from, s.T, s.T-2)
	}
	n := s.T - 1 - from
	rows := make([]int32, 0, s.B*n)
	idx := make([]int32, 0, s.B*n)
	for b := 0; b < s.B; b++ {
		for t := from; t < s.T-1; t++ {
			rows = append(rows, int32(b*s.T+t))
			idx = append(idx, s.Tokens[b*s.T+t+1])
		}
	}
	lse := make([]float32, len(rows))
	g := make([]float32, len(rows))
	if err := m.BE.LogitStats(s.mat(s.Final, m.Cfg.DModel), m.unembed, rows, idx, lse, g); err != nil {
		return nil, fmt.Errorf("forward: next-token losses (unembedding): %w", err)
	}
	out := make([]float64, len(rows))
	for i := range out {
		out[i] = float64(lse[i]) - float64(g[i])
	}
	return out, nil
}

// MeanLoss is the mean of NextTokenLosses.
func (m *Model) MeanLoss(s *State, from int) (float64, error) {
	l, err := m.NextTokenLosses(s, from)
	if err != nil {
		return 0, err
	}
	return Mean(l), nil
}

// RowMeanLosses averages NextTokenLosses per row: [B].
func (m *Model) RowMeanLosses(s *State, from int) ([]float64, error) {
	l, err := m.NextTokenLosses(s, from)
	if err != nil {
		return nil, err
	}
	n := len(l) / s.B
	out := make([]float64, s.B)
	for b := range out {
		out[b] = Mean(l[b*n : (b+1)*n])
	}
	return out, nil
}

// LogitDiffs returns, for every row b, logits[b,pos,a[b]] - logits[b,pos,c[b]].
func (m *Model) LogitDiffs(s *State, pos int, a, c []int32) ([]float64, error) {
	if s.Final == nil {
		return nil, fmt.Errorf("forward: LogitDiffs before FinalNorm")
	}
	if len(a) != s.B || len(c) != s.B {
		return nil, fmt.Errorf("logit diff: want %d answer pairs, got %d and %d", s.B, len(a), len(c))
	}
	if pos < 0 || pos >= s.T {
		return nil, fmt.Errorf("logit diff: position %d outside 0..%d", pos, s.T-1)
	}
	rows := make([]int32, s.B)
	idx := make([]int32, 2*s.B)
	for b := range rows {
		rows[b] = int32(b*s.T + pos)
		idx[2*b], idx[2*b+1] = a[b], c[b]
	}
	lse := make([]float32, s.B)
	g := make([]float32, 2*s.B)
	if err := m.BE.LogitStats(s.mat(s.Final, m.Cfg.DModel), m.unembed, rows, idx, lse, g); err != nil {
		return nil, fmt.Errorf("forward: logit differences (unembedding): %w", err)
	}
	out := make([]float64, s.B)
	for b := range out {
		out[b] = float64(g[2*b]) - float64(g[2*b+1])
	}
	return out, nil
}

// Mean of a slice (NaN when empty).
func Mean(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}
