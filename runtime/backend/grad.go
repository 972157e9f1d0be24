package backend

// Grad is the optional set of backward-pass operations (reverse-mode
// differentiation of the forward pass). A backend that implements it can run
// runtime/forward's Backward; callers type-assert (be.(backend.Grad)) and
// report a clear error when it is missing, so a backend can follow later
// without breaking the build. Shapes: B rows, T tokens, C d_model, NH heads,
// HS head size. "Accumulate" means add into the output instead of
// overwriting it. The matrix product dX = dY @ op(W) needs no new op (it is
// MatMul with the other transB); the weight gradient needs a^T @ b.
type Grad interface {
	// MatMulTN: c = a^T @ b (+ c if accumulate); a is [K,M], b is [K,N], c is [M,N].
	MatMulTN(c, a, b Mat, accumulate bool) error
	// ColSum: out[j] = sum_i x[i,j] (+ out[j] if accumulate); out has x.Cols elements.
	ColSum(out Tensor, x Mat, accumulate bool) error
	// LayerNormBackward: given the input x [R,C] of out = LayerNorm(x)*w + b and
	// dout = dM/dout, writes dx = dM/dx (added to dx if accumulate) and, when
	// dw/db ([C]) are not nil, adds sum over rows of dout*xhat and dout to them.
	LayerNormBackward(dx, dout, x Mat, w Tensor, eps float32, dw, db Tensor, accumulate bool) error
	// GELUNewBackward: dx = dy * gelu_new'(pre), element-wise; dx may alias dy.
	GELUNewBackward(dx, dy, pre Mat) error
	// GELUErfBackward: dx = dy * gelu'(pre) for the exact GELU x*Phi(x):
	// gelu'(x) = Phi(x) + x*phi(x); element-wise, dx may alias dy.
	GELUErfBackward(dx, dy, pre Mat) error
	// AttentionBackward: given q, k, v [B*T, NH*HS] and dz = dM/dz, recomputes
	// the pattern (as Attention does, with p's mask and scale) and writes
	// dq, dk, dv [B*T, NH*HS] (overwritten).
	AttentionBackward(dq, dk, dv, dz, q, k, v Mat, p AttnParams) error
	// EmbedBackward adds dx [B*T, C] into the embedding gradients:
	// dwte[tokens[i]] += dx[i] and, when dwpe.T is not nil, dwpe[i%T] += dx[i].
	EmbedBackward(dwte, dwpe Mat, dx Mat, tokens []int32, B, T int) error
	// SoftmaxXentBackward turns a chunk of logits [R,V] in place into the
	// gradient of scale * sum_i CE(logits[i], targets[i]):
	// scale * (softmax(logits[i]) - onehot(targets[i])); rows with target < 0
	// become zero.
	SoftmaxXentBackward(logits Mat, targets []int32, scale float32) error
}

// Taker is optional: a backend whose tensors already live in host memory
// hands a tensor made by New over to the caller instead of copying it out
// (the data Download would give). The tensor is empty afterwards: Free of it
// does nothing and it must not be used again. The parameter gradients (as
// many floats as the weights) are handed over this way.
type Taker interface {
	Take(t Tensor) []float32
}

// LNStats is optional (the CPU backend has it): LayerNormBackward split so
// that several backward passes through one LayerNorm (the EAP's 3*NH
// receivers of a layer read ln_1 of the same input) compute x's row
// statistics once.
type LNStats interface {
	// LayerNormRowStats returns x's row means and 1/sqrt(var + eps): [R, 2].
	LayerNormRowStats(x Mat, eps float32) (Tensor, error)
	// LayerNormBackwardStats is LayerNormBackward without dw and db, with
	// stats from LayerNormRowStats(x, eps); dx may alias dout. When sum.T
	// is not nil it also adds dout into sum [R,C] (the EAP's receivers of a
	// layer sum to the gradient of ln_1's output that way).
	LayerNormBackwardStats(dx, dout, x Mat, stats, w Tensor, accumulate bool, sum Mat) error
}

// XentLoss is optional (the CPU backend has it): SoftmaxXentBackward that
// also writes each row's loss, logsumexp(logits[i]) - logits[i][targets[i]]
// (0 where the target is negative), into loss, so that the mean next-token
// loss and its gradient share one pass over the logits.
type XentLoss interface {
	SoftmaxXentBackwardLoss(logits Mat, targets []int32, scale float32, loss []float64) error
}
