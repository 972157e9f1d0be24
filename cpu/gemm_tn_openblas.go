//go:build openblas && cgo

package cpu

/*
#cgo LDFLAGS: -lopenblas
enum { CblasRowMajorTN = 101, CblasNoTransTN = 111, CblasTransTN = 112 };
void cblas_sgemm(int order, int transA, int transB, int M, int N, int K,
                 float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
void openblas_set_num_threads(int n);

static void ns_sgemm_tn(int threads, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
	openblas_set_num_threads(threads);
	cblas_sgemm(CblasRowMajorTN, CblasTransTN, CblasNoTransTN, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
}
*/
import "C"

import "unsafe"

// sgemmTN: c[M,N] = a^T @ b + beta*c with a [K,M] (leading dimension lda) and b [K,N].
func sgemmTN(be *Backend, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.ns_sgemm_tn(C.int(be.threads), C.int(M), C.int(N), C.int(K),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}
