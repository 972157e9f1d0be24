// gelu_erf.cu: the exact GELU (Hugging Face's "gelu", GPT-NeoX's MLP).
#include "common.cuh"

// gelu_erf_f32: x = 0.5x(1+erf(x/sqrt(2))) in place; x (R,C) stride ld.
// erff is accurate to 2 ulp (CUDA math API), the CPU's float64 erf to 1.
extern "C" __global__ void __launch_bounds__(256) gelu_erf_f32(float* x, int R, int C, int ld) {
	long n = (long)R * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / C, c = e % C;
		float* p = x + r * ld + c;
		float v = *p;
		*p = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
	}
}
