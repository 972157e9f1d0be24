//go:build !cgo

// Package emu runs neoscope's CUDA kernels on the CPU; without cgo it is
// not built and Available is false.
package emu

import (
	"errors"
	"unsafe"

	"github.com/neoscope/neoscope/cuda/driver"
)

const Available = false

var errNoCgo = errors.New("emu: built without cgo")

func Malloc(n int) (driver.Ptr, error)               { return 0, errNoCgo }
func Free(p driver.Ptr)                              {}
func HtoD(dst driver.Ptr, src unsafe.Pointer, n int) {}
func DtoH(dst unsafe.Pointer, src driver.Ptr, n int) {}
func DtoD(dst, src driver.Ptr, n int)                {}
func Zero(p driver.Ptr, n int)                       {}
func Has(name string) bool                           { return false }
func Launch(name string, grid, block driver.Dim3, shmem int, args *driver.Args) error {
	return errNoCgo
}
