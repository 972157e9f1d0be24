//go:build tf32

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/neoscope/neoscope/kernels/emu"
	"github.com/neoscope/neoscope/runtime/backend"
)

// tf32 rounds like cvt.rna.tf32.f32: to nearest, ties away, 10-bit mantissa.
func tf32(x float32) float64 {
	return float64(math.Float32frombits((math.Float32bits(x) + 0x1000) &^ 0x1fff))
}

// TestMatMulTF32: the tensor-core kernel against a float64 product of
// TF32-rounded inputs. Emulated, this checks the tiling and the fragment
// bookkeeping against the layout matmul_tf32.cu assumes (a misplaced
// element would be off by O(1); the bound is 2e-5 absolute + 2e-5 relative,
// fp32 accumulation over <= 33 terms). On a GPU (when Open succeeds) it is
// the check of that layout itself. The error against the exact fp32-input
// product is logged: the cost of TF32.
func TestMatMulTF32(t *testing.T) {
	var bes []*Backend
	if emu.Available {
		bes = append(bes, newEmu())
	}
	if g, err := Open(); err == nil {
		defer g.Close()
		bes = append(bes, g)
	} else {
		t.Logf("no CUDA device (%v): emulated only", err)
	}
	for _, be := range bes {
		be.SetTF32(true)
		for _, mm := range []struct {
			M, N, K           int
			transB, bias, acc bool
		}{
			{37, 45, 20, false, true, false},
			{70, 70, 9, true, false, true},
		} {
			t.Run(fmt.Sprintf("%s/M%d_N%d_K%d", be.Name(), mm.M, mm.N, mm.K), func(t *testing.T) {
				M, N, K := mm.M, mm.N, mm.K
				r := rand.New(rand.NewPCG(5, 6))
				a, bb, c0, bias := randVec(r, M*K), randVec(r, K*N), randVec(r, M*N), randVec(r, N)
				at := must(be.Upload(a, M, K))
				bshape := []int{K, N}
				if mm.transB {
					bshape = []int{N, K} // same random values read as [N,K]
				}
				bt := must(be.Upload(bb, bshape...))
				ct := must(be.Upload(c0, M, N))
				var biasT backend.Tensor
				if mm.bias {
					biasT = must(be.Upload(bias, N))
				}
				if err := be.MatMul(backend.Whole(ct), backend.Whole(at), backend.Whole(bt), mm.transB, biasT, mm.acc); err != nil {
					t.Fatal(err)
				}
				got := download(be, ct)
				wantTF, wantF32 := make([]float64, M*N), make([]float64, M*N)
				for i := 0; i < M; i++ {
					for j := 0; j < N; j++ {
						s, s32 := 0.0, 0.0
						for k := 0; k < K; k++ {
							bv := bb[k*N+j]
							if mm.transB {
								bv = bb[j*K+k]
							}
							s += tf32(a[i*K+k]) * tf32(bv)
							s32 += float64(a[i*K+k]) * float64(bv)
						}
						if mm.bias {
							s += float64(bias[j])
							s32 += float64(bias[j])
						}
						if mm.acc {
							s += float64(c0[i*N+j])
							s32 += float64(c0[i*N+j])
						}
						wantTF[i*N+j], wantF32[i*N+j] = s, s32
					}
				}
				compare(t, "vs float64 of TF32-rounded inputs", got, wantTF, tolAbs, tolRel)
				worst := 0.0
				for i := range got {
					worst = math.Max(worst, math.Abs(float64(got[i])-wantF32[i]))
				}
				t.Logf("TF32 vs exact fp32-input product: max abs error %.3g (values of order %.1f)", worst, math.Sqrt(float64(K)))
			})
		}
	}
}
