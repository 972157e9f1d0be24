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
	SHARED(float, red, [32]);
	SHARED(float, buf, [1024]);
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

// The stricter emulator (emu.h). These use std:: directly: emulator only.
#include <atomic>
#include <chrono>
#include <thread>

namespace emu_selftest {
inline std::atomic<int> active{0}, max_active{0}, pos{0};
}

// emu_selftest_blocks: a grid of blocks of 64 threads; per block b,
// out[4b] = static shared memory read before any write is NaN,
// out[4b+1] = dynamic shared memory likewise, out[4b+2] = the block's static
// shared memory still holds its own values after 20 ms in which other blocks
// ran, out[4b+3] = the position at which block b started (0 = first);
// out[4*grid] = the most blocks seen running at once. Call emu_selftest_reset
// first (one block).
extern "C" __global__ void emu_selftest_reset(int* out) {
	(void)out;
	emu_selftest::active = 0;
	emu_selftest::max_active = 0;
	emu_selftest::pos = 0;
}

extern "C" __global__ void emu_selftest_blocks(int* out) {
	SHARED(float, sh, [64]);
	DYN_SHARED(float, dyn);
	int b = blockIdx.x, t = threadIdx.x;
	if (t == 0) {
		out[4 * b] = isnan(sh[0]) && isnan(sh[63]);
		out[4 * b + 1] = isnan(dyn[0]);
		out[4 * b + 3] = emu_selftest::pos++;
		int a = ++emu_selftest::active, m = emu_selftest::max_active.load();
		while (a > m && !emu_selftest::max_active.compare_exchange_weak(m, a)) {
		}
	}
	__syncthreads();
	sh[t] = (float)b;
	__syncthreads();
	if (t == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
	__syncthreads();
	int ok = sh[t] == (float)b;
	__syncthreads();
	sh[t] = ok;
	__syncthreads();
	if (t == 0) {
		int all = 1;
		for (int i = 0; i < 64; i++) all &= sh[i] == 1.0f;
		out[4 * b + 2] = all;
		--emu_selftest::active;
		out[4 * gridDim.x] = emu_selftest::max_active.load();
	}
}

// emu_selftest_legacy: a plain __shared__ (one instance for the grid): the
// launch must run its blocks one at a time. out[b] = b read back through it.
extern "C" __global__ void emu_selftest_legacy(int* out) {
	__shared__ int sh[64];
	sh[threadIdx.x] = blockIdx.x;
	__syncthreads();
	if (threadIdx.x == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
	__syncthreads();
	if (threadIdx.x == 0) {
		int all = 1;
		for (int i = 0; i < 64; i++) all &= sh[i] == (int)blockIdx.x;
		out[blockIdx.x] = all ? (int)blockIdx.x : -1;
	}
	__syncthreads();
}

// emu_selftest_bounds: declares at most 64 threads per block.
extern "C" __global__ void __launch_bounds__(64) emu_selftest_bounds(int* out) { out[threadIdx.x] = 1; }

// emu_selftest_mask: out[t] = __shfl_xor_sync(mask, lane, 1) where mask is
// FULL_MASK (mode 0), exactly the lanes present in the thread's warp
// (mode 1), or every lane but this one (mode 2).
extern "C" __global__ void emu_selftest_mask(int* out, int mode) {
	int lane = threadIdx.x % 32, w = threadIdx.x / 32;
	int cnt = (int)blockDim.x - 32 * w < 32 ? (int)blockDim.x - 32 * w : 32;
	unsigned present = cnt == 32 ? FULL_MASK : (1u << cnt) - 1;
	unsigned m = mode == 0 ? FULL_MASK : mode == 1 ? present : present & ~(1u << lane);
	out[threadIdx.x] = __shfl_xor_sync(m, lane, 1);
}
