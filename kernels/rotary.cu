// rotary.cu: GPT-NeoX's rotary position embedding (rotate-half layout), in
// place on q or k. The angles come precomputed (in float64 on the host, then
// rounded) as a cos|sin table, so the device does no transcendental math.
#include "common.cuh"

// rotary_f32: x (R = B*T rows, NH*HS cols, stride ld). In every head h, dims
// i < D/2 and i + D/2 of row r at position t = r % T become
// (x1 c - x2 s, x2 c + x1 s) with c = tab[t*D + i], s = tab[t*D + D/2 + i].
// One thread per (row, head, i) pair.
extern "C" __global__ void __launch_bounds__(256)
rotary_f32(float* x, const float* tab, int R, int T, int NH, int HS, int D, int ld) {
	int half = D / 2;
	long n = (long)R * NH * half;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / ((long)NH * half);
		int rem = (int)(e % ((long)NH * half));
		int h = rem / half, i = rem % half;
		long t = r % T;
		float* p = x + r * ld + (long)h * HS;
		float c = tab[t * D + i], s = tab[t * D + half + i];
		float x1 = p[i], x2 = p[i + half];
		p[i] = x1 * c - x2 * s;
		p[i + half] = x2 * c + x1 * s;
	}
}
