//go:build !(openblas && cgo)

package cpu

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

const blasName = "gonum"

var impl gonum.Implementation

func setBLASThreads(n int) {}

// sgemm: c[M,N] = a[M,K] @ op(b) + beta*c, row-major with leading dimensions.
func sgemm(be *Backend, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	tb := blas.NoTrans
	if transB {
		tb = blas.Trans
	}
	impl.Sgemm(blas.NoTrans, tb, M, N, K, 1, a, lda, b, ldb, beta, c, ldc)
}
