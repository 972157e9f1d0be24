package cuda

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/kernels/emu"
	"github.com/neoscope/neoscope/runtime/backend"
)

// Tests of the launch and memory machinery of backend.go, alloc.go and
// launch.go on the emulated device: grid chunking, the caching allocator,
// the NEOSCOPE_CUDA_SYNC debug mode. The kernels' arithmetic is the
// conformance suite's business.

func requireEmu(t *testing.T) {
	t.Helper()
	if !emu.Available {
		t.Fatal("the kernel emulator is not built (needs cgo and g++)")
	}
}

func ul(t *testing.T, b *Backend, r *rand.Rand, shape ...int) (backend.Tensor, []float32) {
	t.Helper()
	x := make([]float32, numel(shape))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	d, err := b.Upload(x, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return d, x
}

func dl(t *testing.T, b *Backend, d backend.Tensor) []float32 {
	t.Helper()
	out := make([]float32, d.Len())
	if err := b.Download(out, d); err != nil {
		t.Fatal(err)
	}
	return out
}

// chunkedOps runs MatMul (both tile kernels, a strided view), Attention
// (pattern and scores), AttnApply and LogitStats on b and returns every output.
func chunkedOps(t *testing.T, b *Backend) [][]float32 {
	r := rand.New(rand.NewPCG(7, 7))
	var outs [][]float32
	// MatMul: M=300 rows (5 tiles of 64, 3 of 128), a strided view of a.
	a, _ := ul(t, b, r, 300, 40)
	w, _ := ul(t, b, r, 50, 33)
	bias, _ := ul(t, b, r, 50)
	for _, big := range []int{264, 1} {
		b.bigTiles = big
		c, err := b.New(300, 50)
		if err != nil {
			t.Fatal(err)
		}
		av := backend.Whole(a).ColSlice(5, 33)
		if err := b.MatMul(backend.Whole(c), av, backend.Whole(w), true, bias, false); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, dl(t, b, c))
	}
	b.bigTiles = 264
	// Attention and AttnApply over B=5 batch rows of T=7, NH=2, HS=8, fused qkv.
	p := backend.AttnParams{B: 5, T: 7, NH: 2, HS: 8, Window: 4, Scale: 0.35}
	qkv, _ := ul(t, b, r, p.B*p.T, 3*p.NH*p.HS)
	D := p.NH * p.HS
	z, _ := b.New(p.B*p.T, D)
	pat, _ := b.New(p.B, p.NH, p.T, p.T)
	sc, _ := b.New(p.B, p.NH, p.T, p.T)
	whole := backend.Whole(qkv)
	if err := b.Attention(backend.Whole(z), whole.ColSlice(0, D), whole.ColSlice(D, D), whole.ColSlice(2*D, D), p, pat, sc); err != nil {
		t.Fatal(err)
	}
	z2, _ := b.New(p.B*p.T, D)
	if err := b.AttnApply(backend.Whole(z2), pat, whole.ColSlice(2*D, D), p); err != nil {
		t.Fatal(err)
	}
	outs = append(outs, dl(t, b, z), dl(t, b, pat), dl(t, b, sc), dl(t, b, z2))
	// LogitStats: 150 selected rows (3 tiles of 64), 2 ids each, V=70.
	x, _ := ul(t, b, r, 160, 24)
	wte, _ := ul(t, b, r, 70, 24)
	rows := make([]int32, 150)
	idx := make([]int32, 300)
	for i := range rows {
		rows[i] = int32(r.IntN(160))
		idx[2*i], idx[2*i+1] = int32(r.IntN(70)), int32(r.IntN(70))
	}
	lse, gath := make([]float32, 150), make([]float32, 300)
	if err := b.LogitStats(backend.Whole(x), backend.Whole(wte), rows, idx, lse, gath); err != nil {
		t.Fatal(err)
	}
	return append(outs, lse, gath)
}

// TestGridChunking: with the grid.y/z limit lowered to 2 blocks, every op
// that puts rows on y or z splits them into several launches (MatMul 3 and
// 2, Attention and AttnApply 3, LogitStats 2) and must give bit-for-bit the
// outputs of single launches (each element is computed by the same code).
func TestGridChunking(t *testing.T) {
	requireEmu(t)
	ref, small := newEmu(), newEmu()
	defer ref.Close()
	defer small.Close()
	small.maxGridYZ = 2
	want, got := chunkedOps(t, ref), chunkedOps(t, small)
	names := []string{"matmul", "matmul big", "attention z", "pattern", "scores", "attn apply z", "lse", "gathered"}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("%s: %d values, want %d", names[i], len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
				t.Errorf("%s[%d]: chunked %v, one launch %v", names[i], j, g, w)
				break
			}
		}
	}
}

// TestLaunchLimits: a grid beyond the limits is refused before the device
// sees it, with an error that names the operation and the kernel.
func TestLaunchLimits(t *testing.T) {
	requireEmu(t)
	b := newEmu()
	defer b.Close()
	b.maxGridYZ = 2
	err := b.launch(kAttention, driver.Dim3{X: 1, Y: 3, Z: 1}, driver.Dim3{X: 64, Y: 1, Z: 1}, 0, b.args.Reset())
	var le *LaunchError
	if !errors.As(err, &le) || le.Kernel != "attention_f32" || le.Op != "Attention" || !strings.Contains(err.Error(), "grid 1x3x1") {
		t.Fatalf("got %v, want a LaunchError naming Attention, attention_f32 and the grid", err)
	}
	if err := b.launch(kAdd, driver.Dim3{X: 1, Y: 1, Z: 1}, driver.Dim3{X: 2048, Y: 1, Z: 1}, 0, b.args.Reset()); err == nil {
		t.Error("a block of 2048 threads was accepted")
	}
}

// failingDevice is the emulated device whose sync reports a failure (as a
// GPU reports a faulting kernel at the next synchronisation), and whose
// memory is limited to budget bytes when budget > 0.
type failingDevice struct {
	emuDevice
	syncErr       error
	budget, in    int
	allocs, frees int
	sizes         map[driver.Ptr]int
}

func (d *failingDevice) sync() error { return d.syncErr }
func (d *failingDevice) alloc(n int) (driver.Ptr, error) {
	if d.budget > 0 && d.in+n > d.budget {
		return 0, errors.New("out of memory (test budget)")
	}
	p, err := d.emuDevice.alloc(n)
	if err == nil {
		d.in += n
		d.allocs++
		d.sizes[p] = n
	}
	return p, err
}
func (d *failingDevice) free(p driver.Ptr) {
	d.in -= d.sizes[p]
	delete(d.sizes, p)
	d.frees++
	d.emuDevice.free(p)
}

// TestSyncEachLaunch: in the debug mode a failure found by the
// synchronisation after a launch names the op and the kernel; without it the
// launch returns nil (the failure would surface at the next copy).
func TestSyncEachLaunch(t *testing.T) {
	requireEmu(t)
	dev := &failingDevice{syncErr: errors.New("CUDA_ERROR_ILLEGAL_ADDRESS"), sizes: map[driver.Ptr]int{}}
	b := newBackend(dev, "test")
	x, err := b.New(4, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.GELUNew(backend.Whole(x)); err != nil {
		t.Fatalf("without the debug mode: %v", err)
	}
	t.Setenv(SyncEnv, "1")
	b2 := newBackend(dev, "test")
	if !b2.syncEach {
		t.Fatalf("%s=1 did not turn the debug mode on", SyncEnv)
	}
	y, _ := b2.New(4, 8)
	err = b2.GELUNew(backend.Whole(y))
	var le *LaunchError
	if !errors.As(err, &le) || !le.AfterLaunch || le.Op != "GELUNew" || le.Kernel != "gelu_new_f32" ||
		!strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_ADDRESS") {
		t.Fatalf("got %v, want the sync failure named with GELUNew and gelu_new_f32", err)
	}
}

func TestSizeClass(t *testing.T) {
	for _, n := range []int{1, 255, 256, 257, 1000, 1 << 20, 1<<20 + 1, 3 << 20, 154_389_504, 1 << 30} {
		c := sizeClass(n)
		if c < n || c < 256 {
			t.Errorf("sizeClass(%d) = %d: too small", n, c)
		}
		if n > 256 && float64(c) > 2*float64(n) || n > 1<<20 && float64(c) > 1.125*float64(n) {
			t.Errorf("sizeClass(%d) = %d: too much slack", n, c)
		}
		if sizeClass(c) != c {
			t.Errorf("sizeClass(%d) = %d is not a fixed point", n, c)
		}
	}
}

// TestPool: a freed block is reused by the next tensor of its class without
// a driver call; New zeroes a reused (dirty) block, NewUninit and Upload do
// not clear it (NaN-poisoned on the emulator); when an allocation fails, the
// cache is released and the allocation retried.
func TestPool(t *testing.T) {
	requireEmu(t)
	dev := &failingDevice{budget: 3 * 4096, sizes: map[driver.Ptr]int{}}
	b := newBackend(dev, "test")
	r := rand.New(rand.NewPCG(1, 2))
	a, _ := ul(t, b, r, 1000) // 4000 bytes: the 4096 class
	pa := a.(*tensor).p
	b.Free(a)
	if live, cached := b.MemStats(); live != 0 || cached != 4096 {
		t.Fatalf("after Free: live %d cached %d, want 0 and 4096", live, cached)
	}
	z, err := b.New(900) // 3600 bytes: the same class, same block, zeroed
	if err != nil {
		t.Fatal(err)
	}
	if z.(*tensor).p != pa || dev.allocs != 1 {
		t.Fatalf("New after Free: block %#x (freed %#x), %d driver allocations; want the freed block, 1", z.(*tensor).p, pa, dev.allocs)
	}
	for i, v := range dl(t, b, z) {
		if v != 0 {
			t.Fatalf("New: element %d is %v after reusing a dirty block", i, v)
		}
	}
	b.Free(z)
	u, err := b.NewUninit(1000)
	if err != nil {
		t.Fatal(err)
	}
	if v := dl(t, b, u)[0]; v == v {
		t.Fatalf("NewUninit on the emulator: %v, want the NaN poison", v)
	}
	// Budget 3 blocks of 4096: u holds one; cache two more, then ask for a
	// 8192-byte block: only possible after the cache is released.
	c1, _ := b.New(1000)
	c2, _ := b.New(1000)
	b.Free(c1)
	b.Free(c2)
	big, err := b.New(2000)
	if err != nil {
		t.Fatalf("allocation after releasing the cache: %v", err)
	}
	if _, cached := b.MemStats(); cached != 0 || dev.frees != 2 {
		t.Fatalf("cache not released: %d bytes cached, %d driver frees", cached, dev.frees)
	}
	b.Free(big)
	b.Free(u)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if dev.in != 0 {
		t.Errorf("Close left %d bytes allocated", dev.in)
	}
}

// TestFatbinImage: the embedded module is a fatbin (its magic number and
// version 1 header), the image cuModuleLoadData will be given; which kernels
// it holds is TestKernelNames' check (kernels.names, kept current by make
// ptx-check).
func TestFatbinImage(t *testing.T) {
	if len(kernelsImage) < 16 || binary.LittleEndian.Uint32(kernelsImage) != 0xba55ed50 ||
		binary.LittleEndian.Uint16(kernelsImage[4:]) != 1 {
		t.Fatalf("kernels.fatbin (%d bytes) does not start with the fatbin magic 0xba55ed50, version 1", len(kernelsImage))
	}
}
