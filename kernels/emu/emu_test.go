//go:build cgo

package emu

import (
	"os"
	"strings"
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

func launchInts(t *testing.T, name string, grid, threads, shmem int, n int, args func(a *driver.Args, p driver.Ptr)) ([]int32, error) {
	t.Helper()
	p := alloc(t, 4*n)
	a := driver.NewArgs(4)
	args(a, p)
	err := Launch(name, driver.Dim3{X: uint32(grid), Y: 1, Z: 1}, driver.Dim3{X: uint32(threads), Y: 1, Z: 1}, shmem, a)
	out := make([]int32, n)
	DtoH(unsafe.Pointer(&out[0]), p, 4*n)
	return out, err
}

// TestBlocks: shared memory (static and dynamic) is NaN when a block starts
// and private to the block; blocks run concurrently (at least two at once
// seen, with the default NEOSCOPE_EMU_BLOCKS=2) and not in grid order.
func TestBlocks(t *testing.T) {
	if v := os.Getenv("NEOSCOPE_EMU_BLOCKS"); v != "" && v != "2" {
		t.Skipf("NEOSCOPE_EMU_BLOCKS=%s: the concurrency figures below assume 2", v)
	}
	const grid = 6
	inOrder := 0
	for run := 0; run < 3; run++ {
		if _, err := launchInts(t, "emu_selftest_reset", 1, 1, 0, 1, func(a *driver.Args, p driver.Ptr) { a.Ptr(p) }); err != nil {
			t.Fatal(err)
		}
		out, err := launchInts(t, "emu_selftest_blocks", grid, 64, 256, 4*grid+1, func(a *driver.Args, p driver.Ptr) { a.Ptr(p) })
		if err != nil {
			t.Fatal(err)
		}
		sorted := true
		for b := 0; b < grid; b++ {
			if out[4*b] != 1 || out[4*b+1] != 1 {
				t.Errorf("run %d block %d: shared memory not NaN at the start (static %d, dynamic %d)", run, b, out[4*b], out[4*b+1])
			}
			if out[4*b+2] != 1 {
				t.Errorf("run %d block %d: its static shared memory was changed by another block", run, b)
			}
			if out[4*b+3] != int32(b) {
				sorted = false
			}
		}
		if out[4*grid] < 2 {
			t.Errorf("run %d: at most %d block(s) ran at once, want 2", run, out[4*grid])
		}
		if sorted {
			inOrder++
		}
	}
	if inOrder == 3 {
		t.Error("three launches of 6 blocks all ran in grid order: the order is not shuffled")
	}
}

// TestLegacyShared: a kernel with a plain __shared__ (one instance for the
// grid) still runs correctly: its blocks one at a time.
func TestLegacyShared(t *testing.T) {
	const grid = 8
	out, err := launchInts(t, "emu_selftest_legacy", grid, 64, 0, grid, func(a *driver.Args, p driver.Ptr) { a.Ptr(p) })
	if err != nil {
		t.Fatal(err)
	}
	for b, v := range out {
		if v != int32(b) {
			t.Errorf("block %d: %d (its __shared__ array was overwritten by another block)", b, v)
		}
	}
}

// TestLaunchBounds: __launch_bounds__(64) refuses a block of 96 threads.
func TestLaunchBounds(t *testing.T) {
	set := func(a *driver.Args, p driver.Ptr) { a.Ptr(p) }
	if _, err := launchInts(t, "emu_selftest_bounds", 1, 64, 0, 96, set); err != nil {
		t.Fatalf("64 threads: %v", err)
	}
	_, err := launchInts(t, "emu_selftest_bounds", 1, 96, 0, 96, set)
	if err == nil || !strings.Contains(err.Error(), "__launch_bounds__(64)") {
		t.Fatalf("96 threads under __launch_bounds__(64): %v, want a refusal naming the bound", err)
	}
}

// TestShuffleMasks: a full mask in a partial warp (48 threads: the second
// warp has 16 lanes) and a mask without the calling lane fail the launch;
// the mask of exactly the lanes present works.
func TestShuffleMasks(t *testing.T) {
	mode := func(m int32) func(a *driver.Args, p driver.Ptr) {
		return func(a *driver.Args, p driver.Ptr) { a.Ptr(p).I32(int(m)) }
	}
	_, err := launchInts(t, "emu_selftest_mask", 1, 48, 0, 48, mode(0))
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("FULL_MASK with 16 lanes present: %v, want a refusal", err)
	}
	out, err := launchInts(t, "emu_selftest_mask", 1, 48, 0, 48, mode(1))
	if err != nil {
		t.Fatalf("mask of the lanes present: %v", err)
	}
	for th, v := range out {
		if want := int32(th%32) ^ 1; v != want {
			t.Errorf("thread %d: %d, want %d", th, v, want)
		}
	}
	if _, err := launchInts(t, "emu_selftest_mask", 1, 64, 0, 64, mode(2)); err == nil || !strings.Contains(err.Error(), "not in its mask") {
		t.Errorf("mask without the calling lane: %v, want a refusal", err)
	}
}

// TestSharedLimit: static (SHARED) plus dynamic shared memory above 48 KiB
// fails the launch, as on a GPU without an opt-in.
func TestSharedLimit(t *testing.T) {
	if _, err := launchInts(t, "emu_selftest_reset", 1, 1, 0, 1, func(a *driver.Args, p driver.Ptr) { a.Ptr(p) }); err != nil {
		t.Fatal(err)
	}
	// emu_selftest_blocks declares 256 bytes of static shared memory.
	_, err := launchInts(t, "emu_selftest_blocks", 1, 64, 48<<10-128, 5, func(a *driver.Args, p driver.Ptr) { a.Ptr(p) })
	if err == nil || !strings.Contains(err.Error(), "> 48 KiB") {
		t.Errorf("256 B static + %d B dynamic shared memory: %v, want a refusal", 48<<10-128, err)
	}
}
