package driver

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unsafe"
)

// TestOpenMissingLibrary: a machine without the NVIDIA driver's library gets
// an error naming the library, not a crash.
func TestOpenMissingLibrary(t *testing.T) {
	c, err := openLib("libcuda-neoscope-does-not-exist.so.1", 0)
	if err == nil {
		c.Close()
		t.Fatal("opening a missing library succeeded")
	}
	if !strings.Contains(err.Error(), "libcuda-neoscope-does-not-exist.so.1") && !strings.Contains(err.Error(), "cgo") {
		t.Fatalf("error does not name the library: %v", err)
	}
	t.Logf("missing library: %v", err)
}

// TestOpen: on a machine with a GPU this opens it; elsewhere the error must be
// one of the expected kinds (no library, or a driver error with its name).
func TestOpen(t *testing.T) {
	c, err := Open(0)
	if err != nil {
		msg := err.Error()
		if _, ok := err.(*Error); ok {
			if !strings.Contains(msg, "CUDA_ERROR_") {
				t.Fatalf("driver error without the driver's name: %v", err)
			}
		} else if !strings.Contains(msg, "cannot load") && !strings.Contains(msg, "cgo") &&
			!strings.Contains(msg, "present") {
			t.Fatalf("unexpected error kind: %v", err)
		}
		t.Skipf("no usable device: %v", err)
	}
	defer c.Close()
	t.Logf("device: %v", c.Info())
	p, err := c.Alloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free(p)
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(i * 7)
	}
	if err := c.HtoD(p, unsafe.Pointer(&src[0]), len(src)); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, len(src))
	if err := c.DtoH(unsafe.Pointer(&dst[0]), p, len(dst)); err != nil {
		t.Fatal(err)
	}
	for i := range src {
		if src[i] != dst[i] {
			t.Fatalf("byte %d: %d != %d", i, dst[i], src[i])
		}
	}
	// An impossible allocation is a returned out-of-memory error.
	if _, err := c.Alloc(1 << 50); err == nil || !IsOutOfMemory(err) {
		t.Fatalf("1 PiB allocation: want out of memory, got %v", err)
	}
}

// TestArgsWidths: each argument sits at its own width in its own slot.
func TestArgsWidths(t *testing.T) {
	a := NewArgs(4)
	a.Ptr(0x1122334455667788).I32(-5).F32(1.5)
	if a.Len() != 3 {
		t.Fatalf("len %d", a.Len())
	}
	if v := *(*uint64)(a.Slot(0)); v != 0x1122334455667788 {
		t.Errorf("ptr slot %x", v)
	}
	if v := *(*int32)(a.Slot(1)); v != -5 {
		t.Errorf("i32 slot %d", v)
	}
	if v := *(*uint32)(a.Slot(2)); v != math.Float32bits(1.5) {
		t.Errorf("f32 slot %x", v)
	}
	params := unsafe.Slice((*unsafe.Pointer)(a.Params()), 4)
	for i := 0; i < 3; i++ {
		if params[i] != a.Slot(i) {
			t.Errorf("params[%d] does not point at slot %d", i, i)
		}
	}
	a.Reset()
	if a.Len() != 0 {
		t.Fatal("reset")
	}
}

// TestIsOutOfMemory: recognised through wrapping, as the backend wraps it.
func TestIsOutOfMemory(t *testing.T) {
	e := &Error{Op: "cuMemAlloc_v2", Code: ErrorOutOfMemory, Name: "CUDA_ERROR_OUT_OF_MEMORY", Msg: "out of memory"}
	if !IsOutOfMemory(fmt.Errorf("cuda: allocating: %w", e)) {
		t.Error("wrapped out-of-memory error not recognised")
	}
	if IsOutOfMemory(&Error{Code: 1}) || IsOutOfMemory(nil) {
		t.Error("other errors taken for out of memory")
	}
	if got := e.Error(); got != "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory" {
		t.Errorf("message %q", got)
	}
}
