//go:build cgo

// Package emu runs neoscope's CUDA kernels (kernels/*.cu, the same source
// nvcc compiles to PTX) on the CPU, compiled by g++ against emu.h, so that
// they can be tested on machines without a GPU. Device memory is host memory
// from malloc; addresses are passed around as driver.Ptr like device
// addresses; launches read their arguments the way cuLaunchKernel does.
//
// It is slow (one OS thread per CUDA thread) and meant for small shapes.
package emu

/*
#cgo CXXFLAGS: -std=c++20 -O1 -fno-strict-aliasing -pthread -Wall -Wno-unknown-pragmas
#cgo LDFLAGS: -pthread
#include <stdlib.h>
#include <string.h>
#include "api.h"

static unsigned long long emu_malloc(size_t n) { return (unsigned long long)(size_t)calloc(n ? n : 1, 1); }
static void emu_free(unsigned long long p) { free((void*)(size_t)p); }
static void emu_htod(unsigned long long d, const void* s, size_t n) { memcpy((void*)(size_t)d, s, n); }
static void emu_dtoh(void* d, unsigned long long s, size_t n) { memcpy(d, (const void*)(size_t)s, n); }
static void emu_dtod(unsigned long long d, unsigned long long s, size_t n) { memmove((void*)(size_t)d, (const void*)(size_t)s, n); }
static void emu_zero(unsigned long long d, size_t n) { memset((void*)(size_t)d, 0, n); }
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/neoscope/neoscope/cuda/driver"
)

// Available reports whether the emulator was built (it needs cgo and g++).
const Available = true

// Malloc allocates n zeroed bytes of emulated device memory.
func Malloc(n int) (driver.Ptr, error) {
	p := C.emu_malloc(C.size_t(n))
	if p == 0 {
		return 0, errors.New("emu: out of memory")
	}
	return driver.Ptr(p), nil
}

// Free releases memory from Malloc.
func Free(p driver.Ptr) { C.emu_free(C.ulonglong(p)) }

// HtoD copies n bytes from host memory to p.
func HtoD(dst driver.Ptr, src unsafe.Pointer, n int) { C.emu_htod(C.ulonglong(dst), src, C.size_t(n)) }

// DtoH copies n bytes from p to host memory.
func DtoH(dst unsafe.Pointer, src driver.Ptr, n int) { C.emu_dtoh(dst, C.ulonglong(src), C.size_t(n)) }

// DtoD copies n bytes between emulated device buffers.
func DtoD(dst, src driver.Ptr, n int) { C.emu_dtod(C.ulonglong(dst), C.ulonglong(src), C.size_t(n)) }

// Zero sets n bytes at p to 0.
func Zero(p driver.Ptr, n int) { C.emu_zero(C.ulonglong(p), C.size_t(n)) }

// Has reports whether the emulator knows kernel name.
func Has(name string) bool {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.emu_has(cs) != 0
}

// Launch runs kernel name over grid x block with shmem bytes of dynamic
// shared memory, synchronously, reading its arguments from args.
func Launch(name string, grid, block driver.Dim3, shmem int, args *driver.Args) error {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	if e := C.emu_launch(cs, C.uint(grid.X), C.uint(grid.Y), C.uint(grid.Z), C.uint(block.X), C.uint(block.Y),
		C.uint(block.Z), C.uint(shmem), (*unsafe.Pointer)(args.Params())); e != nil {
		return errors.New(C.GoString(e))
	}
	return nil
}
