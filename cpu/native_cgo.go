//go:build openblas && cgo

package cpu

/*
#cgo CFLAGS: -O3 -fopenmp
#cgo LDFLAGS: -lm -fopenmp
#include "native.h"
*/
import "C"

import (
	"math"
	"unsafe"
)

// nativeKernels: the build that links OpenBLAS also compiles the elementwise
// kernels in native.c, which GCC vectorises (AVX2+FMA where the CPU has it,
// chosen at run time); scalar Go runs GELU at about 5 ns a value, a tenth of
// a forward pass at batch 1.
const nativeKernels = true

func geluRows(x []float32, rows, cols, stride int) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = x[(rows-1)*stride+cols-1] // bounds, as the Go kernel would check
	C.ns_gelu_new_rows((*C.float)(unsafe.Pointer(&x[0])), C.long(rows), C.long(cols), C.long(stride))
}

func geluErfRows(x []float32, rows, cols, stride int) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = x[(rows-1)*stride+cols-1]
	C.ns_gelu_erf_rows((*C.float)(unsafe.Pointer(&x[0])), C.long(rows), C.long(cols), C.long(stride))
}

// attnHeads: the native kernel keeps scratch of its own; prob is the Go
// kernel's.
func attnHeads(a *attnArgs, lo, hi int, _ []float32) {
	if lo >= hi || a.T == 0 || a.HS == 0 {
		return
	}
	var pattern, scores *C.float
	if a.pattern != nil {
		pattern = (*C.float)(unsafe.Pointer(&a.pattern[0]))
	}
	if a.scores != nil {
		scores = (*C.float)(unsafe.Pointer(&a.scores[0]))
	}
	C.ns_attn_heads((*C.float)(unsafe.Pointer(&a.q[0])), (*C.float)(unsafe.Pointer(&a.k[0])),
		(*C.float)(unsafe.Pointer(&a.v[0])), (*C.float)(unsafe.Pointer(&a.z[0])),
		C.long(a.qs), C.long(a.ks), C.long(a.vs), C.long(a.zs), C.long(a.T), C.long(a.HS), C.long(a.NH),
		C.long(a.window), C.float(a.scale), pattern, scores, C.long(lo), C.long(hi))
}

func lseRow(row []float32) float32 {
	if len(row) == 0 {
		return float32(math.Inf(-1))
	}
	return float32(C.ns_lse_row((*C.float)(unsafe.Pointer(&row[0])), C.long(len(row))))
}

func layerNormRows(out []float32, os int, x []float32, xs int, w, b []float32, rows int, eps float32) {
	nc := len(w)
	if rows == 0 || nc == 0 {
		return
	}
	_, _ = x[(rows-1)*xs+nc-1], out[(rows-1)*os+nc-1] // bounds, as the Go kernel would check
	C.ns_layernorm_rows((*C.float)(unsafe.Pointer(&out[0])), C.long(os), (*C.float)(unsafe.Pointer(&x[0])), C.long(xs),
		(*C.float)(unsafe.Pointer(&w[0])), (*C.float)(unsafe.Pointer(&b[0])), C.long(rows), C.long(nc), C.float(eps))
}

func fptr(x []float32) *C.float { return (*C.float)(unsafe.Pointer(&x[0])) }

func geluBackPar(threads int, dx []float32, dxs int, dy []float32, dys int, pre []float32, ps int, rows, cols int, erf bool) {
	if rows == 0 || cols == 0 {
		return
	}
	_, _, _ = dx[(rows-1)*dxs+cols-1], dy[(rows-1)*dys+cols-1], pre[(rows-1)*ps+cols-1]
	e := C.int(0)
	if erf {
		e = 1
	}
	C.ns_gelu_back_par(fptr(dx), C.long(dxs), fptr(dy), C.long(dys), fptr(pre), C.long(ps), C.long(rows), C.long(cols), C.int(threads), e)
}

func lnBackPar(threads int, dx []float32, dxs int, dout []float32, gs int, x []float32, xs int, w, stats []float32, mean, rstd []float64, rows int, eps float32, accumulate bool, sum []float32, ss int) {
	nc := len(w)
	if rows == 0 || nc == 0 {
		return
	}
	_, _, _ = dx[(rows-1)*dxs+nc-1], dout[(rows-1)*gs+nc-1], x[(rows-1)*xs+nc-1]
	var st *C.float
	var mp, rp *C.double
	if stats != nil {
		_ = stats[2*rows-1]
		st = fptr(stats)
	} else {
		_, _ = mean[rows-1], rstd[rows-1]
		mp, rp = (*C.double)(unsafe.Pointer(&mean[0])), (*C.double)(unsafe.Pointer(&rstd[0]))
	}
	acc := C.int(0)
	if accumulate {
		acc = 1
	}
	var sp *C.float
	if sum != nil {
		_ = sum[(rows-1)*ss+nc-1]
		sp = fptr(sum)
	}
	C.ns_layernorm_back_par(fptr(dx), C.long(dxs), fptr(dout), C.long(gs), fptr(x), C.long(xs), fptr(w), st, mp, rp,
		C.long(rows), C.long(nc), C.float(eps), acc, sp, C.long(ss), C.int(threads))
}

func xentBackPar(threads int, logits []float32, stride, rows, V int, targets []int32, scale float32, loss []float64) {
	if rows == 0 || V == 0 {
		return
	}
	_, _ = logits[(rows-1)*stride+V-1], targets[rows-1]
	var lp *C.double
	if loss != nil {
		_ = loss[rows-1]
		lp = (*C.double)(unsafe.Pointer(&loss[0]))
	}
	C.ns_xent_back_par(fptr(logits), C.long(stride), C.long(rows), C.long(V), (*C.int)(unsafe.Pointer(&targets[0])),
		C.float(scale), lp, C.int(threads))
}

func attnBackPar(threads int, a *attnBackArgs, n int) {
	if n == 0 || a.T == 0 || a.HS == 0 {
		return
	}
	C.ns_attn_back_par(fptr(a.dq), fptr(a.dk), fptr(a.dv), fptr(a.dz), fptr(a.q), fptr(a.k), fptr(a.v),
		C.long(a.dqs), C.long(a.dks), C.long(a.dvs), C.long(a.dzs), C.long(a.qs), C.long(a.ks), C.long(a.vs),
		C.long(a.T), C.long(a.HS), C.long(a.NH), C.long(a.window), C.float(a.scale), C.long(n), C.int(threads))
}

func colSumPar(threads int, out, x []float32, xs, rows, cols int, accumulate bool) {
	if rows == 0 || cols == 0 {
		return
	}
	_, _ = out[cols-1], x[(rows-1)*xs+cols-1]
	acc := C.int(0)
	if accumulate {
		acc = 1
	}
	C.ns_colsum_par(fptr(out), fptr(x), C.long(xs), C.long(rows), C.long(cols), acc, C.int(threads))
}

func lnParamPar(threads int, dw, db, x []float32, xs int, g []float32, gs int, mean, rstd []float64, rows, cols int) {
	if rows == 0 || cols == 0 || (dw == nil && db == nil) {
		return
	}
	_, _, _, _ = x[(rows-1)*xs+cols-1], g[(rows-1)*gs+cols-1], mean[rows-1], rstd[rows-1]
	var dwp, dbp *C.float
	if dw != nil {
		_ = dw[cols-1]
		dwp = fptr(dw)
	}
	if db != nil {
		_ = db[cols-1]
		dbp = fptr(db)
	}
	C.ns_ln_param_par(dwp, dbp, fptr(x), C.long(xs), fptr(g), C.long(gs), (*C.double)(unsafe.Pointer(&mean[0])),
		(*C.double)(unsafe.Pointer(&rstd[0])), C.long(rows), C.long(cols), C.int(threads))
}

// expD is the native kernels' double e^x, for TestExpD.
func expD(x float64) float64 { return float64(C.ns_exp_d_test(C.double(x))) }
