// all.cu: every kernel in one translation unit, so that one PTX module
// (cuda/kernels.ptx) holds them all. The emulation tests include it too.
#include "ablate.cu"
#include "attention.cu"
#include "backward.cu"
#include "elementwise.cu"
#include "gelu_erf.cu"
#include "layernorm.cu"
#include "logit_stats.cu"
#include "matmul.cu"
#include "matmul_tf32.cu"
#include "rotary.cu"
