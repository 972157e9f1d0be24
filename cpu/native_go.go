//go:build !(openblas && cgo)

package cpu

const nativeKernels = false

func geluRows(x []float32, rows, cols, stride int) { geluRowsGo(x, rows, cols, stride) }

func geluErfRows(x []float32, rows, cols, stride int) { geluErfRowsGo(x, rows, cols, stride) }

func attnHeads(a *attnArgs, lo, hi int, prob []float32) { attnHeadsGo(a, lo, hi, prob) }

func lseRow(row []float32) float32 { return lseRowGo(row) }

func layerNormRows(out []float32, os int, x []float32, xs int, w, b []float32, rows int, eps float32) {
	layerNormRowsGo(out, os, x, xs, w, b, rows, eps)
}
