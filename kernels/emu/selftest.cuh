// selftest.cuh: kernels that exercise the emulator itself (shuffles, warp and
// block barriers, shared memory, dynamic shared memory). Compiled only into
// the emulator (kernels.cc), never into the PTX.
#pragma once
#include "../common.cuh"

// emu_selftest_shfl: out has 6 ints per thread: shfl_down(lane, 3),
// shfl_up(lane, 2), shfl_xor(lane, 5), shfl(lane, 7), shfl_down width 8,
// shfl_xor width 4; a block of any multiple of 32 threads.
extern "C" __global__ void emu_selftest_shfl(int* out) {
	int t = blockIdx.x * blockDim.x + threadIdx.x;
	int lane = threadIdx.x % 32;
	out[t * 6 + 0] = __shfl_down_sync(FULL_MASK, lane, 3);
	out[t * 6 + 1] = __shfl_up_sync(FULL_MASK, lane, 2);
	out[t * 6 + 2] = __shfl_xor_sync(FULL_MASK, lane, 5);
	out[t * 6 + 3] = __shfl_sync(FULL_MASK, lane, 7);
	out[t * 6 + 4] = __shfl_down_sync(FULL_MASK, lane, 3, 8);
	out[t * 6 + 5] = __shfl_xor_sync(FULL_MASK, lane, 4, 4);
}

// emu_selftest_reduce: per block, out[2*b] = sum over threads of x[t],
// out[2*b+1] = max; plus a reversal through static shared memory and one
// through dynamic shared memory (rev, rev2: x reversed within each block).
extern "C" __global__ void emu_selftest_reduce(float* out, float* rev, float* rev2, const float* x) {
	__shared__ float red[32];
	__shared__ float buf[1024];
	DYN_SHARED(float, dyn);
	int t = blockIdx.x * blockDim.x + threadIdx.x;
	float v = x[t];
	float s = block_sum(v, red);
	float m = block_max(v, red);
	if (threadIdx.x == 0) {
		out[2 * blockIdx.x] = s;
		out[2 * blockIdx.x + 1] = m;
	}
	buf[threadIdx.x] = v;
	dyn[threadIdx.x] = 2 * v;
	__syncthreads();
	int o = blockIdx.x * blockDim.x + (blockDim.x - 1 - threadIdx.x);
	rev[o] = buf[threadIdx.x];
	rev2[o] = dyn[threadIdx.x];
}
