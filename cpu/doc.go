// Package cpu is neoscope's CPU backend: the plain reference every other
// backend is checked against, and the fallback on machines without a GPU.
//
// Tensors live in host memory. Weights can be wrapped in place (Wrap), so a
// memory-mapped F32 checkpoint is never copied. Work is split over Threads
// goroutines by rows (or by (row, head) for attention); matrix products go
// through a BLAS sgemm: gonum's pure-Go implementation by default, OpenBLAS
// when built with the `openblas` tag (cgo, Debian's libopenblas-dev; the
// Makefile turns it on when the library is present). The same cgo build
// compiles native.c, the attention, GELU and LayerNorm kernels and the
// backward pass's (LayerNorm, GELU, softmax-cross-entropy, attention) in C
// that GCC vectorises (an AVX2+FMA clone chosen at run time on x86-64);
// the pure-Go kernels stay the reference they are tested against
// (ops_test.go, grad_test.go), and `make test` runs the golden tests on
// both builds. The backward kernels split their rows over the OpenMP team
// OpenBLAS runs its products on (the OpenMP build of OpenBLAS): its
// workers spin for a while after each product, and goroutines beside them
// had three threads contend for two cores.
//
// Numerics: float32 throughout, as PyTorch computes; softmax subtracts the
// row maximum and exponentiates with a float32 polynomial (exp32.go,
// relative error < 1e-7), GELU's tanh is a rational approximation (abs
// error < 5e-7), and LayerNorm accumulates its mean and variance in float64.
package cpu
