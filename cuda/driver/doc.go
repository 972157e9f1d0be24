// Package driver is neoscope's narrow layer over the CUDA driver API.
//
// It loads libcuda.so.1 with dlopen at run time, so building needs neither
// CUDA headers nor CUDA libraries (only a C compiler for cgo), and a binary
// that contains it starts on any machine: without the library, or without a
// device, Open returns an ordinary error. Every driver failure is returned as
// an *Error carrying the driver's name and message (cuGetErrorName,
// cuGetErrorString). Nothing here exits or panics on a driver failure.
//
// The CUDA types used (CUresult, CUdevice, CUcontext, CUmodule, CUfunction,
// CUstream, CUdeviceptr) are defined in the cgo preamble; every entry point
// is resolved by its explicit versioned name (cuMemAlloc_v2, ...). Each call
// makes the primary context current on the calling OS thread before doing
// its work, inside the same C call, because goroutines move between threads.
// Kernel arguments are packed by Args: one 8-byte slot per argument, each
// written at its own width, and the void* array cuLaunchKernel reads.
package driver
