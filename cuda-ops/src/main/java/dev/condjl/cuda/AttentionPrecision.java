package dev.condjl.cuda;

/**
 * The precision in which {@link CondjlOps#scaledDotProductAttention} computes {@code softmax(q·kᵀ·scale + bias)·v}.
 * The reduced ones convert float32 {@code q}, {@code k}, {@code v} and the bias to 16 bits, attend there (on a GPU
 * with the flash or memory-efficient kernels, which accumulate in float32) and convert the result back to float32;
 * autograd records the conversions, so gradients arrive in float32. DJL never sees the 16-bit arrays, so bfloat16
 * is safe here although DJL 0.35.1 cannot hold a bfloat16 array.
 *
 * <p>Measured on an H200 (PyTorch 2.11, forward+backward of one attention, 8 heads of 32): 8,192 queries over
 * 8,193 keys take 12.4 ms in float32 and 1.4 ms in float16 or bfloat16; 512 windows of 128 queries over 384 keys
 * take 6.0 ms and 1.7–1.8 ms.
 */
public enum AttentionPrecision {

    /** The operands' own dtype: float32 in, float32 arithmetic. */
    INPUT,

    /** float16 operands (10-bit mantissa; a logit bias's -inf becomes -65504, its lowest finite value). */
    FLOAT16,

    /** bfloat16 operands (7-bit mantissa, float32's range). */
    BFLOAT16;

    /** The code the native entry point takes: 0, 1, 2 in declaration order. */
    int code() {
        return ordinal();
    }
}
