// Package cuda is neoscope's GPU backend: backend.Backend on one NVIDIA
// device, fp32, through the CUDA driver API.
//
// # Layout
//
//	cuda/driver     the cgo layer: dlopen("libcuda.so.1"), ~30 entry points
//	cuda/kernels.fatbin  every kernel (kernels/all.cu) compiled by nvcc 11.8
//	                (make ptx): sm_80 and sm_90 SASS plus compute_80 PTX,
//	                embedded with go:embed and loaded with cuModuleLoadData;
//	                the driver runs the SASS for A100/H100/H200 and
//	                JIT-compiles the PTX for newer GPUs (kernels.names lists
//	                the entries)
//	cuda (this)     Backend: device buffers, one stream, one launch per op
//	kernels/*.cu    the kernels, one file per op family (llm.c / ggml style)
//	kernels/emu     the same kernel source compiled by g++ against an
//	                emulation header, for tests without a GPU
//
// Tensors live in device memory (cuMemAlloc); weights are uploaded once by
// the forward pass (Upload). Every operation is one or two kernel launches on
// one stream, enqueued asynchronously; Download, DownloadMat and LogitStats
// synchronise. Views (backend.Mat) become a device pointer (base + 4*Off)
// plus a row stride argument: kernels take any stride, so q, k and v are read
// straight out of a fused buffer. Kernel arguments are packed into one
// reusable C buffer, each at its own width (driver.Args), so a launch costs
// a mutex, a few stores and one cgo call. Out of memory is a returned error
// wrapping the driver's CUDA_ERROR_OUT_OF_MEMORY (driver.IsOutOfMemory).
//
// # Memory, launches, debugging
//
//   - Allocation (alloc.go): a caching allocator with size classes; Free
//     returns the block to the cache at once, which is safe because all
//     device work is on one stream and host copies synchronise it first
//     (stream-ordered free). The cache goes back to the driver when an
//     allocation fails (then retried) and at Close; ReleaseCached and
//     MemStats for callers. New is zeroed (backend.Backend's contract; an
//     async memset on the stream); Upload and NewUninit are not (the copy or
//     the caller overwrites every element). On the emulated device,
//     uninitialised blocks are NaN-filled so reads of unwritten memory show.
//   - Launches (launch.go): every launch is checked against grid and block
//     limits; ops that put rows on grid.y or grid.z (MatMul's tile rows,
//     Attention's and AttnApply's batch rows, LogitStats' row tiles) split
//     them into launches of at most 65,535 blocks. Failures are LaunchErrors
//     naming the Backend op and the kernel.
//   - NEOSCOPE_CUDA_SYNC=1 synchronises after every launch, so that a
//     kernel that faults is named by its own launch's error (slow; debugging).
//   - TF32: the tensor-core matmul is compiled into the fatbin, but only a
//     build with the tf32 tag can turn it on (SetTF32, tf32.go).
//
// # Why a dlopen layer of our own, not gorgonia.org/cu
//
//   - gorgonia.org/cu's package init calls cuInit and, on failure, os.Exit(1):
//     any binary linking it dies at start-up on a machine without a GPU,
//     before main runs, whatever backend the user asked for.
//   - It links -lcuda: without the NVIDIA driver's libcuda.so.1 the binary
//     does not even load; it also needs the CUDA headers to build.
//   - Its Launch copies every kernel argument as 8 bytes, so 4-byte int and
//     float parameters are over-read (or every kernel must take 8-byte scalars).
//   - Its README says three of its files derive from code under "a GPL-like
//     licence": a licensing question we do not need to have.
//
// Loading libcuda.so.1 at run time needs nothing at build time but a C
// compiler for cgo (no CUDA headers or libraries; CGO_ENABLED=0 builds too,
// and Open then says "built without cgo"), and "no driver / no device"
// becomes an ordinary error that --backend auto turns into the CPU. The
// versioned entry points (cuMemAlloc_v2, cuMemcpyDtoH_v2, ...) are resolved
// by name explicitly; the primary context is retained and made current
// inside every C call, because goroutines move between OS threads.
//
// # Testing without a GPU
//
// The conformance suite (conformance_test.go, ggml test-backend-ops style)
// runs every operation on odd shapes and strided views and compares with a
// float64 reference and with the CPU backend. It runs on a real device when
// Open succeeds and, always, on this same Backend over kernels/emu: the real
// kernel source compiled by g++, launched by name with the same grid, block,
// shared memory size and packed arguments the GPU would get. Only the device
// is emulated, so shape checks, view offsets, grid sizes and argument
// packing are all tested here. The exported conformance suite
// (runtime/backend/conformance) runs in every `make test` on this emulated
// device: every op, the whole forward pass and every hook point against the
// fixtures (one batch row per fixture, all three families), and the sweep
// figures of the last layer; on a real device it runs whole. The emulator runs blocks two at a time in a
// random order with NaN-filled shared memory (kernels/README.md). What it
// cannot show: speed, memory-model races inside a block, warp divergence, and the GPU's expf/tanhf (a few ulp from
// glibc's): the GPU run of the suite allows 1e-4 instead of 2e-5.
//
// # Kernels, version 1 (not yet measured on a GPU)
//
//   - matmul: 64x64 tile per 256-thread block, k-slices of 16 in shared
//     memory, 4x4 register micro-tile per thread, fp32 FMA; transB, bias and
//     accumulate fused in the epilogue. For grids of at least 264 128x128
//     tiles (two waves on 132 SMs), matmul_f32_big: 128x128 tiles, 8x8 per
//     thread, float4 shared-memory reads (no register spills for sm_90, per
//     ptxas). Expected below cuBLAS (no double buffering, no tensor cores).
//   - matmul_tf32 (only with the tf32 build tag, Backend.SetTF32): tensor cores through
//     mma.sync.m16n8k8 with TF32 inputs. UNVERIFIED on hardware: the
//     emulator checks it against the fragment layout the kernel assumes,
//     not against the GPU; emulated, TF32 rounding costs ~8e-3 absolute on
//     products of order 4 (K=20) against fp32 inputs.
//   - attention: one block of 64-128 threads (HS rounded up to warps) per
//     (query, head, batch row); scores in
//     shared memory (so T <= ~12000), warp-per-key dot products, fp32 softmax.
//   - logit stats: the matmul tile loop over (rows x vocabulary) tiles, each
//     tile reduced to per-row (max, sum exp) partials in shared memory and
//     merged by a second kernel; [rows, V] logits never exist.
package cuda
