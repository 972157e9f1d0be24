//go:build cgo

package emu

import (
	"math"
	"math/rand"
	"testing"
	"unsafe"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/runtime/backend"
)

// The backward kernels (kernels/backward.cu) under the emulator against the
// CPU backend's backend.Grad (cpu/grad.go, itself checked by finite
// differences in cpu/grad_test.go), on odd shapes with strided views. Both
// compute in float32 with different summation orders and precisions
// (the CPU reduces in float64): tolerance 1e-5 + 1e-4*|want|.

const bwdAbs, bwdRel = 1e-5, 1e-4

type dev struct {
	t *testing.T
}

func (d dev) up(x []float32) driver.Ptr {
	p := alloc(d.t, 4*len(x)+4)
	if len(x) > 0 {
		HtoD(p, unsafe.Pointer(&x[0]), 4*len(x))
	}
	return p
}

func (d dev) upInts(x []int32) driver.Ptr {
	p := alloc(d.t, 4*len(x)+4)
	HtoD(p, unsafe.Pointer(&x[0]), 4*len(x))
	return p
}

func (d dev) down(p driver.Ptr, n int) []float32 {
	out := make([]float32, n)
	DtoH(unsafe.Pointer(&out[0]), p, 4*n)
	return out
}

func launch(t *testing.T, name string, threads int, a *driver.Args) {
	t.Helper()
	blocks := (threads + 255) / 256
	if err := Launch(name, driver.Dim3{X: uint32(max(blocks, 1)), Y: 1, Z: 1}, driver.Dim3{X: 256, Y: 1, Z: 1}, 0, a); err != nil {
		t.Fatal(err)
	}
}

func near(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= bwdAbs+bwdRel*math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func rnd(r *rand.Rand, n int, s float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * s)
	}
	return v
}

func host(be *cpu.Backend, x []float32, shape ...int) backend.Tensor {
	t, _ := be.Upload(x, shape...)
	return t
}

func data(be *cpu.Backend, t backend.Tensor) []float32 {
	out := make([]float32, t.Len())
	be.Download(out, t)
	return out
}

func TestBackwardKernels(t *testing.T) {
	be := cpu.New()
	d := dev{t}
	r := rand.New(rand.NewSource(7))
	W := backend.Whole

	t.Run("matmul_tn", func(t *testing.T) {
		K, M, N := 13, 5, 7
		a, b, c := rnd(r, K*(M+3), 1), rnd(r, K*N, 1), rnd(r, M*N, 1)
		pa, pb, pc := d.up(a), d.up(b), d.up(c)
		launch(t, "matmul_tn_f32", M*N, driver.NewArgs(10).Ptr(pc).Ptr(pa+4).Ptr(pb).I32(M).I32(N).I32(K).I32(M+3).I32(N).I32(N).I32(1))
		ct := host(be, c, M, N)
		be.MatMulTN(W(ct), backend.Mat{T: host(be, a, K, M+3), Off: 1, Rows: K, Cols: M, Stride: M + 3}, W(host(be, b, K, N)), true)
		near(t, "matmul_tn", d.down(pc, M*N), data(be, ct))
	})
	t.Run("colsum", func(t *testing.T) {
		R, C := 11, 37
		x := rnd(r, R*C, 1)
		po := d.up(make([]float32, C))
		launch(t, "colsum_f32", C, driver.NewArgs(6).Ptr(po).Ptr(d.up(x)).I32(R).I32(C).I32(C).I32(0))
		ot := host(be, make([]float32, C), C)
		be.ColSum(ot, W(host(be, x, R, C)), false)
		near(t, "colsum", d.down(po, C), data(be, ot))
	})
	t.Run("layernorm_backward", func(t *testing.T) {
		R, C, ld := 9, 45, 50
		x, g, w := rnd(r, R*ld, 1.5), rnd(r, R*C, 1), rnd(r, C, 1)
		dx0 := rnd(r, R*C, 1)
		px, pg, pw, pdx, pst := d.up(x), d.up(g), d.up(w), d.up(dx0), alloc(t, 8*R)
		dw0, db0 := rnd(r, C, 1), rnd(r, C, 1)
		pdw, pdb := d.up(dw0), d.up(db0)
		launch(t, "layernorm_backward_f32", 32*R, driver.NewArgs(12).Ptr(pdx).Ptr(pg).Ptr(px).Ptr(pw).Ptr(pst).I32(R).I32(C).I32(C).I32(C).I32(ld).F32(1e-5).I32(1))
		launch(t, "layernorm_backward_wb_f32", C, driver.NewArgs(9).Ptr(pdw).Ptr(pdb).Ptr(pg).Ptr(px).Ptr(pst).I32(R).I32(C).I32(C).I32(ld))
		dxt, dwt, dbt := host(be, dx0, R, C), host(be, dw0, C), host(be, db0, C)
		be.LayerNormBackward(W(dxt), W(host(be, g, R, C)), backend.Mat{T: host(be, x, R, ld), Rows: R, Cols: C, Stride: ld},
			host(be, w, C), 1e-5, dwt, dbt, true)
		near(t, "dx", d.down(pdx, R*C), data(be, dxt))
		near(t, "dw", d.down(pdw, C), data(be, dwt))
		near(t, "db", d.down(pdb, C), data(be, dbt))
	})
	t.Run("gelu_new_backward", func(t *testing.T) {
		R, C := 7, 19
		pre, dy := rnd(r, R*C, 2), rnd(r, R*C, 1)
		pdy := d.up(dy)
		launch(t, "gelu_new_backward_f32", R*C, driver.NewArgs(8).Ptr(pdy).Ptr(pdy).Ptr(d.up(pre)).I32(R).I32(C).I32(C).I32(C).I32(C))
		dyt := host(be, dy, R, C)
		be.GELUNewBackward(W(dyt), W(dyt), W(host(be, pre, R, C)))
		near(t, "gelu", d.down(pdy, R*C), data(be, dyt))
	})
	t.Run("gelu_erf_backward", func(t *testing.T) {
		R, C, ld := 7, 19, 23 // pre strided, dx beside dy
		pre, dy := rnd(r, R*ld, 2), rnd(r, R*C, 1)
		pdx := d.up(make([]float32, R*C))
		launch(t, "gelu_erf_backward_f32", R*C, driver.NewArgs(8).Ptr(pdx).Ptr(d.up(dy)).Ptr(d.up(pre)).I32(R).I32(C).I32(C).I32(C).I32(ld))
		dxt := host(be, make([]float32, R*C), R, C)
		be.GELUErfBackward(W(dxt), W(host(be, dy, R, C)), backend.Mat{T: host(be, pre, R, ld), Rows: R, Cols: C, Stride: ld})
		near(t, "gelu_erf", d.down(pdx, R*C), data(be, dxt))
	})
	t.Run("embed_backward", func(t *testing.T) {
		B, T, C, V := 2, 5, 9, 6
		tokens := []int32{1, 5, 1, 0, 1, 3, 3, 5, 2, 1}
		dx := rnd(r, B*T*C, 1)
		te, pe := rnd(r, V*C, 1), rnd(r, T*C, 1)
		pte, ppe := d.up(te), d.up(pe)
		launch(t, "embed_backward_f32", C, driver.NewArgs(10).Ptr(pte).Ptr(ppe).Ptr(d.up(dx)).Ptr(d.upInts(tokens)).I32(B).I32(T).I32(C).I32(C).I32(C).I32(C))
		tt, pt := host(be, te, V, C), host(be, pe, T, C)
		be.EmbedBackward(W(tt), W(pt), W(host(be, dx, B*T, C)), tokens, B, T)
		near(t, "dwte", d.down(pte, V*C), data(be, tt))
		near(t, "dwpe", d.down(ppe, T*C), data(be, pt))
	})
	t.Run("softmax_xent_backward", func(t *testing.T) {
		R, V := 4, 301
		x := rnd(r, R*V, 3)
		targets := []int32{7, -1, 300, 0}
		px := d.up(x)
		if err := Launch("softmax_xent_backward_f32", driver.Dim3{X: uint32(R), Y: 1, Z: 1}, driver.Dim3{X: 128, Y: 1, Z: 1}, 0,
			driver.NewArgs(6).Ptr(px).Ptr(d.upInts(targets)).I32(R).I32(V).I32(V).F32(0.25)); err != nil {
			t.Fatal(err)
		}
		xt := host(be, x, R, V)
		be.SoftmaxXentBackward(W(xt), targets, 0.25)
		near(t, "dlogits", d.down(px, R*V), data(be, xt))
	})
	for _, tc := range []struct {
		name   string
		window int
		scale  float32
	}{{"attention_backward/global_scaled", 0, float32(1 / math.Sqrt(6))}, {"attention_backward/local_unscaled", 3, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			B, T, NH, HS := 2, 7, 3, 6
			C := NH * HS
			qkv, dz := rnd(r, B*T*3*C, 0.7), rnd(r, B*T*C, 1)
			pqkv, pdz, pd := d.up(qkv), d.up(dz), alloc(t, 4*B*T*3*C)
			scratch := alloc(t, 8*B*NH*T)
			q, k, v := pqkv, pqkv+driver.Ptr(4*C), pqkv+driver.Ptr(8*C)
			dq, dk, dv := pd, pd+driver.Ptr(4*C), pd+driver.Ptr(8*C)
			n := B * NH * T
			launch(t, "attention_backward_dq_f32", n, driver.NewArgs(17).Ptr(dq).Ptr(scratch).Ptr(pdz).Ptr(q).Ptr(k).Ptr(v).
				I32(B).I32(T).I32(NH).I32(HS).I32(3*C).I32(3*C).I32(3*C).I32(C).I32(3*C).I32(tc.window).F32(tc.scale))
			launch(t, "attention_backward_dkv_f32", n, driver.NewArgs(19).Ptr(dk).Ptr(dv).Ptr(scratch).Ptr(pdz).Ptr(q).Ptr(k).Ptr(v).
				I32(B).I32(T).I32(NH).I32(HS).I32(3*C).I32(3*C).I32(3*C).I32(C).I32(3*C).I32(3*C).I32(tc.window).F32(tc.scale))
			all := backend.Mat{T: host(be, qkv, B*T, 3*C), Rows: B * T, Cols: 3 * C, Stride: 3 * C}
			gt := host(be, make([]float32, B*T*3*C), B*T, 3*C)
			g := W(gt)
			be.AttentionBackward(g.ColSlice(0, C), g.ColSlice(C, C), g.ColSlice(2*C, C), W(host(be, dz, B*T, C)),
				all.ColSlice(0, C), all.ColSlice(C, C), all.ColSlice(2*C, C),
				backend.AttnParams{B: B, T: T, NH: NH, HS: HS, Window: tc.window, Scale: tc.scale})
			near(t, "dq|dk|dv", d.down(pd, B*T*3*C), data(be, gt))
		})
	}
}
