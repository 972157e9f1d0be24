package forward

import (
	"fmt"

	"github.com/neoscope/neoscope/runtime/backend"
)

// The logit difference's gradient reaches two unembedding rows a row: it
// needs the two answers' rows, not a [B, V] one-hot difference times the
// whole [V, C] unembedding (154 MB on GPT-Neo-125M). (LogitDiffs itself
// stays on LogitStats: the patching engine's metric reads the same kernel,
// so identical runs give identical logit differences.)

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
