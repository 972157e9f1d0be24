package main

import (
	"errors"

	nsrt "github.com/neoscope/neoscope/runtime"
)

// openGPU opens the CUDA backend. TODO(issue 8): wire cuda.Open.
func openGPU() (nsrt.Backend, error) {
	return nil, errors.New("the CUDA backend is not built into this binary yet")
}
