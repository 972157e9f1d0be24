package forward

import "github.com/neoscope/neoscope/runtime/backend"

// HeadOut writes head h's share of layer l's attention output, without the
// bias, on the backend from the loaded weights: dst [R, C] =
// z[:, h*HS:(h+1)*HS] @ W_O[h], z [R, NH*HS] laid out as attn.hook_z; with
// accumulate, dst += that. (WOut gives the same W_O[h] as a host copy.)
func (m *Model) HeadOut(dst, z backend.Mat, l, h int, accumulate bool) error {
	HS := m.Cfg.DHead
	o := m.layers[l].o
	zh := z.ColSlice(h*HS, HS)
	if o.Trans { // W [C_out, C_in]: head h's inputs are columns
		return m.BE.MatMul(dst, zh, o.W.ColSlice(h*HS, HS), true, nil, accumulate)
	}
	return m.BE.MatMul(dst, zh, o.W.RowSlice(h*HS, HS), false, nil, accumulate) // W [C_in, C_out]
}
