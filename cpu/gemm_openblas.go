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

// With OpenBLAS's OpenMP build (libopenblas0-openmp) the thread count is
// per OS thread: a call arriving on another of Go's threads would fall back
// to every core, ignoring --threads and changing the last bits of results
// from run to run (openblas_get_num_threads reports the global setting, not
// this thread's, so it cannot tell). So each product sets it, on the thread
// that runs it; the call costs nanoseconds.
static void ns_sgemm(int threads, int transB, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
	openblas_set_num_threads(threads);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, transB, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
}
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
	C.ns_sgemm(C.int(be.threads), tb, C.int(M), C.int(N), C.int(K),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}
