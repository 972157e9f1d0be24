// Elementwise kernels of the CPU backend's native (cgo) build; see native_cgo.go.
void ns_gelu_new_rows(float *x, long rows, long cols, long stride);
void ns_gelu_erf_rows(float *x, long rows, long cols, long stride);
void ns_attn_heads(const float *q, const float *k, const float *v, float *z,
                   long qs, long ks, long vs, long zs, long T, long HS, long NH,
                   long window, float scale, float *pattern, float *scores,
                   long lo, long hi);
float ns_lse_row(const float *row, long n);
void ns_layernorm_rows(float *out, long os, const float *x, long xs, const float *w, const float *b,
                       long rows, long C, float eps);
void ns_gelu_back_rows(float *dx, long dxs, const float *dy, long dys, const float *pre, long ps,
                       long rows, long cols);
void ns_gelu_erf_back_rows(float *dx, long dxs, const float *dy, long dys, const float *pre, long ps,
                           long rows, long cols);
void ns_layernorm_back_rows(float *dx, long dxs, const float *dout, long gs, const float *x, long xs,
                            const float *w, const float *stats, double *mean, double *rstd,
                            long rows, long C, float eps, int accumulate, float *sum, long ss);
double ns_xent_back_row(float *row, long n, long t, float scale);
void ns_attn_back_heads(float *dq, float *dk, float *dv, const float *dz, const float *q, const float *k,
                        const float *v, long dqs, long dks, long dvs, long dzs, long qs, long ks, long vs,
                        long T, long HS, long NH, long window, float scale, long lo, long hi,
                        double *scratch);
double ns_exp_d_test(double x);
void ns_gelu_back_par(float *dx, long dxs, const float *dy, long dys, const float *pre, long ps, long rows,
                      long cols, int threads, int erf_form);
void ns_layernorm_back_par(float *dx, long dxs, const float *dout, long gs, const float *x, long xs, const float *w,
                           const float *stats, double *mean, double *rstd, long rows, long C, float eps,
                           int accumulate, float *sum, long ss, int threads);
void ns_xent_back_par(float *logits, long stride, long rows, long V, const int *targets, float scale, double *loss,
                      int threads);
void ns_attn_back_par(float *dq, float *dk, float *dv, const float *dz, const float *q, const float *k,
                      const float *v, long dqs, long dks, long dvs, long dzs, long qs, long ks, long vs, long T,
                      long HS, long NH, long window, float scale, long n, int threads);
void ns_colsum_par(float *out, const float *x, long xs, long rows, long cols, int accumulate, int threads);
void ns_ln_param_par(float *dw, float *db, const float *x, long xs, const float *g, long gs, const double *mean,
                     const double *rstd, long rows, long cols, int threads);
