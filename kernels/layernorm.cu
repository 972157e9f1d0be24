// layernorm.cu: out = (x - mean) / sqrt(var + eps) * w + b over the last
// dimension, biased variance. x is (R,C) stride ldx, out (R,C) stride ldo,
// w and b (C). One warp per row (llm.c layernorm_forward kernel 3), 8 rows per
// block of 256 threads; two passes over the row (mean, then the centred sum
// of squares) for accuracy, then the write.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
layernorm_f32(float* out, const float* x, const float* w, const float* b, int R, int C, int ldx, int ldo, float eps) {
	int lane = threadIdx.x % 32;
	int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
	if (row >= R) return;  // the whole warp leaves together; no __syncthreads below
	const float* xr = x + (size_t)row * ldx;
	float s = 0.0f;
	for (int i = lane; i < C; i += 32) s += xr[i];
	float mean = warp_sum(s) / C;
	float v = 0.0f;
	for (int i = lane; i < C; i += 32) {
		float d = xr[i] - mean;
		v += d * d;
	}
	float rstd = 1.0f / sqrtf(warp_sum(v) / C + eps);
	float* o = out + (size_t)row * ldo;
	for (int i = lane; i < C; i += 32) o[i] = (xr[i] - mean) * rstd * w[i] + b[i];
}
