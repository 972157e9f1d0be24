// gelu_erf.cu: the exact GELU (Hugging Face's "gelu", GPT-NeoX's MLP).
#include "common.cuh"

// gelu_erf_f32: x = 0.5x(1+erf(x/sqrt(2))) in place; x (R,C) stride ld.
// Computed in double and rounded once, as the CPU backend does (cpu/native.c):
// erff's 1-2 ulp moved tiny-neox's dla_embed past 10x its float32 floor on
// the CPU. Double math costs little here (H100/H200 run FP64 at half the FP32
// rate, and this kernel is memory-bound).
extern "C" __global__ void __launch_bounds__(256) gelu_erf_f32(float* x, int R, int C, int ld) {
	long n = (long)R * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / C, c = e % C;
		float* p = x + r * ld + c;
		double v = *p;
		*p = (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752440)));
	}
}
