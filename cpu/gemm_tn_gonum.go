//go:build !(openblas && cgo)

package cpu

import "gonum.org/v1/gonum/blas"

// sgemmTN: c[M,N] = a^T @ b + beta*c with a [K,M] (leading dimension lda) and b [K,N].
func sgemmTN(be *Backend, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl.Sgemm(blas.Trans, blas.NoTrans, M, N, K, 1, a, lda, b, ldb, beta, c, ldc)
}
