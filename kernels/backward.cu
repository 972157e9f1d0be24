// backward.cu: the backward-pass kernels (backend.Grad), twins of cpu/grad.go.
// Version 1: plain and deterministic (no atomics: every output element has one
// writer), tested under the emulator against the CPU backend
// (kernels/emu/backward_test.go); not yet measured on a GPU, and not yet
// wired into cuda/ (the CUDA backend does not implement backend.Grad yet).
// Matrix arguments are pointers with the view's offset added plus row strides.
#include "common.cuh"

// matmul_tn_f32: c = a^T @ b (+ c if accumulate); a (K,M) stride lda, b (K,N)
// stride ldb, c (M,N) stride ldc. One thread per output element, K-loop in
// registers; grid-stride over M*N. Naive (no tiling): the weight gradients
// are a third of a backward pass's matmul work, so this wants matmul.cu's
// tiling next.
extern "C" __global__ void __launch_bounds__(256)
matmul_tn_f32(float* c, const float* a, const float* b, int M, int N, int K, int lda, int ldb, int ldc, int accumulate) {
	long n = (long)M * N;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		int i = e / N, j = e % N;
		float s = 0.0f;
		for (int k = 0; k < K; k++) s += a[(size_t)k * lda + i] * b[(size_t)k * ldb + j];
		float* o = c + (size_t)i * ldc + j;
		*o = accumulate ? *o + s : s;
	}
}

// colsum_f32: out[j] = sum_i x[i,j] (+ out[j] if accumulate); x (R,C) stride ld.
// One thread per column (coalesced across a row).
extern "C" __global__ void __launch_bounds__(256) colsum_f32(float* out, const float* x, int R, int C, int ld, int accumulate) {
	for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < C; j += gridDim.x * blockDim.x) {
		float s = 0.0f;
		for (int i = 0; i < R; i++) s += x[(size_t)i * ld + j];
		out[j] = accumulate ? out[j] + s : s;
	}
}

// layernorm_backward_f32: for out = LN(x)*w + b and dout = dM/dout, writes
// dx = rstd*(g - mean(g) - xhat*mean(g*xhat)), g = dout*w (added to dx if
// accumulate), and, when stats is not NULL, (mean, rstd) of each row into
// stats (R,2) for layernorm_backward_wb_f32. One warp per row, 8 rows per
// block of 256, as layernorm_f32.
extern "C" __global__ void __launch_bounds__(256)
layernorm_backward_f32(float* dx, const float* dout, const float* x, const float* w, float* stats, int R, int C, int lddx,
		       int ldg, int ldx, float eps, int accumulate) {
	int lane = threadIdx.x % 32;
	int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
	if (row >= R) return;  // the whole warp leaves together
	const float* xr = x + (size_t)row * ldx;
	const float* gr = dout + (size_t)row * ldg;
	float s = 0.0f;
	for (int i = lane; i < C; i += 32) s += xr[i];
	float mean = warp_sum(s) / C;
	float v = 0.0f;
	for (int i = lane; i < C; i += 32) {
		float d = xr[i] - mean;
		v += d * d;
	}
	float rstd = 1.0f / sqrtf(warp_sum(v) / C + eps);
	float mg = 0.0f, mgx = 0.0f;
	for (int i = lane; i < C; i += 32) {
		float g = gr[i] * w[i];
		mg += g;
		mgx += g * (xr[i] - mean) * rstd;
	}
	mg = warp_sum(mg) / C;
	mgx = warp_sum(mgx) / C;
	float* o = dx + (size_t)row * lddx;
	for (int i = lane; i < C; i += 32) {
		float d = rstd * (gr[i] * w[i] - mg - (xr[i] - mean) * rstd * mgx);
		o[i] = accumulate ? o[i] + d : d;
	}
	if (stats != nullptr && lane == 0) {
		stats[2 * row] = mean;
		stats[2 * row + 1] = rstd;
	}
}

// layernorm_backward_wb_f32: dw[j] += sum_r dout[r,j]*xhat[r,j], db[j] +=
// sum_r dout[r,j] (either may be NULL), from the row stats of
// layernorm_backward_f32. One thread per column.
extern "C" __global__ void __launch_bounds__(256)
layernorm_backward_wb_f32(float* dw, float* db, const float* dout, const float* x, const float* stats, int R, int C, int ldg,
			  int ldx) {
	for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < C; j += gridDim.x * blockDim.x) {
		float sw = 0.0f, sb = 0.0f;
		for (int r = 0; r < R; r++) {
			float g = dout[(size_t)r * ldg + j];
			sw += g * (x[(size_t)r * ldx + j] - stats[2 * r]) * stats[2 * r + 1];
			sb += g;
		}
		if (dw != nullptr) dw[j] += sw;
		if (db != nullptr) db[j] += sb;
	}
}

// gelu_new_backward_f32: dx = dy * gelu_new'(pre); dx may alias dy.
extern "C" __global__ void __launch_bounds__(256)
gelu_new_backward_f32(float* dx, const float* dy, const float* pre, int R, int C, int lddx, int lddy, int ldp) {
	const float k = 0.7978845608028654f;  // sqrt(2/pi)
	long n = (long)R * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / C, c = e % C;
		float x = pre[r * ldp + c];
		float th = tanhf(k * (x + 0.044715f * x * x * x));
		float g = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * k * (1.0f + 3.0f * 0.044715f * x * x);
		dx[r * lddx + c] = dy[r * lddy + c] * g;
	}
}

// gelu_erf_backward_f32: dx = dy * gelu'(pre) for the exact GELU x*Phi(x):
// gelu'(x) = Phi(x) + x*phi(x); dx may alias dy. In double and rounded once,
// as gelu_erf_f32 and the CPU backend (cpu/grad.go) do.
extern "C" __global__ void __launch_bounds__(256)
gelu_erf_backward_f32(float* dx, const float* dy, const float* pre, int R, int C, int lddx, int lddy, int ldp) {
	long n = (long)R * C;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		long r = e / C, c = e % C;
		double x = pre[r * ldp + c];
		double g = 0.5 * (1.0 + erf(x * 0.70710678118654752440)) + x * exp(-0.5 * x * x) * 0.39894228040143267794;
		dx[r * lddx + c] = (float)(dy[r * lddy + c] * g);
	}
}

// embed_backward_f32: dwte[tokens[i]] += dx[i], and dwpe[i%T] += dx[i] when
// dwpe is not NULL. One thread per column walks every row in order: repeated
// tokens need no atomics and the sums are deterministic.
extern "C" __global__ void __launch_bounds__(256)
embed_backward_f32(float* dwte, float* dwpe, const float* dx, const int* tokens, int B, int T, int C, int ldte, int ldpe,
		   int lddx) {
	for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < C; j += gridDim.x * blockDim.x) {
		for (int i = 0; i < B * T; i++) {
			float v = dx[(size_t)i * lddx + j];
			dwte[(size_t)tokens[i] * ldte + j] += v;
			if (dwpe != nullptr) dwpe[(size_t)(i % T) * ldpe + j] += v;
		}
	}
}

// softmax_xent_backward_f32: logits[r] <- scale*(softmax(logits[r]) -
// onehot(targets[r])), or 0 where targets[r] < 0. One block per row
// (blockDim a multiple of 32).
extern "C" __global__ void __launch_bounds__(256)
softmax_xent_backward_f32(float* logits, const int* targets, int R, int V, int ld, float scale) {
	__shared__ float red[32];
	int r = blockIdx.x;
	if (r >= R) return;  // the whole block leaves together
	float* row = logits + (size_t)r * ld;
	int tg = targets[r];
	if (tg < 0) {
		for (int j = threadIdx.x; j < V; j += blockDim.x) row[j] = 0.0f;
		return;
	}
	float mx = -INFINITY;
	for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, row[j]);
	mx = block_max(mx, red);
	float s = 0.0f;
	for (int j = threadIdx.x; j < V; j += blockDim.x) s += expf(row[j] - mx);
	s = block_sum(s, red);
	float inv = 1.0f / s;
	for (int j = threadIdx.x; j < V; j += blockDim.x) row[j] = scale * (expf(row[j] - mx) * inv - (j == tg ? 1.0f : 0.0f));
}

// Attention backward, in two kernels so that every output row has one
// writer. q, k, v, dz, dq, dk, dv are [B*T, NH*HS] views (head h at columns
// h*HS); key j is visible to query i iff j <= i and, with window > 0,
// i - j < window. scratch is [B, NH, T, 2] floats: each query's
// log-sum-exp of the scaled scores and D_i = sum_j p_ij dz_i.v_j.
//
// attention_backward_dq_f32: one thread per (b, h, query i): the row's
// softmax statistics, D_i, and dq_i = scale sum_j p_ij (dz_i.v_j - D_i) k_j.
extern "C" __global__ void __launch_bounds__(256)
attention_backward_dq_f32(float* dq, float* scratch, const float* dz, const float* q, const float* k, const float* v, int B,
			  int T, int NH, int HS, int ldq, int ldk, int ldv, int lddz, int lddq, int window, float scale) {
	long n = (long)B * NH * T;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		int i = e % T, h = (e / T) % NH, b = e / ((long)T * NH);
		int j0 = (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
		const float* qi = q + (size_t)(b * T + i) * ldq + h * HS;
		const float* dzi = dz + (size_t)(b * T + i) * lddz + h * HS;
		float mx = -INFINITY;
		for (int j = j0; j <= i; j++) {
			const float* kj = k + (size_t)(b * T + j) * ldk + h * HS;
			float s = 0.0f;
			for (int d = 0; d < HS; d++) s += qi[d] * kj[d];
			mx = fmaxf(mx, s * scale);
		}
		float sum = 0.0f, D = 0.0f;
		for (int j = j0; j <= i; j++) {
			const float* kj = k + (size_t)(b * T + j) * ldk + h * HS;
			const float* vj = v + (size_t)(b * T + j) * ldv + h * HS;
			float s = 0.0f, dp = 0.0f;
			for (int d = 0; d < HS; d++) {
				s += qi[d] * kj[d];
				dp += dzi[d] * vj[d];
			}
			float p = expf(s * scale - mx);
			sum += p;
			D += p * dp;
		}
		D /= sum;
		float lse = mx + logf(sum);
		float* dqi = dq + (size_t)(b * T + i) * lddq + h * HS;
		for (int d = 0; d < HS; d++) dqi[d] = 0.0f;
		for (int j = j0; j <= i; j++) {
			const float* kj = k + (size_t)(b * T + j) * ldk + h * HS;
			const float* vj = v + (size_t)(b * T + j) * ldv + h * HS;
			float s = 0.0f, dp = 0.0f;
			for (int d = 0; d < HS; d++) {
				s += qi[d] * kj[d];
				dp += dzi[d] * vj[d];
			}
			float ds = expf(s * scale - lse) * (dp - D) * scale;
			for (int d = 0; d < HS; d++) dqi[d] += ds * kj[d];
		}
		scratch[2 * e] = lse;
		scratch[2 * e + 1] = D;
	}
}

// attention_backward_dkv_f32: one thread per (b, h, key j), after the dq
// kernel: dv_j = sum_i p_ij dz_i and dk_j = scale sum_i p_ij (dz_i.v_j - D_i) q_i
// over the queries i that see key j.
extern "C" __global__ void __launch_bounds__(256)
attention_backward_dkv_f32(float* dk, float* dv, const float* scratch, const float* dz, const float* q, const float* k,
			   const float* v, int B, int T, int NH, int HS, int ldq, int ldk, int ldv, int lddz, int lddk, int lddv,
			   int window, float scale) {
	long n = (long)B * NH * T;
	for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
		int j = e % T, h = (e / T) % NH, b = e / ((long)T * NH);
		int i1 = (window > 0 && j + window - 1 < T - 1) ? j + window - 1 : T - 1;
		const float* kj = k + (size_t)(b * T + j) * ldk + h * HS;
		const float* vj = v + (size_t)(b * T + j) * ldv + h * HS;
		float* dkj = dk + (size_t)(b * T + j) * lddk + h * HS;
		float* dvj = dv + (size_t)(b * T + j) * lddv + h * HS;
		for (int d = 0; d < HS; d++) dkj[d] = dvj[d] = 0.0f;
		for (int i = j; i <= i1; i++) {
			const float* qi = q + (size_t)(b * T + i) * ldq + h * HS;
			const float* dzi = dz + (size_t)(b * T + i) * lddz + h * HS;
			long qe = ((long)b * NH + h) * T + i;
			float s = 0.0f, dp = 0.0f;
			for (int d = 0; d < HS; d++) {
				s += qi[d] * kj[d];
				dp += dzi[d] * vj[d];
			}
			float p = expf(s * scale - scratch[2 * qe]);
			float ds = p * (dp - scratch[2 * qe + 1]) * scale;
			for (int d = 0; d < HS; d++) {
				dvj[d] += p * dzi[d];
				dkj[d] += ds * qi[d];
			}
		}
	}
}
