package cpu

import (
	"fmt"
	"math"

	"github.com/neoscope/neoscope/runtime/backend"
)

// GELUErf applies the exact GELU 0.5x(1+erf(x/sqrt(2))) in place: glibc's
// erff in the native build (native.c), math.Erf in float64 otherwise.
func (be *Backend) GELUErf(x backend.Mat) error {
	xd := view(x)
	be.parallel(x.Rows, func(lo, hi int) {
		geluErfRows(xd[lo*x.Stride:], hi-lo, x.Cols, x.Stride)
	})
	return nil
}

// geluErfRowsGo applies the exact GELU in place to rows of x: the pure-Go
// kernel, erf in float64 (math.Erf) rounded once.
func geluErfRowsGo(x []float32, rows, cols, stride int) {
	for r := 0; r < rows; r++ {
		row := x[r*stride : r*stride+cols]
		for j, v := range row {
			f := float64(v)
			row[j] = float32(0.5 * f * (1 + math.Erf(f*(1/math.Sqrt2))))
		}
	}
}

// Rotary applies GPT-NeoX's rotate-half rotary embedding to x [B*T, NH*HS]
// in place (see backend.RotaryParams); table is [>=T, Dims] cos|sin.
func (be *Backend) Rotary(x backend.Mat, table backend.Tensor, p backend.RotaryParams) error {
	if x.Rows != p.B*p.T || x.Cols != p.NH*p.HS || p.Dims%2 != 0 || p.Dims > p.HS || p.Dims < 0 {
		panic(fmt.Sprintf("backend: rotary: view %dx%d for %+v", x.Rows, x.Cols, p))
	}
	if p.Dims == 0 || x.Rows == 0 {
		return nil
	}
	tab := host(table)
	if len(tab) < p.T*p.Dims {
		panic(fmt.Sprintf("backend: rotary: table of %d values, want >= T*Dims = %d*%d", len(tab), p.T, p.Dims))
	}
	xd := view(x)
	half := p.Dims / 2
	be.parallel(x.Rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			t := r % p.T
			cs, sn := tab[t*p.Dims:t*p.Dims+half], tab[t*p.Dims+half:(t+1)*p.Dims]
			row := xd[r*x.Stride : r*x.Stride+x.Cols]
			for h := 0; h < p.NH; h++ {
				q := row[h*p.HS : h*p.HS+p.Dims]
				for i := 0; i < half; i++ {
					x1, x2 := q[i], q[i+half]
					q[i] = x1*cs[i] - x2*sn[i]
					q[i+half] = x2*cs[i] + x1*sn[i]
				}
			}
		}
	})
	return nil
}
