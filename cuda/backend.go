package cuda

import (
	_ "embed"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/neoscope/neoscope/cuda/driver"
	"github.com/neoscope/neoscope/runtime/backend"
)

// kernelsImage is kernels/all.cu compiled by kernels/build-ptx.sh (make ptx)
// into a fatbin: sm_80 and sm_90 SASS plus compute_80 PTX, which
// cuModuleLoadData accepts as it is; the driver picks the SASS for the GPU
// present or JIT-compiles the PTX for a newer one.
//
//go:embed kernels.fatbin
var kernelsImage []byte

// kernelsList is the kernels' entry names in kernelsImage, one a line,
// written by build-ptx.sh beside it (make ptx-check keeps both current).
//
//go:embed kernels.names
var kernelsList string

type kernel int

const (
	kMatMul kernel = iota
	kLayerNorm
	kGELU
	kAdd
	kCopy
	kEmbed
	kAttention
	kAttnApply
	kAblateHeads
	kAblateRows
	kLogitPartials
	kLogitLSE
	kMatMulBig
	kMatMulTF32
	kGELUErf // kernels/gelu_erf.cu
	kRotary  // kernels/rotary.cu
	numKernels
)

// kernelNames are the extern "C" names in kernels/*.cu.
var kernelNames = [numKernels]string{
	"matmul_f32", "layernorm_f32", "gelu_new_f32", "add_f32", "copy_f32", "embed_f32",
	"attention_f32", "attn_apply_f32", "ablate_heads_f32", "ablate_rows_f32",
	"logit_partials_f32", "logit_lse_f32", "matmul_f32_big",
	"matmul_tf32",
	"gelu_erf_f32", "rotary_f32",
}

// device is what the backend needs from a GPU: the driver (gpu below) or,
// in tests, the CPU emulator of the same kernel source.
type device interface {
	alloc(bytes int) (driver.Ptr, error)
	free(p driver.Ptr)
	htod(dst driver.Ptr, src unsafe.Pointer, bytes int) error
	dtoh(dst unsafe.Pointer, src driver.Ptr, bytes int) error
	zero(p driver.Ptr, bytes int) error
	launch(k kernel, grid, block driver.Dim3, shmem int, args *driver.Args) error
	sync() error
	close() error
}

type gpu struct {
	ctx *driver.Context
	mod *driver.Module
	fns [numKernels]*driver.Function
}

func (g *gpu) alloc(n int) (driver.Ptr, error) { return g.ctx.Alloc(n) }
func (g *gpu) free(p driver.Ptr)               { _ = g.ctx.Free(p) }
func (g *gpu) htod(dst driver.Ptr, src unsafe.Pointer, n int) error {
	return g.ctx.HtoD(dst, src, n)
}
func (g *gpu) dtoh(dst unsafe.Pointer, src driver.Ptr, n int) error {
	return g.ctx.DtoH(dst, src, n)
}
func (g *gpu) zero(p driver.Ptr, n int) error { return g.ctx.Zero(p, n) }
func (g *gpu) launch(k kernel, grid, block driver.Dim3, shmem int, a *driver.Args) error {
	return g.ctx.Launch(g.fns[k], grid, block, shmem, a)
}
func (g *gpu) sync() error { return g.ctx.Sync() }
func (g *gpu) close() error {
	err := g.ctx.Unload(g.mod)
	if e := g.ctx.Close(); err == nil {
		err = e
	}
	return err
}

// Backend runs the forward pass's operations on one CUDA device, on one
// stream. Operations are enqueued asynchronously; Download and DownloadMat
// (and LogitStats, which returns host slices) synchronise. A Backend is safe
// for use by one goroutine at a time; a mutex guards it anyway.
type Backend struct {
	mu   sync.Mutex
	dev  device
	name string
	args *driver.Args
	// scratch buffers, grown on demand, reused (stream order keeps reuse safe)
	sKeep, sTok, sRows, sIdx, sPart, sOut, sPack scratch
	closed                                       bool
	// bigTiles is the number of 128x128 output tiles from which MatMul uses
	// matmul_f32_big rather than the 64x64 kernel: two waves over an H200's
	// 132 SMs, so that the bigger tile never leaves most of the GPU idle.
	// A guess until measured (benchmarks/gpu-check.sh); tests set it to 1.
	bigTiles int
	tf32     bool // only SetTF32 sets it: builds with the tf32 tag (tf32.go)

	pool      pool   // the caching allocator (alloc.go)
	syncEach  bool   // NEOSCOPE_CUDA_SYNC=1: wait after every launch (launch.go)
	maxGridYZ uint32 // 65535; tests lower it to exercise the chunking
	// poison fills uninitialised allocations (Upload's, scratch) with NaN
	// before use: set for the emulated device, so that a kernel reading
	// memory nobody wrote shows it there.
	poison bool
}

type scratch struct {
	p   driver.Ptr
	cap int
}

// Open opens device 0: it loads the driver library, initialises it, loads the
// embedded PTX and resolves every kernel. Without a driver library or device
// it returns the driver's reason.
func Open() (*Backend, error) { return OpenDevice(0) }

// OpenDevice is Open for device ordinal (0-based, as cuDeviceGet counts).
func OpenDevice(ordinal int) (*Backend, error) {
	ctx, err := driver.Open(ordinal)
	if err != nil {
		return nil, err
	}
	g := &gpu{ctx: ctx}
	if g.mod, err = ctx.LoadModule(kernelsImage); err != nil {
		ctx.Close()
		return nil, err
	}
	for k := range g.fns {
		if g.fns[k], err = ctx.Function(g.mod, kernelNames[k]); err != nil {
			g.close()
			return nil, err
		}
	}
	return newBackend(g, "cuda "+ctx.Info().String()), nil
}

func newBackend(d device, name string) *Backend {
	_, real := d.(*gpu)
	return &Backend{dev: d, name: name, args: driver.NewArgs(32), bigTiles: 264,
		syncEach: syncFromEnv(), maxGridYZ: maxGridYZ, poison: !real}
}

// Name describes the device.
func (b *Backend) Name() string { return b.name }

// Close frees the scratch buffers and releases the device. Tensors not freed
// are released with the context.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	_ = b.dev.sync()
	for _, s := range []*scratch{&b.sKeep, &b.sTok, &b.sRows, &b.sIdx, &b.sPart, &b.sOut, &b.sPack} {
		if s.p != 0 {
			b.dev.free(s.p)
		}
		*s = scratch{}
	}
	_ = b.releaseCached()
	return b.dev.close()
}

// Sync waits for every enqueued operation.
func (b *Backend) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dev.sync()
}

// ensure grows s to at least n bytes.
func (b *Backend) ensure(s *scratch, n int) (driver.Ptr, error) {
	if s.cap >= n && s.p != 0 {
		return s.p, nil
	}
	if s.p != 0 {
		// The old buffer may still be read by enqueued kernels.
		if err := b.dev.sync(); err != nil {
			return 0, err
		}
		b.dev.free(s.p)
		*s = scratch{}
	}
	c := 256
	for c < n {
		c *= 2
	}
	p, err := b.dev.alloc(c)
	if err != nil && b.pool.cached > 0 {
		if rerr := b.releaseCached(); rerr != nil {
			return 0, rerr
		}
		p, err = b.dev.alloc(c)
	}
	if err != nil {
		return 0, fmt.Errorf("cuda: scratch of %d bytes: %w", c, err)
	}
	if err := b.poisonFill(p, c); err != nil {
		b.dev.free(p)
		return 0, err
	}
	*s = scratch{p: p, cap: c}
	return p, nil
}

// upload copies n bytes at src into scratch s.
func (b *Backend) upload(s *scratch, src unsafe.Pointer, n int) (driver.Ptr, error) {
	p, err := b.ensure(s, n)
	if err != nil {
		return 0, err
	}
	return p, b.dev.htod(p, src, n)
}

// tensor is device memory of n float32, a block of class bytes from the pool.
type tensor struct {
	p     driver.Ptr
	class int
	shape []int
	n     int
	owner *Backend
}

func (t *tensor) Shape() []int { return t.shape }
func (t *tensor) Len() int     { return t.n }

func (b *Backend) tensorOf(t backend.Tensor, what string) *tensor {
	d, ok := t.(*tensor)
	if !ok || d.owner != b {
		panic(fmt.Sprintf("backend: %s is not a tensor of this cuda backend", what))
	}
	if d.p == 0 {
		panic(fmt.Sprintf("backend: %s was freed", what))
	}
	return d
}

// opt is like tensorOf but maps nil to a NULL pointer.
func (b *Backend) opt(t backend.Tensor, what string, n int) driver.Ptr {
	if t == nil {
		return 0
	}
	d := b.tensorOf(t, what)
	if d.n != n {
		panic(fmt.Sprintf("backend: %s has %d elements, want %d", what, d.n, n))
	}
	return d.p
}

// view checks m and returns the device address of its first element.
func (b *Backend) view(m backend.Mat, what string) driver.Ptr {
	d := b.tensorOf(m.T, what)
	if m.Rows < 0 || m.Cols < 0 || m.Off < 0 || m.Stride < m.Cols {
		panic(fmt.Sprintf("backend: %s: bad view %dx%d+%d stride %d", what, m.Rows, m.Cols, m.Off, m.Stride))
	}
	if m.Rows > 0 && m.Cols > 0 && m.Off+(m.Rows-1)*m.Stride+m.Cols > d.n {
		panic(fmt.Sprintf("backend: %s: view %dx%d+%d stride %d overruns %d elements",
			what, m.Rows, m.Cols, m.Off, m.Stride, d.n))
	}
	return d.p + driver.Ptr(4*m.Off)
}

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		if s < 0 {
			panic(fmt.Sprintf("backend: negative dimension in %v", shape))
		}
		n *= s
	}
	return n
}

// New allocates a zeroed tensor (backend.Backend's contract): the block
// comes from the pool and is cleared by a memset enqueued on the stream, so
// it is zero for every operation enqueued after New returns.
func (b *Backend) New(shape ...int) (backend.Tensor, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.newLocked(shape, true)
}

// NewUninit allocates a tensor whose contents are unspecified (whatever the
// pool's block last held; NaN on the emulated device): for outputs that an
// operation overwrites completely before anything reads them. Not part of
// backend.Backend; callers reach it through an interface assertion.
func (b *Backend) NewUninit(shape ...int) (backend.Tensor, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.newLocked(shape, false)
}

func (b *Backend) newLocked(shape []int, zero bool) (*tensor, error) {
	n := numel(shape)
	bytes := 4 * max(n, 1)
	p, class, err := b.allocRaw(bytes)
	if err != nil {
		return nil, fmt.Errorf("cuda: allocating %v float32 (%d bytes): %w", shape, bytes, err)
	}
	if zero {
		err = b.dev.zero(p, bytes)
	} else {
		err = b.poisonFill(p, bytes)
	}
	if err != nil {
		b.freeRaw(p, class)
		return nil, err
	}
	return &tensor{p: p, class: class, shape: append([]int(nil), shape...), n: n, owner: b}, nil
}

// poisonFill writes NaN (all bits set) over n bytes at p when b.poison is set.
func (b *Backend) poisonFill(p driver.Ptr, n int) error {
	if !b.poison || n == 0 {
		return nil
	}
	nan := make([]byte, n)
	for i := range nan {
		nan[i] = 0xff
	}
	return b.dev.htod(p, unsafe.Pointer(&nan[0]), n)
}

// Upload copies data into a new tensor.
func (b *Backend) Upload(data []float32, shape ...int) (backend.Tensor, error) {
	if numel(shape) != len(data) {
		panic(fmt.Sprintf("backend: upload of %d values as %v", len(data), shape))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Not zeroed: the copy overwrites every element (an empty tensor's
	// placeholder block is never read).
	t, err := b.newLocked(shape, len(data) == 0)
	if err != nil || len(data) == 0 {
		return t, err
	}
	if err := b.dev.htod(t.p, unsafe.Pointer(&data[0]), 4*len(data)); err != nil {
		b.freeRaw(t.p, t.class)
		return nil, err
	}
	return t, nil
}

// Download copies t into dst, after every enqueued operation.
func (b *Backend) Download(dst []float32, t backend.Tensor) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.tensorOf(t, "download source")
	if len(dst) != d.n {
		panic(fmt.Sprintf("backend: download of %d elements into %d", d.n, len(dst)))
	}
	if d.n == 0 {
		return b.dev.sync()
	}
	return b.dev.dtoh(unsafe.Pointer(&dst[0]), d.p, 4*d.n)
}

// DownloadMat copies view m into dst packed (Rows*Cols).
func (b *Backend) DownloadMat(dst []float32, m backend.Mat) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.view(m, "download source")
	n := m.Rows * m.Cols
	if len(dst) != n {
		panic(fmt.Sprintf("backend: download of a %dx%d view into %d", m.Rows, m.Cols, len(dst)))
	}
	if n == 0 {
		return b.dev.sync()
	}
	if m.Stride != m.Cols && m.Rows > 1 {
		q, err := b.ensure(&b.sPack, 4*n)
		if err != nil {
			return err
		}
		if err := b.launch1D(kCopy, n, b.args.Reset().Ptr(q).Ptr(p).I32(m.Rows).I32(m.Cols).I32(m.Cols).I32(m.Stride)); err != nil {
			return err
		}
		p = q
	}
	return b.dev.dtoh(unsafe.Pointer(&dst[0]), p, 4*n)
}

// Free releases t: its block goes back to the pool at once, and because
// every later use of the block is enqueued on the same stream after the
// work already enqueued on t, that work still sees t's data (stream-ordered
// free; see pool in alloc.go).
func (b *Backend) Free(t backend.Tensor) {
	if t == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.tensorOf(t, "freed tensor")
	b.freeRaw(d.p, d.class)
	d.p = 0
}

func cdiv(a, b int) int { return (a + b - 1) / b }

// launch1D runs a grid-stride element-wise kernel over n elements.
func (b *Backend) launch1D(k kernel, n int, a *driver.Args) error {
	blocks := min(cdiv(n, 256), 8192)
	return b.launch(k, driver.Dim3{X: uint32(blocks), Y: 1, Z: 1}, driver.Dim3{X: 256, Y: 1, Z: 1}, 0, a)
}

func shapeErr(format string, args ...any) { panic(fmt.Sprintf("backend: "+format, args...)) }

// MatMul: c = a @ op(b) (+ bias) (+ c if accumulate).
func (b *Backend) MatMul(c, a, bm backend.Mat, transB bool, bias backend.Tensor, accumulate bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	M, K := a.Rows, a.Cols
	N, KB := bm.Cols, bm.Rows
	if transB {
		N, KB = bm.Rows, bm.Cols
	}
	if KB != K || c.Rows != M || c.Cols != N {
		shapeErr("matmul: a %dx%d, b %dx%d (transB %v), c %dx%d", a.Rows, a.Cols, bm.Rows, bm.Cols, transB, c.Rows, c.Cols)
	}
	pc, pa, pb := b.view(c, "matmul c"), b.view(a, "matmul a"), b.view(bm, "matmul b")
	pbias := b.opt(bias, "matmul bias", N)
	if M == 0 || N == 0 {
		return nil
	}
	k, tile, threads := kMatMul, 64, 256
	switch {
	case b.tf32:
		k, threads = kMatMulTF32, 128
	case cdiv(M, 128)*cdiv(N, 128) >= b.bigTiles:
		k, tile = kMatMulBig, 128
	}
	// Output tiles' rows go on grid.y: launches of at most maxGridYZ tile
	// rows, each with a and c advanced to its first row.
	return chunks(M, int(b.maxGridYZ)*tile, func(lo, m int) error {
		args := b.args.Reset().Ptr(pc + driver.Ptr(4*lo*c.Stride)).Ptr(pa + driver.Ptr(4*lo*a.Stride)).Ptr(pb).Ptr(pbias).
			I32(m).I32(N).I32(K).I32(a.Stride).I32(bm.Stride).I32(c.Stride).I32(b2i(transB)).I32(b2i(accumulate))
		return b.launch(k, driver.Dim3{X: uint32(cdiv(N, tile)), Y: uint32(cdiv(m, tile)), Z: 1},
			driver.Dim3{X: uint32(threads), Y: 1, Z: 1}, 0, args)
	})
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// LayerNorm over the last dimension of x into out.
func (b *Backend) LayerNorm(out, x backend.Mat, w, bias backend.Tensor, eps float32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if out.Rows != x.Rows || out.Cols != x.Cols {
		shapeErr("layernorm: out %dx%d, x %dx%d", out.Rows, out.Cols, x.Rows, x.Cols)
	}
	po, px := b.view(out, "layernorm out"), b.view(x, "layernorm x")
	pw, pb := b.opt(w, "layernorm weight", x.Cols), b.opt(bias, "layernorm bias", x.Cols)
	if w == nil || bias == nil {
		shapeErr("layernorm: nil weight or bias")
	}
	if x.Rows == 0 || x.Cols == 0 {
		return nil
	}
	args := b.args.Reset().Ptr(po).Ptr(px).Ptr(pw).Ptr(pb).I32(x.Rows).I32(x.Cols).I32(x.Stride).I32(out.Stride).F32(eps)
	return b.launch(kLayerNorm, driver.Dim3{X: uint32(cdiv(x.Rows, 8)), Y: 1, Z: 1}, driver.Dim3{X: 256, Y: 1, Z: 1}, 0, args)
}

// GELUNew applies GPT-2's tanh GELU in place.
func (b *Backend) GELUNew(x backend.Mat) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.view(x, "gelu x")
	if x.Rows*x.Cols == 0 {
		return nil
	}
	return b.launch1D(kGELU, x.Rows*x.Cols, b.args.Reset().Ptr(p).I32(x.Rows).I32(x.Cols).I32(x.Stride))
}

// Add: out = a + b.
func (b *Backend) Add(out, x, y backend.Mat) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if out.Rows != x.Rows || out.Cols != x.Cols || y.Rows != x.Rows || y.Cols != x.Cols {
		shapeErr("add: out %dx%d, a %dx%d, b %dx%d", out.Rows, out.Cols, x.Rows, x.Cols, y.Rows, y.Cols)
	}
	po, px, py := b.view(out, "add out"), b.view(x, "add a"), b.view(y, "add b")
	if x.Rows*x.Cols == 0 {
		return nil
	}
	return b.launch1D(kAdd, x.Rows*x.Cols, b.args.Reset().Ptr(po).Ptr(px).Ptr(py).I32(x.Rows).I32(x.Cols).
		I32(out.Stride).I32(x.Stride).I32(y.Stride))
}

// Copy: dst = src.
func (b *Backend) Copy(dst, src backend.Mat) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dst.Rows != src.Rows || dst.Cols != src.Cols {
		shapeErr("copy: dst %dx%d, src %dx%d", dst.Rows, dst.Cols, src.Rows, src.Cols)
	}
	pd, ps := b.view(dst, "copy dst"), b.view(src, "copy src")
	if src.Rows*src.Cols == 0 {
		return nil
	}
	return b.launch1D(kCopy, src.Rows*src.Cols, b.args.Reset().Ptr(pd).Ptr(ps).I32(src.Rows).I32(src.Cols).
		I32(dst.Stride).I32(src.Stride))
}

// Embed: out[b*T+t] = wte[tokens[b*T+t]] + wpe[t].
func (b *Backend) Embed(out backend.Tensor, wte, wpe backend.Mat, tokens []int32, B, T int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	C := wte.Cols
	noPos := wpe.T == nil // an empty view: no position embedding
	if len(tokens) != B*T || !noPos && (wpe.Cols != C || wpe.Rows < T) {
		shapeErr("embed: %d tokens for B=%d T=%d, wte %dx%d, wpe %dx%d", len(tokens), B, T, wte.Rows, wte.Cols, wpe.Rows, wpe.Cols)
	}
	po := b.opt(out, "embed out", B*T*C)
	pte := b.view(wte, "embed wte")
	if B*T*C == 0 {
		return nil
	}
	var ppe driver.Ptr
	ldpe := wpe.Stride
	if noPos {
		// The kernel adds wpe[t*ldpe + c]: read one zeroed row with ldpe 0
		// (scratch; the memset is ordered on the stream like the launch).
		var err error
		if ppe, err = b.ensure(&b.sPart, 4*C); err != nil {
			return err
		}
		if err := b.dev.zero(ppe, 4*C); err != nil {
			return err
		}
		ldpe = 0
	} else {
		ppe = b.view(wpe, "embed wpe")
	}
	ptok, err := b.upload(&b.sTok, unsafe.Pointer(&tokens[0]), 4*len(tokens))
	if err != nil {
		return err
	}
	return b.launch1D(kEmbed, B*T*C, b.args.Reset().Ptr(po).Ptr(pte).Ptr(ppe).Ptr(ptok).I32(B).I32(T).I32(C).
		I32(wte.Stride).I32(ldpe))
}

func (b *Backend) attnViews(p backend.AttnParams, what string, ms ...backend.Mat) {
	if p.B < 0 || p.T < 0 || p.NH <= 0 || p.HS <= 0 || p.Window < 0 {
		shapeErr("%s: bad params %+v", what, p)
	}
	for _, m := range ms {
		if m.Rows != p.B*p.T || m.Cols != p.NH*p.HS {
			shapeErr("%s: view %dx%d, want %dx%d", what, m.Rows, m.Cols, p.B*p.T, p.NH*p.HS)
		}
	}
}

// maxAttnShared is the default dynamic shared memory limit of a launch.
const maxAttnShared = 48 << 10

// Attention computes z from q, k, v; pattern and scores are optional outputs.
func (b *Backend) Attention(z, q, k, v backend.Mat, p backend.AttnParams, pattern, scores backend.Tensor) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attnViews(p, "attention", z, q, k, v)
	pz, pq, pk, pv := b.view(z, "attention z"), b.view(q, "attention q"), b.view(k, "attention k"), b.view(v, "attention v")
	np := p.B * p.NH * p.T * p.T
	ppat, psc := b.opt(pattern, "attention pattern", np), b.opt(scores, "attention scores", np)
	if p.B*p.T == 0 {
		return nil
	}
	shmem := 4 * (p.T + p.HS + 32)
	if shmem > maxAttnShared {
		return fmt.Errorf("cuda: attention with T=%d, HS=%d needs %d bytes of shared memory, more than %d", p.T, p.HS, shmem, maxAttnShared)
	}
	// One thread per output column of the head (HS rounded up to warps),
	// between 2 and 4 warps: 64 for GPT-Neo-125M's HS=64, 128 for HS=128.
	threads := min(max(cdiv(p.HS, 32)*32, 64), 128)
	// Batch rows go on grid.z: launches of at most maxGridYZ rows, every
	// view and the (B,NH,T,T) outputs advanced to the chunk's first row.
	return chunks(p.B, int(b.maxGridYZ), func(lo, n int) error {
		r, o := lo*p.T, driver.Ptr(4*lo*p.NH*p.T*p.T)
		args := b.args.Reset().Ptr(pz + driver.Ptr(4*r*z.Stride)).Ptr(pq + driver.Ptr(4*r*q.Stride)).
			Ptr(pk + driver.Ptr(4*r*k.Stride)).Ptr(pv + driver.Ptr(4*r*v.Stride)).Ptr(offNonNil(ppat, o)).Ptr(offNonNil(psc, o)).
			I32(p.T).I32(p.NH).I32(p.HS).I32(p.Window).F32(p.Scale).I32(q.Stride).I32(k.Stride).I32(v.Stride).I32(z.Stride)
		return b.launch(kAttention, driver.Dim3{X: uint32(p.T), Y: uint32(p.NH), Z: uint32(n)},
			driver.Dim3{X: uint32(threads), Y: 1, Z: 1}, shmem, args)
	})
}

// offNonNil is p+o, or 0 (an absent optional output) when p is 0.
func offNonNil(p, o driver.Ptr) driver.Ptr {
	if p == 0 {
		return 0
	}
	return p + o
}

// AttnApply computes z from a given pattern and v.
func (b *Backend) AttnApply(z backend.Mat, pattern backend.Tensor, v backend.Mat, p backend.AttnParams) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attnViews(p, "attn apply", z, v)
	pz, pv := b.view(z, "attn apply z"), b.view(v, "attn apply v")
	ppat := b.opt(pattern, "attn apply pattern", p.B*p.NH*p.T*p.T)
	if pattern == nil {
		shapeErr("attn apply: nil pattern")
	}
	if p.B*p.T == 0 {
		return nil
	}
	threads := min(cdiv(p.HS, 32)*32, 128)
	// Batch rows on grid.z, chunked as in Attention.
	return chunks(p.B, int(b.maxGridYZ), func(lo, n int) error {
		r := lo * p.T
		args := b.args.Reset().Ptr(pz + driver.Ptr(4*r*z.Stride)).Ptr(ppat + driver.Ptr(4*lo*p.NH*p.T*p.T)).
			Ptr(pv + driver.Ptr(4*r*v.Stride)).I32(p.T).I32(p.NH).I32(p.HS).I32(v.Stride).I32(z.Stride)
		return b.launch(kAttnApply, driver.Dim3{X: uint32(p.T), Y: uint32(p.NH), Z: uint32(n)},
			driver.Dim3{X: uint32(threads), Y: 1, Z: 1}, 0, args)
	})
}

func allKept(keep []uint8) bool {
	for _, k := range keep {
		if k == 0 {
			return false
		}
	}
	return true
}

// AblateHeads replaces ablated heads' slices of z with fill (or zero).
func (b *Backend) AblateHeads(z backend.Mat, keep []uint8, NH, T int, fill backend.Tensor) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if NH <= 0 || T <= 0 || z.Rows%T != 0 || z.Cols%NH != 0 || len(keep) != z.Rows/T*NH {
		shapeErr("ablate heads: z %dx%d, NH=%d, T=%d, %d keep flags", z.Rows, z.Cols, NH, T, len(keep))
	}
	pz := b.view(z, "ablate heads z")
	pf := b.opt(fill, "ablate heads fill", T*z.Cols)
	if allKept(keep) {
		return nil
	}
	pk, err := b.upload(&b.sKeep, unsafe.Pointer(&keep[0]), len(keep))
	if err != nil {
		return err
	}
	R := z.Rows / T
	return b.launch1D(kAblateHeads, z.Rows*z.Cols, b.args.Reset().Ptr(pz).Ptr(pk).Ptr(pf).I32(R).I32(T).I32(NH).
		I32(z.Cols/NH).I32(z.Stride))
}

// AblateRows replaces ablated rows' T vectors of x with fill (or zero).
func (b *Backend) AblateRows(x backend.Mat, keep []uint8, T int, fill backend.Tensor) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if T <= 0 || x.Rows%T != 0 || len(keep) != x.Rows/T {
		shapeErr("ablate rows: x %dx%d, T=%d, %d keep flags", x.Rows, x.Cols, T, len(keep))
	}
	px := b.view(x, "ablate rows x")
	pf := b.opt(fill, "ablate rows fill", T*x.Cols)
	if allKept(keep) {
		return nil
	}
	pk, err := b.upload(&b.sKeep, unsafe.Pointer(&keep[0]), len(keep))
	if err != nil {
		return err
	}
	return b.launch1D(kAblateRows, x.Rows*x.Cols, b.args.Reset().Ptr(px).Ptr(pk).Ptr(pf).I32(len(keep)).I32(T).
		I32(x.Cols).I32(x.Stride))
}

// LogitStats computes, for each selected row of x, logsumexp of x[row] @
// wte^T and the logits at the given ids, 64x64 tiles at a time (see
// kernels/logit_stats.cu); it returns after the results are on the host.
func (b *Backend) LogitStats(x backend.Mat, wte backend.Mat, rows []int32, idx []int32, lse, gathered []float32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	NR := len(rows)
	if NR == 0 {
		if len(idx) != 0 || len(lse) != 0 || len(gathered) != 0 {
			shapeErr("logit stats: no rows but %d ids, %d lse, %d gathered", len(idx), len(lse), len(gathered))
		}
		return nil
	}
	G := len(idx) / NR
	V, C := wte.Rows, wte.Cols
	if len(idx) != NR*G || len(lse) != NR || len(gathered) != len(idx) || x.Cols != C || V == 0 {
		shapeErr("logit stats: x %dx%d, wte %dx%d, %d rows, %d ids, %d lse, %d gathered",
			x.Rows, x.Cols, V, C, NR, len(idx), len(lse), len(gathered))
	}
	for _, r := range rows {
		if r < 0 || int(r) >= x.Rows {
			return fmt.Errorf("backend: logit stats: row %d out of %d", r, x.Rows)
		}
	}
	px, pw := b.view(x, "logit stats x"), b.view(wte, "logit stats wte")
	prow, err := b.upload(&b.sRows, unsafe.Pointer(&rows[0]), 4*NR)
	if err != nil {
		return err
	}
	var pidx driver.Ptr
	if G > 0 {
		if pidx, err = b.upload(&b.sIdx, unsafe.Pointer(&idx[0]), 4*len(idx)); err != nil {
			return err
		}
	}
	nchunks := cdiv(V, 64)
	ppart, err := b.ensure(&b.sPart, 4*2*NR*nchunks)
	if err != nil {
		return err
	}
	pout, err := b.ensure(&b.sOut, 4*(NR+len(idx)))
	if err != nil {
		return err
	}
	pgath := pout + driver.Ptr(4*NR)
	// 64-row tiles of the selected rows go on grid.y: launches of at most
	// maxGridYZ tiles, the row list, ids and outputs advanced to the chunk.
	if err := chunks(NR, int(b.maxGridYZ)*64, func(lo, n int) error {
		args := b.args.Reset().Ptr(ppart + driver.Ptr(4*2*lo*nchunks)).Ptr(pgath + driver.Ptr(4*lo*G)).Ptr(px).Ptr(pw).
			Ptr(prow + driver.Ptr(4*lo)).Ptr(offNonNil(pidx, driver.Ptr(4*lo*G))).I32(n).I32(V).I32(C).I32(G).
			I32(x.Stride).I32(wte.Stride)
		return b.launch(kLogitPartials, driver.Dim3{X: uint32(nchunks), Y: uint32(cdiv(n, 64)), Z: 1},
			driver.Dim3{X: 256, Y: 1, Z: 1}, 0, args)
	}); err != nil {
		return err
	}
	if err := b.launch(kLogitLSE, driver.Dim3{X: uint32(cdiv(NR, 8)), Y: 1, Z: 1}, driver.Dim3{X: 256, Y: 1, Z: 1}, 0,
		b.args.Reset().Ptr(pout).Ptr(ppart).I32(NR).I32(nchunks)); err != nil {
		return err
	}
	if err := b.dev.dtoh(unsafe.Pointer(&lse[0]), pout, 4*NR); err != nil {
		return err
	}
	if G > 0 {
		if err := b.dev.dtoh(unsafe.Pointer(&gathered[0]), pgath, 4*len(idx)); err != nil {
			return err
		}
	}
	// Ids outside the vocabulary match no tile; like the CPU backend, they read NaN.
	for i, id := range idx {
		if id < 0 || int(id) >= V {
			gathered[i] = float32(math.NaN())
		}
	}
	return nil
}

var _ backend.Backend = (*Backend)(nil)
