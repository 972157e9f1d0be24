//go:build cgo

package emu

import (
	"testing"
	"unsafe"

	"github.com/neoscope/neoscope/cuda/driver"
)

// The emulator's own primitives against CUDA's documented semantics; the
// kernels themselves are tested through the CUDA backend (cuda/conformance_test.go).

func alloc(t *testing.T, n int) driver.Ptr {
	p, err := Malloc(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Free(p) })
	return p
}

// TestShuffles: 2 blocks of 64 threads (two warps each); lanes whose source
// is outside their segment keep their own value.
func TestShuffles(t *testing.T) {
	const blocks, threads = 2, 64
	out := alloc(t, 4*6*blocks*threads)
	a := driver.NewArgs(4)
	if err := Launch("emu_selftest_shfl", driver.Dim3{X: blocks, Y: 1, Z: 1}, driver.Dim3{X: threads, Y: 1, Z: 1}, 0, a.Ptr(out)); err != nil {
		t.Fatal(err)
	}
	got := make([]int32, 6*blocks*threads)
	DtoH(unsafe.Pointer(&got[0]), out, 4*len(got))
	for th := 0; th < blocks*threads; th++ {
		l := th % 32
		want := [6]int{
			ifElse(l+3 < 32, l+3, l),
			ifElse(l-2 >= 0, l-2, l),
			l ^ 5,
			7,
			ifElse(l%8+3 < 8, l+3, l),
			l, // xor 4 within width 4 leaves the segment: own value
		}
		for k, w := range want {
			if int(got[th*6+k]) != w {
				t.Errorf("thread %d lane %d op %d: got %d want %d", th, l, k, got[th*6+k], w)
			}
		}
	}
}

func ifElse(c bool, a, b int) int {
	if c {
		return a
	}
	return b
}

// TestReduceAndShared: block_sum / block_max over 3 warps, static and
// dynamic shared memory, 3 blocks run one after another.
func TestReduceAndShared(t *testing.T) {
	const blocks, threads = 3, 96
	n := blocks * threads
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((i*37)%101) - 50
	}
	px, out, rev, rev2 := alloc(t, 4*n), alloc(t, 4*2*blocks), alloc(t, 4*n), alloc(t, 4*n)
	HtoD(px, unsafe.Pointer(&x[0]), 4*n)
	a := driver.NewArgs(4)
	if err := Launch("emu_selftest_reduce", driver.Dim3{X: blocks, Y: 1, Z: 1}, driver.Dim3{X: threads, Y: 1, Z: 1}, 4*threads,
		a.Ptr(out).Ptr(rev).Ptr(rev2).Ptr(px)); err != nil {
		t.Fatal(err)
	}
	o := make([]float32, 2*blocks)
	r, r2 := make([]float32, n), make([]float32, n)
	DtoH(unsafe.Pointer(&o[0]), out, 4*len(o))
	DtoH(unsafe.Pointer(&r[0]), rev, 4*n)
	DtoH(unsafe.Pointer(&r2[0]), rev2, 4*n)
	for b := 0; b < blocks; b++ {
		s, m := float32(0), float32(-1e30)
		for i := 0; i < threads; i++ {
			v := x[b*threads+i]
			s += v
			m = max(m, v)
			if r[b*threads+threads-1-i] != v || r2[b*threads+threads-1-i] != 2*v {
				t.Fatalf("block %d thread %d: reversal through shared memory wrong", b, i)
			}
		}
		// Integers: every order of summation is exact.
		if o[2*b] != s || o[2*b+1] != m {
			t.Errorf("block %d: sum %v max %v, want %v %v", b, o[2*b], o[2*b+1], s, m)
		}
	}
}

// TestLaunchErrors: what a GPU would refuse is refused.
func TestLaunchErrors(t *testing.T) {
	a := driver.NewArgs(4)
	if err := Launch("no_such_kernel", driver.Dim3{X: 1, Y: 1, Z: 1}, driver.Dim3{X: 32, Y: 1, Z: 1}, 0, a); err == nil {
		t.Error("unknown kernel accepted")
	}
	p := alloc(t, 4*6*2048)
	if err := Launch("emu_selftest_shfl", driver.Dim3{X: 1, Y: 1, Z: 1}, driver.Dim3{X: 2048, Y: 1, Z: 1}, 0, a.Reset().Ptr(p)); err == nil {
		t.Error("block of 2048 threads accepted")
	}
	if err := Launch("emu_selftest_shfl", driver.Dim3{X: 1, Y: 1, Z: 1}, driver.Dim3{X: 32, Y: 1, Z: 1}, 64<<10, a.Reset().Ptr(p)); err == nil {
		t.Error("64 KiB of dynamic shared memory accepted")
	}
}
