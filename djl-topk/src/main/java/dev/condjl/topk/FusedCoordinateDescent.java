package dev.condjl.topk;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

import dev.condjl.cuda.CondjlOps;
import dev.condjl.cuda.EpsSchedule;

/**
 * {@link Backend#FUSED}: coordinate descent in one native call ({@link CondjlOps}: all iterations fused, CPU threads
 * or one CUDA launch), differentiable through a surrogate whose gradient is the implicit-function gradient of the
 * converged solution.
 *
 * <p>The native forward returns {@code y} without autograd history and, inside a {@code GradientCollector}, the
 * weights {@code q = w/ε} ({@code w = y} where {@code y < 1}, else 0; {@code ε} the final ε) and their shares
 * {@code p = q/Σq} per row, computed in the same kernel. With {@code h = q·s − p·(Σ q·s − k)} (q and p constant;
 * equal to {@code q·(s − (Σ s·q − k)/Σq)}, but finite when Σq is subnormal; without the {@code k} term when {@code k}
 * is a scalar, which takes no gradient)
 * the result is {@code y + (h − stopGradient(h))}: numerically {@code y}, with gradients
 * {@code ds = (w/ε)·(g − Σ(g·w)/Σw)} and {@code dk = Σ(g·w)/Σw} per row (0 where {@code Σw = 0}). Those are the
 * exact gradients of the map {@code (s, k) ↦ y} once the iteration has converged ({@code y = min(1, exp((s + a)/ε))}
 * with {@code Σy = k}); they cost O(n) per row and keep no iterations.
 *
 * <p>It differs from {@link Backend#UNROLLED}'s gradient (autograd through every iteration) because the iteration is
 * not converged after the router's 20 or 50 iterations (ε 4 → 0.03, decay 0.7), and how far from converged it is
 * depends on the scores. Measured on normal scores and upstream gradients (float32, 4×2048, k = 256, test
 * {@code measuresTheGradientGapToUnrolled}), cosine of fused vs unrolled gradient of {@code Σ g·y}: 0.982–0.986 at
 * 20 iterations (two draws) and 0.984–0.9993 at 50 (three draws; max |diff| 1.4–10 against a largest entry of
 * 53–78); at 400 iterations 1.0000 (max |diff| 1.4e-4). At convergence (ε = 0.5, 300 iterations) both
 * gradients, of s and of k, agree to cosine {@literal >} 0.9999. The forward equals the unrolled
 * one within 1e-5 on unit-scale scores (both round {@code a} to float32 after differently ordered sums; one ulp of
 * {@code a} moves the output by {@code ulp(a)/ε}).
 *
 * <p>Tiny scores are exact as in the reference: the output exp underflows through the subnormals to 0 like
 * {@code torch.exp} (no clamp, no flush to zero), so tokens that carry almost no weight keep their order and a top-k
 * cut among them picks the tokens {@link Backend#UNROLLED} picks. For the same argument {@code (s + a + b)/e} the CPU
 * kernel returns the correctly rounded exp (the engine's CPU exp is within 1 ulp of it, and equal in the subnormal
 * range) and a GPU returns what torch.exp returns there (the same CUDA {@code expf}, built without fast math or
 * flush-to-zero). Where the backends' {@code a} differ by ulps, every unsaturated score of the row, tiny or not,
 * moves by the same relative factor {@code exp(Δa/e)}.
 *
 * <p>Runs where {@link #supports(NDArray)}: PyTorch-engine float32 or float16 scores (computed in float32) on a device
 * that {@link CondjlOps#supports} (the CPU whenever the library loaded; a GPU when its CUDA kernels can run).
 */
final class FusedCoordinateDescent {

    private FusedCoordinateDescent() {}

    /**
     * Whether the fused backend can solve for {@code s}.
     *
     * @param s (..., n) scores
     * @return true for PyTorch float32/float16 arrays on a supported device
     */
    static boolean supports(NDArray s) {
        return unsupportedReason(s) == null;
    }

    private static String unsupportedReason(NDArray s) {
        if (!(s instanceof PtNDArray)) {
            return "it needs the PyTorch engine, got " + s.getClass().getSimpleName();
        }
        DataType type = s.getDataType();
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            return "it computes float32 or float16 scores, got " + type;
        }
        if (!CondjlOps.isAvailable()) {
            return "libcondjl_ops is unavailable: " + CondjlOps.unavailableReason();
        }
        if (!CondjlOps.supports(s.getDevice())) {
            return "its kernels cannot run on " + s.getDevice() + ": " + CondjlOps.cudaUnavailableReason();
        }
        return null;
    }

    /**
     * Fused coordinate descent with the implicit gradient (see the class comment). Arguments are validated by
     * {@link CoordinateDescent}.
     *
     * @param s (..., n) scores
     * @param logk (1) or (..., 1) {@code ln(max(k, 1e−20))}, broadcastable to {@code s.shape[:-1] + (1)}
     * @param clampedK null when {@code k} is a constant (no gradient); else the {@code max(k, 1e−20)} whose log
     *     {@code logk} is, which receives {@code dk}
     * @param mask null or a boolean mask of {@code s}'s shape, true = valid
     * @param options iterations and ε schedule
     * @return (..., n) values in [0, 1], 0 at masked entries
     * @throws IllegalArgumentException if the fused backend cannot run for {@code s}
     */
    static NDArray solve(NDArray s, NDArray logk, NDArray clampedK, NDArray mask, CoordinateDescent.Options options) {
        NDList parts = parts(s, logk, clampedK, mask, options);
        return parts.size() == 1 ? parts.head() : parts.get(0).add(parts.get(1));
    }

    /**
     * {@link #solve} in its two parts: {@code {y}} outside a {@code GradientCollector}; inside one {@code {y, hz}}
     * with {@code hz = h − stopGradient(h)} (see the class comment), exactly 0 in value wherever {@code h} is finite,
     * so that {@code y + hz} is the solution with its gradient, and {@code c + hz.gather(i)} gives any value
     * {@code c} the gradient of the selected entries {@code i}.
     *
     * @param s (..., n) scores
     * @param logk as for {@link #solve}
     * @param clampedK as for {@link #solve}
     * @param mask as for {@link #solve}
     * @param options iterations and ε schedule
     * @return {y} or {y, hz}, each (..., n)
     * @throws IllegalArgumentException if the fused backend cannot run for {@code s}
     */
    static NDList parts(NDArray s, NDArray logk, NDArray clampedK, NDArray mask, CoordinateDescent.Options options) {
        String reason = unsupportedReason(s);
        if (reason != null) {
            throw new IllegalArgumentException("Backend.FUSED cannot solve for s " + s.getShape() + ": " + reason);
        }
        double epsInit = options.getEpsInit() == null ? options.getEps() : options.getEpsInit();
        EpsSchedule schedule =
                new EpsSchedule(options.getIters(), options.getEps(), epsInit, options.getEpsDecay());
        Shape rowShape = s.getShape().slice(0, s.getShape().dimension() - 1).add(1);
        NDArray perRow = logk.size() == 1 || logk.getShape().equals(rowShape) ? logk : logk.broadcast(rowShape);
        if (!JniUtils.isGradMode()) {
            return new NDList(CondjlOps.coorDescentLogK(s, perRow, mask, schedule));
        }
        // Inside a GradientCollector. PtNDArray.hasGradient() is false for non-leaf arrays, so whether s needs a
        // gradient cannot be told: the surrogate is always built.
        // p = q/Σq comes from the kernel, floored at the smallest positive Σq (not k/Σq: with tiny scores Σq can be
        // subnormal and k/Σq would overflow to inf, then inf − inf); q >= 0 and never NaN (0 where y is NaN)
        NDList yqp = CondjlOps.coorDescentWithWeights(s, perRow, mask, schedule);
        NDArray y = yqp.get(0);
        NDArray q = yqp.get(1);
        NDArray p = yqp.get(2);
        DataType type = s.getDataType();
        // Masked scores may be anything (even NaN); they carry no weight, so drop them before multiplying.
        NDArray valid = mask == null ? s : NDArrays.where(mask, s, ConstantCache.SHARED.scalar(s, 0, type));
        // h = q·s − p·(Σ q·s − k): ds = q·(g − Σ g·p) = q·(g − Σ g·q/Σq), dk = Σ g·p.
        NDArray qs = valid.mul(q);
        NDArray total = qs.sum(new int[] {-1}, true);
        NDArray h = qs.sub(p.mul(clampedK == null ? total : total.sub(clampedK)));
        return new NDList(y, h.sub(h.stopGradient()));
    }
}
