//go:build tf32

package cuda

// TF32Built reports whether this build has the TF32 tensor-core MatMul
// (the tf32 build tag).
const TF32Built = true

// SetTF32 makes MatMul use tensor cores with TF32 inputs
// (kernels/matmul_tf32.cu, mma.sync.m16n8k8): faster, and about 1e-3
// relative error instead of fp32's 1e-6. Off by default, and only in builds
// with the tf32 tag: the kernel is UNVERIFIED on hardware (emulated only,
// against the fragment layout it assumes). Before it enters the default
// build (or a --tf32 flag), benchmarks/gpu-check.sh (whose build step uses
// -tags tf32) must show on a GPU: TestMatMulTF32 passing (the fragment
// layout is right), its max error against the fp32-input product on the
// sweep's shapes, and its speed beside matmul_f32 and torch's TF32 matmul.
func (b *Backend) SetTF32(on bool) {
	b.mu.Lock()
	b.tf32 = on
	b.mu.Unlock()
}
