// matmul_tf32.cu: the MatMul of matmul.cu on tensor cores, TF32 inputs
// (10-bit mantissa, rounded to nearest) and fp32 accumulation, through
// mma.sync.m16n8k8 (sm_80 and later). Off by default: cuda.Backend.SetTF32.
//
// UNVERIFIED ON HARDWARE. The emulator runs this source with a software
// mma_tf32 built from warp shuffles, which checks the tiling, the fragment
// loads and stores and the epilogue *against the fragment layout written
// below* (PTX ISA, "Matrix Fragments for mma.m16n8k8" with .tf32): if that
// reading of the layout were wrong, the emulated test would pass and the
// GPU would be wrong. benchmarks/gpu-check.sh runs the same cases on a GPU.
//
// Block of 128 threads (4 warps) per 64x64 output tile, k-slices of 16 in
// shared memory; warp w owns the 32x32 sub-tile (w/2, w%2): 2 x 4 mma tiles
// of 16x8. Same arguments and semantics as matmul_f32.
#include "common.cuh"

#define TC_BM 64
#define TC_BN 64
#define TC_BK 16
#define TC_LD (TC_BK + 4)  // row stride: fragment reads hit 32 distinct banks

#ifdef __CUDACC__
__device__ __forceinline__ unsigned to_tf32(float x) {
	unsigned r;
	asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
	return r;
}
// d += a (16x8, row) * b (8x8, col); fragments per the PTX ISA (g = lane/4,
// t = lane%4): a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4);
// b0 (k=t, n=g), b1 (k=t+4, n=g); d0 (g, 2t), d1 (g, 2t+1), d2 (g+8, 2t), d3 (g+8, 2t+1).
__device__ __forceinline__ void mma_tf32(float d[4], const unsigned a[4], const unsigned b[2]) {
	asm volatile(
	    "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
	    "{%0,%1,%2,%3};"
	    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
	    : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#else
// Emulation: TF32 rounding to nearest, ties away (cvt.rna), finite inputs.
inline unsigned to_tf32(float x) {
	unsigned u;
	std::memcpy(&u, &x, 4);
	return (u + 0x1000u) & 0xffffe000u;
}
inline float tf32_val(unsigned u) {
	float f;
	std::memcpy(&f, &u, 4);
	return f;
}
// The same fragment layout, gathered through shuffles.
inline void mma_tf32(float d[4], const unsigned a[4], const unsigned b[2]) {
	int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
	float ag[8], ag8[8], b0[8], b1[8];
	for (int k = 0; k < 4; k++) {
		ag[k] = tf32_val(__shfl_sync(FULL_MASK, a[0], g * 4 + k));
		ag8[k] = tf32_val(__shfl_sync(FULL_MASK, a[1], g * 4 + k));
		ag[k + 4] = tf32_val(__shfl_sync(FULL_MASK, a[2], g * 4 + k));
		ag8[k + 4] = tf32_val(__shfl_sync(FULL_MASK, a[3], g * 4 + k));
		b0[k] = tf32_val(__shfl_sync(FULL_MASK, b[0], (2 * t) * 4 + k));
		b0[k + 4] = tf32_val(__shfl_sync(FULL_MASK, b[1], (2 * t) * 4 + k));
		b1[k] = tf32_val(__shfl_sync(FULL_MASK, b[0], (2 * t + 1) * 4 + k));
		b1[k + 4] = tf32_val(__shfl_sync(FULL_MASK, b[1], (2 * t + 1) * 4 + k));
	}
	for (int k = 0; k < 8; k++) {
		d[0] = fmaf(ag[k], b0[k], d[0]);
		d[1] = fmaf(ag[k], b1[k], d[1]);
		d[2] = fmaf(ag8[k], b0[k], d[2]);
		d[3] = fmaf(ag8[k], b1[k], d[3]);
	}
}
#endif

extern "C" __global__ void __launch_bounds__(128)
matmul_tf32(float* c, const float* a, const float* b, const float* bias, int M, int N, int K, int lda, int ldb,
	    int ldc, int transB, int accumulate) {
	SHARED(float, As, [TC_BM][TC_LD]);  // [m][k]
	SHARED(float, Bs, [TC_BN][TC_LD]);  // [n][k]
	int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
	int g = lane / 4, t = lane % 4;
	int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
	int m0 = blockIdx.y * TC_BM, n0 = blockIdx.x * TC_BN;
	float acc[2][4][4];
	#pragma unroll
	for (int i = 0; i < 2; i++)
		#pragma unroll
		for (int j = 0; j < 4; j++)
			#pragma unroll
			for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;
	for (int k0 = 0; k0 < K; k0 += TC_BK) {
		for (int e = tid; e < TC_BM * TC_BK; e += 128) {
			int r = e / TC_BK, kk = e % TC_BK, row = m0 + r, k = k0 + kk;
			As[r][kk] = (row < M && k < K) ? a[(size_t)row * lda + k] : 0.0f;
		}
		for (int e = tid; e < TC_BN * TC_BK; e += 128) {
			int kk, cc;
			mm_b_coords(e, TC_BK, TC_BN, transB, kk, cc);
			Bs[cc][kk] = mm_b_at(b, ldb, transB, k0 + kk, n0 + cc, K, N);
		}
		__syncthreads();
		#pragma unroll
		for (int ks = 0; ks < TC_BK; ks += 8) {
			unsigned af[2][4], bf[4][2];
			#pragma unroll
			for (int i = 0; i < 2; i++) {
				int r = wm + i * 16 + g;
				af[i][0] = to_tf32(As[r][ks + t]);
				af[i][1] = to_tf32(As[r + 8][ks + t]);
				af[i][2] = to_tf32(As[r][ks + t + 4]);
				af[i][3] = to_tf32(As[r + 8][ks + t + 4]);
			}
			#pragma unroll
			for (int j = 0; j < 4; j++) {
				int n = wn + j * 8 + g;
				bf[j][0] = to_tf32(Bs[n][ks + t]);
				bf[j][1] = to_tf32(Bs[n][ks + t + 4]);
			}
			#pragma unroll
			for (int i = 0; i < 2; i++)
				#pragma unroll
				for (int j = 0; j < 4; j++) mma_tf32(acc[i][j], af[i], bf[j]);
		}
		__syncthreads();
	}
	#pragma unroll
	for (int i = 0; i < 2; i++)
		#pragma unroll
		for (int j = 0; j < 4; j++)
			#pragma unroll
			for (int q = 0; q < 4; q++) {
				int row = m0 + wm + i * 16 + g + (q >= 2 ? 8 : 0);
				int col = n0 + wn + j * 8 + 2 * t + (q & 1);
				if (row >= M || col >= N) continue;
				float v = acc[i][j][q];
				if (bias) v += bias[col];
				float* p = c + (size_t)row * ldc + col;
				if (accumulate) v += *p;
				*p = v;
			}
}
