//go:build openblas && cgo

package cpu

/*
#cgo LDFLAGS: -lopenblas
// Declared here rather than through cblas.h so the build needs only the
// library (Debian's libopenblas-dev), whatever header layout it ships.
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(int order, int transA, int transB, int M, int N, int K,
                 float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
void openblas_set_num_threads(int n);
*/
import "C"

import (
	goruntime "runtime"
	"unsafe"
)

const blasName = "openblas"

func init() { setBLASThreads(goruntime.GOMAXPROCS(0)) }

func setBLASThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// sgemm: c[M,N] = a[M,K] @ op(b) + beta*c, row-major with leading dimensions.
// One cgo call per product; OpenBLAS threads it internally.
func sgemm(be *Backend, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	tb := C.int(C.CblasNoTrans)
	if transB {
		tb = C.CblasTrans
	}
	C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, tb, C.int(M), C.int(N), C.int(K), 1,
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}
