package dev.condjl.colt5;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.condjl.cuda.AttentionPrecision;
import dev.condjl.cuda.CondjlOps;
import dev.condjl.cuda.CudaGraph;
import dev.condjl.cuda.Unfold;
import dev.condjl.topk.ConstantCache;

/**
 * Windowed ("local") attention with look-around, the semantics of {@code local_attention.LocalAttention} with
 * {@code autopad=True} (spec colt5.md §2.4a), used by the light branches.
 *
 * <p>The sequence is right-padded with zeros to a multiple {@code P} of the window size {@code w} and cut into
 * windows. A query at position {@code i} sees the keys of {@code lookBackward} windows before and {@code
 * lookForward} windows after its own, restricted to:
 *
 * <ul>
 *   <li>real positions {@code 0 <= j < n} (look-around beyond the sequence and the zero padding are masked);
 *   <li>causal: {@code j <= i}, and with {@code exactWindowsize} also {@code i - j <= w·lookBackward};
 *   <li>non-causal with {@code exactWindowsize}: {@code i - w·lookBackward <= j <= i + w·lookForward};
 *   <li>a key-padding {@code mask (b, n)}, if given.
 * </ul>
 *
 * <p>Logits are {@code (q·dh^-0.5)·k}, masked entries {@code -finfo.max}, softmax over keys. Cost and memory are
 * linear in {@code n}: {@code O(n · (lookBackward + lookForward + 1) · w)} logits.
 *
 * <p>On a GPU, without a key-padding mask, for {@code n <= }{@link #BANDED_MAX_N} and at most
 * {@link #BANDED_MAX_WORK} multiply-adds ({@code b·h·n²·(dh + dv)}), the same attention is computed as one fused
 * scaled-dot-product attention over the whole sequence with a cached (n, n) band bias ({@link #attendBanded}): one op
 * and one autograd node instead of about twenty, no logits in memory, and {@code n/span} times the windowed form's
 * arithmetic, which a GPU does faster than it issues the twenty ops (at most a few hundred microseconds within these
 * limits). Every query keeps at least itself, so the fused op's gradients are exact. Work being captured in a
 * {@link CudaGraph} takes the windowed form instead: a replay issues its ops at no host cost, and then its smaller
 * arithmetic is faster (H200, the benchmark's routed block replayed: 0.98 against 1.21 ms at n = 1,024, 1.23
 * against 1.96 ms at 2,048). Values agree with the windowed
 * form within float rounding (summation order). Without a mask, other sequences (on a GPU beyond those limits, on the
 * CPU at any length) run the windowed form itself as one fused attention over look-around views of the keys
 * ({@link #attendWindows}): on 2 CPU cores the benchmark's routed block at n = 4,096 took 115–121 ms against
 * 162–176 ms composed.
 *
 * <p><b>Difference from the reference:</b> without a mask and with {@code n % w != 0}, the non-causal reference lets
 * queries attend to the zero-padded keys (logit 0, value 0), which changes the outputs of the last tokens; here the
 * padding is always masked, so outputs do not depend on the window-padding (spec §2.4 "QUIRK"). With a mask, or in
 * the causal variant, both agree.
 */
public final class LocalAttention {

    /**
     * Whether {@link #attend} may use the banded form: true unless the system property
     * {@code condjl.colt5.bandedLocalAttention} is {@code false} (for comparing the two forms on a GPU).
     */
    static final boolean BANDED = !"false".equals(System.getProperty("condjl.colt5.bandedLocalAttention"));

    /**
     * Whether {@link #attend} may use {@link #attendWindows}: true unless the system property
     * {@code condjl.colt5.fusedLocalWindows} is {@code false} (for comparing it with the composed windowed form).
     */
    static final boolean FUSED_WINDOWS = !"false".equals(System.getProperty("condjl.colt5.fusedLocalWindows"));

    /** float16's lowest finite value, -65504. */
    private static final float HALF_LOWEST = -65504f;

    /** The longest sequence for which {@link #attend} uses the banded form on a GPU (its bias: 16 MiB). */
    static final long BANDED_MAX_N = 2048;

    /** The most multiply-adds, {@code b·h·n²·(dh + dv)}, for which {@link #attend} uses the banded form on a GPU. */
    static final long BANDED_MAX_WORK = 1L << 32;

    private LocalAttention() {}

    /**
     * The window layout.
     *
     * @param windowSize {@code w}, window length, {@code > 0}
     * @param causal whether keys after the query are masked
     * @param lookBackward windows before the query's own, {@code >= 0}
     * @param lookForward windows after the query's own, {@code >= 0}
     * @param exactWindowsize whether the visible range is exactly {@code w·lookBackward} back (and {@code
     *     w·lookForward} forward when non-causal) rather than whole windows
     */
    public record Window(int windowSize, boolean causal, int lookBackward, int lookForward, boolean exactWindowsize) {

        /** Validates the layout. */
        public Window {
            Builders.positive("windowSize", windowSize);
            if (lookBackward < 0 || lookForward < 0) {
                throw new IllegalArgumentException("lookBackward (" + lookBackward + ") and lookForward ("
                        + lookForward + ") must be >= 0");
            }
        }

        int lookAround() {
            return lookBackward + lookForward + 1;
        }
    }

    /**
     * Local attention per head.
     *
     * @param q (b, h, n, dh) queries
     * @param k (b, h, n, dh) keys
     * @param v (b, h, n, dv) values
     * @param mask null, or boolean (b, n) key-padding mask, true = valid
     * @param window the window layout
     * @return (b, h, n, dv)
     */
    public static NDArray attend(NDArray q, NDArray k, NDArray v, NDArray mask, Window window) {
        return attend(q, k, v, mask, window, AttentionPrecision.INPUT);
    }

    /**
     * {@link #attend(NDArray, NDArray, NDArray, NDArray, Window)} with the fused forms in {@code precision}
     * ({@link CondjlOps#usablePrecision}); the composed form (with a mask, or where the fused op cannot run) stays in
     * the inputs' precision.
     *
     * @param q (b, h, n, dh) queries
     * @param k (b, h, n, dh) keys
     * @param v (b, h, n, dv) values
     * @param mask null, or boolean (b, n) key-padding mask, true = valid
     * @param window the window layout
     * @param precision the fused attention's precision
     * @return (b, h, n, dv)
     */
    public static NDArray attend(
            NDArray q, NDArray k, NDArray v, NDArray mask, Window window, AttentionPrecision precision) {
        long b = q.getShape().get(0);
        long h = q.getShape().get(1);
        long n = q.getShape().get(2);
        long dh = q.getShape().get(3);
        long dv = v.getShape().get(3);
        if (mask == null && CondjlOps.supportsScaledDotProductAttention(q, k, v, null)) {
            AttentionPrecision usable = CondjlOps.usablePrecision(precision);
            if (BANDED && q.getDevice().isGpu() && !CudaGraph.isCapturing() && bandedFits(b, h, n, dh, dv)) {
                return attendBanded(q, k, v, window, usable);
            }
            if (FUSED_WINDOWS && Unfold.unavailableReason().isEmpty()) {
                return attendWindows(q, k, v, window, usable);
            }
        }
        return attendComposed(q, k, v, mask, window);
    }

    /**
     * {@link #attend} as the windowed look-around form composed of DJL ops, on any device, with or without a mask:
     * the form the fused ones are compared with.
     *
     * @param q (b, h, n, dh) queries
     * @param k (b, h, n, dh) keys
     * @param v (b, h, n, dv) values
     * @param mask null, or boolean (b, n) key-padding mask, true = valid
     * @param window the window layout
     * @return (b, h, n, dv)
     */
    static NDArray attendComposed(NDArray q, NDArray k, NDArray v, NDArray mask, Window window) {
        long b = q.getShape().get(0);
        long h = q.getShape().get(1);
        long n = q.getShape().get(2);
        long dh = q.getShape().get(3);
        long dv = v.getShape().get(3);
        int w = window.windowSize();
        long windows = (n + w - 1) / w;
        long pad = windows * w - n;

        NDArray bq = Tensors.padAxis(q, 2, 0, pad, 0).reshape(b, h, windows, w, dh);
        bq = bq.mul(Tensors.scalar(bq, Math.pow(dh, -0.5)));
        NDArray bk = lookAround(Tensors.padAxis(k, 2, 0, pad, 0).reshape(b, h, windows, w, dh), 2, window, 0);
        NDArray bv = lookAround(Tensors.padAxis(v, 2, 0, pad, 0).reshape(b, h, windows, w, dv), 2, window, 0);
        NDArray sim = bq.matMul(bk.swapAxes(3, 4));

        long span = (long) window.lookAround() * w;
        NDArray bias = windowBias(q, n, window);
        if (mask != null) {
            NDArray m = Tensors.padAxis(mask, 1, 0, pad, 0).reshape(b, windows, w);
            NDArray keys = lookAround(m, 1, window, 0).reshape(b, 1, windows, 1, span);
            // biases are 0 or MASK_VALUE, so their minimum is maskBias(allowed & keys), exactly
            bias = Tensors.maskBias(keys).minimum(bias);
        }
        // in place on the fresh product (matMul's backward does not read its output)
        NDArray out = sim.addi(bias).softmax(-1).matMul(bv).reshape(b, h, windows * w, dv);
        return pad == 0 ? out : Tensors.slice(out, 2, 0, n);
    }

    /**
     * Whether a sequence is short enough for the banded form: {@code n <= BANDED_MAX_N} and
     * {@code b·h·n²·(dh + dv) <= BANDED_MAX_WORK}.
     *
     * @param b batch
     * @param h heads
     * @param n sequence length
     * @param dh query/key width per head
     * @param dv value width per head
     * @return true when the banded form's arithmetic stays within the limits
     */
    static boolean bandedFits(long b, long h, long n, long dh, long dv) {
        return n <= BANDED_MAX_N && b * h * n * n * (dh + dv) <= BANDED_MAX_WORK;
    }

    /**
     * {@link #attend} without a key-padding mask, as one fused attention over the whole sequence: query {@code i}
     * attends to key {@code j} where the windows {@code i/w} and {@code j/w} differ by at most {@code lookBackward}
     * back and {@code lookForward} ahead, with the causal and exact-window limits of the class comment. Needs
     * {@link CondjlOps#supportsScaledDotProductAttention}; {@code O(n²)} arithmetic, so meant for short sequences.
     *
     * @param q (b, h, n, dh) queries
     * @param k (b, h, n, dh) keys
     * @param v (b, h, n, dv) values
     * @param window the window layout
     * @param precision the fused attention's precision, usable here
     * @return (b, h, n, dv)
     */
    static NDArray attendBanded(NDArray q, NDArray k, NDArray v, Window window, AttentionPrecision precision) {
        long n = q.getShape().get(2);
        NDArray bias = ConstantCache.SHARED.get(q, new BandKey(n, window),
                m -> Tensors.maskBias(band(m, q.getDevice(), n, window)));
        return CondjlOps.scaledDotProductAttention(q, k, v, bias, Math.pow(q.getShape().get(3), -0.5), precision);
    }

    private record BandKey(long n, Window window) {}

    /**
     * {@link #attend} without a key-padding mask, as one fused scaled-dot-product attention of each window's queries
     * over its look-around keys: the windows become the heads axis of {@code (b·h, windows, w, dh)} queries, the keys
     * and values are {@link Unfold} views of the padded sequence, {@code (b·h, windows, span, dh)} without a copy,
     * and the bias of {@link #windowBias} broadcasts over {@code b·h}. The arithmetic and memory of the windowed form
     * in one op and one autograd node instead of about twenty (the pads, slices and concatenations of the
     * look-around, two matrix products, the bias, the softmax). Every real query keeps at least itself; padded
     * queries are cut from the output, so they pass no gradient. Values agree with the windowed form within float
     * rounding (summation order).
     *
     * @param q (b, h, n, dh) queries
     * @param k (b, h, n, dh) keys
     * @param v (b, h, n, dv) values
     * @param window the window layout
     * @param precision the fused attention's precision, usable here
     * @return (b, h, n, dv)
     */
    static NDArray attendWindows(NDArray q, NDArray k, NDArray v, Window window, AttentionPrecision precision) {
        Shape s = q.getShape();
        long rows = s.get(0) * s.get(1);
        long n = s.get(2);
        int w = window.windowSize();
        long windows = (n + w - 1) / w;
        long pad = windows * w - n;
        NDArray bq = Tensors.padAxis(q, 2, 0, pad, 0).reshape(rows, windows, w, s.get(3));
        // in float16, keys and values are converted before the look-around copies them three times (the same
        // values: conversion commutes with padding and unfolding), and the copies and their gradients take half
        boolean half = precision == AttentionPrecision.FLOAT16;
        DataType type = half ? DataType.FLOAT16 : DataType.FLOAT32;
        NDArray bk = lookAroundViews(half ? CondjlOps.cast(k, type) : k, window, pad, rows, windows);
        NDArray bv = lookAroundViews(half ? CondjlOps.cast(v, type) : v, window, pad, rows, windows);
        NDArray bias = ConstantCache.SHARED.get(q, new WindowsBiasKey(n, window, type),
                m -> windowsBias(m, q.getDevice(), n, window, type).reshape(1, windows, w, bk.getShape().get(2)));
        NDArray out = CondjlOps.scaledDotProductAttention(bq, bk, bv, bias, Math.pow(s.get(3), -0.5), precision)
                .reshape(s.get(0), s.get(1), windows * w, v.getShape().get(3));
        return pad == 0 ? out : Tensors.slice(out, 2, 0, n);
    }

    private record WindowsBiasKey(long n, Window window, DataType type) {}

    /**
     * {@link #buildWindowBias} in {@code type}: float32, or float16 with {@link Tensors#MASK_VALUE} as float16's
     * lowest finite value (what the fused attention makes of a float32 bias in float16).
     */
    private static NDArray windowsBias(NDManager manager, Device device, long n, Window window, DataType type) {
        NDArray bias = buildWindowBias(manager, device, n, window);
        if (type == DataType.FLOAT32) {
            return bias;
        }
        return bias.maximum(HALF_LOWEST).toType(type, false);
    }

    /**
     * Each window's look-around of {@code x} as a view: x padded by {@code lookBackward} windows before and
     * {@code lookForward} windows plus {@code pad} after, then the windows of {@code span} every {@code w}.
     *
     * @return (rows, windows, span, d)
     */
    private static NDArray lookAroundViews(NDArray x, Window window, long pad, long rows, long windows) {
        int w = window.windowSize();
        long span = (long) window.lookAround() * w;
        NDArray padded = Tensors.padAxis(x, 2, (long) window.lookBackward() * w,
                (long) window.lookForward() * w + pad, 0);
        return Unfold.unfold(padded, 2, span, w).swapAxes(3, 4).reshape(rows, windows, span, x.getShape().get(3));
    }

    /** Which (query, key) pairs of a sequence of {@code n} may attend: boolean (n, n). */
    private static NDArray band(NDManager manager, Device device, long n, Window window) {
        int w = window.windowSize();
        NDArray pos = manager.arange(0, (int) n, 1, DataType.INT64, device);
        NDArray queries = pos.reshape(n, 1);
        NDArray keys = pos.reshape(1, n);
        // whole windows: window starts (multiples of w) at most lookBackward windows back, lookForward ahead
        NDArray starts = pos.sub(pos.mod(Tensors.index(pos, w)));
        NDArray apart = starts.reshape(n, 1).sub(starts.reshape(1, n));
        NDArray allowed = apart.gte(Tensors.index(pos, -(long) w * window.lookForward()))
                .logicalAnd(apart.lte(Tensors.index(pos, (long) w * window.lookBackward())));
        NDArray distance = queries.sub(keys);
        long back = (long) w * window.lookBackward();
        if (window.causal()) {
            allowed = allowed.logicalAnd(distance.gte(Tensors.index(pos, 0)));
        }
        if (window.exactWindowsize()) {
            allowed = allowed.logicalAnd(distance.lte(Tensors.index(pos, back)));
            if (!window.causal()) {
                allowed = allowed.logicalAnd(distance.gte(Tensors.index(pos, -(long) w * window.lookForward())));
            }
        }
        return allowed;
    }

    /**
     * {@link Tensors#maskBias} of {@link #allowed}, (1, 1, windows, w, span) float32: it depends only on the
     * sequence length, the layout and the device, so it is built once ({@link ConstantCache}).
     *
     * @param like an array of this call (its device and manager are used)
     * @param n sequence length
     * @param window the layout
     * @return the shared bias; never to be modified
     */
    static NDArray windowBias(NDArray like, long n, Window window) {
        return ConstantCache.SHARED.get(like, new BiasKey(n, window),
                m -> buildWindowBias(m, like.getDevice(), n, window));
    }

    private record BiasKey(long n, Window window) {}

    /**
     * The bias {@link #windowBias} caches, built from scratch in {@code manager}.
     *
     * @param manager receives the bias and its temporaries
     * @param device where it is built
     * @param n sequence length
     * @param window the layout
     * @return (1, 1, windows, w, span) float32, 0 where allowed, {@link Tensors#MASK_VALUE} elsewhere
     */
    static NDArray buildWindowBias(NDManager manager, Device device, long n, Window window) {
        int w = window.windowSize();
        long windows = (n + w - 1) / w;
        long span = (long) window.lookAround() * w;
        return Tensors.maskBias(allowed(manager, device, n, windows, window))
                .reshape(1, 1, windows, w, span);
    }

    /** Concatenates each window with its neighbours: axis {@code a} (windows) of x, gathered along {@code a+1}. */
    private static NDArray lookAround(NDArray x, int axis, Window window, double padValue) {
        long windows = x.getShape().get(axis);
        NDArray padded = Tensors.padAxis(x, axis, window.lookBackward(), window.lookForward(), padValue);
        NDList parts = new NDList(window.lookAround());
        for (int i = 0; i < window.lookAround(); i++) {
            parts.add(Tensors.slice(padded, axis, i, i + windows));
        }
        return parts.size() == 1 ? parts.head() : NDArrays.concat(parts, axis + 1);
    }

    /**
     * Which (window, query offset, key slot) pairs may attend: boolean (windows, w, span). The window conditions
     * depend only on the query's offset and the key's slot ({@code i - j = t + lookBackward·w - slot}), the range
     * check only on the window and slot, so both are built small and combined once.
     */
    private static NDArray allowed(NDManager manager, Device device, long n, long windows, Window window) {
        int w = window.windowSize();
        long span = (long) window.lookAround() * w;
        long back = (long) w * window.lookBackward();
        long forward = (long) w * window.lookForward();
        NDArray slot = manager.arange(0, (int) span, 1, DataType.INT64, device).reshape(1, 1, span);
        // i - j for query offset t and key slot: (1, w, span); constants are device arrays (see Tensors.index)
        NDArray distance = manager.arange((int) back, (int) back + w, 1, DataType.INT64, device).reshape(1, w, 1)
                .sub(slot);
        NDArray band = null;
        if (window.causal()) {
            band = distance.gte(Tensors.index(distance, 0));
            if (window.exactWindowsize()) {
                band = band.logicalAnd(distance.lte(Tensors.index(distance, back)));
            }
        } else if (window.exactWindowsize()) {
            band = distance.gte(Tensors.index(distance, -forward))
                    .logicalAnd(distance.lte(Tensors.index(distance, back)));
        }
        NDArray kPos = manager.arange((int) -back, (int) (windows * w - back), w, DataType.INT64, device)
                .reshape(windows, 1, 1).add(slot);
        NDArray inRange = kPos.gte(Tensors.index(kPos, 0)).logicalAnd(kPos.lt(Tensors.index(kPos, n)));
        return band == null ? inRange.broadcast(windows, w, span) : inRange.logicalAnd(band);
    }
}
