package cuda

import (
	"unsafe"

	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/kernels/emu"
)

// emuDevice runs the kernels' source on the CPU (kernels/emu): the whole
// backend (shape checks, views' offsets, grid sizes, argument packing) is
// exercised as on a GPU; only the device is emulated.
type emuDevice struct{}

func (emuDevice) alloc(n int) (driver.Ptr, error) { return emu.Malloc(n) }
func (emuDevice) free(p driver.Ptr)               { emu.Free(p) }
func (emuDevice) htod(dst driver.Ptr, src unsafe.Pointer, n int) error {
	emu.HtoD(dst, src, n)
	return nil
}
func (emuDevice) dtoh(dst unsafe.Pointer, src driver.Ptr, n int) error {
	emu.DtoH(dst, src, n)
	return nil
}
func (emuDevice) zero(p driver.Ptr, n int) error { emu.Zero(p, n); return nil }
func (emuDevice) launch(k kernel, grid, block driver.Dim3, shmem int, a *driver.Args) error {
	return emu.Launch(kernelNames[k], grid, block, shmem, a)
}
func (emuDevice) sync() error  { return nil }
func (emuDevice) close() error { return nil }

func newEmu() *Backend { return newBackend(emuDevice{}, "cuda-emu") }
