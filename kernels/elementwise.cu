// elementwise.cu: gelu_new, add, copy over strided (R,C) views, and the
// embedding gather. Grid-stride loops over R*C elements, blocks of 256.
#include "common.cuh"

// gelu_new_f32: x = 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) in place; x (R,C) stride ld.
extern "C" __global__ void __launch_bounds__(256) gelu_new_f32(float* x, int R, int C, int ld) {
	const float k = 0.7978845608028654f;  // sqrt(2/pi)
	long n = (long)R * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / C, c = e % C;
		float* p = x + r * ld + c;
		float v = *p;
		*p = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
	}
}

// add_f32: out = a + b, each (R,C) with its own stride; out may alias a or b.
extern "C" __global__ void __launch_bounds__(256)
add_f32(float* out, const float* a, const float* b, int R, int C, int ldo, int lda, int ldb) {
	long n = (long)R * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / C, c = e % C;
		out[r * ldo + c] = a[r * lda + c] + b[r * ldb + c];
	}
}

// copy_f32: dst = src, (R,C) views with their own strides (not overlapping).
extern "C" __global__ void __launch_bounds__(256) copy_f32(float* dst, const float* src, int R, int C, int ldd, int lds) {
	long n = (long)R * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / C, c = e % C;
		dst[r * ldd + c] = src[r * lds + c];
	}
}

// embed_f32: out[b*T+t, :] = wte[tokens[b*T+t], :] + wpe[t, :]; out (B*T, C)
// packed; wte rows ldte apart, wpe rows ldpe apart. Token ids are validated
// by the caller.
extern "C" __global__ void __launch_bounds__(256)
embed_f32(float* out, const float* wte, const float* wpe, const int* tokens, int B, int T, int C, int ldte, int ldpe) {
	long n = (long)B * T * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long row = e / C, c = e % C;
		long t = row % T;
		out[e] = wte[(long)tokens[row] * ldte + c] + wpe[t * ldpe + c];
	}
}
