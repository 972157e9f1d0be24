package forward

import (
	"fmt"

	"github.com/neoscope/neoscope/runtime/backend"
)

// Host copies of the weights that read the residual stream, for code that
// recomputes one receiver's input outside the block recipe (edge patching's
// reference evaluator in runtime/circuit). Kept in this file, apart from
// run.go, so the block recipe can change without touching them.

// HostLN returns a LayerNorm's weight and bias [C] on the host: which is
// "ln_1" or "ln_2" of layer l, or "ln_f" (l ignored).
func (m *Model) HostLN(l int, which string) (w, b []float32, err error) {
	var wt, bt backend.Tensor
	switch which {
	case "ln_f":
		wt, bt = m.lnfW, m.lnfB
	case "ln_1", "ln_2":
		if l < 0 || l >= len(m.layers) {
			return nil, nil, fmt.Errorf("forward: layer %d outside 0..%d", l, len(m.layers)-1)
		}
		if which == "ln_1" {
			wt, bt = m.layers[l].ln1W, m.layers[l].ln1B
		} else {
			wt, bt = m.layers[l].ln2W, m.layers[l].ln2B
		}
	default:
		return nil, nil, fmt.Errorf("forward: unknown LayerNorm %q (want ln_1, ln_2 or ln_f)", which)
	}
	w, b = make([]float32, wt.Len()), make([]float32, bt.Len())
	if err := m.BE.Download(w, wt); err != nil {
		return nil, nil, err
	}
	if err := m.BE.Download(b, bt); err != nil {
		return nil, nil, err
	}
	return w, b, nil
}

// HostQKV returns layer l's query, key or value projection (c = 'q', 'k',
// 'v') on the host in the x @ W layout: W [C, NH*HS] (head h at columns
// h*HS..) and its bias [NH*HS] (zeros when the checkpoint has none, as in
// GPT-Neo).
func (m *Model) HostQKV(l int, c byte) (w, b []float32, err error) {
	if l < 0 || l >= len(m.layers) {
		return nil, nil, fmt.Errorf("forward: layer %d outside 0..%d", l, len(m.layers)-1)
	}
	ly := &m.layers[l]
	var p lin
	col := 0
	switch c {
	case 'q':
		p = ly.q
	case 'k':
		p, col = ly.k, 1
	case 'v':
		p, col = ly.v, 2
	default:
		return nil, nil, fmt.Errorf("forward: projection %q: want q, k or v", c)
	}
	C, N := m.Cfg.DModel, p.Out()
	raw := make([]float32, p.W.Rows*p.W.Cols)
	if err := m.BE.DownloadMat(raw, p.W); err != nil {
		return nil, nil, err
	}
	w = raw
	if p.Trans { // stored [N, C]
		w = make([]float32, C*N)
		for n := 0; n < N; n++ {
			for k := 0; k < C; k++ {
				w[k*N+n] = raw[n*C+k]
			}
		}
	}
	b = make([]float32, N)
	switch {
	case p.B != nil:
		if err := m.BE.Download(b, p.B); err != nil {
			return nil, nil, err
		}
	case ly.qkv != nil && ly.qkv.B != nil: // GPT-2: one c_attn bias [3C], q|k|v
		all := make([]float32, ly.qkv.B.Len())
		if err := m.BE.Download(all, ly.qkv.B); err != nil {
			return nil, nil, err
		}
		copy(b, all[col*N:(col+1)*N])
	}
	return w, b, nil
}
