package dev.condjl.topk;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.pytorch.jni.JniUtils;

/**
 * The reference's {@code coor_descent}: a soft top-k by dual coordinate ascent on the entropy-regularised problem
 * {@code max Σ sᵢyᵢ + e·H(y)} subject to {@code Σ y = k}, {@code 0 ≤ y ≤ 1} (spec colt5.md §2.2).
 *
 * <p>Per row, with {@code M = -finfo(dtype).max} and the ε schedule {@code e₀ = max(epsInit ?: eps, eps)},
 * {@code e_{t+1} = max(e_t·epsDecay, eps)}:
 *
 * <pre>
 *   logk = ln(max(k, 1e-20));  s := M where masked;  b := -s
 *   repeat iters times:  z = (s + b) / e  (z := M where masked)
 *                        a = e · (logk - logsumexp(z))
 *                        b = -relu(s + a);  e := max(e·epsDecay, eps)
 *   y = exp(((s + a) + b) / e)   (e after the last decay; y := 0 where masked)
 * </pre>
 *
 * <p>The output is {@code min(1, exp((s + a)/e))}: values in [0, 1], saturated entries exactly 1.0, monotone
 * non-decreasing in {@code s}, each row summing to about {@code k} once converged. A row whose entries are all
 * masked returns zeros (its gradient is zero too). A NaN score at a valid position makes every valid output of its
 * row NaN; NaN scores at masked positions are ignored. Other rows are never affected.
 */
public final class CoordinateDescent {

    private static final double LOG_K_CLAMP = 1e-20;

    private CoordinateDescent() {}

    /**
     * Solves the soft top-k with the same {@code k} for every row.
     *
     * @param s (..., n) floating scores
     * @param k the number of entries to select per row, {@code > 0}
     * @param mask null, or a boolean mask broadcastable to {@code s}; true marks valid entries
     * @param options iterations, ε schedule and backend
     * @return (..., n) values in [0, 1] that sum to about {@code k} per row, exactly 0 at masked entries; attached to
     *     {@code s}'s manager
     * @throws IllegalArgumentException if an argument is out of range or a shape or dtype does not fit
     */
    public static NDArray solve(NDArray s, double k, NDArray mask, Options options) {
        checkK(k);
        return solve(s, null, k, mask, options);
    }

    /**
     * Solves the soft top-k with a {@code k} per row.
     *
     * @param s (..., n) floating scores
     * @param k per-row {@code k > 0}, any numeric dtype, shape broadcastable to {@code s.shape[:-1]}; it is cast to
     *     {@code s}'s dtype (no gradient flows into an integer {@code k}); checking {@code k > 0} reads one value
     *     back from the device
     * @param mask null, or a boolean mask broadcastable to {@code s}; true marks valid entries
     * @param options iterations, ε schedule and backend
     * @return (..., n) values in [0, 1], exactly 0 at masked entries; attached to {@code s}'s manager
     * @throws IllegalArgumentException if an argument is out of range or a shape or dtype does not fit
     */
    public static NDArray solve(NDArray s, NDArray k, NDArray mask, Options options) {
        if (k == null) {
            throw new IllegalArgumentException("k must not be null");
        }
        return solve(s, k, Double.NaN, mask, options);
    }

    private static NDArray solve(NDArray s, NDArray kTensor, double kScalar, NDArray mask, Options options) {
        checkArguments(s, mask, options);
        Shape rows = s.getShape().slice(0, s.getShape().dimension() - 1);
        if (kTensor != null && !broadcastsTo(kTensor.getShape(), rows)) {
            throw new IllegalArgumentException(
                    "k shape " + kTensor.getShape() + " is not broadcastable to s.shape[:-1] " + rows);
        }
        return Scoped.compute(() -> {
            NDArray logk;
            NDArray clampedK = null;
            if (kTensor == null) {
                logk = constantLogK(s, kScalar);
            } else {
                if (!kTensor.gt(0).all().getBoolean()) {
                    double min = kTensor.min().toType(DataType.FLOAT64, false).getDouble();
                    throw new IllegalArgumentException("k must be > 0 in every row, got min " + min);
                }
                // clamp keeps its bound natively; maximum(Number) would save a from_blob scalar for backward
                clampedK = kTensor.toType(s.getDataType(), false).expandDims(-1)
                        .clip(LOG_K_CLAMP, Double.POSITIVE_INFINITY);
                logk = clampedK.log();
            }
            NDArray fullMask = mask == null ? null : mask.broadcast(s.getShape());
            return new NDList(dispatch(s, logk, clampedK, fullMask, options));
        }, s, mask, kTensor).head();
    }

    /**
     * The fused backend's parts of {@link #solve(NDArray, double, NDArray, Options)} inside a
     * {@code GradientCollector}: {@code {y, hz}}, with {@code y} the solution without autograd history and {@code hz}
     * its zero-valued gradient path ({@link FusedCoordinateDescent#parts}); null where {@code solve} would take
     * another path (outside a collector, the unrolled backend, or a mask of another shape than {@code s}). Arguments
     * are validated as {@code solve} validates them; temporaries stay in {@code s}'s manager.
     *
     * @param s (..., n) floating scores
     * @param k the number of entries to select per row, {@code > 0}
     * @param mask null, or a boolean mask of {@code s}'s shape
     * @param options iterations, ε schedule and backend
     * @return {y, hz}, each (..., n), or null
     */
    static NDList fusedParts(NDArray s, double k, NDArray mask, Options options) {
        checkK(k);
        checkArguments(s, mask, options);
        if (!usesFused(s, options) || !JniUtils.isGradMode()
                || mask != null && !mask.getShape().equals(s.getShape())) {
            return null;
        }
        return FusedCoordinateDescent.parts(s, constantLogK(s, k), null, mask, options);
    }

    private static void checkK(double k) {
        if (!(k > 0) || Double.isInfinite(k)) {
            throw new IllegalArgumentException("k (" + k + ") must be a finite number > 0");
        }
    }

    /** The checks every solve makes of its scores, mask and options. */
    private static void checkArguments(NDArray s, NDArray mask, Options options) {
        checkScores("s", s);
        if (options == null) {
            throw new IllegalArgumentException("options must not be null");
        }
        checkMask(mask, s.getShape());
    }

    /**
     * {@code ln(max(k, 1e-20))} for a scalar {@code k}: a (1) array in {@code s}'s dtype, built once per value, dtype
     * and device ({@link ConstantCache}); it never needs a gradient.
     */
    private static NDArray constantLogK(NDArray s, double k) {
        float value = (float) k;
        DataType type = s.getDataType();
        return ConstantCache.SHARED.get(s, new LogK(value, type), m -> {
            if (type == DataType.FLOAT32) {
                // float32's clamp(k, 1e-20) done on the host gives the same float, without a no-op cast
                return m.full(new Shape(1), Math.max(value, (float) LOG_K_CLAMP), type, m.getDevice()).log();
            }
            // The reference builds torch.Tensor([k]) (float32) and casts it to s's dtype.
            return m.full(new Shape(1), value, DataType.FLOAT32, m.getDevice()).toType(type, false)
                    .clip(LOG_K_CLAMP, Double.POSITIVE_INFINITY).log();
        });
    }

    private record LogK(float k, DataType type) {}

    /**
     * Runs the backend {@code options} asks for. Inputs are validated; temporaries may be left in {@code s}'s
     * manager (a scope that {@link Scoped} closes).
     *
     * @param s (..., n) scores
     * @param logk (1) or (..., 1) {@code ln(max(k, 1e-20))} in {@code s}'s dtype; may be cached (never a first
     *     operand)
     * @param clampedK null for a scalar {@code k}; else the (1) or (..., 1) {@code max(k, 1e-20)} that {@code logk}
     *     is the log of, through which a gradient reaches {@code k}
     * @param mask null or a boolean (..., n) mask with exactly {@code s}'s shape
     */
    private static NDArray dispatch(NDArray s, NDArray logk, NDArray clampedK, NDArray mask, Options options) {
        return usesFused(s, options)
                ? FusedCoordinateDescent.solve(s, logk, clampedK, mask, options)
                : unrolled(s, logk, mask, options);
    }

    /** Whether {@code options} solve {@code s} with the fused backend: FUSED always, AUTO where it runs. */
    private static boolean usesFused(NDArray s, Options options) {
        return options.getBackend() == Backend.FUSED
                || options.getBackend() == Backend.AUTO && FusedCoordinateDescent.supports(s);
    }

    private static NDArray unrolled(NDArray s, NDArray logk, NDArray mask, Options options) {
        double[] eps = options.epsSchedule();
        NDArray maskValue = null;
        if (mask != null) {
            maskValue = maskValue(s).broadcast(s.getShape());
            s = NDArrays.where(mask, s, maskValue);
        }
        NDArray a = null;
        NDArray b = s.neg();
        for (int i = 0; i < options.getIters(); i++) {
            NDArray z = s.add(b).div(constant(s, eps[i]));
            if (mask != null) {
                z = NDArrays.where(mask, z, maskValue);
            }
            // (lse − logk)·(−e), exactly (logk − lse)·e: a result joins its first operand's manager, and logk may be
            // a cached constant
            a = logSumExp(z).sub(logk).mul(constant(s, -eps[i]));
            b = Activation.relu(s.add(a)).neg();
        }
        NDArray y = s.add(a).add(b).div(constant(s, eps[options.getIters()])).exp();
        return mask == null ? y : NDArrays.where(mask, y, y.zerosLike());
    }

    /**
     * A 0-dim constant in {@code s}'s manager and dtype, made natively. {@code div(Number)}/{@code mul(Number)} wrap
     * the number in a {@code from_blob} tensor over a Java buffer that DJL frees right after the op while autograd
     * keeps the tensor for backward: after a GC the gradient reads freed memory.
     */
    private static NDArray constant(NDArray s, double value) {
        NDManager manager = s.getManager();
        // a product of native tensors owns its storage; float64 keeps the full double value
        return s.getDataType() == DataType.FLOAT64
                ? manager.ones(new Shape(), DataType.FLOAT64).mul(value)
                : manager.full(new Shape(), (float) value, s.getDataType(), s.getDevice());
    }

    /**
     * {@code torch.logsumexp(z, -1, keepdim=True)}: the max is subtracted without gradient and replaced by 0 where
     * it is infinite, so the gradient is exactly {@code softmax(z)}.
     */
    private static NDArray logSumExp(NDArray z) {
        NDArray max = z.max(new int[] {-1}, true).stopGradient();
        max = NDArrays.where(max.isInfinite(), max.zerosLike(), max);
        return z.sub(max).exp().sum(new int[] {-1}, true).log().add(max);
    }

    /** A 0-dim {@code -finfo(dtype).max} in {@code s}'s dtype and manager. */
    private static NDArray maskValue(NDArray s) {
        NDManager manager = s.getManager();
        DataType type = s.getDataType();
        if (type == DataType.FLOAT64) {
            return manager.create(-Double.MAX_VALUE);
        }
        float value = type == DataType.FLOAT16 ? -65504f : -Float.MAX_VALUE;
        return manager.full(new Shape(), value, type, s.getDevice());
    }

    /** Rejects null, 0-dim, empty-row, non-floating and bfloat16 scores named {@code name}. */
    static void checkScores(String name, NDArray s) {
        if (s == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        DataType type = s.getDataType();
        if (!type.isFloating() || type == DataType.BFLOAT16) {
            throw new IllegalArgumentException(
                    name + " must be float16, float32 or float64, got " + type + " with shape " + s.getShape());
        }
        if (s.getShape().dimension() == 0 || s.getShape().tail() == 0) {
            throw new IllegalArgumentException(name + " must have shape (..., n) with n >= 1, got " + s.getShape());
        }
    }

    /** Rejects a non-boolean mask or one that does not broadcast to {@code shape}; null passes. */
    static void checkMask(NDArray mask, Shape shape) {
        if (mask == null) {
            return;
        }
        if (mask.getDataType() != DataType.BOOLEAN) {
            throw new IllegalArgumentException("mask must be boolean, got " + mask.getDataType());
        }
        if (!broadcastsTo(mask.getShape(), shape)) {
            throw new IllegalArgumentException(
                    "mask shape " + mask.getShape() + " is not broadcastable to scores shape " + shape);
        }
    }

    /** Whether {@code from} broadcasts to exactly {@code to} (numpy rules, aligned on the right). */
    static boolean broadcastsTo(Shape from, Shape to) {
        int offset = to.dimension() - from.dimension();
        if (offset < 0) {
            return false;
        }
        for (int i = 0; i < from.dimension(); i++) {
            long size = from.get(i);
            if (size != 1 && size != to.get(offset + i)) {
                return false;
            }
        }
        return true;
    }

    /** Iterations, ε schedule and backend of {@link CoordinateDescent#solve}. Immutable. */
    public static final class Options {

        private final int iters;
        private final double eps;
        private final Double epsInit;
        private final double epsDecay;
        private final Backend backend;

        private Options(Builder builder) {
            iters = builder.iters;
            eps = builder.eps;
            epsInit = builder.epsInit;
            epsDecay = builder.epsDecay;
            backend = builder.backend;
        }

        /**
         * Creates a builder; {@link Builder#setIters} is required.
         *
         * @return a new builder
         */
        public static Builder builder() {
            return new Builder();
        }

        /**
         * Returns the number of coordinate-descent iterations ({@code n_iters}).
         *
         * @return at least 1
         */
        public int getIters() {
            return iters;
        }

        /**
         * Returns the final (and smallest) ε ({@code eps}).
         *
         * @return {@code > 0}
         */
        public double getEps() {
            return eps;
        }

        /**
         * Returns the first iteration's ε before the floor ({@code eps_init}).
         *
         * @return null when the schedule starts at {@link #getEps()}
         */
        public Double getEpsInit() {
            return epsInit;
        }

        /**
         * Returns the factor applied to ε after each iteration ({@code eps_decay}).
         *
         * @return {@code > 0}
         */
        public double getEpsDecay() {
            return epsDecay;
        }

        /**
         * Returns the backend.
         *
         * @return the backend
         */
        public Backend getBackend() {
            return backend;
        }

        /**
         * Returns the ε of each iteration followed by the ε of the output exponent, computed in double as the
         * reference does: {@code e₀ = max(epsInit ?: eps, eps)}, {@code e_{t+1} = max(e_t·epsDecay, eps)}.
         *
         * @return {@code iters + 1} values; element {@code iters} divides the final exponent
         */
        public double[] epsSchedule() {
            double[] schedule = new double[iters + 1];
            schedule[0] = Math.max(epsInit == null ? eps : epsInit, eps);
            for (int i = 1; i <= iters; i++) {
                schedule[i] = Math.max(schedule[i - 1] * epsDecay, eps);
            }
            return schedule;
        }

        /** Builds {@link Options}. */
        public static final class Builder {

            private int iters;
            private double eps = 0.1;
            private Double epsInit;
            private double epsDecay = 1.0;
            private Backend backend = Backend.UNROLLED;

            private Builder() {}

            /**
             * Sets the number of iterations ({@code n_iters}); required.
             *
             * @param iters at least 1
             * @return this builder
             */
            public Builder setIters(int iters) {
                this.iters = iters;
                return this;
            }

            /**
             * Sets the final ε ({@code eps}); default 0.1.
             *
             * @param eps {@code > 0}
             * @return this builder
             */
            public Builder optEps(double eps) {
                this.eps = eps;
                return this;
            }

            /**
             * Sets the initial ε ({@code eps_init}); default null (start at {@code eps}).
             *
             * @param epsInit null or {@code > 0}
             * @return this builder
             */
            public Builder optEpsInit(Double epsInit) {
                this.epsInit = epsInit;
                return this;
            }

            /**
             * Sets the per-iteration ε factor ({@code eps_decay}); default 1.0.
             *
             * @param epsDecay {@code > 0}
             * @return this builder
             */
            public Builder optEpsDecay(double epsDecay) {
                this.epsDecay = epsDecay;
                return this;
            }

            /**
             * Sets the backend; default {@link Backend#UNROLLED}, the reference's exact gradient; the CoLT5 router asks
             * for {@link Backend#AUTO}.
             *
             * @param backend the backend
             * @return this builder
             */
            public Builder optBackend(Backend backend) {
                this.backend = backend;
                return this;
            }

            /**
             * Validates and builds.
             *
             * @return the options
             * @throws IllegalArgumentException if iters &lt; 1, eps, epsInit or epsDecay is not a finite number
             *     &gt; 0, or backend is null
             */
            public Options build() {
                if (iters < 1) {
                    throw new IllegalArgumentException("iters (" + iters + ") must be >= 1");
                }
                requirePositive("eps", eps);
                if (epsInit != null) {
                    requirePositive("epsInit", epsInit);
                }
                requirePositive("epsDecay", epsDecay);
                if (backend == null) {
                    throw new IllegalArgumentException("backend must not be null");
                }
                return new Options(this);
            }

            private static void requirePositive(String name, double value) {
                if (!(value > 0) || Double.isInfinite(value)) {
                    throw new IllegalArgumentException(name + " (" + value + ") must be a finite number > 0");
                }
            }
        }
    }
}
