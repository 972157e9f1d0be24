//go:build openblas && cgo

// Elementwise kernels of the CPU backend's native build, written so GCC
// vectorises them; the same formulas as the Go kernels in cpu.go.
#include "native.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
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

// ns_row_max is the largest of row[0..n), in eight lanes so GCC vectorises
// it (inlined into each target clone of its callers).
static inline float ns_row_max(const float *row, long n) {
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
	return m;
}

// ns_row_sum is the sum of row[0..n) in eight lanes, folded pairwise, then
// the tail in order (one sequential chain of adds waits on the adder's
// latency at every element).
static inline float ns_row_sum(const float *row, long n) {
	float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	long d = 0;
	for (; d + 8 <= n; d += 8)
		for (int l = 0; l < 8; l++)
			acc[l] += row[d + l];
	float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
	for (; d < n; d++)
		s += row[d];
	return s;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// The attention kernel also gets an AVX-512 clone: its tiles below are sized
// for 32 vector registers.
#define NS_CLONES_V4 __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NS_CLONES_V4
#endif

#define NS_QB 4  // queries per block

// Sixteen floats as one value (an AVX-512 register in the v4 clone, two in
// the v3 one); ns_v16u reads and writes them at any float's alignment.
typedef float ns_v16 __attribute__((vector_size(64)));
typedef float ns_v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define ns_ld16(p) (*(const ns_v16u *)(p))
#define ns_st16(p, x) (*(ns_v16u *)(p) = (x))
#define NS_JT 32 // keys per score tile
#define NS_DT 64 // value dims per output tile

// ns_pv_add: z_r[d0 .. d0+NS_DT) = (zero, or its value when from_z) plus
// p_j v_j over keys j in [ja, jb), in order.
static inline __attribute__((always_inline)) void ns_pv_add(float *zr, const float *p, const float *vb, long vs,
                                                            long ja, long jb, int from_z) {
	ns_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
	if (from_z)
		a0 = ns_ld16(zr), a1 = ns_ld16(zr + 16), a2 = ns_ld16(zr + 32), a3 = ns_ld16(zr + 48);
	for (long j = ja; j < jb; j++) {
		const float *vj = vb + j * vs;
		float pj = p[j];
		a0 += pj * ns_ld16(vj), a1 += pj * ns_ld16(vj + 16);
		a2 += pj * ns_ld16(vj + 32), a3 += pj * ns_ld16(vj + 48);
	}
	ns_st16(zr, a0), ns_st16(zr + 16, a1), ns_st16(zr + 32, a2), ns_st16(zr + 48, a3);
}

// ns_attn_pv: the outputs of queries i0 .. i0+nq-1 of one head, z_i[d] =
// sum over i's keys j (ascending) of p_ij v_j[d], p_i being row i-i0 of pr
// (rows prs apart). Keys every query of the block sees are read once for
// all of them (nq x NS_DT sums in registers); the keys only some see are
// added before and after, so each sum still runs over j in order in one
// chain, whatever the block.
static inline __attribute__((always_inline)) void ns_attn_pv(float *z, long zs, const float *vb, long vs,
                                                             const float *pr, long prs, long i0, long nq, long HS,
                                                             long window) {
	long j0s[NS_QB];
	for (long r = 0; r < nq; r++) {
		long i = i0 + r;
		j0s[r] = (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
	}
	long ja = j0s[nq - 1], jb = i0; // [ja, jb]: keys every query sees (empty when ja > jb)
	long d0 = 0;
	for (; d0 + NS_DT <= HS; d0 += NS_DT) {
		// Per query: the keys before the shared ones (all of them when
		// none is shared), into its z.
		for (long r = 0; r < nq; r++)
			ns_pv_add(z + r * zs + d0, pr + r * prs, vb + d0, vs, j0s[r], ja <= jb ? ja : i0 + r + 1, 0);
		if (ja > jb)
			continue;
		if (nq == NS_QB) {
			float *z0 = z + d0, *z1 = z0 + zs, *z2 = z1 + zs, *z3 = z2 + zs;
			const float *p0 = pr, *p1 = p0 + prs, *p2 = p1 + prs, *p3 = p2 + prs;
			ns_v16 a0 = ns_ld16(z0), a1 = ns_ld16(z0 + 16), a2 = ns_ld16(z0 + 32), a3 = ns_ld16(z0 + 48);
			ns_v16 b0 = ns_ld16(z1), b1 = ns_ld16(z1 + 16), b2 = ns_ld16(z1 + 32), b3 = ns_ld16(z1 + 48);
			ns_v16 c0 = ns_ld16(z2), c1 = ns_ld16(z2 + 16), c2 = ns_ld16(z2 + 32), c3 = ns_ld16(z2 + 48);
			ns_v16 e0 = ns_ld16(z3), e1 = ns_ld16(z3 + 16), e2 = ns_ld16(z3 + 32), e3 = ns_ld16(z3 + 48);
			for (long j = ja; j <= jb; j++) {
				const float *vj = vb + j * vs + d0;
				ns_v16 v0 = ns_ld16(vj), v1 = ns_ld16(vj + 16), v2 = ns_ld16(vj + 32), v3 = ns_ld16(vj + 48);
				float q0 = p0[j], q1 = p1[j], q2 = p2[j], q3 = p3[j];
				a0 += q0 * v0, a1 += q0 * v1, a2 += q0 * v2, a3 += q0 * v3;
				b0 += q1 * v0, b1 += q1 * v1, b2 += q1 * v2, b3 += q1 * v3;
				c0 += q2 * v0, c1 += q2 * v1, c2 += q2 * v2, c3 += q2 * v3;
				e0 += q3 * v0, e1 += q3 * v1, e2 += q3 * v2, e3 += q3 * v3;
			}
			ns_st16(z0, a0), ns_st16(z0 + 16, a1), ns_st16(z0 + 32, a2), ns_st16(z0 + 48, a3);
			ns_st16(z1, b0), ns_st16(z1 + 16, b1), ns_st16(z1 + 32, b2), ns_st16(z1 + 48, b3);
			ns_st16(z2, c0), ns_st16(z2 + 16, c1), ns_st16(z2 + 32, c2), ns_st16(z2 + 48, c3);
			ns_st16(z3, e0), ns_st16(z3 + 16, e1), ns_st16(z3 + 32, e2), ns_st16(z3 + 48, e3);
		} else { // the sequence's last, partial block: one query at a time
			for (long r = 0; r < nq; r++)
				ns_pv_add(z + r * zs + d0, pr + r * prs, vb + d0, vs, ja, jb + 1, 1);
		}
		// Per query: the keys after the shared ones.
		for (long r = 0; r < nq; r++)
			ns_pv_add(z + r * zs + d0, pr + r * prs, vb + d0, vs, jb + 1, i0 + r + 1, 1);
	}
	for (; d0 < HS; d0++) // dims past the last whole tile
		for (long r = 0; r < nq; r++) {
			const float *p = pr + r * prs;
			float a = 0;
			for (long j = j0s[r]; j <= i0 + r; j++) a += p[j] * vb[j * vs + d0];
			z[r * zs + d0] = a;
		}
}

// attnHeadsGo of attention.go: causal (local when window > 0) attention for
// the (row, head) pairs [lo, hi). Its scratch, HS + 4 floats per key, is its
// own (the Go kernel's T floats of prob are not enough).
//
// Written for the vector units rather than as one dot product per (query,
// key) pair, whose horizontal sums made it run at 9-21 GFLOP/s on one core
// (BenchmarkAttnHeads; at 1 x 2048 attention was over half a GPT-Neo pass):
//   - a head's keys are first transposed, by tiles of NS_JT keys, so that the scores
//     of NS_QB queries against NS_JT consecutive keys are sums over d of a
//     query value times a row of kt: NS_QB x NS_JT sums kept in registers,
//     each added up over d in order, in one lane;
//   - each query's output is a sum over its keys j, in order, of p_j times
//     v_j, NS_DT dims at a time in registers, a block's queries together
//     over the keys they all see (ns_attn_pv).
// A score or output value does not depend on which block or tile computed
// it, so a query's result is the same whatever the batch, the rows asked
// for, or the thread split. Scores are computed for the keys of the whole
// block and only each query's own keys are read; no masked key's value
// enters a query's output (a NaN or inf in a later token's v or k cannot
// leak into an earlier one).
NS_CLONES_V4 void ns_attn_heads(const float *q, const float *k, const float *v, float *z,
                                long qs, long ks, long vs, long zs, long T, long HS, long NH,
                                long window, float scale, float *pattern, float *scores,
                                long lo, long hi) {
	const float neg_inf = -__builtin_inff();
	// kt holds the head's keys transposed by tiles of NS_JT: key j's dim d at
	// ((j / NS_JT) * HS + d) * NS_JT + j % NS_JT, so a tile is one run of
	// memory (rows of a plain [HS][T] transpose lie 4T bytes apart, on one
	// L1 set when T is a multiple of 1024). Past T the tiles hold zeros.
	long tiles = (T + NS_JT - 1) / NS_JT, Tp = tiles * NS_JT;
	float *kt = malloc(sizeof(float) * (size_t)(HS * Tp + NS_QB * Tp));
	if (!kt) abort(); // as Go's allocator does when memory runs out
	float *sblk = kt + HS * Tp; // [NS_QB][Tp] raw q.k of the current block
	for (long j = T; j < Tp; j++)
		for (long d = 0; d < HS; d++) kt[((j / NS_JT) * HS + d) * NS_JT + j % NS_JT] = 0;
	for (long bh = lo; bh < hi; bh++) {
		long b = bh / NH, h = bh % NH;
		const float *kb = k + b * T * ks + h * HS, *vb = v + b * T * vs + h * HS;
		for (long j = 0; j < T; j++) {
			float *dst = kt + (j / NS_JT) * HS * NS_JT + j % NS_JT;
			for (long d = 0; d < HS; d++) dst[d * NS_JT] = kb[j * ks + d];
		}
		for (long i0 = 0; i0 < T; i0 += NS_QB) {
			long nq = T - i0 < NS_QB ? T - i0 : NS_QB;
			long jlo = (window > 0 && i0 - window + 1 > 0) ? i0 - window + 1 : 0, jhi = i0 + nq; // [jlo, jhi)
			const float *qr[NS_QB];
			for (long r = 0; r < NS_QB; r++) qr[r] = q + (b * T + i0 + (r < nq ? r : 0)) * qs + h * HS;
			// Whole tiles on the grid, from the one holding jlo; the
			// block's keys are stored.
			for (long j = jlo / NS_JT * NS_JT; j < jhi; j += NS_JT) {
				float acc[NS_QB][NS_JT] = {{0}};
				const float *tile = kt + (j / NS_JT) * HS * NS_JT;
				for (long d = 0; d < HS; d++) {
					const float *kr = tile + d * NS_JT;
					for (int r = 0; r < NS_QB; r++) {
						float qd = qr[r][d];
						for (int t = 0; t < NS_JT; t++) acc[r][t] += qd * kr[t];
					}
				}
				long t0 = jlo > j ? jlo - j : 0, t1 = jhi - j < NS_JT ? jhi - j : NS_JT;
				for (int r = 0; r < NS_QB; r++)
					for (long t = t0; t < t1; t++) sblk[r * Tp + j + t] = acc[r][t];
			}
			for (long r = 0; r < nq; r++) {
				long i = i0 + r;
				long j0 = (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
				float *pr = sblk + r * Tp;
				for (long jj = j0; jj <= i; jj++)
					pr[jj] *= scale;
				float maxv = ns_row_max(pr + j0, i - j0 + 1);
				if (scores) {
					float *row = scores + (bh * T + i) * T;
					for (long jj = 0; jj < T; jj++)
						row[jj] = (jj >= j0 && jj <= i) ? pr[jj] : neg_inf;
				}
				for (long jj = j0; jj <= i; jj++)
					pr[jj] = ns_exp(pr[jj] - maxv);
				float inv = 1.0f / ns_row_sum(pr + j0, i - j0 + 1);
				for (long jj = j0; jj <= i; jj++)
					pr[jj] *= inv;
				if (pattern) {
					float *row = pattern + (bh * T + i) * T;
					for (long jj = 0; jj < T; jj++)
						row[jj] = (jj >= j0 && jj <= i) ? pr[jj] : 0.0f;
				}
			}
			ns_attn_pv(z + (b * T + i0) * zs + h * HS, zs, vb, vs, sblk, Tp, i0, nq, HS, window);
		}
	}
	free(kt);
}

// lseRowGo of attention.go: log(sum(exp(row))), exp summed in eight float
// lanes per block of 256, the blocks in double. Each loop is written so GCC
// vectorises it: the maximum in eight lanes, the exponentials into a block
// buffer, then their sum.
NS_CLONES float ns_lse_row(const float *row, long n) {
	float m = ns_row_max(row, n);
	double s = 0;
	float e[256];
	for (long b0 = 0; b0 < n; b0 += 256) {
		long w = n - b0 < 256 ? n - b0 : 256;
		for (long k = 0; k < w; k++)
			e[k] = ns_exp(row[b0 + k] - m);
		s += ns_row_sum(e, w);
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

// The backward kernels (grad.go), same formulas as their Go references.

// e^x in double for |x| <= 40 (what ns_gelu_back_rows asks): n =
// round(x log2e) by the 1.5 * 2^52 shift (as ns_exp), r = x - n ln2 in two
// parts (|r| <= ln2/2), e^r by its Taylor series to r^13 (truncation
// 0.347^14/14! < 2e-17), times 2^n built in the exponent bits. Within
// 2 ulp of glibc's exp over [-40, 40] (TestExpD); GCC vectorises it.
static inline double ns_exp_d(double x) {
	const double log2e = 1.4426950408889634, ln2hi = 6.93147180369123816490e-01, ln2lo = 1.90821492927058770002e-10;
	const double shift = 6755399441055744.0; // 1.5 * 2^52
	double t = x * log2e + shift;
	double n = t - shift;
	double r = (x - n * ln2hi) - n * ln2lo;
	double p = 1.0 / 6227020800.0;
	p = p * r + 1.0 / 479001600.0;
	p = p * r + 1.0 / 39916800.0;
	p = p * r + 1.0 / 3628800.0;
	p = p * r + 1.0 / 362880.0;
	p = p * r + 1.0 / 40320.0;
	p = p * r + 1.0 / 5040.0;
	p = p * r + 1.0 / 720.0;
	p = p * r + 1.0 / 120.0;
	p = p * r + 1.0 / 24.0;
	p = p * r + 1.0 / 6.0;
	p = p * r + 0.5;
	p = p * r + 1.0;
	p = p * r + 1.0;
	long long tb, bits;
	double scale;
	memcpy(&tb, &t, 8);
	bits = (tb - 0x4338000000000000LL + 1023) << 52;
	memcpy(&scale, &bits, 8);
	return p * scale;
}

// ns_exp_d for the tests (TestExpD).
double ns_exp_d_test(double x) { return ns_exp_d(x); }

// geluBackRowsGo of grad.go: dx = dy * gelu_new'(pre) in double, rounded
// once; dx may alias dy. With e = e^{2u}: tanh u = (e-1)/(e+1) and
// 1 - tanh^2 u = 4e/(e+1)^2, no cancellation near |tanh| = 1; past |u| = 20
// tanh u rounds to +-1 and 1 - tanh^2 is taken as 0, as math.Tanh gives.
NS_CLONES void ns_gelu_back_rows(float *dx, long dxs, const float *dy, long dys, const float *pre, long ps,
                                 long rows, long cols) {
	const double k = 0.7978845608028654, a = 0.044715;
	for (long r = 0; r < rows; r++) {
		const float *xr = pre + r * ps, *yr = dy + r * dys;
		float *orow = dx + r * dxs;
		for (long j = 0; j < cols; j++) {
			double v = xr[j];
			double u = k * (v + a * v * v * v);
			double uc = u > 20.0 ? 20.0 : (u < -20.0 ? -20.0 : u);
			double e = ns_exp_d(2.0 * uc);
			double th = (e - 1.0) / (e + 1.0);
			double sech2 = (u > 20.0 || u < -20.0) ? 0.0 : 4.0 * e / ((e + 1.0) * (e + 1.0));
			double g = 0.5 * (1.0 + th) + 0.5 * v * sech2 * k * (1.0 + 3.0 * a * v * v);
			orow[j] = (float)((double)yr[j] * g);
		}
	}
}

// geluErfBackRowsGo of grad.go: dx = dy * (Phi(x) + x phi(x)) in double
// (glibc's erf and exp), rounded once; dx may alias dy.
void ns_gelu_erf_back_rows(float *dx, long dxs, const float *dy, long dys, const float *pre, long ps,
                           long rows, long cols) {
	const double inv_sqrt2pi = 0.3989422804014327;
	for (long r = 0; r < rows; r++) {
		const float *xr = pre + r * ps, *yr = dy + r * dys;
		float *orow = dx + r * dxs;
		for (long j = 0; j < cols; j++) {
			double x = xr[j];
			double g = 0.5 * (1.0 + erf(x * 0.70710678118654752440)) + x * exp(-0.5 * x * x) * inv_sqrt2pi;
			orow[j] = (float)((double)yr[j] * g);
		}
	}
}

// lnBackRowsGo of grad.go: LayerNorm's dx for rows (dx may alias dout: a
// row is read whole before it is written), with each row's mean and rstd
// from stats [rows, 2] or, when stats is NULL, computed in double and
// written to mean and rstd (when not NULL); dout is added into sum (row
// stride ss) when sum is not NULL. The reductions run in eight
// double lanes (the Go kernel's in four), the row update in float.
NS_CLONES void ns_layernorm_back_rows(float *dx, long dxs, const float *dout, long gs, const float *x, long xs,
                                      const float *w, const float *stats, double *mean, double *rstd,
                                      long rows, long C, float eps, int accumulate, float *sum, long ss) {
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * xs, *gr = dout + r * gs;
		float *orow = dx + r * dxs;
		double mu, rs;
		long j;
		if (stats) {
			mu = stats[2 * r];
			rs = stats[2 * r + 1];
		} else {
			double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
			for (j = 0; j + 8 <= C; j += 8)
				for (int l = 0; l < 8; l++)
					s[l] += (double)xr[j + l];
			double sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
			for (; j < C; j++)
				sum += (double)xr[j];
			mu = sum / (double)C;
			double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
			for (j = 0; j + 8 <= C; j += 8)
				for (int l = 0; l < 8; l++) {
					double d = (double)xr[j + l] - mu;
					v[l] += d * d;
				}
			double var = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
			for (; j < C; j++) {
				double d = (double)xr[j] - mu;
				var += d * d;
			}
			rs = 1.0 / sqrt(var / (double)C + (double)eps);
			if (mean)
				mean[r] = mu;
			if (rstd)
				rstd[r] = rs;
		}
		float mu32 = (float)mu, rs32 = (float)rs;
		double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		// Two passes over the row (in L1 by then): GCC vectorises each
		// fully, but the fused one only two lanes wide.
		for (j = 0; j + 8 <= C; j += 8)
			for (int l = 0; l < 8; l++)
				a[l] += (double)(gr[j + l] * w[j + l]);
		for (j = 0; j + 8 <= C; j += 8)
			for (int l = 0; l < 8; l++)
				b[l] += (double)(gr[j + l] * w[j + l] * (xr[j + l] - mu32));
		double mg = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
		double mgx = ((b[0] + b[4]) + (b[1] + b[5])) + ((b[2] + b[6]) + (b[3] + b[7]));
		for (; j < C; j++) {
			float g = gr[j] * w[j];
			mg += (double)g;
			mgx += (double)(g * (xr[j] - mu32));
		}
		if (sum) {
			float *sr = sum + r * ss;
			for (j = 0; j < C; j++)
				sr[j] += gr[j];
		}
		float mg32 = (float)(mg / (double)C);
		float mgx32 = (float)(mgx * rs * rs * rs / (double)C); // rstd^2 * mean(g*xhat)
		if (accumulate)
			for (j = 0; j < C; j++)
				orow[j] += rs32 * (gr[j] * w[j] - mg32) - (xr[j] - mu32) * mgx32;
		else
			for (j = 0; j < C; j++)
				orow[j] = rs32 * (gr[j] * w[j] - mg32) - (xr[j] - mu32) * mgx32;
	}
}

// xentBackRowGo of grad.go: the row of n >= 1 logits becomes
// scale*(softmax - onehot(t)); returns logsumexp - row[t]. The maximum in
// eight lanes, ns_exp kept in the row, the sum in eight double lanes.
NS_CLONES double ns_xent_back_row(float *row, long n, long t, float scale) {
	float m = ns_row_max(row, n);
	long j;
	float xt = row[t];
	for (j = 0; j < n; j++)
		row[j] = ns_exp(row[j] - m);
	double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	for (j = 0; j + 8 <= n; j += 8)
		for (int l = 0; l < 8; l++)
			s[l] += (double)row[j + l];
	double sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
	for (; j < n; j++)
		sum += (double)row[j];
	double inv = 1.0 / sum;
	for (j = 0; j < n; j++)
		row[j] = (float)((double)row[j] * inv) * scale;
	row[t] -= scale;
	return (double)m + log(sum) - (double)xt;
}

// attnBackHeadsGo of grad.go: attention's backward for the (row, head)
// pairs [lo, hi), which own their slices of dq, dk, dv; scratch is 2T
// doubles. Probabilities in double as the Go kernel, dots in eight float
// lanes (ns_dot).
NS_CLONES void ns_attn_back_heads(float *dq, float *dk, float *dv, const float *dz, const float *q, const float *k,
                                  const float *v, long dqs, long dks, long dvs, long dzs, long qs, long ks, long vs,
                                  long T, long HS, long NH, long window, float scale, long lo, long hi,
                                  double *scratch) {
	double *prob = scratch, *dP = scratch + T;
	for (long bh = lo; bh < hi; bh++) {
		long b = bh / NH, h = bh % NH;
		for (long t = 0; t < T; t++) {
			memset(dq + (b * T + t) * dqs + h * HS, 0, HS * sizeof(float));
			memset(dk + (b * T + t) * dks + h * HS, 0, HS * sizeof(float));
			memset(dv + (b * T + t) * dvs + h * HS, 0, HS * sizeof(float));
		}
		for (long i = 0; i < T; i++) {
			long j0 = (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0;
			const float *qi = q + (b * T + i) * qs + h * HS, *dzi = dz + (b * T + i) * dzs + h * HS;
			double mx = -__builtin_inf();
			for (long j = j0; j <= i; j++) {
				prob[j] = (double)(ns_dot(qi, k + (b * T + j) * ks + h * HS, HS) * scale);
				mx = prob[j] > mx ? prob[j] : mx;
			}
			double sum = 0;
			for (long j = j0; j <= i; j++) {
				prob[j] = exp(prob[j] - mx);
				sum += prob[j];
			}
			double D = 0;
			for (long j = j0; j <= i; j++) {
				prob[j] /= sum;
				dP[j] = (double)ns_dot(dzi, v + (b * T + j) * vs + h * HS, HS);
				D += prob[j] * dP[j];
			}
			float *dqi = dq + (b * T + i) * dqs + h * HS;
			for (long j = j0; j <= i; j++) {
				float ds = (float)(prob[j] * (dP[j] - D)) * scale;
				float pj = (float)prob[j];
				const float *kj = k + (b * T + j) * ks + h * HS;
				float *dkj = dk + (b * T + j) * dks + h * HS, *dvj = dv + (b * T + j) * dvs + h * HS;
				// Three loops: GCC vectorises each (with one alias check), not the fused one.
				for (long d = 0; d < HS; d++)
					dqi[d] += ds * kj[d];
				for (long d = 0; d < HS; d++)
					dkj[d] += ds * qi[d];
				for (long d = 0; d < HS; d++)
					dvj[d] += pj * dzi[d];
			}
		}
	}
}

// The parallel drivers of the backward kernels. They split the rows (or
// (row, head) pairs) into one contiguous chunk per thread of an OpenMP
// team: the team OpenBLAS runs its products on (libgomp's pool of the
// calling thread), whose workers spin for a while after each product.
// Goroutines beside them (Backend.parallel) had three threads contend for
// two cores until the spinning stopped: OMP_WAIT_POLICY=PASSIVE cut EAP's
// CPU seconds by 14-18% then (2 cores, load ~5, 2026-12-05 19:03 UTC), and
// libgomp's share of an EAP profile fell from 7.5% to 0.6% with this.

static inline void ns_chunk(long n, long *lo, long *hi) {
	long t = omp_get_thread_num(), nt = omp_get_num_threads();
	long c = (n + nt - 1) / nt;
	*lo = t * c < n ? t * c : n;
	*hi = *lo + c < n ? *lo + c : n;
}

void ns_gelu_back_par(float *dx, long dxs, const float *dy, long dys, const float *pre, long ps, long rows,
                      long cols, int threads, int erf_form) {
#pragma omp parallel num_threads(threads) if (threads > 1 && rows > 1)
	{
		long lo, hi;
		ns_chunk(rows, &lo, &hi);
		if (lo < hi) {
			if (erf_form)
				ns_gelu_erf_back_rows(dx + lo * dxs, dxs, dy + lo * dys, dys, pre + lo * ps, ps, hi - lo, cols);
			else
				ns_gelu_back_rows(dx + lo * dxs, dxs, dy + lo * dys, dys, pre + lo * ps, ps, hi - lo, cols);
		}
	}
}

void ns_layernorm_back_par(float *dx, long dxs, const float *dout, long gs, const float *x, long xs, const float *w,
                           const float *stats, double *mean, double *rstd, long rows, long C, float eps,
                           int accumulate, float *sum, long ss, int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1 && rows > 1)
	{
		long lo, hi;
		ns_chunk(rows, &lo, &hi);
		if (lo < hi)
			ns_layernorm_back_rows(dx + lo * dxs, dxs, dout + lo * gs, gs, x + lo * xs, xs, w,
			                       stats ? stats + 2 * lo : 0, mean ? mean + lo : 0, rstd ? rstd + lo : 0,
			                       hi - lo, C, eps, accumulate, sum ? sum + lo * ss : 0, ss);
	}
}

// Rows with a negative target become zero (loss 0); loss may be NULL.
void ns_xent_back_par(float *logits, long stride, long rows, long V, const int *targets, float scale, double *loss,
                      int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1 && rows > 1)
	{
		long lo, hi;
		ns_chunk(rows, &lo, &hi);
		for (long r = lo; r < hi; r++) {
			float *row = logits + r * stride;
			double l = 0;
			if (targets[r] < 0)
				memset(row, 0, V * sizeof(float));
			else
				l = ns_xent_back_row(row, V, targets[r], scale);
			if (loss)
				loss[r] = l;
		}
	}
}

void ns_attn_back_par(float *dq, float *dk, float *dv, const float *dz, const float *q, const float *k,
                      const float *v, long dqs, long dks, long dvs, long dzs, long qs, long ks, long vs, long T,
                      long HS, long NH, long window, float scale, long n, int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1 && n > 1)
	{
		long lo, hi;
		ns_chunk(n, &lo, &hi);
		double scratch[2 * T];
		if (lo < hi)
			ns_attn_back_heads(dq, dk, dv, dz, q, k, v, dqs, dks, dvs, dzs, qs, ks, vs, T, HS, NH, window, scale,
			                   lo, hi, scratch);
	}
}

// ColSum of grad.go: out[j] (+)= sum over rows of x[r, j] for the columns
// [lo, hi), summed in double (acc: hi-lo doubles of scratch).
NS_CLONES void ns_colsum_cols(float *out, const float *x, long xs, long rows, long lo, long hi, int accumulate,
                              double *acc) {
	long n = hi - lo;
	for (long j = 0; j < n; j++)
		acc[j] = 0;
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * xs + lo;
		for (long j = 0; j < n; j++)
			acc[j] += (double)xr[j];
	}
	for (long j = 0; j < n; j++)
		out[lo + j] = accumulate ? out[lo + j] + (float)acc[j] : (float)acc[j];
}

// LayerNormBackward's weight and bias gradients (grad.go) for the columns
// [lo, hi): dw[j] += sum_r dout*(x-mean)*rstd, db[j] += sum_r dout, in
// double (aw, ab: hi-lo doubles of scratch each); dw or db may be NULL.
NS_CLONES void ns_ln_param_cols(float *dw, float *db, const float *x, long xs, const float *g, long gs,
                                const double *mean, const double *rstd, long rows, long lo, long hi, double *aw,
                                double *ab) {
	long n = hi - lo;
	for (long j = 0; j < n; j++)
		aw[j] = ab[j] = 0;
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * xs + lo, *gr = g + r * gs + lo;
		double mu = mean[r], rs = rstd[r];
		for (long j = 0; j < n; j++) {
			double gv = gr[j];
			aw[j] += gv * ((double)xr[j] - mu) * rs;
			ab[j] += gv;
		}
	}
	for (long j = 0; j < n; j++) {
		if (dw)
			dw[lo + j] += (float)aw[j];
		if (db)
			db[lo + j] += (float)ab[j];
	}
}

// The parallel drivers of the two column reductions: one chunk of columns
// per thread of the OpenMP team, as above.
void ns_colsum_par(float *out, const float *x, long xs, long rows, long cols, int accumulate, int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1 && cols > 1)
	{
		long lo, hi;
		ns_chunk(cols, &lo, &hi);
		if (lo < hi) {
			double *acc = malloc((hi - lo) * sizeof(double));
			ns_colsum_cols(out, x, xs, rows, lo, hi, accumulate, acc);
			free(acc);
		}
	}
}

void ns_ln_param_par(float *dw, float *db, const float *x, long xs, const float *g, long gs, const double *mean,
                     const double *rstd, long rows, long cols, int threads) {
#pragma omp parallel num_threads(threads) if (threads > 1 && cols > 1)
	{
		long lo, hi;
		ns_chunk(cols, &lo, &hi);
		if (lo < hi) {
			double *a = malloc(2 * (hi - lo) * sizeof(double));
			ns_ln_param_cols(dw, db, x, xs, g, gs, mean, rstd, rows, lo, hi, a, a + (hi - lo));
			free(a);
		}
	}
}
