//go:build !tf32

package cuda

// TF32Built reports whether this build has the TF32 tensor-core MatMul:
// not without the tf32 build tag (see tf32.go for why, and what must be
// measured on a GPU first). The kernel stays in kernels.fatbin; no code
// path of this build launches it.
const TF32Built = false
