// matmul.cu: c = a @ op(b) (+ bias) (+ c), fp32, strided views.
// a is (M,K) with row stride lda; op(b) is (K,N): b (K,N) stride ldb, or,
// when transB, b (N,K) stride ldb read transposed; c is (M,N) stride ldc;
// bias (N) or NULL. Pointers already include the views' offsets.
//
// Version 1 (this one): 64x64 output tile per block of 256 threads, k-slices
// of 16 through shared memory, each thread accumulates a 4x4 micro-tile in
// registers (rows ty+16i, cols tx+16j: conflict-free shared reads, coalesced
// stores), fp32 accumulation. Loads are bounds-checked and zero-filled, so any
// M, N, K and any strides work (no vector loads: views need not be aligned).
// Not yet measured on a GPU; expected well below cuBLAS (no double buffering,
// no tensor cores).
#include "common.cuh"
#include "matmul_tile.cuh"

extern "C" __global__ void __launch_bounds__(256)
matmul_f32(float* c, const float* a, const float* b, const float* bias, int M, int N, int K, int lda, int ldb,
	   int ldc, int transB, int accumulate) {
	__shared__ float As[MM_BK][MM_BM + 4];
	__shared__ float Bs[MM_BK][MM_BN + 4];
	float acc[4][4];
	int m0 = blockIdx.y * MM_BM, n0 = blockIdx.x * MM_BN;
	mm_tile(acc, As, Bs, a, b, nullptr, M, N, K, lda, ldb, transB, m0, n0);
	int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
	for (int i = 0; i < 4; i++) {
		int row = m0 + ty + 16 * i;
		if (row >= M) continue;
		for (int j = 0; j < 4; j++) {
			int col = n0 + tx + 16 * j;
			if (col >= N) continue;
			float v = acc[i][j];
			if (bias) v += bias[col];
			float* p = c + (size_t)row * ldc + col;
			if (accumulate) v += *p;
			*p = v;
		}
	}
}
