package driver

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Error is a failed driver call.
type Error struct {
	Op   string // the entry point, e.g. "cuMemAlloc_v2"
	Code int    // the CUresult
	Name string // e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Msg  string // e.g. "out of memory"
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Op, e.Name, e.Code, e.Msg)
}

// CUDA_ERROR_OUT_OF_MEMORY, for callers that want to tell it apart.
const ErrorOutOfMemory = 2

// IsOutOfMemory reports whether err is the driver's out-of-memory error.
func IsOutOfMemory(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == ErrorOutOfMemory
}

// Ptr is a device address (CUdeviceptr).
type Ptr uint64

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z uint32 }

// Info describes the device a Context was opened on.
type Info struct {
	Ordinal      int
	Name         string
	TotalMem     uint64
	Major, Minor int // compute capability
	DriverAPI    int // cuDriverGetVersion, e.g. 12040
}

func (i Info) String() string {
	return fmt.Sprintf("%s (sm_%d%d, %.1f GiB, driver API %d.%d)", i.Name, i.Major, i.Minor,
		float64(i.TotalMem)/(1<<30), i.DriverAPI/1000, (i.DriverAPI%1000)/10)
}

// Args packs kernel arguments the way cuLaunchKernel reads them: an array of
// pointers, entry i pointing at argument i, each argument stored at its own
// width (8 bytes for pointers, 4 for int and float) in its own 8-byte slot.
// The memory is C memory (cgo forbids handing C a pointer to Go memory that
// holds Go pointers) allocated once and reused for every launch: the driver
// copies the values when the launch is enqueued.
type Args struct {
	vals unsafe.Pointer // max 8-byte slots
	ptrs unsafe.Pointer // max void*, ptrs[i] = &vals[i]
	n    int
	max  int
}

func (a *Args) slot() unsafe.Pointer {
	if a.n >= a.max {
		panic(fmt.Sprintf("driver: more than %d kernel arguments", a.max))
	}
	p := unsafe.Add(a.vals, 8*a.n)
	a.n++
	return p
}

// Reset empties a for the next launch.
func (a *Args) Reset() *Args { a.n = 0; return a }

// Ptr appends a device pointer (8 bytes).
func (a *Args) Ptr(p Ptr) *Args { *(*uint64)(a.slot()) = uint64(p); return a }

// I32 appends an int (4 bytes).
func (a *Args) I32(v int) *Args {
	if v > math.MaxInt32 || v < math.MinInt32 {
		panic(fmt.Sprintf("driver: kernel argument %d overflows int32", v))
	}
	*(*int32)(a.slot()) = int32(v)
	return a
}

// F32 appends a float (4 bytes).
func (a *Args) F32(v float32) *Args { *(*float32)(a.slot()) = v; return a }

// Len is the number of arguments packed.
func (a *Args) Len() int { return a.n }

// Params is the void** array for cuLaunchKernel's kernelParams.
func (a *Args) Params() unsafe.Pointer { return a.ptrs }

// Slot returns the address of argument i's value (for tests).
func (a *Args) Slot(i int) unsafe.Pointer { return unsafe.Add(a.vals, 8*i) }
