// The element-wise Adam/AdamW step of AdamStep (condjl_ops.h), shared by the CPU and CUDA kernels. Every operation
// is rounded on its own (no fused multiply-add), so both devices return the same bits.
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
#else
#define CONDJL_ELEMENTWISE inline
#define CONDJL_MUL(a, b) ((a) * (b))
#define CONDJL_ADD(a, b) ((a) + (b))
#define CONDJL_SUB(a, b) ((a) - (b))
#define CONDJL_DIV(a, b) ((a) / (b))
#define CONDJL_SQRT(a) std::sqrt(a)
#endif

namespace condjl {

// Updates weight[i], mean[i] and variance[i] from grad[i].
CONDJL_ELEMENTWISE void adam_element(const AdamStep& p, int64_t i) {
    float g = p.grad[i];
    if (p.rescale_grad != 1.0f) g = CONDJL_MUL(g, p.rescale_grad);
    if (p.clip_grad >= 0.0f && g > p.clip_grad) g = p.clip_grad;
    float w = p.weight[i];
    if (p.adamw) {
        w = CONDJL_SUB(w, CONDJL_MUL(CONDJL_MUL(w, p.lr), p.weight_decay));
    } else {
        g = CONDJL_ADD(g, CONDJL_MUL(p.weight_decay, w));
    }
    const float m = CONDJL_ADD(CONDJL_MUL(p.mean[i], p.beta1), CONDJL_MUL(1.0f - p.beta1, g));
    const float v = CONDJL_ADD(CONDJL_MUL(p.variance[i], p.beta2), CONDJL_MUL(CONDJL_MUL(1.0f - p.beta2, g), g));
    p.mean[i] = m;
    p.variance[i] = v;
    p.weight[i] = CONDJL_SUB(w, CONDJL_DIV(CONDJL_MUL(m, p.lr_bias_corrected), CONDJL_ADD(CONDJL_SQRT(v), p.eps)));
}

}  // namespace condjl
