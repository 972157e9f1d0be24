package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/neoscope/neoscope/runtime/backend"
)

// Finite-difference tests of the backward kernels on odd shapes. Each
// smooth op f is checked along random directions d: the kernel's gradient
// gives dJ = <grad, d> for J = <R, f(x)> (R random), and central
// differences (J(x+eps d) - J(x-eps d)) / 2eps of the float32 forward kernel
// must agree to 1e-3 relative: with eps = 1e-2 the truncation error is
// ~eps^2 and the float32 rounding of J ~1e-7*|J|/eps, both far below that.
// The linear ops (MatMulTN, ColSum, EmbedBackward) are compared exactly with
// plain loops.

const fdEps = 1e-2
const fdRel = 1e-3

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func axpy(x []float32, a float64, d []float32) []float32 {
	o := make([]float32, len(x))
	for i := range x {
		o[i] = x[i] + float32(a*float64(d[i]))
	}
	return o
}

func tensorOf(data []float32, shape ...int) *Tensor {
	return &Tensor{shape: shape, Data: append([]float32(nil), data...)}
}

// fdCheck compares analytic dJ with central differences of J along d.
func fdCheck(t *testing.T, what string, analytic float64, J func(eps float64) float64) {
	t.Helper()
	numeric := (J(fdEps) - J(-fdEps)) / (2 * fdEps)
	if d := math.Abs(numeric - analytic); d > fdRel*math.Max(1, math.Abs(numeric)) {
		t.Errorf("%s: analytic %.7g, finite difference %.7g (|diff| %.3g)", what, analytic, numeric, d)
	} else {
		t.Logf("%s: analytic %.7g, finite difference %.7g", what, analytic, numeric)
	}
}

func TestLayerNormBackwardFD(t *testing.T) {
	be := New()
	r := rand.New(rand.NewSource(1))
	R, C, stride := 5, 13, 17 // odd shapes, strided views
	x := randVec(r, R*stride, 1)
	w, b := randVec(r, C, 1), randVec(r, C, 0.5)
	Rw := randVec(r, R*C, 1)
	eps := float32(1e-5)
	for trial := 0; trial < 3; trial++ {
		dxv, dwv, dbv := randVec(r, R*stride, 1), randVec(r, C, 1), randVec(r, C, 1)
		dx := make([]float32, R*stride)
		prev := randVec(r, R*stride, 1) // accumulate onto existing values
		copy(dx, prev)
		dw, db := make([]float32, C), make([]float32, C)
		tdx, tdw, tdb := tensorOf(dx), tensorOf(dw), tensorOf(db)
		be.LayerNormBackward(backend.Mat{T: tdx, Rows: R, Cols: C, Stride: stride}, backend.Mat{T: tensorOf(Rw), Rows: R, Cols: C, Stride: C},
			backend.Mat{T: tensorOf(x), Rows: R, Cols: C, Stride: stride}, tensorOf(w), eps, tdw, tdb, true)
		var an float64
		for i := 0; i < R; i++ {
			for j := 0; j < C; j++ {
				an += float64(tdx.Data[i*stride+j]-prev[i*stride+j]) * float64(dxv[i*stride+j])
			}
		}
		an += dot(tdw.Data, dwv) + dot(tdb.Data, dbv)
		fdCheck(t, "layernorm", an, func(e float64) float64 {
			return dotOut(be, axpy(x, e, dxv), axpy(w, e, dwv), axpy(b, e, dbv), Rw, R, C, stride, eps)
		})
	}
}

func dotOut(be *Backend, x, w, b, Rw []float32, R, C, stride int, eps float32) float64 {
	out := tensorOf(make([]float32, R*C))
	be.LayerNorm(backend.Mat{T: out, Rows: R, Cols: C, Stride: C}, backend.Mat{T: tensorOf(x), Rows: R, Cols: C, Stride: stride},
		tensorOf(w), tensorOf(b), eps)
	return dot(out.Data, Rw)
}

func TestGELUNewBackwardFD(t *testing.T) {
	be := New()
	r := rand.New(rand.NewSource(2))
	R, C := 7, 11
	x := randVec(r, R*C, 2)
	Rw := randVec(r, R*C, 1)
	J := func(x []float32) float64 {
		y := tensorOf(x)
		be.GELUNew(backend.Mat{T: y, Rows: R, Cols: C, Stride: C})
		return dot(y.Data, Rw)
	}
	dx := tensorOf(Rw)
	m := backend.Mat{T: dx, Rows: R, Cols: C, Stride: C}
	be.GELUNewBackward(m, m, backend.Mat{T: tensorOf(x), Rows: R, Cols: C, Stride: C}) // in place
	for trial := 0; trial < 3; trial++ {
		d := randVec(r, R*C, 1)
		fdCheck(t, "gelu_new", dot(dx.Data, d), func(e float64) float64 { return J(axpy(x, e, d)) })
	}
}

// TestGELUErfBackwardFD: the exact GELU's backward on a strided, odd view
// (dx written beside dy, not in place), against GELUErf's differences.
func TestGELUErfBackwardFD(t *testing.T) {
	be := New()
	r := rand.New(rand.NewSource(6))
	R, C, stride := 5, 13, 16
	x := randVec(r, R*stride, 2)
	Rw := randVec(r, R*C, 1)
	J := func(x []float32) float64 {
		y := tensorOf(x)
		be.GELUErf(backend.Mat{T: y, Rows: R, Cols: C, Stride: stride})
		var s float64
		for i := 0; i < R; i++ {
			for j := 0; j < C; j++ {
				s += float64(y.Data[i*stride+j]) * float64(Rw[i*C+j])
			}
		}
		return s
	}
	dx := tensorOf(make([]float32, R*stride))
	be.GELUErfBackward(backend.Mat{T: dx, Rows: R, Cols: C, Stride: stride}, backend.Mat{T: tensorOf(Rw), Rows: R, Cols: C, Stride: C},
		backend.Mat{T: tensorOf(x), Rows: R, Cols: C, Stride: stride})
	for trial := 0; trial < 3; trial++ {
		d := randVec(r, R*stride, 1)
		for i := 0; i < R; i++ { // only the view's elements move
			for j := C; j < stride; j++ {
				d[i*stride+j] = 0
			}
		}
		fdCheck(t, "gelu_erf", dot(dx.Data, d), func(e float64) float64 { return J(axpy(x, e, d)) })
	}
}

func TestAttentionBackwardFD(t *testing.T) {
	be := New()
	for _, tc := range []struct {
		name   string
		window int
		scale  float32
	}{{"global scaled", 0, float32(1 / math.Sqrt(5))}, {"local unscaled", 3, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewSource(3))
			B, T, NH, HS := 2, 7, 3, 5
			C := NH * HS
			p := backend.AttnParams{B: B, T: T, NH: NH, HS: HS, Window: tc.window, Scale: tc.scale}
			qkv := randVec(r, B*T*3*C, 0.8) // q|k|v views of one [B*T, 3C] buffer
			Rz := randVec(r, B*T*C, 1)
			views := func(t *Tensor) (q, k, v backend.Mat) {
				all := backend.Mat{T: t, Rows: B * T, Cols: 3 * C, Stride: 3 * C}
				return all.ColSlice(0, C), all.ColSlice(C, C), all.ColSlice(2*C, C)
			}
			J := func(qkv []float32) float64 {
				zt := tensorOf(make([]float32, B*T*C))
				q, k, v := views(tensorOf(qkv))
				be.Attention(backend.Mat{T: zt, Rows: B * T, Cols: C, Stride: C}, q, k, v, p, nil, nil)
				return dot(zt.Data, Rz)
			}
			dt := tensorOf(randVec(r, B*T*3*C, 1)) // garbage: the kernel overwrites
			dq, dk, dv := views(dt)
			q, k, v := views(tensorOf(qkv))
			be.AttentionBackward(dq, dk, dv, backend.Mat{T: tensorOf(Rz), Rows: B * T, Cols: C, Stride: C}, q, k, v, p)
			for trial := 0; trial < 3; trial++ {
				d := randVec(r, len(qkv), 1)
				fdCheck(t, "attention", dot(dt.Data, d), func(e float64) float64 { return J(axpy(qkv, e, d)) })
			}
		})
	}
}

func TestSoftmaxXentBackwardFD(t *testing.T) {
	be := New()
	r := rand.New(rand.NewSource(4))
	R, V := 5, 37
	x := randVec(r, R*V, 3)
	targets := []int32{3, -1, 36, 0, 3}
	scale := float32(0.37)
	J := func(x []float32) float64 {
		var s float64
		for i, tg := range targets {
			if tg < 0 {
				continue
			}
			row := x[i*V : (i+1)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v) - mx)
			}
			s += mx + math.Log(z) - float64(row[tg])
		}
		return float64(scale) * s
	}
	g := tensorOf(x)
	be.SoftmaxXentBackward(backend.Mat{T: g, Rows: R, Cols: V, Stride: V}, targets, scale)
	for j := 0; j < V; j++ {
		if g.Data[V+j] != 0 {
			t.Fatalf("row with target -1 has gradient %g at %d", g.Data[V+j], j)
		}
	}
	for trial := 0; trial < 3; trial++ {
		d := randVec(r, R*V, 1)
		fdCheck(t, "softmax_xent", dot(g.Data, d), func(e float64) float64 { return J(axpy(x, e, d)) })
	}
}

func TestMatMulTNColSumEmbedBackward(t *testing.T) {
	be := New()
	r := rand.New(rand.NewSource(5))
	K, M, N := 9, 5, 7
	a := randVec(r, K*(M+2), 1) // strided: [K, M] view of a [K, M+2] buffer
	b := randVec(r, K*N, 1)
	c0 := randVec(r, M*N, 1)
	ct := tensorOf(c0)
	be.MatMulTN(backend.Mat{T: ct, Rows: M, Cols: N, Stride: N}, backend.Mat{T: tensorOf(a), Off: 1, Rows: K, Cols: M, Stride: M + 2},
		backend.Mat{T: tensorOf(b), Rows: K, Cols: N, Stride: N}, true)
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			want := float64(c0[i*N+j])
			for k := 0; k < K; k++ {
				want += float64(a[k*(M+2)+1+i]) * float64(b[k*N+j])
			}
			if math.Abs(float64(ct.Data[i*N+j])-want) > 1e-5 {
				t.Fatalf("matmul_tn[%d,%d] = %g, want %g", i, j, ct.Data[i*N+j], want)
			}
		}
	}
	out := tensorOf(make([]float32, N))
	be.ColSum(out, backend.Mat{T: tensorOf(b), Rows: K, Cols: N, Stride: N}, false)
	for j := 0; j < N; j++ {
		var s float64
		for k := 0; k < K; k++ {
			s += float64(b[k*N+j])
		}
		if math.Abs(float64(out.Data[j])-s) > 1e-5 {
			t.Fatalf("colsum[%d] = %g, want %g", j, out.Data[j], s)
		}
	}
	// Embedding: repeated tokens accumulate; positions wrap every T.
	B, T, C, V := 2, 3, 5, 4
	tokens := []int32{1, 3, 1, 1, 0, 3}
	dx := randVec(r, B*T*C, 1)
	dwte, dwpe := tensorOf(make([]float32, V*C)), tensorOf(make([]float32, T*C))
	be.EmbedBackward(backend.Mat{T: dwte, Rows: V, Cols: C, Stride: C}, backend.Mat{T: dwpe, Rows: T, Cols: C, Stride: C},
		backend.Mat{T: tensorOf(dx), Rows: B * T, Cols: C, Stride: C}, tokens, B, T)
	wantT, wantP := make([]float64, V*C), make([]float64, T*C)
	for i, tok := range tokens {
		for j := 0; j < C; j++ {
			wantT[int(tok)*C+j] += float64(dx[i*C+j])
			wantP[(i%T)*C+j] += float64(dx[i*C+j])
		}
	}
	for i := range wantT {
		if math.Abs(float64(dwte.Data[i])-wantT[i]) > 1e-6 {
			t.Fatalf("embed_backward wte[%d] = %g, want %g", i, dwte.Data[i], wantT[i])
		}
	}
	for i := range wantP {
		if math.Abs(float64(dwpe.Data[i])-wantP[i]) > 1e-6 {
			t.Fatalf("embed_backward wpe[%d] = %g, want %g", i, dwpe.Data[i], wantP[i])
		}
	}
}

// TestLayerNormBackwardStats: the split LayerNormBackward (row statistics
// once, backend.LNStats) gives LayerNormBackward's dx on odd, strided
// shapes, overwriting, accumulating, and in place (dx aliasing dout), and
// adds dout into a sum view (exactly: one float32 add each).
func TestLayerNormBackwardStats(t *testing.T) {
	be := New()
	r := rand.New(rand.NewSource(2))
	R, C, stride := 7, 13, 17
	eps := float32(1e-5)
	x := tensorOf(randVec(r, R*stride, 1))
	xm := backend.Mat{T: x, Rows: R, Cols: C, Stride: stride}
	w := tensorOf(randVec(r, C, 1))
	g := randVec(r, R*stride, 1)
	st, err := be.LayerNormRowStats(xm, eps)
	if err != nil {
		t.Fatal(err)
	}
	for _, acc := range []bool{false, true} {
		prev := randVec(r, R*stride, 1)
		want, got := tensorOf(append([]float32(nil), prev...)), tensorOf(append([]float32(nil), prev...))
		gm := backend.Mat{T: tensorOf(g), Rows: R, Cols: C, Stride: stride}
		be.LayerNormBackward(backend.Mat{T: want, Rows: R, Cols: C, Stride: stride}, gm, xm, w, eps, nil, nil, acc)
		sum0 := randVec(r, R*(C+3), 1) // dout is added into sum, a [R, C] view with its own stride
		sum := tensorOf(sum0)
		if err := be.LayerNormBackwardStats(backend.Mat{T: got, Rows: R, Cols: C, Stride: stride}, gm, xm, st, w, acc,
			backend.Mat{T: sum, Rows: R, Cols: C, Stride: C + 3}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < R; i++ {
			for j := 0; j < C+3; j++ {
				want := sum0[i*(C+3)+j]
				if j < C {
					want += g[i*stride+j]
				}
				if sum.Data[i*(C+3)+j] != want {
					t.Fatalf("sum [%d,%d] = %g, want %g", i, j, sum.Data[i*(C+3)+j], want)
				}
			}
		}
		inPlace := tensorOf(append([]float32(nil), g...))
		if !acc {
			ip := backend.Mat{T: inPlace, Rows: R, Cols: C, Stride: stride}
			if err := be.LayerNormBackwardStats(ip, ip, xm, st, w, false, backend.Mat{}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < R; i++ {
			for j := 0; j < C; j++ {
				k := i*stride + j
				if d := math.Abs(float64(got.Data[k] - want.Data[k])); d > 1e-5*(1+math.Abs(float64(want.Data[k]))) {
					t.Fatalf("accumulate=%v [%d,%d]: %g, LayerNormBackward %g", acc, i, j, got.Data[k], want.Data[k])
				}
				if !acc && math.Abs(float64(inPlace.Data[k]-want.Data[k])) > 1e-5*(1+math.Abs(float64(want.Data[k]))) {
					t.Fatalf("in place [%d,%d]: %g, LayerNormBackward %g", i, j, inPlace.Data[k], want.Data[k])
				}
			}
			for j := C; j < stride; j++ { // the padding is left alone
				if k := i*stride + j; got.Data[k] != prev[k] {
					t.Fatalf("[%d,%d] outside the view written", i, j)
				}
			}
		}
	}
}

// TestSoftmaxXentBackwardLoss: the losses SoftmaxXentBackwardLoss writes are
// logsumexp - logit[target] in float64 (0 for a negative target), and its
// gradient is SoftmaxXentBackward's.
func TestSoftmaxXentBackwardLoss(t *testing.T) {
	be := New()
	r := rand.New(rand.NewSource(5))
	R, V := 5, 37
	x := randVec(r, R*V, 3)
	targets := []int32{3, -1, 36, 0, 3}
	a, b := tensorOf(append([]float32(nil), x...)), tensorOf(append([]float32(nil), x...))
	loss := make([]float64, R)
	be.SoftmaxXentBackward(backend.Mat{T: a, Rows: R, Cols: V, Stride: V}, targets, 0.5)
	if err := be.SoftmaxXentBackwardLoss(backend.Mat{T: b, Rows: R, Cols: V, Stride: V}, targets, 0.5, loss); err != nil {
		t.Fatal(err)
	}
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			t.Fatalf("gradient [%d]: %g, SoftmaxXentBackward %g", i, b.Data[i], a.Data[i])
		}
	}
	for i, tg := range targets {
		want := 0.0
		if tg >= 0 {
			var s float64
			for _, v := range x[i*V : (i+1)*V] {
				s += math.Exp(float64(v))
			}
			want = math.Log(s) - float64(x[i*V+int(tg)])
		}
		if math.Abs(loss[i]-want) > 1e-6*(1+math.Abs(want)) {
			t.Errorf("row %d: loss %g, want %g", i, loss[i], want)
		}
	}
}

// TestGELUBackRows: this build's gelu_new backward kernel and the Go one
// against the float64 derivative (math.Tanh), on strided rows and in place:
// both in float64 and rounded once (the native one with its own e^x),
// bound 1e-7 relative (a float32 rounding is 6e-8) + 1e-12 absolute: where
// x < -5 the derivative's two terms cancel to below 1e-10, and double
// rounding of terms of order 1e-6 leaves ~1e-16 there.
func TestGELUBackRows(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	const rows, cols, s = 6, 203, 211
	pre, dy := randVec(r, rows*s, 3), randVec(r, rows*s, 1)
	want := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			x := float64(pre[i*s+j])
			th := math.Tanh(geluK * (x + geluA*x*x*x))
			want[i*cols+j] = float64(dy[i*s+j]) * (0.5*(1+th) + 0.5*x*(1-th*th)*geluK*(1+3*geluA*x*x))
		}
	}
	check := func(what string, got []float32, stride int) {
		t.Helper()
		worst := 0.0
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				w := want[i*cols+j]
				d := math.Abs(float64(got[i*stride+j]) - w)
				if !(d <= 1e-7*math.Abs(w)+1e-12) {
					t.Fatalf("%s[%d,%d] = %.8g, want %.8g", what, i, j, got[i*stride+j], w)
				}
				worst = math.Max(worst, d)
			}
		}
		t.Logf("%s: max |diff| vs float64 %.3g", what, worst)
	}
	goOut, got := make([]float32, rows*cols), make([]float32, rows*cols)
	geluBackRowsGo(goOut, cols, dy, s, pre, s, rows, cols)
	check("go", goOut, cols)
	geluBackPar(2, got, cols, dy, s, pre, s, rows, cols, false)
	check(fmt.Sprintf("build (native=%v)", nativeKernels), got, cols)
	inPlace := append([]float32(nil), dy...)
	geluBackPar(2, inPlace, s, inPlace, s, pre, s, rows, cols, false)
	check("in place", inPlace, s)
}

// TestBackRowKernels: this build's LayerNorm, GELU (erf), softmax-xent
// and attention backward kernels and column sums (ColSum, LayerNorm's
// weight and bias gradients) against their Go references, on odd, strided
// shapes. The native ones sum in other orders (eight lanes) and
// contract to FMA: bound 1e-5 absolute + 1e-5 relative, where the
// LayerNorm rows are 771 wide with an offset mean (11, sd 0.5).
func TestBackRowKernels(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	close := func(what string, got, want []float32) {
		t.Helper()
		worst := 0.0
		for i := range want {
			d := math.Abs(float64(got[i] - want[i]))
			if !(d <= 1e-5+1e-5*math.Abs(float64(want[i]))) {
				t.Fatalf("%s[%d] = %.8g, Go %.8g", what, i, got[i], want[i])
			}
			worst = math.Max(worst, d)
		}
		t.Logf("%s (native=%v): max |diff| vs Go %.3g", what, nativeKernels, worst)
	}
	t.Run("layernorm", func(t *testing.T) {
		const rows, C, xs = 5, 771, 800
		x := randVec(r, rows*xs, 0.5)
		for i := range x {
			x[i] += 11
		}
		w, g := randVec(r, C, 1), randVec(r, rows*xs, 1)
		for _, acc := range []bool{false, true} {
			prev := randVec(r, rows*xs, 1)
			want, got := append([]float32(nil), prev...), append([]float32(nil), prev...)
			mw, rw, mg, rg := make([]float64, rows), make([]float64, rows), make([]float64, rows), make([]float64, rows)
			lnBackRowsGo(want, xs, g, xs, x, xs, w, nil, mw, rw, rows, 1e-5, acc)
			lnBackPar(2, got, xs, g, xs, x, xs, w, nil, mg, rg, rows, 1e-5, acc, nil, 0)
			close(fmt.Sprintf("dx (accumulate=%v)", acc), got, want)
			for i := range mw {
				if math.Abs(mw[i]-mg[i]) > 1e-12*math.Abs(mw[i]) || math.Abs(rw[i]-rg[i]) > 1e-12*rw[i] {
					t.Fatalf("row %d: mean, rstd %g %g, Go %g %g", i, mg[i], rg[i], mw[i], rw[i])
				}
			}
			stats := make([]float32, 2*rows)
			for i := range mw {
				stats[2*i], stats[2*i+1] = float32(mw[i]), float32(rw[i])
			}
			inPlace := append([]float32(nil), g...)
			want = append([]float32(nil), g...)
			lnBackRowsGo(want, xs, want, xs, x, xs, w, stats, nil, nil, rows, 0, false)
			lnBackPar(2, inPlace, xs, inPlace, xs, x, xs, w, stats, nil, nil, rows, 0, false, nil, 0)
			close("dx from stats, in place", inPlace, want)
		}
	})
	t.Run("column sums", func(t *testing.T) {
		const rows, cols, xs = 37, 203, 211
		x, g := randVec(r, rows*xs, 1), randVec(r, rows*xs, 1)
		mean, rstd := make([]float64, rows), make([]float64, rows)
		for i := range mean {
			mean[i], rstd[i] = r.NormFloat64(), 1+r.Float64()
		}
		for _, acc := range []bool{false, true} {
			prev := randVec(r, cols, 1)
			want, got := append([]float32(nil), prev...), append([]float32(nil), prev...)
			colSumColsGo(want, x, xs, rows, 0, cols, acc)
			colSumPar(2, got, x, xs, rows, cols, acc)
			close(fmt.Sprintf("colsum (accumulate=%v)", acc), got, want)
		}
		prevW, prevB := randVec(r, cols, 1), randVec(r, cols, 1)
		ww, wb := append([]float32(nil), prevW...), append([]float32(nil), prevB...)
		gw, gb := append([]float32(nil), prevW...), append([]float32(nil), prevB...)
		lnParamColsGo(ww, wb, x, xs, g, xs, mean, rstd, rows, 0, cols)
		lnParamPar(2, gw, gb, x, xs, g, xs, mean, rstd, rows, cols)
		close("layernorm dw", gw, ww)
		close("layernorm db", gb, wb)
	})
	t.Run("gelu_erf", func(t *testing.T) {
		const rows, cols, s = 4, 99, 101
		pre, dy := randVec(r, rows*s, 3), randVec(r, rows*s, 1)
		want, got := make([]float32, rows*s), make([]float32, rows*s)
		geluErfBackRowsGo(want, s, dy, s, pre, s, rows, cols)
		geluBackPar(2, got, s, dy, s, pre, s, rows, cols, true)
		close("gelu_erf", got, want)
	})
	t.Run("xent", func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 1001} {
			const rows, stride = 3, 1003
			x := randVec(r, rows*stride, 4)
			targets := []int32{int32(n / 3), -1, int32(n - 1)}
			want, got := append([]float32(nil), x...), append([]float32(nil), x...)
			lg := make([]float64, rows)
			xentBackPar(2, got, stride, rows, n, targets, 0.3, lg)
			for i, tg := range targets {
				row := want[i*stride : i*stride+n]
				lw := 0.0
				if tg < 0 {
					clear(row)
				} else {
					lw = xentBackRowGo(row, int(tg), 0.3)
				}
				if math.Abs(lw-lg[i]) > 1e-6*(1+math.Abs(lw)) {
					t.Fatalf("xent n=%d row %d: loss %.9g, Go %.9g", n, i, lg[i], lw)
				}
			}
			close(fmt.Sprintf("xent n=%d", n), got, want)
		}
	})
	t.Run("attention", func(t *testing.T) {
		for _, window := range []int{0, 3} {
			B, T, NH, HS := 2, 9, 3, 13
			C := NH * HS
			qkv, dz := randVec(r, B*T*3*C, 0.8), randVec(r, B*T*(C+2), 1)
			args := func(out []float32) *attnBackArgs {
				return &attnBackArgs{dq: out, dk: out[C:], dv: out[2*C:], dz: dz[1:], q: qkv, k: qkv[C:], v: qkv[2*C:],
					dqs: 3 * C, dks: 3 * C, dvs: 3 * C, dzs: C + 2, qs: 3 * C, ks: 3 * C, vs: 3 * C,
					T: T, HS: HS, NH: NH, window: window, scale: 0.37}
			}
			want, got := randVec(r, B*T*3*C, 1), randVec(r, B*T*3*C, 1) // garbage: overwritten
			attnBackHeadsGo(args(want), 0, B*NH, make([]float64, 2*T))
			attnBackPar(2, args(got), B*NH)
			close(fmt.Sprintf("attention window=%d", window), got, want)
		}
	})
}

// TestExpD: the native build's double e^x (behind its gelu_new backward)
// within 2 ulp of math.Exp over [-40, 40] and at the ends.
func TestExpD(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	worst := 0.0
	for i := 0; i < 200000; i++ {
		x := (r.Float64()*2 - 1) * 40
		if i < 2 {
			x = []float64{-40, 40}[i]
		}
		want, got := math.Exp(x), expD(x)
		ulp := math.Nextafter(want, math.Inf(1)) - want
		if d := math.Abs(got-want) / ulp; d > worst {
			worst = d
		}
	}
	if worst > 2 {
		t.Fatalf("e^x off by %.2f ulp (native=%v)", worst, nativeKernels)
	}
	t.Logf("e^x within %.2f ulp of math.Exp (native=%v)", worst, nativeKernels)
}
