package conformance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/runtime/backend"
)

// opTol is each operation's bound against its float64 reference:
// |got - want| <= abs + rel*|want|. Inputs are N(0,1) (or of the stated
// scale), so one float32 rounding is ~6e-8 relative and a misplaced element
// (a wrong index, stride or mask) is off by O(0.1..1): each bound sits about
// 10x above the rounding the op can make and far below that.
var opTol = map[string][2]float64{
	// Dot products of <= 33 terms of order 1, fp32 accumulation in any
	// order: |error| <= K*eps*sum|a_k b_k| ~ 33 * 6e-8 * 33 ~ 7e-5 in the
	// worst case, ~1e-6 typically (measured below 2e-6).
	"matmul": {2e-5, 2e-5},
	// Two reductions over 20 values with mean 3 (a one-pass float32 variance
	// would lose ~1e-4 here), outputs of order |w|*2: ~1e-6.
	"layernorm": {1e-5, 1e-5},
	// tanh approximations: the CPU's tanh32 is within 5e-7 (TestTanh32), a
	// device's tanhf within a few ulp; outputs up to ~10.
	"gelu_new": {2e-6, 2e-6},
	// One float32 addition: half an ulp.
	"add": {0, 1.2e-7},
	// Moves: exact.
	"copy": {0, 0},
	// One addition (exact without wpe).
	"embed": {0, 1.2e-7},
	// Scores are dot products of <= 70 terms, then softmax (exp in float32)
	// and a weighted sum of <= 37 values: ~1e-6.
	"attention":  {2e-5, 2e-5},
	"attn_apply": {2e-5, 2e-5},
	// Moves of zeros or fill values: exact.
	"ablate_heads": {0, 0},
	"ablate_rows":  {0, 0},
	// log-sum-exp over <= 150 logits of order 10 (dot products of 20 terms)
	// and gathered logits: ~2e-6.
	"logit_stats": {2e-5, 2e-5},
	// Exact GELU: erf in double, one float32 rounding of outputs up to ~9.
	"gelu_erf": {2e-6, 2e-6},
	// Rotary: two products and a sum per element on values of order 1, the
	// cos/sin table already rounded to float32: a few ulp.
	"rotary": {2e-6, 2e-6},
}

// DeviceMathAbs is the absolute floor of every op's bound on a real GPU,
// whose expf/tanhf differ from the host's by a few ulp (not yet measured on
// a device: the first GPU run reports the errors it sees).
const DeviceMathAbs = 1e-4

// Ops runs every operation of the Backend interface on odd shapes (T=7,
// C=20, NH=3, HS=5, rows not a multiple of a 64-row tile) and strided views
// (column slices of wider buffers, out aliasing an input, an empty
// position-embedding view), on be, and compares each output with a float64
// reference computed here. Values outside the views must stay untouched (the
// references keep them). only, when not "", restricts the run to ops whose
// name starts with it (e.g. "matmul/"). deviceMath raises every absolute
// bound to DeviceMathAbs (a real GPU's transcendental functions).
func Ops(t *testing.T, be backend.Backend, only string, deviceMath bool) {
	t.Helper()
	n := 0
	for _, o := range oracles() {
		if !strings.HasPrefix(o.name, only) {
			continue
		}
		n++
		tol, ok := opTol[o.name[:strings.IndexByte(o.name, '/')]]
		if !ok {
			t.Fatalf("%s: no tolerance in opTol", o.name)
		}
		if deviceMath {
			tol[0] = math.Max(tol[0], DeviceMathAbs)
		}
		t.Run(o.name, func(t *testing.T) {
			got, err := o.run(be)
			if err != nil {
				t.Fatal(err)
			}
			want := o.ref()
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i := range want {
				compare(t, fmt.Sprintf("%s out%d", be.Name(), i), got[i], want[i], tol[0], tol[1])
			}
		})
	}
	if n == 0 {
		t.Fatalf("no operation matches %q", only)
	}
}

// compare reports up to 10 mismatches: |got-want| > abs + rel*|want|.
// Infinities and NaNs must match exactly.
func compare(t *testing.T, what string, got []float32, want []float64, abs, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	bad, worst := 0, 0.0
	for i := range got {
		g, w := float64(got[i]), want[i]
		if math.IsInf(w, 0) || math.IsNaN(w) {
			if !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
				bad++
				if bad <= 10 {
					t.Errorf("%s[%d] = %v, want %v", what, i, g, w)
				}
			}
			continue
		}
		d := math.Abs(g - w)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		worst = math.Max(worst, d)
		if !(d <= abs+rel*math.Abs(w)) {
			bad++
			if bad <= 10 {
				t.Errorf("%s[%d] = %.8g, want %.8g (|diff| %.3g > %.3g + %.3g|want|)", what, i, g, w, d, abs, rel)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d mismatches", what, bad, len(got))
	}
	t.Logf("%s: max abs error %.3g over %d values", what, worst, len(got))
}

type oracle struct {
	name string
	// run does the operation on be and returns its outputs, downloaded.
	run func(be backend.Backend) ([][]float32, error)
	// ref is the float64 reference of each output.
	ref func() [][]float64
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func download(be backend.Backend, t backend.Tensor) []float32 {
	out := make([]float32, t.Len())
	if err := be.Download(out, t); err != nil {
		panic(err)
	}
	return out
}

func f64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

// oracles builds the suite; inputs are random, fixed by seed.
func oracles() []oracle {
	r := rand.New(rand.NewPCG(1, 2))
	var ops []oracle

	// MatMul over strided views: a is columns [3, 3+K) of an [M, K+5]
	// buffer, c is columns [2, 2+N) of an [M, N+3] buffer holding old values.
	for _, mm := range []struct {
		M, N, K           int
		transB, bias, acc bool
	}{
		{37, 45, 20, false, false, false},
		{70, 130, 33, true, true, true},
		{65, 64, 17, false, true, false},
		{5, 3, 1, true, false, true},
		{150, 140, 9, false, true, true},
		// transB at the row counts of a forward pass (the CPU's ns_gemm_small):
		// a panel of 32 rows part-filled, weight rows not a multiple of a
		// tile, two threads.
		{33, 13, 64, true, false, false},
		{200, 100, 150, true, false, true},
		{256, 40, 96, true, true, false},
	} {
		M, N, K := mm.M, mm.N, mm.K
		aData := randVec(r, M*(K+5))
		bRows, bCols := K, N
		if mm.transB {
			bRows, bCols = N, K
		}
		bData := randVec(r, bRows*(bCols+1)) // stride bCols+1
		cData := randVec(r, M*(N+3))
		biasData := randVec(r, N)
		ops = append(ops, oracle{
			name: fmt.Sprintf("matmul/M%d_N%d_K%d_transB%v_bias%v_acc%v", M, N, K, mm.transB, mm.bias, mm.acc),
			run: func(be backend.Backend) ([][]float32, error) {
				a := must(be.Upload(aData, M, K+5))
				b := must(be.Upload(bData, bRows, bCols+1))
				c := must(be.Upload(cData, M, N+3))
				var bias backend.Tensor
				if mm.bias {
					bias = must(be.Upload(biasData, N))
				}
				av := backend.Whole(a).ColSlice(3, K)
				bv := backend.Whole(b).ColSlice(0, bCols)
				cv := backend.Whole(c).ColSlice(2, N)
				if err := be.MatMul(cv, av, bv, mm.transB, bias, mm.acc); err != nil {
					return nil, err
				}
				return [][]float32{download(be, c)}, nil
			},
			ref: func() [][]float64 {
				out := f64(cData)
				for i := 0; i < M; i++ {
					for j := 0; j < N; j++ {
						s := 0.0
						for k := 0; k < K; k++ {
							var bv float32
							if mm.transB {
								bv = bData[j*(bCols+1)+k]
							} else {
								bv = bData[k*(bCols+1)+j]
							}
							s += float64(aData[i*(K+5)+3+k]) * float64(bv)
						}
						if mm.bias {
							s += float64(biasData[j])
						}
						o := &out[i*(N+3)+2+j]
						if mm.acc {
							s += *o
						}
						*o = s
					}
				}
				return [][]float64{out}
			},
		})
	}

	// LayerNorm: x is columns [1, 21) of [13, 24]; out columns [0, 20) of [13, 22].
	{
		R, C, eps := 13, 20, float32(1e-5)
		xData := randVec(r, R*24)
		for i := range xData {
			xData[i] = 3 + 2*xData[i] // mean far from 0: tests the two-pass variance
		}
		w, bb := randVec(r, C), randVec(r, C)
		oData := randVec(r, R*22)
		ops = append(ops, oracle{
			name: "layernorm/R13_C20",
			run: func(be backend.Backend) ([][]float32, error) {
				x := must(be.Upload(xData, R, 24))
				o := must(be.Upload(oData, R, 22))
				err := be.LayerNorm(backend.Whole(o).ColSlice(0, C), backend.Whole(x).ColSlice(1, C),
					must(be.Upload(w, C)), must(be.Upload(bb, C)), eps)
				return [][]float32{download(be, o)}, err
			},
			ref: func() [][]float64 {
				out := f64(oData)
				for i := 0; i < R; i++ {
					row := f64(xData[i*24+1 : i*24+1+C])
					m, v := 0.0, 0.0
					for _, x := range row {
						m += x
					}
					m /= float64(C)
					for _, x := range row {
						v += (x - m) * (x - m)
					}
					v /= float64(C)
					for j, x := range row {
						out[i*22+j] = (x-m)/math.Sqrt(v+float64(eps))*float64(w[j]) + float64(bb[j])
					}
				}
				return [][]float64{out}
			},
		})
	}

	// GELUNew in place on columns [2, 22) of [7, 23]; the other columns stay.
	{
		xData := randVec(r, 7*23)
		for i := range xData {
			xData[i] *= 3
		}
		ops = append(ops, oracle{
			name: "gelu_new/7x20_stride23",
			run: func(be backend.Backend) ([][]float32, error) {
				x := must(be.Upload(xData, 7, 23))
				err := be.GELUNew(backend.Whole(x).ColSlice(2, 20))
				return [][]float32{download(be, x)}, err
			},
			ref: func() [][]float64 {
				out := f64(xData)
				for i := 0; i < 7; i++ {
					for j := 2; j < 22; j++ {
						x := out[i*23+j]
						out[i*23+j] = 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
					}
				}
				return [][]float64{out}
			},
		})
	}

	// Add with out aliasing a; Copy between strided views.
	{
		aData, bData := randVec(r, 9*21), randVec(r, 9*20)
		ops = append(ops, oracle{
			name: "add/alias_9x20",
			run: func(be backend.Backend) ([][]float32, error) {
				a := must(be.Upload(aData, 9, 21))
				b := must(be.Upload(bData, 9, 20))
				av := backend.Whole(a).ColSlice(1, 20)
				err := be.Add(av, av, backend.Whole(b))
				return [][]float32{download(be, a)}, err
			},
			ref: func() [][]float64 {
				out := f64(aData)
				for i := 0; i < 9; i++ {
					for j := 0; j < 20; j++ {
						out[i*21+1+j] += float64(bData[i*20+j])
					}
				}
				return [][]float64{out}
			},
		})
		sData, dData := randVec(r, 11*30), randVec(r, 11*9)
		ops = append(ops, oracle{
			name: "copy/11x7_strided",
			run: func(be backend.Backend) ([][]float32, error) {
				s := must(be.Upload(sData, 11, 30))
				d := must(be.Upload(dData, 11, 9))
				err := be.Copy(backend.Whole(d).ColSlice(1, 7), backend.Whole(s).ColSlice(20, 7))
				// DownloadMat of a strided view goes through the packing copy.
				pk := make([]float32, 11*7)
				if err == nil {
					err = be.DownloadMat(pk, backend.Whole(s).ColSlice(20, 7))
				}
				return [][]float32{download(be, d), pk}, err
			},
			ref: func() [][]float64 {
				out := f64(dData)
				pk := make([]float64, 11*7)
				for i := 0; i < 11; i++ {
					for j := 0; j < 7; j++ {
						out[i*9+1+j] = float64(sData[i*30+20+j])
						pk[i*7+j] = float64(sData[i*30+20+j])
					}
				}
				return [][]float64{out, pk}
			},
		})
	}

	// Embed: B=2, T=7, C=20, V=50, wte and wpe as strided views.
	{
		B, T, C, V := 2, 7, 20, 50
		wte, wpe := randVec(r, V*(C+2)), randVec(r, 9*(C+1))
		tokens := make([]int32, B*T)
		for i := range tokens {
			tokens[i] = int32(r.IntN(V))
		}
		ops = append(ops, oracle{
			name: "embed/B2_T7_C20",
			run: func(be backend.Backend) ([][]float32, error) {
				out := must(be.New(B*T, C))
				te := backend.Whole(must(be.Upload(wte, V, C+2))).ColSlice(1, C)
				pe := backend.Whole(must(be.Upload(wpe, 9, C+1))).ColSlice(0, C)
				err := be.Embed(out, te, pe, tokens, B, T)
				return [][]float32{download(be, out)}, err
			},
			ref: func() [][]float64 {
				out := make([]float64, B*T*C)
				for i := 0; i < B*T; i++ {
					for c := 0; c < C; c++ {
						out[i*C+c] = float64(wte[int(tokens[i])*(C+2)+1+c]) + float64(wpe[(i%T)*(C+1)+c])
					}
				}
				return [][]float64{out}
			},
		})
	}

	// Embed with an empty position-embedding view: no position embedding
	// (the forward pass embeds tokens and positions separately when
	// hook_embed / hook_pos_embed are watched; GPT-NeoX has no wpe).
	{
		B, T, C, V := 3, 5, 9, 31
		wte := randVec(r, V*(C+1))
		tokens := make([]int32, B*T)
		for i := range tokens {
			tokens[i] = int32(r.IntN(V))
		}
		ops = append(ops, oracle{
			name: "embed/no_wpe_B3_T5_C9",
			run: func(be backend.Backend) ([][]float32, error) {
				out := must(be.New(B*T, C))
				te := backend.Whole(must(be.Upload(wte, V, C+1))).ColSlice(1, C)
				err := be.Embed(out, te, backend.Mat{}, tokens, B, T)
				return [][]float32{download(be, out)}, err
			},
			ref: func() [][]float64 {
				out := make([]float64, B*T*C)
				for i := 0; i < B*T; i++ {
					for c := 0; c < C; c++ {
						out[i*C+c] = float64(wte[int(tokens[i])*(C+1)+1+c])
					}
				}
				return [][]float64{out}
			},
		})
	}

	// Attention: q, k, v are column slices of one fused [B*T, 3C] buffer;
	// z is columns [1, 1+C) of [B*T, C+2]. Global and local windows.
	for _, ac := range []struct {
		B, T, NH, HS, W int
		scale           float32
	}{
		{2, 7, 3, 5, 0, 1},
		{2, 7, 3, 5, 3, float32(1 / math.Sqrt(5))},
		{1, 37, 2, 40, 0, 0.125},
		{1, 7, 1, 70, 4, 0.1}, // 96 threads: three warps in the block reductions
	} {
		p := backend.AttnParams{B: ac.B, T: ac.T, NH: ac.NH, HS: ac.HS, Window: ac.W, Scale: ac.scale}
		C, BT := ac.NH*ac.HS, ac.B*ac.T
		qkv := randVec(r, BT*3*C)
		zData := randVec(r, BT*(C+2))
		refAttn := func() (z, pat, sc []float64) {
			z = f64(zData)
			pat = make([]float64, p.B*p.NH*p.T*p.T)
			sc = make([]float64, len(pat))
			for b := 0; b < p.B; b++ {
				for h := 0; h < p.NH; h++ {
					for i := 0; i < p.T; i++ {
						o := ((b*p.NH+h)*p.T + i) * p.T
						m := math.Inf(-1)
						for j := 0; j < p.T; j++ {
							sc[o+j] = math.Inf(-1)
							if j > i || (p.Window > 0 && i-j >= p.Window) {
								continue
							}
							s := 0.0
							for d := 0; d < p.HS; d++ {
								s += float64(qkv[(b*p.T+i)*3*C+h*p.HS+d]) * float64(qkv[(b*p.T+j)*3*C+C+h*p.HS+d])
							}
							sc[o+j] = float64(p.Scale) * s
							m = math.Max(m, sc[o+j])
						}
						sum := 0.0
						for j := 0; j < p.T; j++ {
							if !math.IsInf(sc[o+j], -1) {
								pat[o+j] = math.Exp(sc[o+j] - m)
								sum += pat[o+j]
							}
						}
						for d := 0; d < p.HS; d++ {
							z[(b*p.T+i)*(C+2)+1+h*p.HS+d] = 0
						}
						for j := 0; j < p.T; j++ {
							pat[o+j] /= sum
							for d := 0; d < p.HS; d++ {
								z[(b*p.T+i)*(C+2)+1+h*p.HS+d] += pat[o+j] * float64(qkv[(b*p.T+j)*3*C+2*C+h*p.HS+d])
							}
						}
					}
				}
			}
			return
		}
		ops = append(ops, oracle{
			name: fmt.Sprintf("attention/B%d_T%d_NH%d_HS%d_W%d", p.B, p.T, p.NH, p.HS, p.Window),
			run: func(be backend.Backend) ([][]float32, error) {
				f := backend.Whole(must(be.Upload(qkv, BT, 3*C)))
				z := must(be.Upload(zData, BT, C+2))
				pat := must(be.New(p.B, p.NH, p.T, p.T))
				sc := must(be.New(p.B, p.NH, p.T, p.T))
				err := be.Attention(backend.Whole(z).ColSlice(1, C), f.ColSlice(0, C), f.ColSlice(C, C), f.ColSlice(2*C, C), p, pat, sc)
				// Without the optional outputs, z must be the same.
				z2 := must(be.Upload(zData, BT, C+2))
				if err == nil {
					err = be.Attention(backend.Whole(z2).ColSlice(1, C), f.ColSlice(0, C), f.ColSlice(C, C), f.ColSlice(2*C, C), p, nil, nil)
				}
				return [][]float32{download(be, z), download(be, pat), download(be, sc), download(be, z2)}, err
			},
			ref: func() [][]float64 {
				z, pat, sc := refAttn()
				return [][]float64{z, pat, sc, z}
			},
		})
		// AttnApply with a dense random pattern (non-causal entries too:
		// the pattern is applied as given).
		patData := randVec(r, p.B*p.NH*p.T*p.T)
		ops = append(ops, oracle{
			name: fmt.Sprintf("attn_apply/B%d_T%d_NH%d_HS%d", p.B, p.T, p.NH, p.HS),
			run: func(be backend.Backend) ([][]float32, error) {
				f := backend.Whole(must(be.Upload(qkv, BT, 3*C)))
				z := must(be.Upload(zData, BT, C+2))
				err := be.AttnApply(backend.Whole(z).ColSlice(1, C), must(be.Upload(patData, p.B, p.NH, p.T, p.T)), f.ColSlice(2*C, C), p)
				return [][]float32{download(be, z)}, err
			},
			ref: func() [][]float64 {
				z := f64(zData)
				for b := 0; b < p.B; b++ {
					for h := 0; h < p.NH; h++ {
						for i := 0; i < p.T; i++ {
							for d := 0; d < p.HS; d++ {
								s := 0.0
								for j := 0; j < p.T; j++ {
									s += float64(patData[((b*p.NH+h)*p.T+i)*p.T+j]) * float64(qkv[(b*p.T+j)*3*C+2*C+h*p.HS+d])
								}
								z[(b*p.T+i)*(C+2)+1+h*p.HS+d] = s
							}
						}
					}
				}
				return [][]float64{z}
			},
		})
	}

	// AblateHeads / AblateRows: R=3 rows of T=4 tokens, NH=3, HS=5, strided z.
	{
		R, T, NH, HS := 3, 4, 3, 5
		D := NH * HS
		zData := randVec(r, R*T*(D+1))
		fill := randVec(r, T*D)
		keep := []uint8{1, 0, 1, 0, 0, 1, 1, 1, 0}
		for _, withFill := range []bool{false, true} {
			ops = append(ops, oracle{
				name: fmt.Sprintf("ablate_heads/fill%v", withFill),
				run: func(be backend.Backend) ([][]float32, error) {
					z := must(be.Upload(zData, R*T, D+1))
					var f backend.Tensor
					if withFill {
						f = must(be.Upload(fill, T, D))
					}
					err := be.AblateHeads(backend.Whole(z).ColSlice(1, D), keep, NH, T, f)
					return [][]float32{download(be, z)}, err
				},
				ref: func() [][]float64 {
					z := f64(zData)
					for r := 0; r < R; r++ {
						for h := 0; h < NH; h++ {
							if keep[r*NH+h] != 0 {
								continue
							}
							for t := 0; t < T; t++ {
								for d := 0; d < HS; d++ {
									v := 0.0
									if withFill {
										v = float64(fill[t*D+h*HS+d])
									}
									z[(r*T+t)*(D+1)+1+h*HS+d] = v
								}
							}
						}
					}
					return [][]float64{z}
				},
			})
		}
		C := 20
		xData := randVec(r, R*T*(C+3))
		fillR := randVec(r, T*C)
		keepR := []uint8{0, 1, 0}
		for _, withFill := range []bool{false, true} {
			ops = append(ops, oracle{
				name: fmt.Sprintf("ablate_rows/fill%v", withFill),
				run: func(be backend.Backend) ([][]float32, error) {
					x := must(be.Upload(xData, R*T, C+3))
					var f backend.Tensor
					if withFill {
						f = must(be.Upload(fillR, T, C))
					}
					err := be.AblateRows(backend.Whole(x).ColSlice(2, C), keepR, T, f)
					return [][]float32{download(be, x)}, err
				},
				ref: func() [][]float64 {
					x := f64(xData)
					for r := 0; r < R; r++ {
						if keepR[r] != 0 {
							continue
						}
						for t := 0; t < T; t++ {
							for c := 0; c < C; c++ {
								v := 0.0
								if withFill {
									v = float64(fillR[t*C+c])
								}
								x[(r*T+t)*(C+3)+2+c] = v
							}
						}
					}
					return [][]float64{x}
				},
			})
		}
	}

	// LogitStats: x [9, 20] (as columns of [9, 22]), wte [150, 20] (3 tiles
	// of 64, the last partial) and [70, 20] rows; repeated rows; G = 3.
	for _, V := range []int{150, 70} {
		R, C, G := 9, 20, 3
		xData := randVec(r, R*(C+2))
		for i := range xData {
			xData[i] *= 2 // logits of order 10: the max subtraction matters
		}
		wData := randVec(r, V*C)
		rows := []int32{8, 0, 3, 3, 5}
		idx := make([]int32, len(rows)*G)
		for i := range idx {
			idx[i] = int32(r.IntN(V))
		}
		idx[4] = int32(V - 1)
		ops = append(ops, oracle{
			name: fmt.Sprintf("logit_stats/V%d", V),
			run: func(be backend.Backend) ([][]float32, error) {
				x := backend.Whole(must(be.Upload(xData, R, C+2))).ColSlice(2, C)
				w := backend.Whole(must(be.Upload(wData, V, C)))
				lse, gath := make([]float32, len(rows)), make([]float32, len(idx))
				err := be.LogitStats(x, w, rows, idx, lse, gath)
				return [][]float32{lse, gath}, err
			},
			ref: func() [][]float64 {
				lse, gath := make([]float64, len(rows)), make([]float64, len(idx))
				for i, row := range rows {
					logits := make([]float64, V)
					m := math.Inf(-1)
					for v := 0; v < V; v++ {
						for c := 0; c < C; c++ {
							logits[v] += float64(xData[int(row)*(C+2)+2+c]) * float64(wData[v*C+c])
						}
						m = math.Max(m, logits[v])
					}
					s := 0.0
					for _, l := range logits {
						s += math.Exp(l - m)
					}
					lse[i] = m + math.Log(s)
					for g := 0; g < G; g++ {
						gath[i*G+g] = logits[idx[i*G+g]]
					}
				}
				return [][]float64{lse, gath}
			},
		})
	}
	ops = append(ops, neoxOracles()...)
	return ops
}
