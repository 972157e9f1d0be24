package cpu

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/neoscope/neoscope/runtime/backend"
)

// Tensor is a host float32 tensor.
type Tensor struct {
	shape []int
	Data  []float32
	owned bool // allocated by New, so Free may recycle it
}

func (t *Tensor) Shape() []int { return t.shape }
func (t *Tensor) Len() int     { return len(t.Data) }

// Backend is the CPU implementation of backend.Backend.
type Backend struct {
	threads int
	mu      sync.Mutex
	free    map[int][][]float32 // freed buffers by length, reused by New
}

// New returns a CPU backend using GOMAXPROCS threads.
func New() *Backend { return &Backend{threads: runtime.GOMAXPROCS(0)} }

// SetThreads caps the goroutines (and BLAS threads) the backend uses.
func (be *Backend) SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	be.threads = n
	setBLASThreads(n)
}

// Threads reports the thread cap.
func (be *Backend) Threads() int { return be.threads }

func (be *Backend) Name() string { return "cpu (" + blasName + ")" }

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("backend: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// New returns a zeroed tensor, reusing a freed buffer of the same length when
// there is one: a forward pass frees and reallocates the same shapes, and
// reuse keeps the heap from holding a second copy until the GC runs.
func (be *Backend) New(shape ...int) (backend.Tensor, error) {
	return be.alloc(shape, true), nil
}

// NewUnzeroed is New without zeroing a reused buffer (backend.Unzeroed).
func (be *Backend) NewUnzeroed(shape ...int) (backend.Tensor, error) {
	return be.alloc(shape, false), nil
}

func (be *Backend) alloc(shape []int, zero bool) *Tensor {
	n := numel(shape)
	be.mu.Lock()
	var data []float32
	if l := be.free[n]; len(l) > 0 {
		data = l[len(l)-1]
		be.free[n] = l[:len(l)-1]
	}
	be.mu.Unlock()
	if data == nil {
		data = make([]float32, n)
	} else if zero {
		be.clear(data)
	}
	return &Tensor{shape: append([]int(nil), shape...), Data: data, owned: true}
}

// parallelMin is the fewest floats a memory-bound copy or clear splits
// over the threads for: below it a goroutine's start-up costs more than
// the second core saves.
const parallelMin = 1 << 18

// clear zeroes a recycled buffer, over the threads when it is large (a
// parameter gradient or a block's kept activations: hundreds of MB a
// backward pass, which one core zeroes at about 10 GB/s).
func (be *Backend) clear(d []float32) {
	if len(d) < parallelMin {
		clear(d)
		return
	}
	be.parallel(len(d), func(lo, hi int) { clear(d[lo:hi]) })
}

func (be *Backend) Upload(data []float32, shape ...int) (backend.Tensor, error) {
	if numel(shape) != len(data) {
		return nil, fmt.Errorf("backend: upload of %d values into shape %v", len(data), shape)
	}
	return &Tensor{shape: append([]int(nil), shape...), Data: append([]float32(nil), data...)}, nil
}

// Wrap makes a tensor over data without copying (weights from a memory map).
func (be *Backend) Wrap(data []float32, shape ...int) (backend.Tensor, error) {
	if numel(shape) != len(data) {
		return nil, fmt.Errorf("backend: wrap of %d values into shape %v", len(data), shape)
	}
	return &Tensor{shape: append([]int(nil), shape...), Data: data}, nil
}

func (be *Backend) Download(dst []float32, t backend.Tensor) error {
	src := host(t)
	if len(dst) != len(src) {
		return fmt.Errorf("backend: download of %d values into %d", len(src), len(dst))
	}
	copy(dst, src)
	return nil
}

func (be *Backend) DownloadMat(dst []float32, m backend.Mat) error {
	if len(dst) != m.Rows*m.Cols {
		return fmt.Errorf("backend: download of %dx%d view into %d values", m.Rows, m.Cols, len(dst))
	}
	src := host(m.T)
	for r := 0; r < m.Rows; r++ {
		copy(dst[r*m.Cols:(r+1)*m.Cols], src[m.Off+r*m.Stride:])
	}
	return nil
}

// Take hands t's data over without a copy (backend.Taker); t is empty afterwards.
func (be *Backend) Take(t backend.Tensor) []float32 {
	ct := t.(*Tensor)
	d := ct.Data
	ct.Data = nil
	return d
}

// maxFreeBuffers bounds the buffers kept per length.
const maxFreeBuffers = 16

// Free recycles a tensor made by New; wrapped and uploaded tensors are left to the GC.
func (be *Backend) Free(t backend.Tensor) {
	ct, ok := t.(*Tensor)
	if !ok || ct == nil || !ct.owned || ct.Data == nil {
		return
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if be.free == nil {
		be.free = map[int][][]float32{}
	}
	if l := be.free[len(ct.Data)]; len(l) < maxFreeBuffers {
		be.free[len(ct.Data)] = append(l, ct.Data)
	}
	ct.Data = nil
}

func host(t backend.Tensor) []float32 {
	if t == nil {
		return nil
	}
	ct, ok := t.(*Tensor)
	if !ok {
		panic(fmt.Sprintf("backend: cpu got a foreign tensor %T", t))
	}
	return ct.Data
}

// view returns the slice a view spans, checking bounds.
func view(m backend.Mat) []float32 {
	d := host(m.T)
	if m.Rows == 0 || m.Cols == 0 {
		return nil
	}
	end := m.Off + (m.Rows-1)*m.Stride + m.Cols
	if m.Off < 0 || m.Stride < m.Cols || end > len(d) {
		panic(fmt.Sprintf("backend: view off=%d rows=%d cols=%d stride=%d exceeds tensor of %d", m.Off, m.Rows, m.Cols, m.Stride, len(d)))
	}
	return d[m.Off:end]
}

// parallel runs f over [0,n) split into at most be.threads contiguous chunks.
func (be *Backend) parallel(n int, f func(lo, hi int)) { parallelN(be.threads, n, f) }

// parallelN runs f over [0,n) split into at most w contiguous chunks, one
// goroutine each.
func parallelN(w, n int, f func(lo, hi int)) {
	if w > n {
		w = n
	}
	if w <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

func sameDims(op string, a, b backend.Mat) {
	if a.Rows != b.Rows || a.Cols != b.Cols {
		panic(fmt.Sprintf("backend: %s: %dx%d vs %dx%d", op, a.Rows, a.Cols, b.Rows, b.Cols))
	}
}

func (be *Backend) MatMul(c, a, b backend.Mat, transB bool, bias backend.Tensor, accumulate bool) error {
	K, N := a.Cols, b.Cols
	if transB {
		N = b.Rows
		if b.Cols != K {
			panic(fmt.Sprintf("backend: matmul: a is %dx%d, b^T is %dx%d", a.Rows, a.Cols, b.Cols, b.Rows))
		}
	} else if b.Rows != K {
		panic(fmt.Sprintf("backend: matmul: a is %dx%d, b is %dx%d", a.Rows, a.Cols, b.Rows, b.Cols))
	}
	if c.Rows != a.Rows || c.Cols != N {
		panic(fmt.Sprintf("backend: matmul: c is %dx%d, want %dx%d", c.Rows, c.Cols, a.Rows, N))
	}
	if c.Rows == 0 || N == 0 {
		return nil
	}
	cd := view(c)
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	if bias != nil {
		bd := host(bias)
		if len(bd) != N {
			panic(fmt.Sprintf("backend: matmul: bias of %d for %d columns", len(bd), N))
		}
		// The bias rows are written on all threads: one thread copying
		// [rows, N] floats was 4% of a sweep's wall time.
		be.parallel(c.Rows, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row := cd[r*c.Stride : r*c.Stride+N]
				if !accumulate {
					copy(row, bd)
					continue
				}
				for j := range row {
					row[j] += bd[j]
				}
			}
		})
		beta = 1
	}
	if K == 0 {
		if beta == 0 {
			for r := 0; r < c.Rows; r++ {
				clear(cd[r*c.Stride : r*c.Stride+N])
			}
		}
		return nil
	}
	sgemm(be, transB, a.Rows, N, K, view(a), a.Stride, view(b), b.Stride, beta, cd, c.Stride)
	return nil
}

func (be *Backend) LayerNorm(out, x backend.Mat, w, b backend.Tensor, eps float32) error {
	sameDims("layernorm", out, x)
	C := x.Cols
	wd, bd := host(w), host(b)
	if len(wd) != C || len(bd) != C {
		panic(fmt.Sprintf("backend: layernorm: weight %d, bias %d for %d channels", len(wd), len(bd), C))
	}
	xd, od := view(x), view(out)
	be.parallel(x.Rows, func(lo, hi int) {
		layerNormRows(od[lo*out.Stride:], out.Stride, xd[lo*x.Stride:], x.Stride, wd, bd, hi-lo, eps)
	})
	return nil
}

// layerNormRowsGo normalises rows of x (stride xs) into out (stride os,
// may be x itself), len(w) channels each, mean and variance in float64.
// The pure-Go kernel, and the reference the native one is tested against.
func layerNormRowsGo(out []float32, os int, x []float32, xs int, w, b []float32, rows int, eps float32) {
	C := len(w)
	for r := 0; r < rows; r++ {
		xr := x[r*xs : r*xs+C]
		or := out[r*os : r*os+C]
		var s float64
		for _, v := range xr {
			s += float64(v)
		}
		mean := s / float64(C)
		var v2 float64
		for _, v := range xr {
			d := float64(v) - mean
			v2 += d * d
		}
		inv := 1 / math.Sqrt(v2/float64(C)+float64(eps))
		for j, v := range xr {
			or[j] = float32((float64(v)-mean)*inv)*w[j] + b[j]
		}
	}
}

// GELU constants of the tanh approximation.
const (
	geluK = 0.7978845608028654 // sqrt(2/pi)
	geluA = 0.044715
)

func (be *Backend) GELUNew(x backend.Mat) error {
	xd := view(x)
	be.parallel(x.Rows, func(lo, hi int) {
		geluRows(xd[lo*x.Stride:], hi-lo, x.Cols, x.Stride)
	})
	return nil
}

// geluRowsGo applies gelu_new in place to rows of x; the pure-Go kernel,
// and the reference the native one (native_cgo.go) is tested against.
func geluRowsGo(x []float32, rows, cols, stride int) {
	for r := 0; r < rows; r++ {
		row := x[r*stride : r*stride+cols]
		for j, v := range row {
			row[j] = 0.5 * v * (1 + tanh32(geluK*(v+geluA*v*v*v)))
		}
	}
}

// tanh32 is a float32 rational approximation of tanh (Eigen's
// generic_fast_tanh_float coefficients): max abs error 4e-7 against
// math.Tanh over [-20, 20] (TestTanh32), about 4x faster than float64
// math.Tanh here; GELU was 14% of a forward pass with math.Tanh.
func tanh32(x float32) float32 {
	// No |x| < 4e-4 shortcut (Eigen has one): GELU's inputs cluster near
	// zero, where it mispredicts; the rational form is within 1.3e-7
	// relative of x there anyway.
	const c = 7.90531110763549805
	if x > c {
		x = c
	}
	if x < -c {
		x = -c
	}
	x2 := x * x
	p := x2*float32(-2.76076847742355e-16) + float32(2.00018790482477e-13)
	p = x2*p + float32(-8.60467152213735e-11)
	p = x2*p + float32(5.12229709037114e-08)
	p = x2*p + float32(1.48572235717979e-05)
	p = x2*p + float32(6.37261928875436e-04)
	p = x2*p + float32(4.89352455891786e-03)
	p = x * p
	q := x2*float32(1.19825839466702e-06) + float32(1.18534705686654e-04)
	q = x2*q + float32(2.26843463243900e-03)
	q = x2*q + float32(4.89352518554385e-03)
	return p / q
}

func (be *Backend) Add(out, a, b backend.Mat) error {
	sameDims("add", out, a)
	sameDims("add", out, b)
	od, ad, bd := view(out), view(a), view(b)
	be.parallel(out.Rows, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o := od[r*out.Stride : r*out.Stride+out.Cols]
			x := ad[r*a.Stride : r*a.Stride+a.Cols]
			y := bd[r*b.Stride : r*b.Stride+b.Cols]
			for j := range o {
				o[j] = x[j] + y[j]
			}
		}
	})
	return nil
}

func (be *Backend) Copy(dst, src backend.Mat) error {
	sameDims("copy", dst, src)
	dd, sd := view(dst), view(src)
	rows := func(lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(dd[r*dst.Stride:r*dst.Stride+dst.Cols], sd[r*src.Stride:r*src.Stride+src.Cols])
		}
	}
	if dst.Rows*dst.Cols < parallelMin || dst.T == src.T { // within one tensor, in row order as before
		rows(0, dst.Rows)
	} else {
		be.parallel(dst.Rows, rows)
	}
	return nil
}

func (be *Backend) Embed(out backend.Tensor, wte, wpe backend.Mat, tokens []int32, B, T int) error {
	C := wte.Cols
	od := host(out)
	if len(tokens) != B*T || len(od) != B*T*C {
		panic(fmt.Sprintf("backend: embed: %d tokens, out %d, for B=%d T=%d C=%d", len(tokens), len(od), B, T, C))
	}
	td := view(wte)
	var pd []float32
	if wpe.T != nil {
		pd = view(wpe)
	}
	for i, tok := range tokens {
		o := od[i*C : (i+1)*C]
		copy(o, td[int(tok)*wte.Stride:int(tok)*wte.Stride+C])
		if pd != nil {
			p := pd[(i%T)*wpe.Stride:]
			for j := range o {
				o[j] += p[j]
			}
		}
	}
	return nil
}
