package cuda

import (
	"testing"
	"unsafe"

	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/runtime/backend"
)

// nullDevice does no device work: it isolates the Go side of an operation
// (checks, argument packing, the mutex) from the driver call.
type nullDevice struct{ next driver.Ptr }

func (d *nullDevice) alloc(n int) (driver.Ptr, error) { d.next += 1 << 32; return d.next, nil }
func (d *nullDevice) free(p driver.Ptr)               {}
func (d *nullDevice) htod(driver.Ptr, unsafe.Pointer, int) error {
	return nil
}
func (d *nullDevice) dtoh(unsafe.Pointer, driver.Ptr, int) error { return nil }
func (d *nullDevice) zero(driver.Ptr, int) error                 { return nil }
func (d *nullDevice) launch(kernel, driver.Dim3, driver.Dim3, int, *driver.Args) error {
	return nil
}
func (d *nullDevice) sync() error  { return nil }
func (d *nullDevice) close() error { return nil }

// BenchmarkGoOverhead: the Go cost of one MatMul and one Attention call
// before the driver (to which cuLaunchKernel adds a few microseconds).
func BenchmarkGoOverhead(b *testing.B) {
	be := newBackend(&nullDevice{}, "null")
	x := must(be.New(1024, 3*768))
	w := must(be.New(768, 768))
	z := must(be.New(1024, 768))
	f := backend.Whole(x)
	p := backend.AttnParams{B: 8, T: 128, NH: 12, HS: 64, Scale: 1}
	b.Run("MatMul", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := be.MatMul(backend.Whole(z), f.ColSlice(0, 768), backend.Whole(w), true, nil, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Attention", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := be.Attention(backend.Whole(z), f.ColSlice(0, 768), f.ColSlice(768, 768), f.ColSlice(1536, 768), p, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
