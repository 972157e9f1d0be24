//go:build openblas && cgo

// Elementwise kernels of the CPU backend's native build, written so GCC
// vectorises them; the same formulas as the Go kernels in cpu.go.
#include "native.h"
#include <math.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
// Lets GCC if-convert the clamps below into min/max and vectorise the loop
// (cgo does not pass -fno-trapping-math through #cgo CFLAGS). Go runs with
// floating-point traps off, so nothing here can trap anyway.
#pragma GCC optimize("no-trapping-math")
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// One binary for every x86-64: the AVX2+FMA clone where the CPU has it.
#define NS_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define NS_CLONES
#endif

// tanh32 of cpu.go: Eigen's rational approximation on [-7.905, 7.905].
static inline float ns_tanh(float x) {
	const float c = 7.90531110763549805f;
	x = x > c ? c : x;
	x = x < -c ? -c : x;
	float x2 = x * x;
	float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
	p = x2 * p + -8.60467152213735e-11f;
	p = x2 * p + 5.12229709037114e-08f;
	p = x2 * p + 1.48572235717979e-05f;
	p = x2 * p + 6.37261928875436e-04f;
	p = x2 * p + 4.89352455891786e-03f;
	p = x * p;
	float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
	q = x2 * q + 2.26843463243900e-03f;
	q = x2 * q + 4.89352518554385e-03f;
	return p / q;
}

// gelu_new (the tanh approximation) in place on rows x cols values, rows
// stride apart.
NS_CLONES void ns_gelu_new_rows(float *x, long rows, long cols, long stride) {
	const float k = 0.7978845608028654f, a = 0.044715f;
	for (long r = 0; r < rows; r++) {
		float *row = x + r * stride;
		for (long j = 0; j < cols; j++) {
			float v = row[j];
			row[j] = 0.5f * v * (1.0f + ns_tanh(k * (v + a * v * v * v)));
		}
	}
}

// exact GELU 0.5x(1+erf(x/sqrt2)) in place (GPT-NeoX), in double and
// rounded once, as the Go kernel does. math.Erf in Go measured 85-157 ns a
// call on the shared 2-core VM, which made GELU a sixth of a Pythia-160M
// forward pass (BenchmarkGELUPythia160M); glibc's double erf is several
// times faster. Its float erff (1 ulp) moved tiny-neox's dla_embed by 5e-9,
// past 10x that figure's float32 floor (3e-10), so double it is.
void ns_gelu_erf_rows(float *x, long rows, long cols, long stride) {
	for (long r = 0; r < rows; r++) {
		float *row = x + r * stride;
		for (long j = 0; j < cols; j++) {
			double v = row[j];
			row[j] = (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752440)));
		}
	}
}

// exp32 of exp32.go: e^x for x <= 0, 0 below -87.33654, NaN for NaN.
// n = round(x log2e) comes from adding 1.5 * 2^23 (the float's low bits
// are then n) rather than a float-to-int conversion, which keeps GCC from
// vectorising any loop that calls this. Ties round to even here and down
// in exp32; either keeps |r| <= ln2/2.
static inline float ns_exp(float x) {
	const float log2e = 1.44269504088896341f, c1 = 0.693359375f, c2 = -2.12194440e-4f;
	const float shift = 12582912.0f; // 1.5 * 2^23, bits 0x4B400000
	float xc = x < -88.0f ? -88.0f : x;
	float t = xc * log2e + shift;
	float nf = t - shift;
	float r = xc - nf * c1 - nf * c2;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	float e = p * r * r + r + 1.0f;
	int tb, bits;
	float scale;
	memcpy(&tb, &t, 4);
	bits = (tb - 0x4B400000 + 127) << 23; // 2^n, n >= -127 (0 when n = -127)
	memcpy(&scale, &bits, 4);
	float y = x < -87.33654f ? 0.0f : e * scale;
	return x != x ? x : y;
}

// Dot product of two HS-long rows, in eight lanes GCC maps onto one vector
// register (the Go kernel's gemv sums in four).
static inline float ns_dot(const float *a, const float *b, long n) {
	float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	long d = 0;
	for (; d + 8 <= n; d += 8)
		for (int l = 0; l < 8; l++)
			acc[l] += a[d + l] * b[d + l];
	float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
	for (; d < n; d++)
		s += a[d] * b[d];
	return s;
}

// attnHeadsGo of attention.go: causal (local when window > 0) attention for
// the (row, head) pairs [lo, hi); prob is T floats of scratch.
NS_CLONES void ns_attn_heads(const float *q, const float *k, const float *v, float *z,
                             long qs, long ks, long vs, long zs, long T, long HS, long NH,
                             long window, float scale, float *pattern, float *scores,
                             long lo, long hi, float *prob) {
	const float neg_inf = -__builtin_inff();
	for (long bh = lo; bh < hi; bh++) {
		long b = bh / NH, h = bh % NH;
		for (long i = 0; i < T; i++) {
			long j0 = (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
			const float *qi = q + (b * T + i) * qs + h * HS;
			float maxv = neg_inf;
			for (long j = j0; j <= i; j++) {
				float s = scale * ns_dot(qi, k + (b * T + j) * ks + h * HS, HS);
				prob[j] = s;
				maxv = s > maxv ? s : maxv;
			}
			if (scores) {
				float *row = scores + (bh * T + i) * T;
				for (long j = 0; j < T; j++)
					row[j] = (j >= j0 && j <= i) ? prob[j] : neg_inf;
			}
			for (long j = j0; j <= i; j++)
				prob[j] = ns_exp(prob[j] - maxv);
			float sum = 0;
			for (long j = j0; j <= i; j++)
				sum += prob[j];
			float inv = 1.0f / sum;
			for (long j = j0; j <= i; j++)
				prob[j] *= inv;
			float *zi = z + (b * T + i) * zs + h * HS;
			for (long d = 0; d < HS; d++)
				zi[d] = 0;
			for (long j = j0; j <= i; j++) {
				const float *vj = v + (b * T + j) * vs + h * HS;
				float pj = prob[j];
				for (long d = 0; d < HS; d++)
					zi[d] += pj * vj[d];
			}
			if (pattern) {
				float *row = pattern + (bh * T + i) * T;
				for (long j = 0; j < T; j++)
					row[j] = (j >= j0 && j <= i) ? prob[j] : 0.0f;
			}
		}
	}
}

// lseRowGo of attention.go: log(sum(exp(row))), exp summed in eight float
// lanes per block of 256, the blocks in double. Each loop is written so GCC
// vectorises it: the maximum in eight lanes, the exponentials into a block
// buffer, then their sum.
NS_CLONES float ns_lse_row(const float *row, long n) {
	const float neg_inf = -__builtin_inff();
	float mx[8] = {neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf};
	long j = 0;
	for (; j + 8 <= n; j += 8)
		for (int l = 0; l < 8; l++)
			mx[l] = row[j + l] > mx[l] ? row[j + l] : mx[l];
	float m = neg_inf;
	for (int l = 0; l < 8; l++)
		m = mx[l] > m ? mx[l] : m;
	for (; j < n; j++)
		m = row[j] > m ? row[j] : m;
	double s = 0;
	float e[256];
	for (long b0 = 0; b0 < n; b0 += 256) {
		long w = n - b0 < 256 ? n - b0 : 256, d = 0;
		for (long k = 0; k < w; k++)
			e[k] = ns_exp(row[b0 + k] - m);
		float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		for (; d + 8 <= w; d += 8)
			for (int l = 0; l < 8; l++)
				acc[l] += e[d + l];
		float bs = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
		for (; d < w; d++)
			bs += e[d];
		s += bs;
	}
	return m + (float)log(s);
}

// layerNormRowsGo of cpu.go: mean and variance in double, in four lanes.
NS_CLONES void ns_layernorm_rows(float *out, long os, const float *x, long xs, const float *w, const float *b,
                                 long rows, long C, float eps) {
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * xs;
		float *orow = out + r * os;
		double acc[4] = {0, 0, 0, 0};
		long j = 0;
		for (; j + 4 <= C; j += 4)
			for (int l = 0; l < 4; l++)
				acc[l] += (double)xr[j + l];
		double s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
		for (; j < C; j++)
			s += (double)xr[j];
		double mean = s / (double)C;
		double v2[4] = {0, 0, 0, 0};
		for (j = 0; j + 4 <= C; j += 4)
			for (int l = 0; l < 4; l++) {
				double d = (double)xr[j + l] - mean;
				v2[l] += d * d;
			}
		double v = (v2[0] + v2[2]) + (v2[1] + v2[3]);
		for (; j < C; j++) {
			double d = (double)xr[j] - mean;
			v += d * d;
		}
		double inv = 1.0 / sqrt(v / (double)C + (double)eps);
		for (j = 0; j < C; j++)
			orow[j] = (float)(((double)xr[j] - mean) * inv) * w[j] + b[j];
	}
}
