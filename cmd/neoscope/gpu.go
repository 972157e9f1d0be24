package main

import (
	"github.com/neoscope/neoscope/cuda"
	"github.com/neoscope/neoscope/runtime/backend"
)

// openGPU opens the CUDA backend: libcuda.so.1 is loaded at run time, so
// without a driver or a device this is an ordinary error (the caller falls
// back to the CPU for --backend auto).
func openGPU() (backend.Backend, error) {
	be, err := cuda.Open()
	if err != nil {
		return nil, err
	}
	return be, nil
}
