// emu.h: run CUDA kernel source on the CPU, for tests (C++20, g++ >= 11).
//
// The same .cu file compiles with nvcc (to PTX and SASS) and with g++ against
// this header. Under g++:
//   - __global__, __device__, __host__, __forceinline__ are defined away;
//   - threadIdx, blockIdx, blockDim, gridDim are thread_local variables;
//   - a launch runs the grid's blocks in a random order (a fresh shuffle per
//     launch; NEOSCOPE_EMU_SEED=n fixes the seed), several at a time
//     (NEOSCOPE_EMU_BLOCKS, default 2): each block slot is one std::thread
//     per CUDA thread, taking the next block of the shuffled list when its
//     block is done. A kernel that assumes blocks run in grid order, or one
//     at a time, or that lets blocks share what should be per-block shows it;
//   - static shared memory is declared with SHARED(type, name, dims), e.g.
//     SHARED(float, As, [16][68]): `__shared__ __align__(16) type name dims`
//     under nvcc, here a reference into the block's own arena. Dynamic shared
//     memory is DYN_SHARED(type, name) (`extern __shared__ type name[]` under
//     nvcc). Both are filled with NaN (all bits set) before each block, as
//     uninitialised shared memory may hold anything on a GPU; static plus
//     dynamic shared memory above 48 KiB fails the launch;
//   - a plain `__shared__` declaration still compiles (a function-local
//     static, one instance for the whole grid, not NaN-filled): the first
//     block of each launch runs alone, and if it declared one, the rest of the
//     grid runs one block at a time, as the old emulator did. Use SHARED;
//   - __launch_bounds__(n) puts the kernel in a linker section emu_lb_<n>; a
//     launch with more than n threads per block fails, as on a GPU;
//   - __syncthreads() is a std::barrier over the block; __syncwarp() and the
//     warp shuffles use a per-warp std::barrier and per-thread slots (write
//     own value, barrier, read the source lane's slot; two slot arrays used
//     alternately, so one barrier per shuffle suffices). A shuffle's or
//     __syncwarp's mask must name only lanes present in the warp (a partial
//     last warp has fewer than 32), must include the calling lane, and must
//     include the source lane: otherwise the launch fails with the reason.
//
// What it does not model: divergence inside a warp (every lane present in a
// warp must reach each shuffle: masks naming fewer lanes than are present
// are accepted but those lanes must still arrive), atomics' ordering,
// fast-math intrinsics' lower precision, bf16/tf32 rounding, tensor cores.
// Kernels must not return early before a __syncthreads() that other threads
// of the block still reach. It is slow (OS threads): for small correctness
// tests of the real source.
#pragma once

#ifdef __CUDACC__

#define DYN_SHARED(T, name) extern __shared__ T name[]
#define SHARED(T, name, dims) __shared__ __align__(16) T name dims

#else  // g++ emulation

#include <math.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
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
#define __align__(n) __attribute__((aligned(n)))
// __launch_bounds__(max threads[, min blocks]): the kernel goes to section
// emu_lb_<max threads>, which the launch looks up (emu::launch_bound).
#define EMU_LB_(n, ...) EMU_LB2_(n)  // n macro-expanded first
#define EMU_LB2_(n) __attribute__((section("emu_lb_" #n)))
#define __launch_bounds__(...) EMU_LB_(__VA_ARGS__, 0)
// A plain __shared__ declaration: noted (the launch then runs its blocks one
// at a time), then a function-local static.
#define __shared__ emu::legacy_shared(); static

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
constexpr size_t kMaxShared = 48 * 1024;  // static + dynamic shared memory of a block (default limit)

struct Launch;

// Slot: the OS threads that run one block at a time, and that block's
// barriers, shuffle slots and shared memory.
struct Slot {
	Launch* L;
	unsigned nthreads;
	std::barrier<> block_bar;
	std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
	std::vector<unsigned> warp_lanes;  // bit mask of the lanes present in each warp
	std::vector<uint64_t> slots[2];    // one per thread, for shuffles, double-buffered
	std::vector<unsigned char> dyn;    // dynamic shared memory
	alignas(16) unsigned char stat[kMaxShared];  // static shared memory (SHARED)
	size_t block;                      // index into Launch::order of the block being run

	Slot(Launch* l, unsigned n, size_t shmem)
	    : L(l), nthreads(n), block_bar(n), slots{std::vector<uint64_t>(n), std::vector<uint64_t>(n)},
	      dyn(shmem ? shmem : 16) {
		for (unsigned w = 0; w * 32 < n; w++) {
			unsigned cnt = n - w * 32 < 32 ? n - w * 32 : 32;
			warp_bar.push_back(std::make_unique<std::barrier<>>(cnt));
			warp_lanes.push_back(cnt == 32 ? 0xffffffffu : (1u << cnt) - 1);
		}
	}
};

struct Launch {
	dim3 grid, block;
	size_t shmem;
	std::vector<uint3> order;  // the blocks, shuffled
	std::atomic<size_t> next{0};
	std::atomic<bool> legacy{false};  // a plain __shared__ was declared
	std::mutex mu;
	std::string err;  // the first error a thread reported

	void fail(const std::string& e) {
		std::lock_guard<std::mutex> g(mu);
		if (err.empty()) err = e;
	}
};

inline thread_local Slot* cur;
inline thread_local unsigned tid;         // linear thread index in the block
inline thread_local unsigned parity;      // which slot array this thread's next shuffle uses
inline thread_local size_t static_off;    // this thread's next SHARED offset in the block's arena

inline void* dyn_shared() { return cur->dyn.data(); }

inline void legacy_shared() { cur->L->legacy.store(true); }

// block_static returns the block's instance of the next SHARED declaration:
// every thread of a block makes the same declarations in the same order, so
// the n-th one is at the same offset for all of them.
template <typename T>
T* block_static() {
	size_t a = alignof(T) > 16 ? alignof(T) : 16;
	size_t off = (static_off + a - 1) / a * a;
	static_off = off + sizeof(T);
	if (static_off + cur->L->shmem > kMaxShared) {
		cur->L->fail("static shared memory " + std::to_string(static_off) + " B + dynamic " +
			     std::to_string(cur->L->shmem) + " B > 48 KiB");
		off = 0;  // keep running inside the arena; the launch fails anyway
		if (sizeof(T) > sizeof(cur->stat)) std::abort();
	}
	return reinterpret_cast<T*>(cur->stat + off);
}

inline std::string hex(unsigned m) {
	char b[16];
	snprintf(b, sizeof b, "0x%08x", m);
	return b;
}

// check_mask: what CUDA requires of a *_sync mask, against the lanes present.
inline void check_mask(const char* what, unsigned mask, int src_lane, bool uses_src) {
	Slot& S = *cur;
	unsigned w = tid / 32, lane = tid % 32, present = S.warp_lanes[w];
	if (mask & ~present)
		S.L->fail(std::string(what) + ": mask " + hex(mask) + " names lanes absent from warp " + std::to_string(w) +
			  " (lanes present " + hex(present) + ")");
	else if (!(mask >> lane & 1))
		S.L->fail(std::string(what) + ": lane " + std::to_string(lane) + " is not in its mask " + hex(mask));
	else if (uses_src && src_lane >= 0 && src_lane < 32 && (present >> src_lane & 1) && !(mask >> src_lane & 1))
		S.L->fail(std::string(what) + ": source lane " + std::to_string(src_lane) + " is not in the mask " + hex(mask));
}

template <typename T>
inline T shfl_impl(T v, int src_lane_in_warp, bool valid) {
	static_assert(sizeof(T) <= 8, "shuffle of a value wider than 8 bytes");
	// One barrier per shuffle: consecutive shuffles alternate between two
	// slot arrays, so a lane that runs ahead writes the other array while
	// slower lanes still read this one; it cannot come back to this array
	// before every lane has passed the next shuffle's barrier, that is,
	// before every lane has finished reading here.
	Slot& S = *cur;
	unsigned w = tid / 32;
	std::vector<uint64_t>& slots = S.slots[parity];
	parity ^= 1;
	std::memcpy(&slots[tid], &v, sizeof(T));
	S.warp_bar[w]->arrive_and_wait();
	T r = v;
	unsigned src = w * 32 + (unsigned)src_lane_in_warp;
	if (valid && src < S.nthreads) std::memcpy(&r, &slots[src], sizeof(T));
	return r;
}

// launch_bound is the __launch_bounds__ of the kernel at address f (the
// emu_lb_<n> section it is in), or kMaxThreads when it declares none.
#define EMU_LB_SECTION(n)                                                  \
	extern "C" char __start_emu_lb_##n[] __attribute__((weak));        \
	extern "C" char __stop_emu_lb_##n[] __attribute__((weak));
#define EMU_LB_LIST(X)                                                                                           \
	X(32) X(64) X(96) X(128) X(160) X(192) X(224) X(256) X(288) X(320) X(352) X(384) X(416) X(448) X(480) \
	X(512) X(544) X(576) X(608) X(640) X(672) X(704) X(736) X(768) X(800) X(832) X(864) X(896) X(928)      \
	X(960) X(992) X(1024)
}  // namespace emu
EMU_LB_LIST(EMU_LB_SECTION)
namespace emu {
inline unsigned launch_bound(const void* f) {
	const char* p = static_cast<const char*>(f);
#define EMU_LB_CHECK(n) \
	if (__start_emu_lb_##n && p >= __start_emu_lb_##n && p < __stop_emu_lb_##n) return n;
	EMU_LB_LIST(EMU_LB_CHECK)
#undef EMU_LB_CHECK
	return kMaxThreads;
}

inline uint64_t seed_for_launch() {
	static std::atomic<uint64_t> count{0};
	static const uint64_t base = [] {
		const char* e = getenv("NEOSCOPE_EMU_SEED");
		return e ? strtoull(e, nullptr, 10) : (uint64_t)std::random_device{}();
	}();
	return base * 0x9e3779b97f4a7c15ull + count.fetch_add(1);
}

inline unsigned concurrent_blocks() {
	static const unsigned n = [] {
		const char* e = getenv("NEOSCOPE_EMU_BLOCKS");
		long v = e ? strtol(e, nullptr, 10) : 2;
		return (unsigned)(v < 1 ? 1 : v > 16 ? 16 : v);
	}();
	return n;
}

// run_slots runs blocks L.order[L.next...limit) on nslots slots at once.
template <typename F>
void run_slots(Launch& L, unsigned nslots, size_t limit, F& body) {
	unsigned n = L.block.x * L.block.y * L.block.z;
	std::vector<std::unique_ptr<Slot>> slots;
	for (unsigned s = 0; s < nslots; s++) slots.push_back(std::make_unique<Slot>(&L, n, L.shmem));
	std::vector<std::thread> ts;
	ts.reserve((size_t)n * nslots);
	for (unsigned s = 0; s < nslots; s++) {
		Slot* S = slots[s].get();
		for (unsigned t = 0; t < n; t++) {
			ts.emplace_back([&L, S, t, n, limit, &body] {
				cur = S;
				tid = t;
				threadIdx = uint3{t % L.block.x, (t / L.block.x) % L.block.y, t / (L.block.x * L.block.y)};
				blockDim = L.block;
				gridDim = L.grid;
				for (;;) {
					if (t == 0) {
						S->block = L.next.fetch_add(1);
						if (S->block < limit) {
							// Uninitialised shared memory: NaN in every float.
							std::memset(S->dyn.data(), 0xff, S->dyn.size());
							std::memset(S->stat, 0xff, sizeof S->stat);
						}
					}
					S->block_bar.arrive_and_wait();
					if (S->block >= limit) break;
					blockIdx = L.order[S->block];
					parity = 0;
					static_off = 0;
					body();
					S->block_bar.arrive_and_wait();  // the block is done before its memory is refilled
				}
				cur = nullptr;
			});
		}
	}
	for (auto& th : ts) th.join();
	// Blocks a slot took past the limit were not run: hand them back.
	if (L.next.load() > limit) L.next.store(limit);
}

// run runs kernel k (body calls it) over grid x block. Returns an error
// message or an empty string.
template <typename F>
std::string run(const void* k, dim3 grid, dim3 block, size_t shmem, F&& body) {
	unsigned n = block.x * block.y * block.z;
	if (n == 0 || n > kMaxThreads) return "block of " + std::to_string(n) + " threads";
	if (block.z > 64) return "block.z > 64";
	if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "empty grid";
	if (grid.y > 65535 || grid.z > 65535) return "grid.y or grid.z > 65535";
	if (shmem > kMaxShared) return "dynamic shared memory " + std::to_string(shmem) + " > 48 KiB";
	unsigned lb = launch_bound(k);
	if (n > lb) return "block of " + std::to_string(n) + " threads > __launch_bounds__(" + std::to_string(lb) + ")";
	Launch L;
	L.grid = grid;
	L.block = block;
	L.shmem = shmem;
	for (unsigned bz = 0; bz < grid.z; bz++)
		for (unsigned by = 0; by < grid.y; by++)
			for (unsigned bx = 0; bx < grid.x; bx++) L.order.push_back(uint3{bx, by, bz});
	std::mt19937_64 rng(seed_for_launch());
	std::shuffle(L.order.begin(), L.order.end(), rng);
	// The first block alone: it tells whether the kernel declares a plain
	// __shared__ (then one block at a time, since such memory is one
	// instance for the grid).
	run_slots(L, 1, 1, body);
	size_t total = L.order.size();
	if (total > 1) {
		unsigned p = L.legacy.load() ? 1 : concurrent_blocks();
		run_slots(L, (unsigned)std::min<size_t>(p, total - 1), total, body);
	}
	return L.err;
}

// launch_packed calls k with arguments read the way cuLaunchKernel reads
// kernelParams: params[i] points at argument i, sizeof(argument i) bytes.
template <typename... A, size_t... I>
std::string launch_packed_impl(dim3 g, dim3 b, size_t s, void (*k)(A...), void** params, std::index_sequence<I...>) {
	auto body = [&] { k(*static_cast<std::remove_cv_t<A>*>(params[I])...); };
	return run(reinterpret_cast<const void*>(k), g, b, s, body);
}
template <typename... A>
std::string launch_packed(dim3 g, dim3 b, size_t s, void (*k)(A...), void** params) {
	return launch_packed_impl(g, b, s, k, params, std::index_sequence_for<A...>{});
}

}  // namespace emu

#define DYN_SHARED(T, name) T* name = reinterpret_cast<T*>(emu::dyn_shared())
#define SHARED(T, name, dims) auto& name = *emu::block_static<T dims>()

inline void __syncthreads() { emu::cur->block_bar.arrive_and_wait(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
	emu::check_mask("__syncwarp", mask, -1, false);
	emu::cur->warp_bar[emu::tid / 32]->arrive_and_wait();
}

template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
	int lane = emu::tid % 32;
	int s = (lane / width) * width + src % width;
	emu::check_mask("__shfl_sync", mask, s, true);
	return emu::shfl_impl(v, s, true);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
	int lane = emu::tid % 32;
	int src = lane + (int)delta;
	bool valid = src / width == lane / width;
	emu::check_mask("__shfl_down_sync", mask, src, valid);
	return emu::shfl_impl(v, src, valid);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
	int lane = emu::tid % 32;
	int src = lane - (int)delta;
	bool valid = src >= 0 && src / width == lane / width;
	emu::check_mask("__shfl_up_sync", mask, src, valid);
	return emu::shfl_impl(v, src < 0 ? 0 : src, valid);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
	int lane = emu::tid % 32;
	int src = lane ^ lane_mask;
	bool valid = src / width == lane / width;
	emu::check_mask("__shfl_xor_sync", mask, src, valid);
	return emu::shfl_impl(v, src, valid);
}

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }

#endif  // __CUDACC__
