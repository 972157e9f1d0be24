// ablate.cu: per-row keep masks (uint8, 0 = ablate) over R rows of T tokens.
#include "common.cuh"

// ablate_heads_f32: z (R*T, NH*HS) stride ldz. For row r, head h with
// keep[r*NH+h] == 0, z[r*T+t, h*HS:(h+1)*HS] = fill[t, h*HS:(h+1)*HS]
// (fill (T, NH*HS) packed) or 0 when fill is NULL.
extern "C" __global__ void __launch_bounds__(256)
ablate_heads_f32(float* z, const unsigned char* keep, const float* fill, int R, int T, int NH, int HS, int ldz) {
	int D = NH * HS;
	long n = (long)R * T * D;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long row = e / D;
		int c = (int)(e % D);
		long r = row / T;
		int t = (int)(row % T), h = c / HS;
		if (keep[r * NH + h] == 0) z[row * ldz + c] = fill ? fill[(long)t * D + c] : 0.0f;
	}
}

// ablate_rows_f32: x (R*T, C) stride ldx. For row r with keep[r] == 0,
// x[r*T+t, :] = fill[t, :] (fill (T, C) packed) or 0 when fill is NULL.
extern "C" __global__ void __launch_bounds__(256)
ablate_rows_f32(float* x, const unsigned char* keep, const float* fill, int R, int T, int C, int ldx) {
	long n = (long)R * T * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long row = e / C;
		int c = (int)(e % C);
		long r = row / T;
		int t = (int)(row % T);
		if (keep[r] == 0) x[row * ldx + c] = fill ? fill[(long)t * C + c] : 0.0f;
	}
}
