package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/neoscope/neoscope/internal/fixtures"
	"github.com/neoscope/neoscope/runtime/backend"
)

// TestTanh32: the approximation behind GELUNew stays within 5e-7 of float64
// tanh (4e-7 measured), far below the 1e-4 the golden tests allow.
func TestTanh32(t *testing.T) {
	worst := 0.0
	for i := -2000000; i <= 2000000; i++ {
		x := float32(i) * 1e-5
		d := math.Abs(float64(tanh32(x)) - math.Tanh(float64(x)))
		worst = math.Max(worst, d)
	}
	if worst > 5e-7 {
		t.Fatalf("tanh32 max abs error %.3g > 5e-7", worst)
	}
	t.Logf("tanh32 max abs error %.3g", worst)
}

// TestExp32: the softmax exponential stays within 2e-7 relative error of
// float64 exp over the arguments softmax gives it (x <= 0).
func TestExp32(t *testing.T) {
	worst := 0.0
	for i := 0; i <= 9000000; i++ {
		x := -float32(i) * 1e-5
		want := math.Exp(float64(x))
		got := float64(exp32(x))
		if want < 1e-37 {
			if math.Abs(got-want) > 1.2e-38 { // below float32's smallest normal
				t.Fatalf("exp32(%g) = %g, want %g", x, got, want)
			}
			continue
		}
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	if exp32(-100) != 0 || exp32(0) != 1 {
		t.Fatalf("exp32(-100) = %g, exp32(0) = %g", exp32(-100), exp32(0))
	}
	if worst > 2e-7 {
		t.Fatalf("exp32 max relative error %.3g > 2e-7", worst)
	}
	t.Logf("exp32 max relative error %.3g", worst)
}

// TestGELURows: the GELU kernel of this build (native or Go) against float64
// gelu_new, on a strided view whose gaps must stay untouched.
func TestGELURows(t *testing.T) {
	const rows, cols, stride = 7, 1000, 1003
	x := make([]float32, rows*stride)
	for i := range x {
		x[i] = float32(i%4001-2000) * 0.005 // [-10, 10]
	}
	orig := append([]float32(nil), x...)
	geluRows(x, rows, cols, stride)
	worst := 0.0
	for i, v := range orig {
		if i%stride >= cols {
			if x[i] != v {
				t.Fatalf("value %d outside the view changed: %g -> %g", i, v, x[i])
			}
			continue
		}
		u := float64(v)
		want := 0.5 * u * (1 + math.Tanh(geluK*(u+geluA*u*u*u)))
		worst = math.Max(worst, math.Abs(float64(x[i])-want)/math.Max(1, math.Abs(want)))
	}
	if worst > 1e-6 {
		t.Fatalf("gelu (native=%v) max error %.3g > 1e-6", nativeKernels, worst)
	}
	t.Logf("gelu (native=%v) max error %.3g", nativeKernels, worst)
}

// attnRef64 is causal (local when window > 0) attention in float64 over a
// strided fused buffer: q at column 0, k at C, v at 2C of rows stride apart.
func attnRef64(buf []float32, stride, B, T, NH, HS, window int, scale float64) (z, pattern, scores []float64) {
	C := NH * HS
	z = make([]float64, B*T*C)
	pattern = make([]float64, B*NH*T*T)
	scores = make([]float64, B*NH*T*T)
	for b := 0; b < B; b++ {
		for h := 0; h < NH; h++ {
			for i := 0; i < T; i++ {
				o := ((b*NH+h)*T + i) * T
				mx := math.Inf(-1)
				for j := 0; j < T; j++ {
					scores[o+j] = math.Inf(-1)
					if j > i || (window > 0 && i-j >= window) {
						continue
					}
					d := 0.0
					for e := 0; e < HS; e++ {
						d += float64(buf[(b*T+i)*stride+h*HS+e]) * float64(buf[(b*T+j)*stride+C+h*HS+e])
					}
					scores[o+j] = scale * d
					mx = math.Max(mx, scores[o+j])
				}
				den := 0.0
				for j := 0; j < T; j++ {
					if !math.IsInf(scores[o+j], -1) {
						pattern[o+j] = math.Exp(scores[o+j] - mx)
						den += pattern[o+j]
					}
				}
				for j := 0; j < T; j++ {
					pattern[o+j] /= den
					for e := 0; e < HS; e++ {
						z[(b*T+i)*C+h*HS+e] += pattern[o+j] * float64(buf[(b*T+j)*stride+2*C+h*HS+e])
					}
				}
			}
		}
	}
	return
}

// TestAttnHeads: this build's attention kernel (native C with the openblas
// tag, Go otherwise) and the Go kernel, each against float64 attention,
// global and local, with pattern and scores, on strided views and a head
// size that is not a multiple of eight. Bound 2e-5 absolute + 2e-5
// relative: scores are 0.3 times dot products of <= 64 N(0,1) products
// (float32 error ~1e-6), softmax in float32, z a weighted mean of <= 70
// values (measured: at most 1e-6); a wrong mask, offset or stride is off
// by O(0.1). Both kernels
// must also leave the columns of z outside the view untouched.
func TestAttnHeads(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ B, T, NH, HS, window int }{
		{2, 37, 3, 20, 0}, {1, 70, 2, 64, 16}, {3, 9, 4, 5, 0},
		// The native kernel's blocks of 4 queries and tiles of 64 dims: a
		// partial last block, a window (3) too short for any key all of a
		// block's queries see, and dims past the last whole tile.
		{2, 39, 2, 64, 0}, {1, 45, 2, 80, 3}, {1, 50, 1, 128, 6},
	} {
		C := tc.NH * tc.HS
		stride := 3*C + 7
		rows := tc.B * tc.T
		buf := make([]float32, rows*stride)
		for i := range buf {
			buf[i] = float32(r.NormFloat64())
		}
		const scale = 0.3
		wz, wp, ws := attnRef64(buf, stride, tc.B, tc.T, tc.NH, tc.HS, tc.window, float64(float32(scale)))
		for _, k := range []struct {
			name string
			run  func(a *attnArgs, lo, hi int, prob []float32)
		}{{"go", attnHeadsGo}, {fmt.Sprintf("build (native=%v)", nativeKernels), attnHeads}} {
			zb := make([]float32, rows*stride)
			for i := range zb {
				zb[i] = 7 // sentinel outside the view
			}
			a := attnArgs{q: buf, k: buf[C:], v: buf[2*C:], z: zb, qs: stride, ks: stride, vs: stride, zs: stride,
				T: tc.T, HS: tc.HS, NH: tc.NH, window: tc.window, scale: scale,
				pattern: make([]float32, tc.B*tc.NH*tc.T*tc.T), scores: make([]float32, tc.B*tc.NH*tc.T*tc.T)}
			k.run(&a, 0, tc.B*tc.NH, make([]float32, tc.T))
			gz := make([]float32, rows*C)
			for i := 0; i < rows; i++ {
				copy(gz[i*C:(i+1)*C], zb[i*stride:i*stride+C])
				for j := C; j < stride; j++ {
					if zb[i*stride+j] != 7 {
						t.Fatalf("%+v %s: z written outside the view at row %d col %d", tc, k.name, i, j)
					}
				}
			}
			for _, out := range []struct {
				name string
				got  []float32
				want []float64
			}{{"z", gz, wz}, {"pattern", a.pattern, wp}, {"scores", a.scores, ws}} {
				worst := 0.0
				for i, w := range out.want {
					g := float64(out.got[i])
					if math.IsInf(w, -1) || math.IsInf(g, -1) {
						if g != w {
							t.Fatalf("%+v %s %s[%d]: got %g, want %g", tc, k.name, out.name, i, g, w)
						}
						continue
					}
					d := math.Abs(g - w)
					if !(d <= 2e-5+2e-5*math.Abs(w)) {
						t.Fatalf("%+v %s %s[%d]: got %.8g, want %.8g (|diff| %.3g)", tc, k.name, out.name, i, g, w, d)
					}
					worst = math.Max(worst, d)
				}
				t.Logf("%+v %s %s: max |diff| vs float64 %.3g", tc, k.name, out.name, worst)
			}
		}
	}
}

// TestLseRow: this build's log-sum-exp of a logits row against float64.
func TestLseRow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 300, 50257} {
		for _, sd := range []float64{0.1, 3, 30} {
			row := make([]float32, n)
			for i := range row {
				row[i] = float32(r.NormFloat64()*sd + 2)
			}
			want := fixtures.LogSumExp(row)
			got := float64(lseRow(row))
			if d := math.Abs(got - want); d > 2e-6*math.Max(1, math.Abs(want)) {
				t.Fatalf("n=%d sd=%g: lse %.7g, want %.7g (native=%v)", n, sd, got, want, nativeKernels)
			}
		}
	}
}

// TestLogitStatsTiles: LogitStats over many row chunks and vocabulary tiles
// (forced small) against float64 logits computed directly, with repeated,
// unordered and out-of-vocabulary ids.
func TestLogitStatsTiles(t *testing.T) {
	defer func(r, c int) { logitRows, logitCols = r, c }(logitRows, logitCols)
	r := rand.New(rand.NewPCG(7, 8))
	const X, C, V = 11, 6, 40
	be := New()
	xt, _ := be.New(X, C)
	wt, _ := be.New(V, C)
	for _, d := range [][]float32{host(xt), host(wt)} {
		for i := range d {
			d[i] = float32(r.NormFloat64() * 2)
		}
	}
	rows := []int32{3, 0, 10, 3, 7}
	const G = 3
	idx := []int32{39, 0, 17, 5, 5, -1, 20, 40, 8, 1, 2, 3, 38, 13, 26}
	for _, tile := range [][2]int{{1024, 8192}, {2, 7}, {3, 40}, {1, 1}} {
		logitRows, logitCols = tile[0], tile[1]
		lse := make([]float32, len(rows))
		got := make([]float32, len(idx))
		if err := be.LogitStats(backend.Whole(xt), backend.Whole(wt), rows, idx, lse, got); err != nil {
			t.Fatal(err)
		}
		for i, row := range rows {
			logits := make([]float32, V)
			for v := range logits {
				var s float64
				for c := 0; c < C; c++ {
					s += float64(host(xt)[int(row)*C+c]) * float64(host(wt)[v*C+c])
				}
				logits[v] = float32(s)
			}
			if d := math.Abs(float64(lse[i]) - fixtures.LogSumExp(logits)); d > 1e-5 {
				t.Fatalf("tiles %v row %d: lse %g, want %g", tile, row, lse[i], fixtures.LogSumExp(logits))
			}
			for g := 0; g < G; g++ {
				id := idx[i*G+g]
				if id < 0 || id >= V {
					if !math.IsNaN(float64(got[i*G+g])) {
						t.Fatalf("tiles %v: id %d outside the vocabulary gave %g, want NaN", tile, id, got[i*G+g])
					}
					continue
				}
				if d := math.Abs(float64(got[i*G+g] - logits[id])); d > 1e-5 {
					t.Fatalf("tiles %v row %d id %d: %g, want %g", tile, row, id, got[i*G+g], logits[id])
				}
			}
		}
	}
}

// TestLayerNormRows: this build's LayerNorm kernel and the Go one against
// float64, on strided rows with an offset mean (where a one-pass float32
// variance would lose digits: mean 11, sd 0.5), and in place. Bound 1e-5
// absolute + 1e-5 relative on outputs of order 3: two float32 reductions of
// 771 values (measured 3e-7); a one-pass variance is off by ~1e-3.
func TestLayerNormRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const rows, C, xs = 5, 771, 800
	x := make([]float32, rows*xs)
	for i := range x {
		x[i] = float32(r.NormFloat64()*0.5 + 11)
	}
	w, b := make([]float32, C), make([]float32, C)
	for j := range w {
		w[j], b[j] = float32(1+0.1*r.NormFloat64()), float32(0.1*r.NormFloat64())
	}
	want := make([]float64, rows*C)
	for i := 0; i < rows; i++ {
		m, v := 0.0, 0.0
		for j := 0; j < C; j++ {
			m += float64(x[i*xs+j])
		}
		m /= C
		for j := 0; j < C; j++ {
			d := float64(x[i*xs+j]) - m
			v += d * d
		}
		v /= C
		for j := 0; j < C; j++ {
			want[i*C+j] = (float64(x[i*xs+j])-m)/math.Sqrt(v+float64(float32(1e-5)))*float64(w[j]) + float64(b[j])
		}
	}
	check := func(what string, got []float32) {
		t.Helper()
		worst := 0.0
		for i := range want {
			d := math.Abs(float64(got[i]) - want[i])
			if !(d <= 1e-5+1e-5*math.Abs(want[i])) {
				t.Fatalf("%s[%d] = %.8g, want %.8g (|diff| %.3g)", what, i, got[i], want[i], d)
			}
			worst = math.Max(worst, d)
		}
		t.Logf("%s: max |diff| vs float64 %.3g", what, worst)
	}
	goOut, got := make([]float32, rows*C), make([]float32, rows*C)
	layerNormRowsGo(goOut, C, x, xs, w, b, rows, 1e-5)
	check("go", goOut)
	layerNormRows(got, C, x, xs, w, b, rows, 1e-5)
	check(fmt.Sprintf("build (native=%v)", nativeKernels), got)
	inplace := append([]float32(nil), x...)
	layerNormRows(inplace, xs, inplace, xs, w, b, rows, 1e-5)
	for i := 0; i < rows; i++ {
		for j := 0; j < C; j++ {
			if d := math.Abs(float64(inplace[i*xs+j] - got[i*C+j])); d > 0 {
				t.Fatalf("in place differs at row %d col %d by %g", i, j, d)
			}
		}
		for j := C; j < xs; j++ {
			if inplace[i*xs+j] != x[i*xs+j] {
				t.Fatalf("in place wrote outside the row at %d,%d", i, j)
			}
		}
	}
}
