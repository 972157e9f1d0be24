// logit_stats.cu: fused unembedding reductions. For each selected row
// i < NR of x (rows[i] indexes x (R,C) stride ldx), logits = x[rows[i]] @
// wte^T with wte (V,C) stride ldw; the result is logsumexp(logits) and
// gathered logits at G given vocabulary ids per row. The (NR,V) logits are
// never stored: they exist one 64x64 tile at a time.
//
// Pass 1, logit_partials_f32: grid (ceil(V/64), ceil(NR/64)), 256 threads;
// the matmul tile loop (matmul_tile.cuh) computes a 64x64 logits tile, which
// goes to shared memory; then thread r < 64 reduces its row over the tile's
// columns to (max, sum exp(l - max)) into part[(i*nchunks + chunk)*2] and
// writes the gathered logits whose ids fall in this tile.
// Pass 2, logit_lse_f32: one warp per row merges its nchunks partials:
// lse = M + log(sum_k s_k exp(m_k - M)), M = max_k m_k.
#include "common.cuh"
#include "matmul_tile.cuh"

extern "C" __global__ void __launch_bounds__(256)
logit_partials_f32(float* part, float* gathered, const float* x, const float* wte, const int* rows, const int* idx, int NR,
		   int V, int C, int G, int ldx, int ldw) {
	SHARED(float, As, [MM_BK][MM_BM + 4]);
	SHARED(float, Bs, [MM_BK][MM_BN + 4]);
	SHARED(float, L, [MM_BM][MM_BN + 1]);
	float acc[4][4];
	int m0 = blockIdx.y * MM_BM, n0 = blockIdx.x * MM_BN;
	mm_tile(acc, As, Bs, x, wte, rows, NR, V, C, ldx, ldw, 1, m0, n0);
	int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) L[ty + 16 * i][tx + 16 * j] = acc[i][j];
	__syncthreads();
	int r = threadIdx.x, row = m0 + r;
	if (r < MM_BM && row < NR) {
		int ncol = V - n0 < MM_BN ? V - n0 : MM_BN;
		float m = -INFINITY;
		for (int c = 0; c < ncol; c++) m = fmaxf(m, L[r][c]);
		float s = 0.0f;
		for (int c = 0; c < ncol; c++) s += expf(L[r][c] - m);
		size_t o = ((size_t)row * gridDim.x + blockIdx.x) * 2;
		part[o] = m;
		part[o + 1] = s;
		for (int g = 0; g < G; g++) {
			int id = idx[(size_t)row * G + g];
			if (id >= n0 && id < n0 + ncol) gathered[(size_t)row * G + g] = L[r][id - n0];
		}
	}
}

extern "C" __global__ void __launch_bounds__(256) logit_lse_f32(float* lse, const float* part, int NR, int nchunks) {
	int lane = threadIdx.x % 32;
	int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
	if (row >= NR) return;  // whole warp
	const float* p = part + (size_t)row * nchunks * 2;
	float m = -INFINITY;
	for (int k = lane; k < nchunks; k += 32) m = fmaxf(m, p[2 * k]);
	m = warp_max(m);
	float s = 0.0f;
	for (int k = lane; k < nchunks; k += 32) s += p[2 * k + 1] * expf(p[2 * k] - m);
	s = warp_sum(s);
	if (lane == 0) lse[row] = m + logf(s);
}
