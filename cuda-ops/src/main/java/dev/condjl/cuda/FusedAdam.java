package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.ParameterTracker;
import ai.djl.training.tracker.Tracker;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * DJL's {@code Adam} and {@code AdamW} with each parameter's step in one native call
 * ({@link OptimizerOps#adamUpdate}) instead of about a dozen libtorch ops: the same options, defaults, state and
 * update (bit for bit on a GPU, to float32 rounding on the CPU), usable wherever DJL takes an {@link Optimizer}
 * ({@code DefaultTrainingConfig.optOptimizer}).
 *
 * <p>Per parameter {@code p} at its update count {@code t}: {@code lr = tracker(p, t)},
 * {@code biasCorrectedRate = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)}, then the step of {@link OptimizerOps#adamUpdate}. Where the
 * native call cannot run (library not loaded, a GPU its kernels cannot use, a dtype other than float32, a
 * non-contiguous array) the step is DJL's own {@code adamUpdate}, after one warning. Each update zeroes the
 * parameter's gradient, as DJL's optimizers do.
 *
 * <p>{@link #step(ParameterList)} updates all parameters of a one-device model at once, from their own gradients:
 * a training loop calls it instead of {@code trainer.step()} to save DJL's parameter server's copy of every gradient
 * and a native call per parameter.
 */
public final class FusedAdam extends Optimizer {

    private static final Logger LOG = LogManager.getLogger(FusedAdam.class);

    private final ParameterTracker learningRateTracker;
    private final float beta1;
    private final float beta2;
    private final float epsilon;
    private final boolean decoupled;
    private final Map<String, Map<Device, NDArray>> means = new ConcurrentHashMap<>();
    private final Map<String, Map<Device, NDArray>> variances = new ConcurrentHashMap<>();
    private final AtomicBoolean warned = new AtomicBoolean();

    private FusedAdam(Builder builder) {
        super(builder);
        learningRateTracker = builder.learningRateTracker;
        beta1 = builder.beta1;
        beta2 = builder.beta2;
        epsilon = builder.epsilon;
        decoupled = builder.decoupled;
    }

    /**
     * A builder of Adam (weight decay added to the gradient) with DJL's {@code Adam} defaults: learning rate 0.001,
     * β₁ 0.9, β₂ 0.999, ε 1e-8, weight decay 0.
     *
     * @return the builder
     */
    public static Builder adamBuilder() {
        return new Builder(false);
    }

    /**
     * A builder of AdamW (decoupled weight decay) with DJL's {@code AdamW} defaults: learning rate 0.001, β₁ 0.9,
     * β₂ 0.999, ε 1e-8, weight decay 0.01.
     *
     * @return the builder
     */
    public static Builder adamWBuilder() {
        return new Builder(true).optWeightDecays(0.01f);
    }

    /**
     * {@inheritDoc}
     *
     * <p>As DJL's {@code Adam} does, the weight's own gradient is zeroed afterwards (here {@code grad} is usually a
     * copy of it, DJL's parameter server's); without that, gradients would add up over the steps.
     */
    @Override
    public void update(String parameterId, NDArray weight, NDArray grad) {
        OptimizerOps.AdamStep step = nextStep(parameterId);
        NDArray mean = mean(parameterId, weight);
        NDArray variance = variance(parameterId, weight);
        List<NDArray> arrays = List.of(weight, grad, mean, variance);
        if (OptimizerOps.supports(arrays)) {
            try {
                OptimizerOps.adamUpdate(weight, grad, mean, variance, step);
                JniUtils.zeroGrad((PtNDArray) weight);
                return;
            } catch (IllegalArgumentException e) {
                warnOnce(parameterId + ": " + e.getMessage());
            }
        } else {
            warnOnce(parameterId + " is " + weight.getDataType() + " on " + weight.getDevice() + " (native: "
                    + nativeState() + ")");
        }
        djlUpdate(weight, grad, mean, variance, step);
    }

    /**
     * One step of every parameter that takes a gradient, from its own gradient, which is then zeroed: what
     * {@code trainer.step()} does with DJL's parameter server on one device, in one native call for all parameters
     * and without the server's copy of each gradient. A parameter whose gradient was never computed steps with a zero
     * gradient, as it does there. Parameters and their gradients must be on one device, the arrays that
     * {@link Parameter#getArray()} returns: with several devices (copies kept by a parameter store) use
     * {@code trainer.step()}. Where the native step cannot run it is {@link #update}'s fallback, parameter by
     * parameter.
     *
     * @param parameters the parameters, e.g. {@code block.getParameters()}
     */
    public void step(ParameterList parameters) {
        List<NDArray> weights = new ArrayList<>();
        List<NDArray> grads = new ArrayList<>();
        List<NDArray> means = new ArrayList<>();
        List<NDArray> variances = new ArrayList<>();
        List<OptimizerOps.AdamStep> steps = new ArrayList<>();
        try {
            for (Parameter parameter : parameters.values()) {
                NDArray weight = parameter.getArray();
                if (!parameter.requiresGradient() || !weight.hasGradient()) {
                    continue;
                }
                weights.add(weight);
                grads.add(weight.getGradient());
                means.add(mean(parameter.getId(), weight));
                variances.add(variance(parameter.getId(), weight));
                steps.add(nextStep(parameter.getId()));
            }
            if (weights.isEmpty()) {
                return;
            }
            List<NDArray> all = new ArrayList<>(weights);
            all.addAll(grads);
            if (OptimizerOps.supports(all)) {
                try {
                    OptimizerOps.adamUpdateAll(weights, grads, means, variances, steps, true);
                    return;
                } catch (IllegalArgumentException e) {
                    // checked before anything was written
                    warnOnce(e.getMessage());
                }
            } else {
                warnOnce("a parameter list on " + weights.get(0).getDevice() + " (native: " + nativeState() + ")");
            }
            for (int i = 0; i < weights.size(); i++) {
                djlUpdate(weights.get(i), grads.get(i), means.get(i), variances.get(i), steps.get(i));
            }
        } finally {
            // the gradient arrays are views of the parameters' gradients: closing them frees only the views
            grads.forEach(NDArray::close);
        }
    }

    /** Counts an update of the parameter and returns its scalars. */
    private OptimizerOps.AdamStep nextStep(String parameterId) {
        int t = updateCount(parameterId);
        double coef1 = 1.0 - Math.pow(beta1, t);
        double coef2 = 1.0 - Math.pow(beta2, t);
        float lr = learningRateTracker.getNewValue(parameterId, t);
        float biasCorrectedRate = (float) (lr * Math.sqrt(coef2) / coef1);
        float weightDecay = getWeightDecay();
        float checked = decoupled ? lr : biasCorrectedRate;
        if (!Float.isFinite(checked) || !Float.isFinite(weightDecay)) {
            throw new IllegalArgumentException("learning rate or weight decay is nan or infinite (parameter "
                    + parameterId + ", update " + t + ": lr " + checked + ", weight decay " + weightDecay + ")");
        }
        return new OptimizerOps.AdamStep(lr, biasCorrectedRate, weightDecay, rescaleGrad, clipGrad, beta1, beta2,
                epsilon, decoupled);
    }

    private NDArray mean(String parameterId, NDArray weight) {
        return withDefaultState(means, parameterId, weight.getDevice(), k -> weight.zerosLike());
    }

    private NDArray variance(String parameterId, NDArray weight) {
        return withDefaultState(variances, parameterId, weight.getDevice(), k -> weight.zerosLike());
    }

    /** DJL's own step, which also zeroes the weight's gradient. */
    private static void djlUpdate(NDArray weight, NDArray grad, NDArray mean, NDArray variance,
            OptimizerOps.AdamStep p) {
        weight.getNDArrayInternal().adamUpdate(new NDList(weight, grad, mean, variance), new NDList(weight),
                p.learningRate(), p.biasCorrectedRate(), p.weightDecay(), p.rescaleGrad(), p.clipGrad(), p.beta1(),
                p.beta2(), p.epsilon(), true, p.decoupled());
    }

    private static String nativeState() {
        return CondjlOps.isAvailable() ? CondjlOps.cudaUnavailableReason() : CondjlOps.unavailableReason();
    }

    private void warnOnce(String why) {
        if (warned.compareAndSet(false, true)) {
            LOG.warn("FusedAdam uses DJL's adamUpdate where its native step cannot run, first for {}", why);
        }
    }

    /** The builder of {@link FusedAdam}: DJL's {@code Adam}/{@code AdamW} options. */
    public static final class Builder extends OptimizerBuilder<Builder> {

        private ParameterTracker learningRateTracker = Tracker.fixed(0.001f);
        private float beta1 = 0.9f;
        private float beta2 = 0.999f;
        private float epsilon = 1e-8f;
        private final boolean decoupled;

        private Builder(boolean decoupled) {
            this.decoupled = decoupled;
        }

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the learning rate's tracker.
         *
         * @param learningRateTracker the tracker
         * @return this builder
         */
        public Builder optLearningRateTracker(ParameterTracker learningRateTracker) {
            this.learningRateTracker = learningRateTracker;
            return this;
        }

        /**
         * Sets β₁, the first moment's decay.
         *
         * @param beta1 the decay
         * @return this builder
         */
        public Builder optBeta1(float beta1) {
            this.beta1 = beta1;
            return this;
        }

        /**
         * Sets β₂, the second moment's decay.
         *
         * @param beta2 the decay
         * @return this builder
         */
        public Builder optBeta2(float beta2) {
            this.beta2 = beta2;
            return this;
        }

        /**
         * Sets ε, added to {@code √v}.
         *
         * @param epsilon the value
         * @return this builder
         */
        public Builder optEpsilon(float epsilon) {
            this.epsilon = epsilon;
            return this;
        }

        /**
         * Builds the optimizer.
         *
         * @return the optimizer
         */
        public FusedAdam build() {
            return new FusedAdam(this);
        }
    }
}
