//go:build !(openblas && cgo)

package cpu

import "math"

const nativeKernels = false

func geluRows(x []float32, rows, cols, stride int) { geluRowsGo(x, rows, cols, stride) }

func geluErfRows(x []float32, rows, cols, stride int) { geluErfRowsGo(x, rows, cols, stride) }

func attnHeads(a *attnArgs, lo, hi int, prob []float32) { attnHeadsGo(a, lo, hi, prob) }

func lseRow(row []float32) float32 { return lseRowGo(row) }

func layerNormRows(out []float32, os int, x []float32, xs int, w, b []float32, rows int, eps float32) {
	layerNormRowsGo(out, os, x, xs, w, b, rows, eps)
}

func geluBackPar(threads int, dx []float32, dxs int, dy []float32, dys int, pre []float32, ps int, rows, cols int, erf bool) {
	k := geluBackRowsGo
	if erf {
		k = geluErfBackRowsGo
	}
	parallelN(threads, rows, func(lo, hi int) {
		k(dx[lo*dxs:], dxs, dy[lo*dys:], dys, pre[lo*ps:], ps, hi-lo, cols)
	})
}

func lnBackPar(threads int, dx []float32, dxs int, dout []float32, gs int, x []float32, xs int, w, stats []float32, mean, rstd []float64, rows int, eps float32, accumulate bool, sum []float32, ss int) {
	parallelN(threads, rows, func(lo, hi int) {
		if sum != nil {
			C := len(w)
			for r := lo; r < hi; r++ {
				s, d := sum[r*ss:r*ss+C], dout[r*gs:r*gs+C]
				for j := range s {
					s[j] += d[j]
				}
			}
		}
		var st []float32
		var mu, rs []float64
		if stats != nil {
			st = stats[2*lo : 2*hi]
		} else {
			mu, rs = mean[lo:hi], rstd[lo:hi]
		}
		lnBackRowsGo(dx[lo*dxs:], dxs, dout[lo*gs:], gs, x[lo*xs:], xs, w, st, mu, rs, hi-lo, eps, accumulate)
	})
}

func xentBackPar(threads int, logits []float32, stride, rows, V int, targets []int32, scale float32, loss []float64) {
	parallelN(threads, rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := logits[r*stride : r*stride+V]
			l := 0.0
			if targets[r] < 0 {
				clear(row)
			} else {
				l = xentBackRowGo(row, int(targets[r]), scale)
			}
			if loss != nil {
				loss[r] = l
			}
		}
	})
}

func attnBackPar(threads int, a *attnBackArgs, n int) {
	parallelN(threads, n, func(lo, hi int) { attnBackHeadsGo(a, lo, hi, make([]float64, 2*a.T)) })
}

func colSumPar(threads int, out, x []float32, xs, rows, cols int, accumulate bool) {
	parallelN(threads, cols, func(lo, hi int) { colSumColsGo(out, x, xs, rows, lo, hi, accumulate) })
}

func lnParamPar(threads int, dw, db, x []float32, xs int, g []float32, gs int, mean, rstd []float64, rows, cols int) {
	parallelN(threads, cols, func(lo, hi int) { lnParamColsGo(dw, db, x, xs, g, gs, mean, rstd, rows, lo, hi) })
}

func expD(x float64) float64 { return math.Exp(x) }
