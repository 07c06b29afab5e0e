package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

import java.util.List;

/**
 * The optimizer's element-wise work in single native calls of libcondjl_ops (CUDA kernels, with a C++ CPU twin that
 * returns the same bits): one Adam/AdamW step of a parameter, and the sum of squares and the scaling of a whole list
 * of gradients. DJL issues about a dozen libtorch ops per parameter for an Adam step and three per parameter for a
 * global-norm clip; on a GPU each costs some 10 µs of host time, which a small model's step is made of.
 *
 * <p>Every entry point takes float32 PyTorch-engine arrays of one device that {@link CondjlOps#supports} and
 * validates shapes, dtypes, devices and (for what it writes) contiguity natively before touching memory: bad input
 * is an {@link IllegalArgumentException} naming the array. Work runs on libtorch's current CUDA stream, so it is
 * ordered with DJL's own ops.
 */
public final class OptimizerOps {

    private OptimizerOps() {}

    /**
     * The scalars of one Adam step (DJL's {@code adamUpdate} arguments).
     *
     * @param learningRate the learning rate {@code lr}, used by the decoupled weight decay
     * @param biasCorrectedRate {@code lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)}
     * @param weightDecay the weight decay {@code wd}
     * @param rescaleGrad the gradient's factor (1: none)
     * @param clipGrad the gradient's upper clamp; negative: none
     * @param beta1 the first moment's decay β₁
     * @param beta2 the second moment's decay β₂
     * @param epsilon added to {@code √v}
     * @param decoupled AdamW ({@code w -= (w·lr)·wd}) rather than Adam ({@code g += wd·w})
     */
    public record AdamStep(float learningRate, float biasCorrectedRate, float weightDecay, float rescaleGrad,
            float clipGrad, float beta1, float beta2, float epsilon, boolean decoupled) {}

    /**
     * Whether the native entry points take these arrays: the library loaded, and all are float32 PyTorch-engine
     * arrays on one device whose kernels can run ({@link CondjlOps#supports}).
     *
     * @param arrays the arrays of one call
     * @return true when a call with them can run natively (it still checks shapes and contiguity)
     */
    public static boolean supports(List<NDArray> arrays) {
        if (arrays.isEmpty() || !CondjlOps.isAvailable()) {
            return false;
        }
        Device device = arrays.get(0).getDevice();
        for (NDArray a : arrays) {
            if (!(a instanceof PtNDArray) || a.getDataType() != DataType.FLOAT32 || !device.equals(a.getDevice())) {
                return false;
            }
        }
        return CondjlOps.supports(device);
    }

    /**
     * One Adam or AdamW step in place, in DJL's order of float32 operations:
     *
     * <pre>
     *   g = grad · rescaleGrad (if ≠ 1);  g = min(g, clipGrad) (if clipGrad ≥ 0)
     *   AdamW: w −= (w·lr)·wd        Adam: g += wd·w
     *   m = m·β₁ + (1 − β₁)·g;  v = v·β₂ + (1 − β₂)·g·g;  w −= (m·biasCorrectedRate) / (√v + ε)
     * </pre>
     *
     * The two moment updates are fused multiply-adds ({@code fma(1 − β, g, m·β)}, {@code fma(1 − β₂, g·g, v·β₂)}) and
     * Adam's decay {@code fma(wd, w, g)}, as libtorch's CUDA {@code add_} with alpha and {@code addcmul_} compute them;
     * every other operation rounds on its own. On a GPU that is DJL's update bit for bit; on the CPU, where
     * libtorch's kernels round some of these ops differently, it agrees to float32 rounding.
     *
     * @param weight the parameter, updated in place; contiguous
     * @param grad its gradient, same shape
     * @param mean the first moment, same shape, updated in place; contiguous
     * @param variance the second moment, same shape, updated in place; contiguous
     * @param step the scalars
     * @throws IllegalArgumentException on a dtype, shape, device or contiguity that does not fit
     */
    public static void adamUpdate(NDArray weight, NDArray grad, NDArray mean, NDArray variance, AdamStep step) {
        nAdamUpdate(handle(weight, "weight"), handle(grad, "grad"), handle(mean, "mean"), handle(variance, "variance"),
                step.learningRate(), step.biasCorrectedRate(), step.weightDecay(), step.rescaleGrad(),
                step.clipGrad(), step.beta1(), step.beta2(), step.epsilon(), step.decoupled(),
                JniUtils.getNumThreads());
    }

    /**
     * {@link #adamUpdate} for several parameters in one native call, each at its own {@link AdamStep}, optionally
     * zeroing every gradient once it is read (what DJL's optimizers do to a parameter's gradient after its update).
     * Every parameter is checked before any is written.
     *
     * @param weights the parameters, updated in place; contiguous; all on one device
     * @param grads their gradients, same shapes; contiguous and the gradient's own memory when {@code zeroGrads}
     * @param means the first moments, updated in place
     * @param variances the second moments, updated in place
     * @param steps one per parameter: the learning rates may differ, the other scalars must be equal
     * @param zeroGrads whether each gradient is set to 0 after its step
     * @throws IllegalArgumentException on lists of different lengths, an empty list, steps whose shared scalars
     *     differ, or a dtype, shape, device or contiguity that does not fit (naming the parameter's index)
     */
    public static void adamUpdateAll(List<NDArray> weights, List<NDArray> grads, List<NDArray> means,
            List<NDArray> variances, List<AdamStep> steps, boolean zeroGrads) {
        int n = weights.size();
        if (grads.size() != n || means.size() != n || variances.size() != n || steps.size() != n) {
            throw new IllegalArgumentException("one gradient, mean, variance and step per weight (" + n + "), got "
                    + grads.size() + ", " + means.size() + ", " + variances.size() + " and " + steps.size());
        }
        if (n == 0) {
            throw new IllegalArgumentException("the parameter list must not be empty");
        }
        AdamStep shared = steps.get(0);
        float[] lrs = new float[n];
        float[] biasCorrected = new float[n];
        for (int i = 0; i < n; i++) {
            AdamStep step = steps.get(i);
            if (!sameSharedScalars(shared, step)) {
                throw new IllegalArgumentException("step " + i + " " + step + " differs from step 0 " + shared
                        + " in more than its learning rates");
            }
            lrs[i] = step.learningRate();
            biasCorrected[i] = step.biasCorrectedRate();
        }
        nAdamUpdateAll(handles(weights, "weight"), handles(grads, "grad"), handles(means, "mean"),
                handles(variances, "variance"), lrs, biasCorrected, shared.weightDecay(), shared.rescaleGrad(),
                shared.clipGrad(), shared.beta1(), shared.beta2(), shared.epsilon(), shared.decoupled(), zeroGrads,
                JniUtils.getNumThreads());
    }

    private static boolean sameSharedScalars(AdamStep a, AdamStep b) {
        return Float.compare(a.weightDecay(), b.weightDecay()) == 0
                && Float.compare(a.rescaleGrad(), b.rescaleGrad()) == 0
                && Float.compare(a.clipGrad(), b.clipGrad()) == 0 && Float.compare(a.beta1(), b.beta1()) == 0
                && Float.compare(a.beta2(), b.beta2()) == 0 && Float.compare(a.epsilon(), b.epsilon()) == 0
                && a.decoupled() == b.decoupled();
    }

    /**
     * {@code Σ_arrays Σ x²}, accumulated in float64, without a host synchronisation (read the result when needed).
     * On a GPU the sum is deterministic: the same inputs give the same bits every run.
     *
     * @param arrays float32 arrays of one device, at least one
     * @return a 0-dim float64 array on their device, in the first array's manager
     * @throws IllegalArgumentException on an empty list or a dtype or device that does not fit
     */
    public static NDArray sumOfSquares(List<NDArray> arrays) {
        long[] handles = handles(arrays);
        return new PtNDArray(CondjlOps.pytorch(arrays.get(0), "array 0 of the list").getManager(),
                nSumOfSquares(handles));
    }

    /**
     * {@code x *= factor} in float32 for every element of every array, as {@code muli} by a float32 scalar does.
     *
     * @param arrays contiguous float32 arrays of one device, at least one
     * @param factor the factor
     * @throws IllegalArgumentException on an empty list, or a dtype, device or contiguity that does not fit
     */
    public static void scaleInPlace(List<NDArray> arrays, float factor) {
        nScaleInPlace(handles(arrays), factor, JniUtils.getNumThreads());
    }

    private static long[] handles(List<NDArray> arrays) {
        if (arrays.isEmpty()) {
            throw new IllegalArgumentException("the array list must not be empty");
        }
        return handles(arrays, "array");
    }

    private static long[] handles(List<NDArray> arrays, String what) {
        long[] handles = new long[arrays.size()];
        for (int i = 0; i < handles.length; i++) {
            handles[i] = handle(arrays.get(i), what + " " + i + " of the list");
        }
        return handles;
    }

    private static long handle(NDArray array, String name) {
        CondjlOps.ensureAvailable();
        return CondjlOps.pytorch(array, name).getHandle();
    }

    private static native void nAdamUpdate(long weight, long grad, long mean, long variance, float lr,
            float biasCorrectedRate, float weightDecay, float rescaleGrad, float clipGrad, float beta1, float beta2,
            float eps, boolean adamw, int cpuThreads);

    private static native void nAdamUpdateAll(long[] weights, long[] grads, long[] means, long[] variances,
            float[] learningRates, float[] biasCorrectedRates, float weightDecay, float rescaleGrad, float clipGrad,
            float beta1, float beta2, float eps, boolean adamw, boolean zeroGrads, int cpuThreads);

    private static native long nSumOfSquares(long[] handles);

    private static native void nScaleInPlace(long[] handles, float factor, int cpuThreads);
}
