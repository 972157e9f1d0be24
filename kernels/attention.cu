// attention.cu: causal self-attention for one layer, fp32.
// q, k, v, z are (B*T, NH*HS) views with strides ldq, ldk, ldv, ldz; head h
// occupies columns h*HS..(h+1)*HS. Query i sees key j iff j <= i and, when
// window > 0, i - j < window. Scores are scale * q.k; softmax in fp32 with the
// maximum subtracted; masked probabilities are exactly 0.
// pattern (B,NH,T,T) and scores (B,NH,T,T) are optional (NULL): scores get
// the scaled scores with -inf where masked.
//
// One block per (query i, head h, batch row b): grid (T, NH, B), 64 to 128
// threads (a multiple of 32; the backend picks HS rounded up to warps).
// Scores: one warp per key, lanes across HS (coalesced reads of k), kept in
// dynamic shared memory (T floats); then block max, exp, block sum; then
// z[d] = sum_j p_j v[j,d] with threads across d.
// Dynamic shared memory: (T + HS + 32) floats.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(128)
attention_f32(float* z, const float* q, const float* k, const float* v, float* pattern, float* scores, int T, int NH,
	      int HS, int window, float scale, int ldq, int ldk, int ldv, int ldz) {
	DYN_SHARED(float, sm);
	float* s = sm;          // T scores / probabilities
	float* sq = sm + T;     // HS: this query
	float* red = sq + HS;   // 32: reductions
	int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
	int lo = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
	size_t row0 = (size_t)b * T;
	const float* qi = q + (row0 + i) * ldq + (size_t)h * HS;
	for (int d = threadIdx.x; d < HS; d += blockDim.x) sq[d] = qi[d];
	__syncthreads();
	for (int j = lo + warp; j <= i; j += nwarps) {
		const float* kj = k + (row0 + j) * ldk + (size_t)h * HS;
		float p = 0.0f;
		for (int d = lane; d < HS; d += 32) p = fmaf(sq[d], kj[d], p);
		p = warp_sum(p);
		if (lane == 0) s[j] = scale * p;
	}
	__syncthreads();
	size_t prow = (((size_t)b * NH + h) * T + i) * T;
	if (scores)
		for (int j = threadIdx.x; j < T; j += blockDim.x) scores[prow + j] = (j >= lo && j <= i) ? s[j] : -INFINITY;
	float m = -INFINITY;
	for (int j = lo + threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, s[j]);
	m = block_max(m, red);
	float sum = 0.0f;
	for (int j = lo + threadIdx.x; j <= i; j += blockDim.x) {
		float e = expf(s[j] - m);
		s[j] = e;
		sum += e;
	}
	sum = block_sum(sum, red);  // its barriers also order the writes to s
	float inv = 1.0f / sum;
	for (int j = lo + threadIdx.x; j <= i; j += blockDim.x) s[j] *= inv;
	__syncthreads();
	if (pattern)
		for (int j = threadIdx.x; j < T; j += blockDim.x) pattern[prow + j] = (j >= lo && j <= i) ? s[j] : 0.0f;
	float* zi = z + (row0 + i) * ldz + (size_t)h * HS;
	for (int d = threadIdx.x; d < HS; d += blockDim.x) {
		float acc = 0.0f;
		for (int j = lo; j <= i; j++) acc = fmaf(s[j], v[(row0 + j) * ldv + (size_t)h * HS + d], acc);
		zi[d] = acc;
	}
}

// attn_apply_f32: z[b*T+i, h*HS+d] = sum_{j<T} pattern[b,h,i,j] v[b*T+j, h*HS+d]
// for a given pattern (B,NH,T,T) packed (e.g. one a hook replaced). Every j
// is summed: the pattern is applied as given. Grid (T, NH, B), threads across d.
extern "C" __global__ void __launch_bounds__(128)
attn_apply_f32(float* z, const float* pattern, const float* v, int T, int NH, int HS, int ldv, int ldz) {
	int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
	size_t row0 = (size_t)b * T;
	const float* p = pattern + (((size_t)b * NH + h) * T + i) * T;
	float* zi = z + (row0 + i) * ldz + (size_t)h * HS;
	for (int d = threadIdx.x; d < HS; d += blockDim.x) {
		float acc = 0.0f;
		for (int j = 0; j < T; j++) acc = fmaf(p[j], v[(row0 + j) * ldv + (size_t)h * HS + d], acc);
		zi[d] = acc;
	}
}
