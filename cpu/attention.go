package cpu

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/neoscope/neoscope/runtime/backend"
)

// gemv is gonum's pure-Go BLAS, whose float32 gemv runs on SSE assembly on
// amd64: the attention inner products (64-long rows of q, k, v) are too
// small for a cgo call each and too many for scalar Go.
var gemv gonum.Implementation

func checkAttn(z, q, k, v backend.Mat, p backend.AttnParams) {
	C := p.NH * p.HS
	for _, m := range []backend.Mat{z, q, k, v} {
		if m.Rows != p.B*p.T || m.Cols != C {
			panic(fmt.Sprintf("backend: attention: view %dx%d, want %dx%d", m.Rows, m.Cols, p.B*p.T, C))
		}
	}
}

// Attention: one task per (row b, head h). q, k, v, z are [B*T, NH*HS] views.
func (be *Backend) Attention(z, q, k, v backend.Mat, p backend.AttnParams, pattern, scores backend.Tensor) error {
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
func (be *Backend) AttnApply(z backend.Mat, pattern backend.Tensor, v backend.Mat, p backend.AttnParams) error {
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

func (be *Backend) AblateHeads(z backend.Mat, keep []uint8, NH, T int, fill backend.Tensor) error {
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

func (be *Backend) AblateRows(x backend.Mat, keep []uint8, T int, fill backend.Tensor) error {
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

// LogitStats unembeds at most logitRows rows x logitCols vocabulary
// entries at a time (512 x 8192 floats = 16.8 MB of scratch), combining the
// vocabulary tiles' log-sum-exps in float64, so memory stays flat however
// many rows a sweep pass selects, and OpenBLAS packs each unembedding tile
// once for up to 512 rows. (128-row chunks over the whole vocabulary were
// about 4% slower at 32 x 64 with --output loss, within the noise for
// sweeps.) Variables so tests can force many small tiles.
var logitRows, logitCols = 512, 8192

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

func (be *Backend) LogitStats(x backend.Mat, wte backend.Mat, rows []int32, idx []int32, lse, gathered []float32) error {
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
	for _, r := range rows {
		if r < 0 || int(r) >= x.Rows {
			return fmt.Errorf("backend: logit stats: row %d out of %d", r, x.Rows)
		}
	}
	for i, id := range idx {
		if id < 0 || int(id) >= V {
			gathered[i] = float32(math.NaN())
		}
	}
	if len(rows) == 0 || V == 0 {
		for i := range lse {
			lse[i] = float32(math.Inf(-1))
		}
		return nil
	}
	R, W := min(logitRows, len(rows)), min(logitCols, V)
	bt, err := be.New(R * W)
	if err != nil {
		return err
	}
	defer be.Free(bt)
	buf := host(bt)
	xd, wd := view(x), view(wte)
	xs := make([]float32, R*C)
	acc := make([]float64, R) // log-sum-exp over the tiles so far
	for r0 := 0; r0 < len(rows); r0 += R {
		n := min(R, len(rows)-r0)
		for i := 0; i < n; i++ {
			copy(xs[i*C:(i+1)*C], xd[int(rows[r0+i])*x.Stride:][:C])
		}
		for i := range acc[:n] {
			acc[i] = math.Inf(-1)
		}
		for v0 := 0; v0 < V; v0 += W {
			w := min(W, V-v0)
			sgemm(be, true, n, w, C, xs[:n*C], C, wd[v0*wte.Stride:], wte.Stride, 0, buf[:n*w], w)
			be.parallel(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					row := buf[i*w : (i+1)*w]
					acc[i] = logAddExp(acc[i], float64(lseRow(row)))
					for g, id := range idx[(r0+i)*G : (r0+i+1)*G] {
						if int(id) >= v0 && int(id) < v0+w {
							gathered[(r0+i)*G+g] = row[int(id)-v0]
						}
					}
				}
			})
		}
		for i := 0; i < n; i++ {
			lse[r0+i] = float32(acc[i])
		}
	}
	return nil
}

// logAddExp is log(e^a + e^b) in float64.
func logAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}
