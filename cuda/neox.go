package cuda

import (
	"github.com/neoscope/neoscope/runtime/backend"
)

// GELUErf applies the exact GELU in place (kernels/gelu_erf.cu).
func (b *Backend) GELUErf(x backend.Mat) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.view(x, "gelu_erf x")
	if x.Rows*x.Cols == 0 {
		return nil
	}
	return b.launch1D(kGELUErf, x.Rows*x.Cols, b.args.Reset().Ptr(p).I32(x.Rows).I32(x.Cols).I32(x.Stride))
}

// Rotary applies GPT-NeoX's rotate-half rotary embedding in place
// (kernels/rotary.cu); table is [>=T, Dims] cos|sin (backend.RotaryParams).
func (b *Backend) Rotary(x backend.Mat, table backend.Tensor, p backend.RotaryParams) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if x.Rows != p.B*p.T || x.Cols != p.NH*p.HS || p.Dims%2 != 0 || p.Dims > p.HS || p.Dims < 0 {
		shapeErr("rotary: view %dx%d for %+v", x.Rows, x.Cols, p)
	}
	px := b.view(x, "rotary x")
	if p.Dims == 0 || x.Rows == 0 {
		return nil
	}
	tab := b.tensorOf(table, "rotary table")
	if tab.n < p.T*p.Dims {
		shapeErr("rotary: table of %d values, want >= T*Dims = %d*%d", tab.n, p.T, p.Dims)
	}
	n := x.Rows * p.NH * (p.Dims / 2)
	return b.launch1D(kRotary, n, b.args.Reset().Ptr(px).Ptr(tab.p).I32(x.Rows).I32(p.T).I32(p.NH).I32(p.HS).
		I32(p.Dims).I32(x.Stride))
}
