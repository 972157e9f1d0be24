// emu.h: run CUDA kernel source on the CPU, for tests (C++20, g++ >= 11).
//
// The same .cu file compiles with nvcc (to PTX) and with g++ against this
// header. Under g++:
//   - __global__, __device__, __host__, __forceinline__, __launch_bounds__ are
//     defined away; static __shared__ becomes a function-local `static`
//     (one instance, shared by the threads of the block being run);
//   - threadIdx, blockIdx, blockDim, gridDim are thread_local variables;
//   - a launch creates one std::thread per CUDA thread of a block; those
//     threads run the blocks of the grid one after another, with a barrier
//     between blocks (so shared memory is never used by two blocks at once);
//   - __syncthreads() is a std::barrier over the block; __syncwarp() and the
//     warp shuffles use a per-warp std::barrier and per-thread slots: write
//     own value, barrier, read the source lane's slot (two slot arrays used
//     alternately, so one barrier per shuffle suffices);
//   - dynamic shared memory is declared with DYN_SHARED(type, name), which is
//     `extern __shared__ type name[]` under nvcc and a per-launch buffer here.
//
// What it does not model: divergence inside a warp (every lane of a warp must
// reach each shuffle, as CUDA requires with a full mask anyway), atomics'
// ordering, memory-model races between blocks, fast-math intrinsics' lower
// precision, bf16/tf32 rounding, tensor cores. Kernels must not return early
// before a __syncthreads() that other threads of the block still reach.
// It is slow (OS threads): for small correctness tests of the real source.
#pragma once

#ifdef __CUDACC__

#define DYN_SHARED(T, name) extern __shared__ T name[]

#else  // g++ emulation

#include <math.h>

#include <barrier>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct uint3 {
	unsigned x, y, z;
};
struct alignas(16) float4 {
	float x, y, z, w;
};
struct dim3 {
	unsigned x, y, z;
	constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace emu {

constexpr unsigned kMaxThreads = 1024;
constexpr size_t kMaxShared = 48 * 1024;  // default dynamic shared limit of a launch

struct Launch {
	unsigned nthreads;
	std::barrier<> block_bar;
	std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
	std::vector<uint64_t> slots[2];  // one per thread, for shuffles, double-buffered
	std::vector<unsigned char> dyn;

	Launch(unsigned n, size_t shmem) : nthreads(n), block_bar(n), slots{std::vector<uint64_t>(n), std::vector<uint64_t>(n)}, dyn(shmem ? shmem : 16) {
		for (unsigned w = 0; w * 32 < n; w++) {
			unsigned cnt = n - w * 32 < 32 ? n - w * 32 : 32;
			warp_bar.push_back(std::make_unique<std::barrier<>>(cnt));
		}
		// Shared memory is uninitialised on a GPU: fill with NaNs so that a
		// kernel reading what it did not write shows it.
		std::memset(dyn.data(), 0xff, dyn.size());
	}
};

inline thread_local Launch* cur;
inline thread_local unsigned tid;     // linear thread index in the block
inline thread_local unsigned parity;  // which slot array this thread's next shuffle uses

inline void* dyn_shared() { return cur->dyn.data(); }

template <typename T>
inline T shfl_impl(T v, int src_lane_in_warp, bool valid) {
	static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
	// One barrier per shuffle: consecutive shuffles alternate between two
	// slot arrays, so a lane that runs ahead writes the other array while
	// slower lanes still read this one; it cannot come back to this array
	// before every lane has passed the next shuffle's barrier, that is,
	// before every lane has finished reading here.
	Launch& L = *cur;
	unsigned w = tid / 32;
	std::vector<uint64_t>& slots = L.slots[parity];
	parity ^= 1;
	std::memcpy(&slots[tid], &v, sizeof(T));
	L.warp_bar[w]->arrive_and_wait();
	T r = v;
	unsigned src = w * 32 + (unsigned)src_lane_in_warp;
	if (valid && src < L.nthreads) std::memcpy(&r, &slots[src], sizeof(T));
	return r;
}

// launch runs kernel k over grid x block, synchronously. Returns an error
// message or an empty string.
template <typename F>
std::string run(dim3 grid, dim3 block, size_t shmem, F&& body) {
	unsigned n = block.x * block.y * block.z;
	if (n == 0 || n > kMaxThreads) return "block of " + std::to_string(n) + " threads";
	if (block.z > 64) return "block.z > 64";
	if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "empty grid";
	if (grid.y > 65535 || grid.z > 65535) return "grid.y or grid.z > 65535";
	if (shmem > kMaxShared) return "dynamic shared memory " + std::to_string(shmem) + " > 48 KiB";
	Launch L(n, shmem);
	std::vector<std::thread> ts;
	ts.reserve(n);
	for (unsigned t = 0; t < n; t++) {
		ts.emplace_back([&, t] {
			cur = &L;
			tid = t;
			parity = 0;
			threadIdx = uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
			blockDim = block;
			gridDim = grid;
			for (unsigned bz = 0; bz < grid.z; bz++)
				for (unsigned by = 0; by < grid.y; by++)
					for (unsigned bx = 0; bx < grid.x; bx++) {
						blockIdx = uint3{bx, by, bz};
						body();
						L.block_bar.arrive_and_wait();
					}
			cur = nullptr;
		});
	}
	for (auto& th : ts) th.join();
	return "";
}

// launch_packed calls k with arguments read the way cuLaunchKernel reads
// kernelParams: params[i] points at argument i, sizeof(argument i) bytes.
template <typename... A, size_t... I>
std::string launch_packed_impl(dim3 g, dim3 b, size_t s, void (*k)(A...), void** params, std::index_sequence<I...>) {
	return run(g, b, s, [&] { k(*static_cast<std::remove_cv_t<A>*>(params[I])...); });
}
template <typename... A>
std::string launch_packed(dim3 g, dim3 b, size_t s, void (*k)(A...), void** params) {
	return launch_packed_impl(g, b, s, k, params, std::index_sequence_for<A...>{});
}

}  // namespace emu

#define DYN_SHARED(T, name) T* name = reinterpret_cast<T*>(emu::dyn_shared())

inline void __syncthreads() { emu::cur->block_bar.arrive_and_wait(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
	(void)mask;
	emu::cur->warp_bar[emu::tid / 32]->arrive_and_wait();
}

template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
	(void)mask;
	int lane = emu::tid % 32;
	return emu::shfl_impl(v, (lane / width) * width + src % width, true);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
	(void)mask;
	int lane = emu::tid % 32;
	int src = lane + (int)delta;
	return emu::shfl_impl(v, src, src / width == lane / width);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
	(void)mask;
	int lane = emu::tid % 32;
	int src = lane - (int)delta;
	return emu::shfl_impl(v, src < 0 ? 0 : src, src >= 0 && src / width == lane / width);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
	(void)mask;
	int lane = emu::tid % 32;
	int src = lane ^ lane_mask;
	return emu::shfl_impl(v, src, src / width == lane / width);
}

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }

#endif  // __CUDACC__
