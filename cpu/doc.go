// Package cpu is neoscope's CPU backend: the plain reference every other
// backend is checked against, and the fallback on machines without a GPU.
//
// Tensors live in host memory. Weights can be wrapped in place (Wrap), so a
// memory-mapped F32 checkpoint is never copied. Work is split over Threads
// goroutines by rows (or by (row, head) for attention); matrix products go
// through a BLAS sgemm: gonum's pure-Go implementation by default, OpenBLAS
// when built with the `openblas` tag (cgo, Debian's libopenblas-dev; the
// Makefile turns it on when the library is present).
package cpu
