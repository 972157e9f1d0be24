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

func geluBackRows(dx []float32, dxs int, dy []float32, dys int, pre []float32, ps int, rows, cols int) {
	geluBackRowsGo(dx, dxs, dy, dys, pre, ps, rows, cols)
}

func geluErfBackRows(dx []float32, dxs int, dy []float32, dys int, pre []float32, ps int, rows, cols int) {
	geluErfBackRowsGo(dx, dxs, dy, dys, pre, ps, rows, cols)
}

func lnBackRows(dx []float32, dxs int, dout []float32, gs int, x []float32, xs int, w, stats []float32, mean, rstd []float64, rows int, eps float32, accumulate bool) {
	lnBackRowsGo(dx, dxs, dout, gs, x, xs, w, stats, mean, rstd, rows, eps, accumulate)
}

func xentBackRow(row []float32, t int, scale float32) float64 { return xentBackRowGo(row, t, scale) }

func attnBackHeads(a *attnBackArgs, lo, hi int, scratch []float64) {
	attnBackHeadsGo(a, lo, hi, scratch)
}

func expD(x float64) float64 { return math.Exp(x) }
