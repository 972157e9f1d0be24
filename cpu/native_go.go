//go:build !(openblas && cgo)

package cpu

const nativeKernels = false

func geluRows(x []float32, rows, cols, stride int) { geluRowsGo(x, rows, cols, stride) }

func attnHeads(a *attnArgs, lo, hi int, prob []float32) { attnHeadsGo(a, lo, hi, prob) }

func lseRow(row []float32) float32 { return lseRowGo(row) }
