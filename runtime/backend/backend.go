// Package backend defines the small set of batch-level operations the forward
// pass is written against (Backend) and the strided matrix views they take
// (Mat). cpu and cuda implement it; runtime/forward and everything above use
// it without naming either. It was the top-level package `runtime` until that
// name, which shadows Go's standard library, forced an alias in every file.
package backend

// Tensor is a float32 buffer owned by one Backend (host memory for the CPU,
// device memory for CUDA), row-major, with a fixed shape.
type Tensor interface {
	Shape() []int
	Len() int // product of Shape
}

// Mat is a 2-D row-major view into a Tensor: Rows x Cols elements starting at
// element Off, consecutive rows Stride elements apart (Stride >= Cols). Views
// let the forward pass read q, k and v out of one fused [B*T, 3C] buffer, or
// write three projections into one, without copies; they map one to one onto
// BLAS leading dimensions and onto kernel arguments.
type Mat struct {
	T                       Tensor
	Off, Rows, Cols, Stride int
}

// Whole views a tensor whose shape is [..., cols] as a (Len/cols) x cols matrix.
func Whole(t Tensor) Mat {
	s := t.Shape()
	cols := s[len(s)-1]
	return Mat{T: t, Rows: t.Len() / cols, Cols: cols, Stride: cols}
}

// ColSlice views columns [c0, c0+n) of m.
func (m Mat) ColSlice(c0, n int) Mat {
	return Mat{T: m.T, Off: m.Off + c0, Rows: m.Rows, Cols: n, Stride: m.Stride}
}

// RowSlice views rows [r0, r0+n) of m.
func (m Mat) RowSlice(r0, n int) Mat {
	return Mat{T: m.T, Off: m.Off + r0*m.Stride, Rows: n, Cols: m.Cols, Stride: m.Stride}
}

// AttnParams describes one causal self-attention layer applied to B rows of T
// tokens. Query i sees key j iff j <= i and, when Window > 0, i-j < Window
// (GPT-Neo's local layers). Scores are Scale * q.k (GPT-Neo: 1; GPT-2:
// 1/sqrt(HS)); softmax is computed in float32 with masked keys at exactly 0.
type AttnParams struct {
	B, T, NH, HS int
	Window       int
	Scale        float32
}

// RotaryParams describes a rotary position embedding (GPT-NeoX, rotate-half
// layout) applied in place to q or k [B*T, NH*HS]: in every head, the first
// Dims dims (Dims even, <= HS) with x1 = dims [0, Dims/2) and x2 = dims
// [Dims/2, Dims) become (x1 cos - x2 sin, x2 cos + x1 sin) at the angles of
// position t = row % T; the other dims pass unchanged. The angles come as a
// table [>=T, Dims]: row t holds cos(t*f_i) for i < Dims/2, then sin(t*f_i),
// f_i = base^(-2i/Dims), computed by the caller (in float64, then rounded).
type RotaryParams struct {
	B, T, NH, HS, Dims int
}

// Backend is the small set of operations the forward pass is written against.
// Every operation works on whole batches: no per-token calls. Implementations
// may run asynchronously; Download is the synchronisation point.
//
// Misuse (mismatched shapes) panics with a "backend:" prefix; conditions a
// caller can meet at run time (out of memory, a driver error) are returned.
type Backend interface {
	Name() string

	// New allocates a zeroed tensor.
	New(shape ...int) (Tensor, error)
	// Upload copies host data into a new tensor of the given shape.
	Upload(data []float32, shape ...int) (Tensor, error)
	// Download copies t into dst (len(dst) == t.Len()).
	Download(dst []float32, t Tensor) error
	// DownloadMat copies a view into dst (len Rows*Cols, packed).
	DownloadMat(dst []float32, m Mat) error
	// Free releases t; using it afterwards is a bug. Freeing nil is a no-op.
	Free(t Tensor)

	// MatMul: c = a @ op(b) (+ bias broadcast over rows) (+ c if accumulate).
	// a is [M,K]; op(b) is b [K,N], or b^T when transB and b is [N,K]; c is [M,N].
	MatMul(c, a, b Mat, transB bool, bias Tensor, accumulate bool) error
	// LayerNorm over the last dimension of x [R,C] into out [R,C] with weight
	// and bias [C], biased variance, the given eps.
	LayerNorm(out, x Mat, w, b Tensor, eps float32) error
	// GELUNew applies 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) in place.
	GELUNew(x Mat) error
	// GELUErf applies the exact GELU x*Phi(x) = 0.5x(1+erf(x/sqrt(2))) in
	// place (Hugging Face's "gelu", GPT-NeoX's MLP).
	GELUErf(x Mat) error
	// Rotary applies the rotary embedding p to x in place, with the angle
	// table described at RotaryParams.
	Rotary(x Mat, table Tensor, p RotaryParams) error
	// Add: out = a + b, element-wise over equal shapes (out may alias a or b).
	Add(out, a, b Mat) error
	// Copy: dst = src over equal-shaped views.
	Copy(dst, src Mat) error
	// Embed: out[b*T+t] = wte[tokens[b*T+t]] + wpe[t]; out is [B*T, C].
	// An empty wpe view (wpe.T == nil, the zero Mat) means no position
	// embedding: out[b*T+t] = wte[tokens[b*T+t]] (the forward pass embeds
	// tokens and positions separately when hook_embed / hook_pos_embed are
	// watched; GPT-NeoX has no wpe). Token ids are validated by the caller.
	Embed(out Tensor, wte, wpe Mat, tokens []int32, B, T int) error

	// Attention computes z [B*T, NH*HS] (head h at columns h*HS..) from q, k, v
	// views [B*T, NH*HS]. If pattern ([B,NH,T,T]) is non-nil the
	// probabilities are written there; if scores is non-nil the masked,
	// scaled pre-softmax scores are written there with masked entries -Inf.
	Attention(z, q, k, v Mat, p AttnParams, pattern, scores Tensor) error
	// AttnApply computes z from a given pattern [B,NH,T,T] and v (used when a
	// hook replaced the pattern).
	AttnApply(z Mat, pattern Tensor, v Mat, p AttnParams) error

	// AblateHeads edits z [R*T, NH*HS] for R rows of T tokens: for each row r
	// and head h with keep[r*NH+h] == 0, head h's slice becomes
	// fill[t, h*HS:(h+1)*HS] (fill [T, NH*HS]) or zero when fill is nil.
	AblateHeads(z Mat, keep []uint8, NH, T int, fill Tensor) error
	// AblateRows edits x [R*T, C]: for each row r with keep[r] == 0 the T
	// vectors of that row become fill[t] (fill [T, C]) or zero when nil.
	AblateRows(x Mat, keep []uint8, T int, fill Tensor) error

	// Unembed computes the loss-style reductions the metrics need from final
	// residual rows without materialising [rows, V] logits at once:
	// for each selected row i of x [R, C] (after ln_final), logits = x[i] @ wte^T;
	// out[i] receives logsumexp(logits) and, for each j, gather[i*G+j] =
	// logits[idx[i*G+j]]. G = len(idx)/len(rows).
	LogitStats(x Mat, wte Mat, rows []int32, idx []int32, lse, gathered []float32) error
}

// Unzeroed is implemented by backends that can allocate a tensor without
// zeroing it, for an output that one operation then writes whole (the
// logits' product, a MatMul without accumulate): zeroing 1024 x 50257
// logits was 1.5% of a forward pass on the CPU.
type Unzeroed interface {
	NewUnzeroed(shape ...int) (Tensor, error)
}
