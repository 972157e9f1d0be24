package forward

import (
	"fmt"

	"github.com/neoscope/neoscope/runtime/backend"
)

// The logit difference reads two logits a row: it needs the two answers'
// unembedding rows, not the [B, V] logits (a pass over the whole [V, C]
// unembedding, 154 MB on GPT-Neo-125M, for each LogitDiffs and again for
// its gradient).

// answerRows gathers the unembedding rows of the answers: [2B, C], row 2b
// is U[a[b]] and row 2b+1 is U[c[b]].
func (m *Model) answerRows(a, c []int32) (backend.Tensor, error) {
	V, C := m.Cfg.Vocab, m.Cfg.DModel
	idx := make([]int32, 0, 2*len(a))
	for b := range a {
		for _, tok := range []int32{a[b], c[b]} {
			if tok < 0 || int(tok) >= V {
				return nil, fmt.Errorf("logit diff: token %d outside the vocabulary (0..%d)", tok, V-1)
			}
		}
		idx = append(idx, a[b], c[b])
	}
	u, err := m.BE.New(len(idx), C)
	if err != nil {
		return nil, err
	}
	if err := m.BE.Embed(u, m.unembed, backend.Mat{}, idx, len(idx), 1); err != nil {
		m.BE.Free(u)
		return nil, err
	}
	return u, nil
}

// answerLogits returns, for every row b, the logits of a[b] and of c[b] at
// position pos: [2B].
func (m *Model) answerLogits(s *State, pos int, a, c []int32) ([]float32, error) {
	B, C := len(a), m.Cfg.DModel
	x := backend.Mat{T: s.Final, Off: pos * C, Rows: B, Cols: C, Stride: s.T * C} // ln_final rows b*T+pos
	u, err := m.answerRows(a, c)
	if err != nil {
		return nil, err
	}
	defer m.BE.Free(u)
	p, err := m.BE.New(B, 2*B) // every row against every answer: the diagonal pairs are read
	if err != nil {
		return nil, err
	}
	defer m.BE.Free(p)
	if err := m.BE.MatMul(backend.Whole(p), x, backend.Whole(u), true, nil, false); err != nil {
		return nil, err
	}
	all := make([]float32, B*2*B)
	if err := m.BE.Download(all, p); err != nil {
		return nil, err
	}
	out := make([]float32, 2*B)
	for b := 0; b < B; b++ {
		out[2*b], out[2*b+1] = all[b*2*B+2*b], all[b*2*B+2*b+1]
	}
	return out, nil
}

// logitDiffBackward writes dM/dx for M = mean_b (logit a[b] - logit c[b])
// into the rows dx [B, C]: (U[a[b]] - U[c[b]]) / B.
func (m *Model) logitDiffBackward(dx backend.Mat, a, c []int32) error {
	B := len(a)
	u, err := m.answerRows(a, c)
	if err != nil {
		return err
	}
	defer m.BE.Free(u)
	coef := make([]float32, B*2*B)
	for b := 0; b < B; b++ {
		coef[b*2*B+2*b], coef[b*2*B+2*b+1] = 1/float32(B), -1/float32(B)
	}
	ct, err := m.BE.Upload(coef, B, 2*B)
	if err != nil {
		return err
	}
	defer m.BE.Free(ct)
	return m.BE.MatMul(dx, backend.Whole(ct), backend.Whole(u), false, nil, false)
}
