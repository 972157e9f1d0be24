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
	SHARED(float, As, [MM_BK][MM_BM + 4]);
	SHARED(float, Bs, [MM_BK][MM_BN + 4]);
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

// Version 2, matmul_f32_big: 128x128 output tile per block of 256 threads,
// k-slices of 8, each thread an 8x8 register micro-tile (rows ty*4+i and
// 64+ty*4+i, columns tx*4+j and 64+tx*4+j), shared-memory operands read as
// float4 (4 shared loads per 64 FMAs instead of 8 per 16 in version 1).
// Same arguments and semantics as matmul_f32. The backend uses it when the
// grid has enough 128x128 tiles to fill the GPU (see cuda/backend.go).
// Not yet measured on a GPU.
#define MB_BM 128
#define MB_BN 128
#define MB_BK 8

extern "C" __global__ void __launch_bounds__(256)
matmul_f32_big(float* c, const float* a, const float* b, const float* bias, int M, int N, int K, int lda, int ldb,
	       int ldc, int transB, int accumulate) {
	// +4 padding: conflict-free transposed stores; rows stay 16-byte aligned.
	SHARED(float, As, [MB_BK][MB_BM + 4]);
	SHARED(float, Bs, [MB_BK][MB_BN + 4]);
	int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
	int m0 = blockIdx.y * MB_BM, n0 = blockIdx.x * MB_BN;
	float acc[8][8];
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
	for (int k0 = 0; k0 < K; k0 += MB_BK) {
		for (int e = tid; e < MB_BM * MB_BK; e += 256) {
			int r = e / MB_BK, kk = e % MB_BK;
			int row = m0 + r, k = k0 + kk;
			As[kk][r] = (row < M && k < K) ? a[(size_t)row * lda + k] : 0.0f;
		}
		for (int e = tid; e < MB_BK * MB_BN; e += 256) {
			int kk, cc;
			mm_b_coords(e, MB_BK, MB_BN, transB, kk, cc);
			Bs[kk][cc] = mm_b_at(b, ldb, transB, k0 + kk, n0 + cc, K, N);
		}
		__syncthreads();
		for (int kk = 0; kk < MB_BK; kk++) {
			float4 a0 = *reinterpret_cast<const float4*>(&As[kk][ty * 4]);
			float4 a1 = *reinterpret_cast<const float4*>(&As[kk][64 + ty * 4]);
			float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * 4]);
			float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][64 + tx * 4]);
			float ar[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
			float br[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
			for (int i = 0; i < 8; i++)
				for (int j = 0; j < 8; j++) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
		}
		__syncthreads();
	}
	for (int i = 0; i < 8; i++) {
		int row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
		if (row >= M) continue;
		for (int j = 0; j < 8; j++) {
			int col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
			if (col >= N) continue;
			float v = acc[i][j];
			if (bias) v += bias[col];
			float* p = c + (size_t)row * ldc + col;
			if (accumulate) v += *p;
			*p = v;
		}
	}
}
