package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * The JNI surface of {@code libcondjl_ops}: fused coordinate descent (the CoLT5 router's soft top-k) and its
 * implicit-function gradient, on CPU (threads over rows) and CUDA (one launch for all iterations).
 *
 * <p>Forward, per row of {@code s} with validity mask {@code m}, sparsity {@code k} (or its log) and an
 * {@link EpsSchedule}:
 * {@code a = 0, b = −s}; {@code iters} times {@code z = (s + b)/e} (masked {@code z = −∞}),
 * {@code a = e·(ln max(k, 1e−20) − logsumexp(z))}, {@code b = −relu(s + a)}; output
 * {@code y = exp(((s + a) + b)/e_final)}, 0 where masked (scores at or below −1e20 count as masked; their outputs
 * would round to 0 anyway unless a whole row lies below −1e20). Backward, for an upstream gradient {@code g}: with
 * {@code w = y} where {@code y < 1} (else 0), {@code ds = (w/e_final)·(g − Σ(g·w)/Σw)} per row (0 where
 * {@code Σw = 0}): the gradient of the converged solution, O(n), no stored iterations.
 *
 * <p>Also the router's tie-broken top-k ({@link #topKByInput}): positions only, in one call instead of a dozen
 * sorting ops.
 *
 * <p>Also libtorch's fused attention ({@link #scaledDotProductAttention}), called through its dispatcher so that
 * autograd records it: one op and one autograd node instead of the five of the composed formula.
 *
 * <p>Loading never fails the caller: when the library cannot load, {@link #isAvailable()} is false, one warning is
 * logged and callers use their pure-DJL path; likewise {@link #supports(Device)} for GPUs whose driver or architecture
 * the CUDA kernels cannot use. Tensor entry points take DJL PyTorch arrays (fp32, or fp16 computed in fp32), validate
 * dtype, shape, device, {@code k} and mask before touching data, copy non-contiguous inputs (broadcast views
 * included), and throw {@link IllegalArgumentException} for bad input. Raw entry points take addresses (device
 * pointers for CUDA, direct-buffer addresses for the CPU) and need no libtorch. On DJL tensors the CPU kernels use as
 * many threads as libtorch's intra-op pool ({@code ai.djl.pytorch.num_threads}), so the two do not oversubscribe the
 * cores.
 */
public final class CondjlOps {

    private static final Logger LOG = LogManager.getLogger(CondjlOps.class);
    private static final String LOAD_FAILURE = NativeLibrary.load();
    private static final AtomicBoolean GPU_WARNED = new AtomicBoolean();
    private static volatile String cudaFailure;
    private static final Map<AttentionPrecision, ProbedOp> ATTENTION = attentionProbes();

    static {
        if (LOAD_FAILURE != null) {
            LOG.warn("libcondjl_ops is unavailable ({}); fused coordinate descent falls back to DJL operations",
                    LOAD_FAILURE);
        }
    }

    private CondjlOps() {}

    /**
     * Whether the native library loaded (CPU kernels and raw entry points usable).
     *
     * @return true when loaded
     */
    public static boolean isAvailable() {
        return LOAD_FAILURE == null;
    }

    /**
     * Why the library did not load.
     *
     * @return the reason, or "" when {@link #isAvailable()}
     */
    public static String unavailableReason() {
        return LOAD_FAILURE == null ? "" : LOAD_FAILURE;
    }

    /**
     * Whether the library was built with its CUDA kernels (nvcc present at build time).
     *
     * @return true for a CUDA build
     */
    public static boolean cudaCompiled() {
        return isAvailable() && nCudaCompiled();
    }

    /**
     * Whether the CUDA kernels can run on this machine's first GPU (probed once with a tiny launch).
     *
     * @return true when usable
     */
    public static boolean cudaAvailable() {
        return cudaUnavailableReason().isEmpty();
    }

    /**
     * Why the CUDA kernels cannot run.
     *
     * @return the reason, or "" when {@link #cudaAvailable()}
     */
    public static String cudaUnavailableReason() {
        if (!isAvailable()) {
            return LOAD_FAILURE;
        }
        String reason = cudaFailure;
        if (reason == null) {
            reason = nCudaProbe();
            cudaFailure = reason;
        }
        return reason;
    }

    /**
     * Whether the fused kernels can run on {@code device}; logs one warning the first time a GPU is refused.
     *
     * @param device a CPU or GPU device
     * @return true when {@link #coorDescent} runs there
     */
    public static boolean supports(Device device) {
        if (!isAvailable()) {
            return false;
        }
        if (device.isGpu()) {
            boolean ok = cudaAvailable();
            if (!ok && GPU_WARNED.compareAndSet(false, true)) {
                LOG.warn("fused coordinate descent cannot use {} ({}); falling back to DJL operations", device,
                        cudaUnavailableReason());
            }
            return ok;
        }
        return Device.Type.CPU.equals(device.getDeviceType());
    }

    /**
     * Fused coordinate descent with one {@code k} for every row.
     *
     * @param s (..., n) scores, float32 or float16, PyTorch engine
     * @param k sparsity, finite and {@code > 0}
     * @param mask (..., n) bool validity mask (true = keep), or null
     * @param eps the ε schedule
     * @return (..., n) soft top-k weights in [0, 1], dtype of {@code s}, in {@code s}'s manager; no gradient
     */
    public static NDArray coorDescent(NDArray s, float k, NDArray mask, EpsSchedule eps) {
        return forward(s, null, k, mask, eps, false).head();
    }

    /**
     * Fused coordinate descent given {@code ln(max(k, 1e−20))} as a tensor, one value or one per row.
     *
     * @param s (..., n) scores, float32 or float16, PyTorch engine
     * @param logk (1), (...) or (..., 1) log-sparsity on {@code s}'s device; converted to float32
     * @param mask (..., n) bool validity mask (true = keep), or null
     * @param eps the ε schedule
     * @return (..., n) soft top-k weights in [0, 1], dtype of {@code s}, in {@code s}'s manager; no gradient
     */
    public static NDArray coorDescentLogK(NDArray s, NDArray logk, NDArray mask, EpsSchedule eps) {
        return forwardLogK(s, logk, mask, eps, false).head();
    }

    /**
     * {@link #coorDescentLogK} that also returns the implicit-gradient weights {@code q = w/e_final}
     * ({@code w = y} where {@code y < 1}, else 0) and their shares {@code p = q / max(Σq, m)} per row ({@code m} the
     * dtype's smallest positive number, so {@code p = 0} where {@code Σq = 0}), from which
     * {@code ds = q·(g − Σ g·p)}. {@code Σq} is summed in float32 or wider from {@code q} as stored, so a float16
     * row's sum does not overflow.
     *
     * @param s (..., n) scores, float32 or float16, PyTorch engine
     * @param logk (1), (...) or (..., 1) log-sparsity on {@code s}'s device; converted to float32
     * @param mask (..., n) bool validity mask (true = keep), or null
     * @param eps the ε schedule
     * @return {y, q, p}, each (..., n) of {@code s}'s dtype in {@code s}'s manager; no gradient
     */
    public static NDList coorDescentWithWeights(NDArray s, NDArray logk, NDArray mask, EpsSchedule eps) {
        return forwardLogK(s, logk, mask, eps, true);
    }

    private static NDList forwardLogK(NDArray s, NDArray logk, NDArray mask, EpsSchedule eps, boolean weights) {
        if (logk == null) {
            throw new IllegalArgumentException("logk must not be null");
        }
        NDArray logk32 = logk.getDataType() == DataType.FLOAT32 ? logk : logk.toType(DataType.FLOAT32, false);
        try {
            return forward(s, logk32, 0f, mask, eps, weights);
        } finally {
            if (logk32 != logk) {
                logk32.close();
            }
        }
    }

    /**
     * The implicit-function gradient of a converged solution (see the class comment).
     *
     * @param y (..., n) output of {@link #coorDescent}
     * @param grad (..., n) upstream gradient, same dtype and device as {@code y}
     * @param epsFinal the final ε of the schedule that produced {@code y}
     * @return (..., n) gradient with respect to the scores, in {@code y}'s manager
     */
    public static NDArray coorDescentBackward(NDArray y, NDArray grad, float epsFinal) {
        ensureAvailable();
        PtNDArray py = pytorch(y, "y");
        PtNDArray pg = pytorch(grad, "grad");
        return new PtNDArray(py.getManager(),
                nBackward(py.getHandle(), pg.getHandle(), epsFinal, JniUtils.getNumThreads()));
    }

    /**
     * Whether {@link #topKByInput} runs for these scores: the library loaded, and float32 or float16 PyTorch-engine
     * arrays on a device that {@link #supports}.
     *
     * @param scores (..., n) scores
     * @return true when {@link #topKByInput} may be called with them
     */
    public static boolean supportsTopKByInput(NDArray scores) {
        DataType type = scores.getDataType();
        return scores instanceof PtNDArray && (type == DataType.FLOAT32 || type == DataType.FLOAT16)
                && supports(scores.getDevice());
    }

    /**
     * The positions of each row's {@code k} best entries, best first, in one native call: an entry ranks by its
     * score, then whether it is valid, then its raw value, then the lower position; floats compare with
     * {@code -0 == +0} and every NaN equal and above {@code +inf}. No two positions tie, so the result is the same on
     * every device.
     *
     * <p>On the CPU, per row, the {@code k} best by a selection and then sorted. On a GPU, rows of at most 256
     * entries are ranked whole, each entry by counting the entries before it (O(n²) work per row, one launch). For
     * longer rows and {@code k <= 65,536}: a radix select of the {@code k} best (a block per row, at most 9 reads of
     * the row; where few rows of 8,192 or more entries would leave SMs idle, a block per segment of at least 4,096
     * entries in one cooperative launch), then those {@code k} ordered by ranks within chunks of 256 and binary
     * searches among the chunks (three launches, two for {@code k <= 256}; 24 bytes of scratch per selected entry). A
     * larger {@code k} sorts whole rows, about 2²¹ entries at a time, with a stable radix sort (about 25 API calls; 20
     * bytes of scratch an entry).
     * Limits there: at most 2³¹ − 1 rows of at most 2³¹ − 1 entries.
     *
     * @param scores (..., n) float32 or float16 scores
     * @param raw (..., n) secondary key, dtype and device of {@code scores}
     * @param mask null, or a bool (..., n) mask on the same device, true = valid
     * @param k entries per row, {@code 1 <= k <= n}
     * @return (..., k) int64 positions in {@code scores}' manager; no gradient
     * @throws IllegalArgumentException on a shape, dtype or device that does not fit
     */
    public static NDArray topKByInput(NDArray scores, NDArray raw, NDArray mask, int k) {
        return topKByInput(scores, raw, mask, k, false).head();
    }

    /**
     * {@link #topKByInput} that also returns each selected score {@code y}'s straight-through gate
     * {@code y + (1 − y)}, each operation rounded to the scores' dtype as libtorch rounds {@code y.add((1 − y))}
     * (so that adding a zero-valued gradient path to it reproduces {@code y + stopGradient(1 − y)} bit for bit).
     *
     * @param scores (..., n) float32 or float16 scores
     * @param raw (..., n) secondary key, dtype and device of {@code scores}
     * @param mask null, or a bool (..., n) mask on the same device, true = valid
     * @param k entries per row, {@code 1 <= k <= n}
     * @return {indices (..., k) int64, gates (..., k) of the scores' dtype}, in {@code scores}' manager; no gradient
     * @throws IllegalArgumentException on a shape, dtype or device that does not fit
     */
    public static NDList topKByInputWithGates(NDArray scores, NDArray raw, NDArray mask, int k) {
        return topKByInput(scores, raw, mask, k, true);
    }

    private static NDList topKByInput(NDArray scores, NDArray raw, NDArray mask, int k, boolean gates) {
        ensureAvailable();
        PtNDArray ps = pytorch(scores, "scores");
        long maskHandle = mask == null ? 0L : pytorch(mask, "mask").getHandle();
        long[] out = nTopKByInput(ps.getHandle(), pytorch(raw, "raw").getHandle(), maskHandle, k, gates);
        return arrays(ps, out);
    }

    /**
     * Whether {@link #scaledDotProductAttention} runs here: the library loaded, this libtorch exports the dispatcher
     * entry points, and a probe call (masked, scaled, with a fully masked row) returned the closed-form values. The
     * probe runs once; it guards against a libtorch whose operator schema or argument encoding differs from 2.7.1's.
     *
     * @return the reason, or "" when usable
     */
    public static String attentionUnavailableReason() {
        return attentionUnavailableReason(AttentionPrecision.INPUT);
    }

    /**
     * Whether {@link #scaledDotProductAttention(NDArray, NDArray, NDArray, NDArray, double, AttentionPrecision)} runs
     * here in this precision: as {@link #attentionUnavailableReason()}, with the probe computed in that precision.
     * When a reduced precision is unavailable, one warning is logged.
     *
     * @param precision the precision asked for
     * @return the reason, or "" when usable
     */
    public static String attentionUnavailableReason(AttentionPrecision precision) {
        return ATTENTION.get(precision).unavailableReason();
    }

    /**
     * The precision to attend in: {@code wanted} where it runs here, else {@link AttentionPrecision#INPUT} (with
     * the one warning of {@link #attentionUnavailableReason(AttentionPrecision)}).
     *
     * @param wanted the precision asked for
     * @return {@code wanted} or {@code INPUT}
     */
    public static AttentionPrecision usablePrecision(AttentionPrecision wanted) {
        return attentionUnavailableReason(wanted).isEmpty() ? wanted : AttentionPrecision.INPUT;
    }

    /**
     * Whether {@link #scaledDotProductAttention} takes these arguments: it is available
     * ({@link #attentionUnavailableReason}) and they pass its checks.
     *
     * @param q (..., i, dh) queries
     * @param k (..., j, dh) keys
     * @param v (..., j, dv) values
     * @param bias null, or an additive logit bias broadcastable to (..., i, j)
     * @return true when a call with them would succeed
     */
    public static boolean supportsScaledDotProductAttention(NDArray q, NDArray k, NDArray v, NDArray bias) {
        return attentionProblem(q, k, v, bias) == null && attentionUnavailableReason().isEmpty();
    }

    /**
     * {@code softmax(q·kᵀ·scale + bias)·v} in one op: libtorch's {@code aten::scaled_dot_product_attention} (no
     * dropout, not causal), which picks its fused CPU kernel (flash attention, for 4-D inputs whose last dimension
     * is contiguous and whose bias is 2-D or 4-D and needs no gradient) or CUDA kernel, else its composed math path.
     * Autograd records it like any DJL op: under a {@code GradientCollector} the result carries gradients to
     * {@code q}, {@code k}, {@code v} (and {@code bias} if it requires one). Pass masks as a bias of 0 (attend) and
     * {@code -Float.MAX_VALUE} (masked), not as a boolean mask: then a query whose keys are all masked averages the
     * values uniformly, as a softmax over equal logits does, where a boolean mask would make its row NaN or 0.
     * Gradients equal the formula's too, except those flowing from such a query, whose keys are all masked: there
     * the CPU flash kernel (libtorch 2.7.1) returns j times the formula's share of dq, dk and dv, because its stored
     * log-sum-exp {@code -MAX + ln j} rounds to {@code -MAX}. Callers that cannot rule such queries out compose the
     * formula instead.
     *
     * @param q (..., i, dh) float32 queries, PyTorch engine
     * @param k (..., j, dh) keys, j {@code >= 1}, with {@code q}'s leading dimensions, dtype and device
     * @param v (..., j, dv) values, likewise
     * @param bias null, or a float32 additive logit bias on {@code q}'s device broadcastable to (..., i, j), with at
     *     least 2 dimensions
     * @param scale the logit scale, finite (usually {@code dh^-0.5})
     * @return (..., i, dv) in {@code q}'s manager
     * @throws IllegalArgumentException on a shape, dtype or device that does not fit, or a non-finite scale
     * @throws IllegalStateException when the op is unavailable ({@link #attentionUnavailableReason})
     */
    public static NDArray scaledDotProductAttention(NDArray q, NDArray k, NDArray v, NDArray bias, double scale) {
        return scaledDotProductAttention(q, k, v, bias, scale, AttentionPrecision.INPUT);
    }

    /**
     * {@link #scaledDotProductAttention(NDArray, NDArray, NDArray, NDArray, double)} computed in {@code precision}:
     * with a reduced one, from 16-bit copies of the operands, the result converted back to float32 (five ops and
     * autograd nodes instead of one, and two more ops for a bias; see {@link AttentionPrecision}). The values then differ from float32's by the
     * 16-bit rounding of the operands and the result (about 1e-3 relative for float16, 1e-2 for bfloat16). A bias of
     * {@code -Float.MAX_VALUE} (-inf in 16 bits) is taken as the reduced dtype's lowest finite value, so masked
     * logits stay finite and no NaN arises; but what a query whose keys are all masked returns then depends on the
     * kernel, so callers must rule such queries out (or cut them from the result, as padded queries).
     *
     * @param q (..., i, dh) float32 queries, PyTorch engine
     * @param k (..., j, dh) keys, j {@code >= 1}, with {@code q}'s leading dimensions, dtype and device; in
     *     {@link AttentionPrecision#FLOAT16} also float16 (from {@link #cast}, so that a caller can convert before
     *     it copies, and the gradient still flows), taken as it is
     * @param v (..., j, dv) values, likewise
     * @param bias null, or a float32 additive logit bias on {@code q}'s device broadcastable to (..., i, j), with at
     *     least 2 dimensions; in {@link AttentionPrecision#FLOAT16} also a finite float16 one, taken as it is
     * @param scale the logit scale, finite (usually {@code dh^-0.5})
     * @param precision the precision of the products and the softmax's inputs
     * @return (..., i, dv) float32, in {@code q}'s manager
     * @throws IllegalArgumentException on a shape, dtype or device that does not fit, or a non-finite scale
     * @throws IllegalStateException when the op is unavailable in this precision
     *     ({@link #attentionUnavailableReason(AttentionPrecision)})
     */
    public static NDArray scaledDotProductAttention(
            NDArray q, NDArray k, NDArray v, NDArray bias, double scale, AttentionPrecision precision) {
        String problem = attentionProblem(q, k, v, bias, precision == AttentionPrecision.FLOAT16);
        if (problem == null && !Double.isFinite(scale)) {
            problem = "scale must be finite, got " + scale;
        }
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        String reason = attentionUnavailableReason(precision);
        if (!reason.isEmpty()) {
            throw new IllegalStateException("fused attention in " + precision + " is unavailable: " + reason);
        }
        return attention((PtNDArray) q, (PtNDArray) k, (PtNDArray) v, (PtNDArray) bias, scale, precision);
    }

    /**
     * {@code x} converted to float32 or float16 by an op that autograd records (libtorch's {@code type_as}: the
     * gradient converts back to {@code x}'s dtype), where DJL's {@code toType} cuts the gradient. A float16 result
     * is rounded to nearest even, as {@code toType} rounds; {@code x} itself (a new handle) where it already has that
     * dtype. Runs wherever the library loaded and this libtorch's dispatcher can be called (as for
     * {@link #scaledDotProductAttention}).
     *
     * @param x a floating PyTorch-engine array (float32 or float16)
     * @param type {@link DataType#FLOAT32} or {@link DataType#FLOAT16}
     * @return {@code x} in {@code type}, in {@code x}'s manager
     * @throws IllegalArgumentException for another dtype of {@code x} or {@code type}
     * @throws IllegalStateException where the dispatcher is unavailable
     */
    public static NDArray cast(NDArray x, DataType type) {
        PtNDArray px = pytorch(x, "x");
        if (px.getDataType() != DataType.FLOAT32 && px.getDataType() != DataType.FLOAT16) {
            throw new IllegalArgumentException("x must be float32 or float16, got " + px.getDataType());
        }
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException("cast goes to float32 or float16, got " + type);
        }
        String reason = dispatcherUnavailable();
        if (!reason.isEmpty()) {
            throw new IllegalStateException("cast is unavailable: " + reason);
        }
        return new PtNDArray(px.getManager(), nCast(px.getHandle(), type == DataType.FLOAT32 ? 0 : 1));
    }

    private static NDArray attention(
            PtNDArray q, PtNDArray k, PtNDArray v, PtNDArray bias, double scale, AttentionPrecision precision) {
        long biasHandle = bias == null ? 0L : bias.getHandle();
        return new PtNDArray(q.getManager(), nScaledDotProductAttention(
                q.getHandle(), k.getHandle(), v.getHandle(), biasHandle, scale, precision.code()));
    }

    private static Map<AttentionPrecision, ProbedOp> attentionProbes() {
        Map<AttentionPrecision, ProbedOp> probes = new EnumMap<>(AttentionPrecision.class);
        for (AttentionPrecision p : AttentionPrecision.values()) {
            Consumer<String> report = p == AttentionPrecision.INPUT
                    ? r -> LOG.warn("fused attention is unavailable ({}); attention falls back to DJL operations", r)
                    : r -> LOG.warn("fused attention in {} is unavailable ({}); attention runs in float32", p, r);
            probes.put(p, new ProbedOp(CondjlOps::dispatcherUnavailable, () -> probeAttention(p), report));
        }
        return probes;
    }

    /** What is wrong with these float32 attention arguments, or null. */
    private static String attentionProblem(NDArray q, NDArray k, NDArray v, NDArray bias) {
        return attentionProblem(q, k, v, bias, false);
    }

    /** What is wrong with these attention arguments, or null; {@code half}: k, v and bias may be float16. */
    private static String attentionProblem(NDArray q, NDArray k, NDArray v, NDArray bias, boolean half) {
        String problem = operandProblem(q, "q", q, false);
        if (problem == null) {
            problem = operandProblem(k, "k", q, half);
        }
        if (problem == null) {
            problem = operandProblem(v, "v", q, half);
        }
        if (problem == null && bias != null) {
            problem = operandProblem(bias, "bias", q, half);
        }
        if (problem != null) {
            return problem;
        }
        return attentionShapeProblem(q.getShape(), k.getShape(), v.getShape(), bias == null ? null : bias.getShape());
    }

    private static String operandProblem(NDArray x, String name, NDArray q, boolean half) {
        String problem = notPytorch(x, name);
        if (problem == null && x.getDataType() != DataType.FLOAT32 && !(half && x.getDataType() == DataType.FLOAT16)) {
            problem = name + (half ? " must be float32 or float16" : " must be float32") + ", got " + x.getDataType()
                    + (x.getDataType() == DataType.BOOLEAN ? " (turn a keep mask into a bias of 0 and -Float.MAX_VALUE)"
                            : "");
        }
        if (problem == null && !x.getDevice().equals(q.getDevice())) {
            problem = name + " is on " + x.getDevice() + " but q is on " + q.getDevice();
        }
        return problem;
    }

    private static String attentionShapeProblem(Shape q, Shape k, Shape v, Shape bias) {
        int rank = q.dimension();
        String shapes = "q " + q + ", k " + k + ", v " + v;
        if (rank < 2 || k.dimension() != rank || v.dimension() != rank) {
            return "q, k and v must have the same rank, at least 2: got " + shapes;
        }
        if (!q.slice(0, rank - 2).equals(k.slice(0, rank - 2)) || !q.slice(0, rank - 2).equals(v.slice(0, rank - 2))
                || q.tail() != k.tail() || k.get(rank - 2) != v.get(rank - 2)) {
            return "q, k and v must be (..., i, dh), (..., j, dh), (..., j, dv) with the same leading dimensions: got "
                    + shapes;
        }
        if (k.get(rank - 2) < 1) {
            return "there must be at least one key, got " + shapes;
        }
        if (bias == null) {
            return null;
        }
        Shape logits = q.slice(0, rank - 1).add(k.get(rank - 2));
        boolean fits = bias.dimension() >= 2 && bias.dimension() <= rank;
        for (int d = 1; fits && d <= bias.dimension(); d++) {
            long size = bias.get(bias.dimension() - d);
            fits = size == 1 || size == logits.get(rank - d);
        }
        return fits ? null
                : "bias " + bias + " must have 2 to " + rank + " dimensions and broadcast to the logits " + logits;
    }

    /**
     * One call whose answer is known: "" where it works in this precision, else why not. Query 0 sees both keys,
     * logits (0.5, 1.5). In float32 query 1 sees none and must average the values; in 16 bits (where whether the
     * masked logits still differ depends on the kernel) it sees key 0 only.
     */
    private static String probeAttention(AttentionPrecision precision) {
        try (NDManager m = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            Shape s = new Shape(1, 1, 2, 1);
            NDArray q = m.create(new float[] {1, 2}, s);
            NDArray k = m.create(new float[] {1, 3}, s);
            NDArray v = m.create(new float[] {10, 20}, s);
            float mx = Float.MAX_VALUE;
            boolean reduced = precision != AttentionPrecision.INPUT;
            NDArray bias = m.create(new float[] {0, 0, reduced ? 0 : -mx, -mx}, new Shape(1, 1, 2, 2));
            NDArray out = attention((PtNDArray) q, (PtNDArray) k, (PtNDArray) v, (PtNDArray) bias, 0.5, precision);
            float[] got = out.toFloatArray();
            double e = Math.exp(1);
            float[] want = {(float) (10 + 10 * e / (1 + e)), reduced ? 10 : 15};
            // results near 17 are multiples of 1/8 in bfloat16, of 1/64 in float16
            double tolerance = !reduced ? 1e-4 : precision == AttentionPrecision.FLOAT16 ? 0.02 : 0.13;
            boolean ok = out.getDataType() == DataType.FLOAT32 && got.length == 2
                    && Math.abs(got[0] - want[0]) < tolerance && Math.abs(got[1] - want[1]) < tolerance;
            return ok ? "" : "probe call returned " + out.getDataType() + " " + Arrays.toString(got) + ", expected "
                    + Arrays.toString(want);
        } catch (RuntimeException e) {
            return "probe call failed: " + e.getMessage();
        }
    }

    private static NDList forward(NDArray s, NDArray logk, float k, NDArray mask, EpsSchedule eps,
            boolean weights) {
        ensureAvailable();
        if (eps == null) {
            throw new IllegalArgumentException("eps schedule must not be null");
        }
        PtNDArray ps = pytorch(s, "s");
        long maskHandle = mask == null ? 0L : pytorch(mask, "mask").getHandle();
        long logkHandle = logk == null ? 0L : pytorch(logk, "logk").getHandle();
        long[] out = nForward(ps.getHandle(), maskHandle, logkHandle, k, eps.iters(), eps.epsAt(0), eps.epsDecay(),
                eps.eps(), weights, JniUtils.getNumThreads());
        return arrays(ps, out);
    }

    /** Arrays of the handles a native call returned, in {@code like}'s manager. */
    private static NDList arrays(PtNDArray like, long[] handles) {
        NDList results = new NDList(handles.length);
        for (long handle : handles) {
            results.add(new PtNDArray(like.getManager(), handle));
        }
        return results;
    }

    /**
     * "" where the library loaded and this libtorch exports the dispatcher entry points condjl's fused ops call, else
     * why not: the prerequisite of every op called through the dispatcher.
     */
    static String dispatcherUnavailable() {
        return isAvailable() ? nDispatcherMissing() : LOAD_FAILURE;
    }

    /** {@code array} as a PyTorch-engine array; IllegalArgumentException naming it if it is null or not one. */
    static PtNDArray pytorch(NDArray array, String name) {
        String problem = notPytorch(array, name);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        return (PtNDArray) array;
    }

    static String notPytorch(NDArray array, String name) {
        if (array == null) {
            return name + " must not be null";
        }
        return array instanceof PtNDArray ? null
                : name + " must be a PyTorch-engine NDArray, got " + array.getClass().getName();
    }

    /** What keeps {@code array} from being a float32 PyTorch-engine array, naming it; null if nothing. */
    static String notFloat32(NDArray array, String name) {
        String problem = notPytorch(array, name);
        if (problem != null) {
            return problem;
        }
        return array.getDataType() == DataType.FLOAT32 ? null : name + " must be float32, got " + array.getDataType();
    }

    /** IllegalStateException with the load failure unless the library loaded. */
    static void ensureAvailable() {
        if (!isAvailable()) {
            throw new IllegalStateException("libcondjl_ops is unavailable: " + LOAD_FAILURE);
        }
    }

    // ---- raw buffers ---------------------------------------------------------------------------------------------

    /**
     * Fused coordinate descent on raw row-major buffers.
     *
     * @param cuda true: device pointers, CUDA kernels on {@code stream}; false: host addresses, CPU kernels
     * @param s rows·n scores (float32, or float16 when {@code half})
     * @param mask rows·n bytes (1 = keep), or 0 for none
     * @param logk rows float32 values {@code ln(max(k, 1e−20))}, or 0 to use {@code k} for every row
     * @param k sparsity of every row when {@code logk == 0}, finite and {@code > 0}
     * @param rows number of rows
     * @param n row length
     * @param half float16 data instead of float32
     * @param eps the ε schedule
     * @param out rows·n outputs, same dtype as {@code s}
     * @param weights rows·n implicit-gradient weights {@code q = w/e_final} (see {@link #coorDescentWithWeights}),
     *     or 0 for none
     * @param stream CUDA stream ({@code cudaStream_t}), 0 for the default stream; ignored on the CPU
     * @param launch CUDA launch configuration; ignored on the CPU
     */
    public static void coorDescentRaw(boolean cuda, long s, long mask, long logk, float k, long rows, long n,
            boolean half, EpsSchedule eps, long out, long weights, long stream, LaunchConfig launch) {
        ensureAvailable();
        nForwardRaw(cuda, s, mask, logk, k, rows, n, half ? 1 : 0, eps.iters(), eps.epsAt(0), eps.epsDecay(),
                eps.eps(), out, weights, stream, launch.blocksPerRow(), launch.threads(), launch.mode().ordinal());
    }

    /**
     * The implicit-function gradient on raw buffers.
     *
     * @param cuda true: device pointers, CUDA kernels; false: host addresses, CPU kernels
     * @param y rows·n forward outputs
     * @param grad rows·n upstream gradients
     * @param out rows·n results; may equal {@code grad}
     * @param rows number of rows
     * @param n row length
     * @param half float16 data instead of float32
     * @param epsFinal final ε of the forward's schedule
     * @param stream CUDA stream, 0 for the default stream
     * @param launch CUDA launch configuration
     */
    public static void coorDescentBackwardRaw(boolean cuda, long y, long grad, long out, long rows, long n,
            boolean half, float epsFinal, long stream, LaunchConfig launch) {
        ensureAvailable();
        nBackwardRaw(cuda, y, grad, out, rows, n, half ? 1 : 0, epsFinal, stream, launch.blocksPerRow(),
                launch.threads(), launch.mode().ordinal());
    }

    /**
     * The CUDA launch the library would use, e.g. {@code "cluster G=16 T=256 R=8 grid=32"}.
     *
     * @param rows number of rows
     * @param n row length
     * @param backward the backward kernel instead of the forward
     * @param launch forced settings
     * @return a description
     */
    public static String describeLaunch(long rows, long n, boolean backward, LaunchConfig launch) {
        ensureAvailable();
        return nDescribeLaunch(rows, n, backward, launch.blocksPerRow(), launch.threads(), launch.mode().ordinal());
    }

    /**
     * The address of a direct buffer, for the CPU raw entry points.
     *
     * @param direct a direct ByteBuffer
     * @return its address
     */
    public static long address(ByteBuffer direct) {
        ensureAvailable();
        return nAddress(direct);
    }

    /**
     * {@code cudaMalloc}.
     *
     * @param bytes size
     * @return device pointer
     */
    public static long cudaMalloc(long bytes) {
        ensureAvailable();
        return nCudaMalloc(bytes);
    }

    /**
     * {@code cudaFree}.
     *
     * @param pointer device pointer from {@link #cudaMalloc}
     */
    public static void cudaFree(long pointer) {
        ensureAvailable();
        nCudaFree(pointer);
    }

    /**
     * {@code cudaMemcpy} in any direction (unified addressing), synchronous.
     *
     * @param dst destination address
     * @param src source address
     * @param bytes size
     */
    public static void cudaMemcpy(long dst, long src, long bytes) {
        ensureAvailable();
        nCudaMemcpy(dst, src, bytes);
    }

    /**
     * {@code cudaMemset}.
     *
     * @param dst device pointer
     * @param value byte value
     * @param bytes size
     */
    public static void cudaMemset(long dst, int value, long bytes) {
        ensureAvailable();
        nCudaMemset(dst, value, bytes);
    }

    /** {@code cudaDeviceSynchronize}; throws {@link IllegalStateException} for asynchronous kernel errors. */
    public static void cudaSynchronize() {
        ensureAvailable();
        nCudaSynchronize();
    }

    /**
     * {@code cudaEventCreate}.
     *
     * @return the event
     */
    public static long cudaEventCreate() {
        ensureAvailable();
        return nEventCreate();
    }

    /**
     * {@code cudaEventRecord}.
     *
     * @param event an event
     * @param stream a stream, 0 for the default stream
     */
    public static void cudaEventRecord(long event, long stream) {
        ensureAvailable();
        nEventRecord(event, stream);
    }

    /**
     * Milliseconds between two recorded events; waits for {@code end}.
     *
     * @param start first event
     * @param end second event
     * @return elapsed milliseconds
     */
    public static float cudaEventElapsedMs(long start, long end) {
        ensureAvailable();
        return nEventElapsedMs(start, end);
    }

    /**
     * {@code cudaEventDestroy}.
     *
     * @param event an event
     */
    public static void cudaEventDestroy(long event) {
        ensureAvailable();
        nEventDestroy(event);
    }

    /**
     * The current CUDA device, e.g. {@code "NVIDIA H100 80GB HBM3 (compute capability 9.0, 132 multiprocessors)"}.
     *
     * @return a description
     */
    public static String cudaDeviceName() {
        ensureAvailable();
        return nDeviceName();
    }

    /**
     * Memory of the current CUDA device in use by all processes ({@code cudaMemGetInfo}: total minus free). After
     * PyTorch's cache is emptied ({@code JniUtils.emptyCudaCache()}) this is the memory live tensors occupy, plus
     * the CUDA contexts.
     *
     * @return bytes
     */
    public static long cudaMemoryUsed() {
        ensureAvailable();
        return nCudaMemoryUsed();
    }

    private static native long[] nForward(long s, long mask, long logk, float k, int iters, double epsStart,
            double epsDecay, double eps, boolean weights, int cpuThreads);

    private static native long nBackward(long y, long grad, float epsFinal, int cpuThreads);

    private static native void nForwardRaw(boolean cuda, long s, long mask, long logk, float k, long rows, long n,
            int dtype, int iters, double epsStart, double epsDecay, double eps, long out, long weights, long stream,
            int blocks, int threads, int mode);

    private static native void nBackwardRaw(boolean cuda, long y, long grad, long out, long rows, long n, int dtype,
            float epsFinal, long stream, int blocks, int threads, int mode);

    private static native long[] nTopKByInput(long scores, long raw, long mask, long k, boolean gates);

    private static native long nCast(long x, int dtype);

    private static native long nScaledDotProductAttention(
            long q, long k, long v, long bias, double scale, int precision);

    private static native String nDispatcherMissing();

    private static native boolean nCudaCompiled();

    private static native String nCudaProbe();

    private static native String nDescribeLaunch(long rows, long n, boolean backward, int blocks, int threads,
            int mode);

    private static native long nAddress(ByteBuffer direct);

    private static native long nCudaMalloc(long bytes);

    private static native void nCudaFree(long pointer);

    private static native void nCudaMemcpy(long dst, long src, long bytes);

    private static native void nCudaMemset(long dst, int value, long bytes);

    private static native void nCudaSynchronize();

    private static native long nEventCreate();

    private static native void nEventRecord(long event, long stream);

    private static native float nEventElapsedMs(long start, long end);

    private static native void nEventDestroy(long event);

    private static native String nDeviceName();

    private static native long nCudaMemoryUsed();
}
