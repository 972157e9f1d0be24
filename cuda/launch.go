package cuda

import (
	"fmt"
	"os"

	"github.com/neoscope/neoscope/cuda/driver"
)

// Launch limits of every GPU neoscope targets (compute capability >= 8.0).
const (
	maxGridX       = 1<<31 - 1
	maxGridYZ      = 65535
	maxBlockThread = 1024
)

// SyncEnv names the debug switch: with NEOSCOPE_CUDA_SYNC=1 the Backend
// synchronises after every kernel launch, so that an asynchronous failure
// (an illegal address, a trap) is reported by the launch that caused it,
// named with its operation and kernel, instead of by a later copy.
// Much slower; for finding a failing kernel.
const SyncEnv = "NEOSCOPE_CUDA_SYNC"

func syncFromEnv() bool { return os.Getenv(SyncEnv) == "1" }

// SetSyncEachLaunch turns the debug mode of SyncEnv on or off.
func (b *Backend) SetSyncEachLaunch(on bool) {
	b.mu.Lock()
	b.syncEach = on
	b.mu.Unlock()
}

// LaunchError is a failed kernel launch (or, in the synchronous debug mode,
// a failure of the kernel itself): the operation, the kernel and its
// configuration, wrapping the driver's error.
type LaunchError struct {
	Op, Kernel  string
	Grid, Block driver.Dim3
	Shared      int
	AfterLaunch bool // the error came from the synchronisation after the launch
	Err         error
}

func (e *LaunchError) Error() string {
	when := "launch"
	if e.AfterLaunch {
		when = "run"
	}
	return fmt.Sprintf("cuda: %s: kernel %s %s failed (grid %dx%dx%d, block %dx%dx%d, %d B shared): %v",
		e.Op, e.Kernel, when, e.Grid.X, e.Grid.Y, e.Grid.Z, e.Block.X, e.Block.Y, e.Block.Z, e.Shared, e.Err)
}

func (e *LaunchError) Unwrap() error { return e.Err }

// kernelOps names the Backend operation that launches each kernel.
var kernelOps = [numKernels]string{
	kMatMul: "MatMul", kMatMulBig: "MatMul", kMatMulTF32: "MatMul (tf32)", kLayerNorm: "LayerNorm",
	kGELU: "GELUNew", kAdd: "Add", kCopy: "Copy (or DownloadMat)", kEmbed: "Embed", kAttention: "Attention",
	kAttnApply: "AttnApply", kAblateHeads: "AblateHeads", kAblateRows: "AblateRows",
	kLogitPartials: "LogitStats", kLogitLSE: "LogitStats", kGELUErf: "GELUErf", kRotary: "Rotary",
}

// launch checks the configuration against the hardware limits, launches k
// and, in the debug mode, waits for it; errors name the operation and kernel.
func (b *Backend) launch(k kernel, grid, block driver.Dim3, shmem int, a *driver.Args) error {
	fail := func(after bool, err error) error {
		op := kernelOps[k]
		if op == "" { // a kernel added without an entry above
			op = "op"
		}
		return &LaunchError{Op: op, Kernel: kernelNames[k], Grid: grid, Block: block, Shared: shmem, AfterLaunch: after, Err: err}
	}
	switch {
	case grid.X == 0 || grid.Y == 0 || grid.Z == 0:
		return fail(false, fmt.Errorf("empty grid"))
	case grid.X > maxGridX || grid.Y > b.maxGridYZ || grid.Z > b.maxGridYZ:
		// A bug in the chunking below: every op splits its rows first.
		return fail(false, fmt.Errorf("grid beyond the limits (x <= %d, y and z <= %d)", maxGridX, b.maxGridYZ))
	case block.X*block.Y*block.Z == 0 || block.X*block.Y*block.Z > maxBlockThread:
		return fail(false, fmt.Errorf("block of %d threads", block.X*block.Y*block.Z))
	}
	if err := b.dev.launch(k, grid, block, shmem, a); err != nil {
		return fail(false, err)
	}
	if b.syncEach {
		if err := b.dev.sync(); err != nil {
			return fail(true, err)
		}
	}
	return nil
}

// chunks calls f(lo, n) for consecutive pieces [lo, lo+n) of total items,
// each at most per long: how ops split rows that go on grid.y or grid.z
// (at most maxGridYZ blocks) into several launches.
func chunks(total, per int, f func(lo, n int) error) error {
	for lo := 0; lo < total; lo += per {
		if err := f(lo, min(per, total-lo)); err != nil {
			return err
		}
	}
	return nil
}
