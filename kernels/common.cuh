// common.cuh: helpers shared by every kernel file. Kernels are fp32 and
// extern "C" so their PTX names are the plain names the Go side looks up.
// Under g++ (tests) emu/emu.h stands in for the CUDA runtime.
#pragma once

#include "emu/emu.h"  // nvcc: only DYN_SHARED and SHARED; g++: the whole emulation

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float warp_sum(float v) {
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
	return v;
}

// block_sum and block_max reduce over a block whose size is a multiple of
// 32 (at most 1024); every thread gets the result. red is 32 floats of
// shared memory, free again when they return.
__device__ __forceinline__ float block_sum(float v, float* red) {
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
	v = warp_sum(v);
	if (lane == 0) red[warp] = v;
	__syncthreads();
	v = lane < nwarps ? red[lane] : 0.0f;
	v = warp_sum(v);
	__syncthreads();
	return v;
}

__device__ __forceinline__ float block_max(float v, float* red) {
	int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
	v = warp_max(v);
	if (lane == 0) red[warp] = v;
	__syncthreads();
	v = lane < nwarps ? red[lane] : -INFINITY;
	v = warp_max(v);
	__syncthreads();
	return v;
}

// Matmul tile loaders: element e of a bk x bn tile of op(B), walked along
// B's contiguous dimension (coalesced), as (kk, cc) ...
__device__ __forceinline__ void mm_b_coords(int e, int bk, int bn, int transB, int& kk, int& cc) {
	if (transB) {
		cc = e / bk;
		kk = e % bk;
	} else {
		kk = e / bn;
		cc = e % bn;
	}
}

// ... and op(B)[k, col]: B is (K,N) stride ldb, or (N,K) read transposed
// when transB; zero outside the matrix.
__device__ __forceinline__ float mm_b_at(const float* b, int ldb, int transB, int k, int col, int K, int N) {
	if (k >= K || col >= N) return 0.0f;
	return transB ? b[(size_t)col * ldb + k] : b[(size_t)k * ldb + col];
}
