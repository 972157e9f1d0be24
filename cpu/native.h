// Elementwise kernels of the CPU backend's native (cgo) build; see native_cgo.go.
void ns_gelu_new_rows(float *x, long rows, long cols, long stride);
void ns_gelu_erf_rows(float *x, long rows, long cols, long stride);
void ns_attn_heads(const float *q, const float *k, const float *v, float *z,
                   long qs, long ks, long vs, long zs, long T, long HS, long NH,
                   long window, float scale, float *pattern, float *scores,
                   long lo, long hi, float *prob);
float ns_lse_row(const float *row, long n);
void ns_layernorm_rows(float *out, long os, const float *x, long xs, const float *w, const float *b,
                       long rows, long C, float eps);
