package cpu

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	nsrt "github.com/neoscope/neoscope/runtime"
)

// gemv is gonum's pure-Go BLAS, whose float32 gemv runs on SSE assembly on
// amd64: the attention inner products (64-long rows of q, k, v) are too
// small for a cgo call each and too many for scalar Go.
var gemv gonum.Implementation

func checkAttn(z, q, k, v nsrt.Mat, p nsrt.AttnParams) {
	C := p.NH * p.HS
	for _, m := range []nsrt.Mat{z, q, k, v} {
		if m.Rows != p.B*p.T || m.Cols != C {
			panic(fmt.Sprintf("backend: attention: view %dx%d, want %dx%d", m.Rows, m.Cols, p.B*p.T, C))
		}
	}
}

// Attention: one task per (row b, head h). q, k, v, z are [B*T, NH*HS] views.
func (be *Backend) Attention(z, q, k, v nsrt.Mat, p nsrt.AttnParams, pattern, scores nsrt.Tensor) error {
	checkAttn(z, q, k, v, p)
	T, HS, NH := p.T, p.HS, p.NH
	zd, qd, kd, vd := view(z), view(q), view(k), view(v)
	var pd, sd []float32
	if pattern != nil {
		pd = host(pattern)
		if len(pd) != p.B*NH*T*T {
			panic("backend: attention: pattern must be [B,NH,T,T]")
		}
	}
	if scores != nil {
		sd = host(scores)
		if len(sd) != p.B*NH*T*T {
			panic("backend: attention: scores must be [B,NH,T,T]")
		}
	}
	a := attnArgs{q: qd, k: kd, v: vd, z: zd, qs: q.Stride, ks: k.Stride, vs: v.Stride, zs: z.Stride,
		T: T, HS: HS, NH: NH, window: p.Window, scale: p.Scale, pattern: pd, scores: sd}
	be.parallel(p.B*NH, func(lo, hi int) {
		attnHeads(&a, lo, hi, make([]float32, T))
	})
	return nil
}

// attnArgs: the operands of attnHeads, q/k/v/z row-major with row strides
// qs..zs (head h of row r at r*stride + h*HS); pattern and scores, when not
// nil, are [B,NH,T,T] and receive the probabilities and the pre-softmax
// scores (-Inf where masked).
type attnArgs struct {
	q, k, v, z        []float32
	qs, ks, vs, zs    int
	T, HS, NH, window int
	scale             float32
	pattern, scores   []float32
}

// attnHeadsGo is causal (and, with window > 0, local) attention for the
// (row, head) pairs bh in [lo, hi): query i sees keys j with
// i-window < j <= i; prob is T floats of scratch. The pure-Go kernel, and
// the reference the native one is tested against.
func attnHeadsGo(a *attnArgs, lo, hi int, prob []float32) {
	T, HS, NH := a.T, a.HS, a.NH
	negInf := float32(math.Inf(-1))
	for bh := lo; bh < hi; bh++ {
		b, h := bh/NH, bh%NH
		for i := 0; i < T; i++ {
			j0 := 0
			if a.window > 0 && i-a.window+1 > 0 {
				j0 = i - a.window + 1
			}
			qi := a.q[(b*T+i)*a.qs+h*HS:][:HS]
			// Scores of the visible keys j0..i: K[j0:i+1] q_i (gonum's SIMD gemv).
			n := i - j0 + 1
			gemv.Sgemv(blas.NoTrans, n, HS, a.scale, a.k[(b*T+j0)*a.ks+h*HS:], a.ks, qi, 1, 0, prob[j0:i+1], 1)
			maxv := negInf
			for _, s := range prob[j0 : i+1] {
				maxv = max(maxv, s)
			}
			if a.scores != nil {
				row := a.scores[(bh*T+i)*T:][:T]
				for j := range row {
					row[j] = negInf
				}
				copy(row[j0:i+1], prob[j0:i+1])
			}
			var sum float32
			for j := j0; j <= i; j++ {
				e := exp32(prob[j] - maxv)
				prob[j] = e
				sum += e
			}
			inv := 1 / sum
			for j := j0; j <= i; j++ {
				prob[j] *= inv
			}
			// z_i = V[j0:i+1]^T p.
			gemv.Sgemv(blas.Trans, n, HS, 1, a.v[(b*T+j0)*a.vs+h*HS:], a.vs, prob[j0:i+1], 1, 0, a.z[(b*T+i)*a.zs+h*HS:][:HS], 1)
			if a.pattern != nil {
				row := a.pattern[(bh*T+i)*T:][:T]
				clear(row)
				copy(row[j0:i+1], prob[j0:i+1])
			}
		}
	}
}

// AttnApply: z = pattern @ v per (row, head), pattern [B,NH,T,T].
func (be *Backend) AttnApply(z nsrt.Mat, pattern nsrt.Tensor, v nsrt.Mat, p nsrt.AttnParams) error {
	checkAttn(z, v, v, v, p)
	T, HS, NH := p.T, p.HS, p.NH
	zd, vd, pd := view(z), view(v), host(pattern)
	if len(pd) != p.B*NH*T*T {
		panic("backend: attn apply: pattern must be [B,NH,T,T]")
	}
	be.parallel(p.B*NH, func(lo, hi int) {
		acc := make([]float32, HS)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			for i := 0; i < T; i++ {
				clear(acc)
				row := pd[(bh*T+i)*T:][:T]
				for j, pj := range row {
					if pj == 0 {
						continue
					}
					vj := vd[(b*T+j)*v.Stride+h*HS:][:HS]
					for d, x := range vj {
						acc[d] += pj * x
					}
				}
				copy(zd[(b*T+i)*z.Stride+h*HS:][:HS], acc)
			}
		}
	})
	return nil
}

func (be *Backend) AblateHeads(z nsrt.Mat, keep []uint8, NH, T int, fill nsrt.Tensor) error {
	if z.Cols%NH != 0 || z.Rows%T != 0 || len(keep) != z.Rows/T*NH {
		panic(fmt.Sprintf("backend: ablate heads: z %dx%d, NH=%d T=%d, keep %d", z.Rows, z.Cols, NH, T, len(keep)))
	}
	HS := z.Cols / NH
	zd := view(z)
	var fd []float32
	if fill != nil {
		fd = host(fill)
		if len(fd) != T*z.Cols {
			panic("backend: ablate heads: fill must be [T, NH*HS]")
		}
	}
	for r := 0; r < z.Rows/T; r++ {
		for h := 0; h < NH; h++ {
			if keep[r*NH+h] != 0 {
				continue
			}
			for t := 0; t < T; t++ {
				dst := zd[(r*T+t)*z.Stride+h*HS:][:HS]
				if fd == nil {
					clear(dst)
				} else {
					copy(dst, fd[t*z.Cols+h*HS:][:HS])
				}
			}
		}
	}
	return nil
}

func (be *Backend) AblateRows(x nsrt.Mat, keep []uint8, T int, fill nsrt.Tensor) error {
	if x.Rows%T != 0 || len(keep) != x.Rows/T {
		panic(fmt.Sprintf("backend: ablate rows: x %dx%d, T=%d, keep %d", x.Rows, x.Cols, T, len(keep)))
	}
	xd := view(x)
	var fd []float32
	if fill != nil {
		fd = host(fill)
		if len(fd) != T*x.Cols {
			panic("backend: ablate rows: fill must be [T, C]")
		}
	}
	for r, k := range keep {
		if k != 0 {
			continue
		}
		for t := 0; t < T; t++ {
			dst := xd[(r*T+t)*x.Stride:][:x.Cols]
			if fd == nil {
				clear(dst)
			} else {
				copy(dst, fd[t*x.Cols:][:x.Cols])
			}
		}
	}
	return nil
}

// logitChunk is how many rows LogitStats unembeds at once: [logitChunk, V]
// scratch (128 x 50257 floats = 25.7 MB for GPT-2's vocabulary; fewer rows
// make the unembedding product measurably less efficient).
const logitChunk = 128

// lseRowGo is log(sum(exp(row))) of one row of logits: the maximum, then
// exp32 of the differences summed in blocks of 256 in float32, the blocks
// in float64. The pure-Go kernel; lseRow is this build's.
func lseRowGo(row []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range row {
		if v > m {
			m = v
		}
	}
	var s float64
	for b0 := 0; b0 < len(row); b0 += 256 {
		var bs float32
		for _, v := range row[b0:min(b0+256, len(row))] {
			bs += exp32(v - m)
		}
		s += float64(bs)
	}
	return m + float32(math.Log(s))
}

func (be *Backend) LogitStats(x nsrt.Mat, wte nsrt.Mat, rows []int32, idx []int32, lse, gathered []float32) error {
	if len(lse) != len(rows) {
		panic("backend: logit stats: lse must have one entry per selected row")
	}
	G := 0
	if len(rows) > 0 {
		G = len(idx) / len(rows)
	}
	if len(idx) != G*len(rows) || len(gathered) != len(idx) {
		panic("backend: logit stats: idx and gathered must have G entries per row")
	}
	V, C := wte.Rows, wte.Cols
	xd := view(x)
	bt, err := be.New(min(logitChunk, len(rows)) * V)
	if err != nil {
		return err
	}
	defer be.Free(bt)
	buf := host(bt)
	xs := make([]float32, min(logitChunk, len(rows))*C)
	for c0 := 0; c0 < len(rows); c0 += logitChunk {
		n := min(logitChunk, len(rows)-c0)
		for i := 0; i < n; i++ {
			r := int(rows[c0+i])
			if r < 0 || r >= x.Rows {
				return fmt.Errorf("backend: logit stats: row %d out of %d", r, x.Rows)
			}
			copy(xs[i*C:(i+1)*C], xd[r*x.Stride:])
		}
		sgemm(be, true, n, V, C, xs[:n*C], C, view(wte), wte.Stride, 0, buf[:n*V], V)
		be.parallel(n, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := buf[i*V : (i+1)*V]
				lse[c0+i] = lseRow(row)
				for g := 0; g < G; g++ {
					id := idx[(c0+i)*G+g]
					if id < 0 || int(id) >= V {
						gathered[(c0+i)*G+g] = float32(math.NaN())
						continue
					}
					gathered[(c0+i)*G+g] = row[id]
				}
			}
		})
	}
	return nil
}
