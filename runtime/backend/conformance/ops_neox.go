package conformance

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/neoscope/neoscope/runtime/backend"
)

// neoxOracles: the GPT-NeoX ops (exact GELU, rotary embedding) on odd shapes
// and strided views, each with a float64 reference. Bounds: opTol's gelu_erf and
// rotary entries.
func neoxOracles() []oracle {
	r := rand.New(rand.NewPCG(16, 3))
	var os []oracle

	// GELUErf in place on columns [2, 22) of [7, 23]; the other columns stay.
	{
		xData := randVec(r, 7*23)
		for i := range xData {
			xData[i] *= 3
		}
		os = append(os, oracle{
			name: "gelu_erf/7x20_stride23",
			run: func(be backend.Backend) ([][]float32, error) {
				x := must(be.Upload(xData, 7, 23))
				err := be.GELUErf(backend.Whole(x).ColSlice(2, 20))
				return [][]float32{download(be, x)}, err
			},
			ref: func() [][]float64 {
				out := f64(xData)
				for i := 0; i < 7; i++ {
					for j := 2; j < 22; j++ {
						x := out[i*23+j]
						out[i*23+j] = 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
					}
				}
				return [][]float64{out}
			},
		})
	}

	// Rotary on the k block of a fused [B*T, 3*NH*HS] buffer (a strided view:
	// q and v must stay untouched), B=2, T=7, NH=3, HS=10, Dims 4 and 10
	// (partial and whole heads), table rows beyond T ignored.
	for _, dims := range []int{4, 10} {
		const B, T, NH, HS, maxT = 2, 7, 3, 10, 9
		C := NH * HS
		xData := randVec(r, B*T*3*C)
		tab := make([]float32, maxT*dims)
		ang := func(t, i int) float64 { return float64(t) * math.Pow(10000, -2*float64(i)/float64(dims)) }
		for t := 0; t < maxT; t++ {
			for i := 0; i < dims/2; i++ {
				tab[t*dims+i] = float32(math.Cos(ang(t, i)))
				tab[t*dims+dims/2+i] = float32(math.Sin(ang(t, i)))
			}
		}
		p := backend.RotaryParams{B: B, T: T, NH: NH, HS: HS, Dims: dims}
		os = append(os, oracle{
			name: fmt.Sprintf("rotary/B2_T7_NH3_HS10_dims%d_strided", dims),
			run: func(be backend.Backend) ([][]float32, error) {
				x := must(be.Upload(xData, B*T, 3*C))
				tt := must(be.Upload(tab, maxT, dims))
				err := be.Rotary(backend.Whole(x).ColSlice(C, C), tt, p)
				return [][]float32{download(be, x)}, err
			},
			ref: func() [][]float64 {
				out := f64(xData)
				half := dims / 2
				for row := 0; row < B*T; row++ {
					t := row % T
					for h := 0; h < NH; h++ {
						q := out[row*3*C+C+h*HS:]
						for i := 0; i < half; i++ {
							// The reference uses the float32 table the op is given.
							c, s := float64(tab[t*dims+i]), float64(tab[t*dims+half+i])
							x1, x2 := q[i], q[i+half]
							q[i], q[i+half] = x1*c-x2*s, x2*c+x1*s
						}
					}
				}
				return [][]float64{out}
			},
		})
	}
	return os
}
