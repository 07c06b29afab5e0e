// The element-wise Adam/AdamW step of AdamStep (condjl_ops.h), shared by the CPU and CUDA kernels. Each operation is
// rounded as libtorch's CUDA kernels round DJL's adamUpdate ops (measured on torch 2.11: add_ with alpha and addcmul_
// are one fused multiply-add, fma(alpha, b, a) and fma(alpha, b·c, a); the others round on their own), so a step
// equals DJL's on a GPU bit for bit, and both devices return the same bits.
#pragma once

#include <cmath>

#include "condjl_ops.h"

#ifdef __CUDACC__
#define CONDJL_ELEMENTWISE __device__ __forceinline__
#define CONDJL_MUL(a, b) __fmul_rn(a, b)
#define CONDJL_ADD(a, b) __fadd_rn(a, b)
#define CONDJL_SUB(a, b) __fsub_rn(a, b)
#define CONDJL_DIV(a, b) __fdiv_rn(a, b)
#define CONDJL_SQRT(a) __fsqrt_rn(a)
#define CONDJL_FMA(a, b, c) __fmaf_rn(a, b, c)
#else
#define CONDJL_ELEMENTWISE inline
#define CONDJL_MUL(a, b) ((a) * (b))
#define CONDJL_ADD(a, b) ((a) + (b))
#define CONDJL_SUB(a, b) ((a) - (b))
#define CONDJL_DIV(a, b) ((a) / (b))
#define CONDJL_SQRT(a) std::sqrt(a)
#define CONDJL_FMA(a, b, c) std::fma(a, b, c)
#endif

namespace condjl {

// Updates weight[i], mean[i] and variance[i] from grad[i] (and zeroes grad[i] when asked).
CONDJL_ELEMENTWISE void adam_element(const AdamStep& p, int64_t i) {
    float g = p.grad[i];
    if (p.zero_grad) p.grad[i] = 0.0f;
    if (p.rescale_grad != 1.0f) g = CONDJL_MUL(g, p.rescale_grad);
    if (p.clip_grad >= 0.0f && g > p.clip_grad) g = p.clip_grad;
    float w = p.weight[i];
    if (p.adamw) {
        w = CONDJL_SUB(w, CONDJL_MUL(CONDJL_MUL(w, p.lr), p.weight_decay));
    } else {
        g = CONDJL_FMA(p.weight_decay, w, g);
    }
    const float m = CONDJL_FMA(1.0f - p.beta1, g, CONDJL_MUL(p.mean[i], p.beta1));
    const float v = CONDJL_FMA(1.0f - p.beta2, CONDJL_MUL(g, g), CONDJL_MUL(p.variance[i], p.beta2));
    p.mean[i] = m;
    p.variance[i] = v;
    p.weight[i] = CONDJL_SUB(w, CONDJL_DIV(CONDJL_MUL(m, p.lr_bias_corrected), CONDJL_ADD(CONDJL_SQRT(v), p.eps)));
}

}  // namespace condjl
