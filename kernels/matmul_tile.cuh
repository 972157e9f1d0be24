// matmul_tile.cuh: the shared-memory tile loop used by matmul.cu and
// logit_stats.cu. Block of 256 threads (16x16); output tile MM_BM x MM_BN at
// (m0, n0); thread (ty, tx) = (tid/16, tid%16) owns rows m0+ty+16i and
// columns n0+tx+16j, i, j < 4.
#pragma once
#include "common.cuh"

#define MM_BM 64
#define MM_BN 64
#define MM_BK 16

// mm_tile accumulates acc = a[rows] @ op(b)[:, n0:n0+64] over all of K.
// rowidx, when non-NULL, maps tile row r to the row of a to read
// (rowidx[m0+r]); rows >= M read as zero.
__device__ __forceinline__ void mm_tile(float acc[4][4], float (*As)[MM_BM + 4], float (*Bs)[MM_BN + 4],
					const float* a, const float* b, const int* rowidx, int M, int N, int K,
					int lda, int ldb, int transB, int m0, int n0) {
	int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
	for (int k0 = 0; k0 < K; k0 += MM_BK) {
		// A slice: 64 rows x 16 k; consecutive threads read consecutive k.
		for (int e = tid; e < MM_BM * MM_BK; e += 256) {
			int r = e / MM_BK, kk = e % MM_BK;
			int row = m0 + r, k = k0 + kk;
			float v = 0.0f;
			if (row < M && k < K) {
				size_t ar = rowidx ? (size_t)rowidx[row] : (size_t)row;
				v = a[ar * lda + k];
			}
			As[kk][r] = v;
		}
		// B slice: 16 k x 64 n, coalesced along the contiguous dimension.
		for (int e = tid; e < MM_BK * MM_BN; e += 256) {
			int kk, cc;
			mm_b_coords(e, MM_BK, MM_BN, transB, kk, cc);
			Bs[kk][cc] = mm_b_at(b, ldb, transB, k0 + kk, n0 + cc, K, N);
		}
		__syncthreads();
		for (int kk = 0; kk < MM_BK; kk++) {
			float ar[4], br[4];
			for (int i = 0; i < 4; i++) ar[i] = As[kk][ty + 16 * i];
			for (int j = 0; j < 4; j++) br[j] = Bs[kk][tx + 16 * j];
			for (int i = 0; i < 4; i++)
				for (int j = 0; j < 4; j++) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
		}
		__syncthreads();
	}
}
