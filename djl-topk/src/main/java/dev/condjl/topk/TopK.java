package dev.condjl.topk;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import dev.condjl.cuda.CondjlOps;

/**
 * The reference's {@code topk}: a hard top-k whose values carry the gradient of the coordinate-descent soft top-k
 * (spec colt5.md §1.3, §2.11).
 *
 * <pre>
 *   c      = coorDescent(x, k = min(k·coorDescentKRatio, n), mask)
 *   gates  = c + stopGradient(1 − c)          (exactly 1.0 in value)
 *   values, indices = topk(x · gates, k)      (the hard top-k of x in value)
 *   coorDescentValues = c[indices];  gates = gates[indices]
 * </pre>
 *
 * The mask only enters {@code c}: masked entries of {@code x} can still be selected by the hard top-k.
 */
public final class TopK {

    /** Rows longer than this cannot be ranked by {@link TieBreak#BY_INPUT} without overflowing its int64 keys. */
    private static final long MAX_TIE_BREAK_ROW = 1L << 20;

    private TopK() {}

    /**
     * Selects the {@code k} largest entries of each row with straight-through coordinate-descent gates.
     *
     * @param x (..., n) floating scores
     * @param k entries per row, {@code 1 <= k <= n}
     * @param mask null, or a boolean mask broadcastable to {@code x}; true marks valid entries (soft top-k only)
     * @param options ratio, coordinate-descent schedule, mode and tie break
     * @return (..., k) values, indices, coordinate-descent values and gates, attached to {@code x}'s manager
     * @throws IllegalArgumentException if an argument is out of range or a shape or dtype does not fit
     */
    public static TopKResult topk(NDArray x, int k, NDArray mask, Options options) {
        CoordinateDescent.checkScores("x", x);
        checkK(k, x.getShape());
        CoordinateDescent.checkMask(mask, x.getShape());
        if (options == null) {
            throw new IllegalArgumentException("options must not be null");
        }
        if (options.nonDifferentiable) {
            NDList selected = select(x, x, k, options.tieBreak);
            return new TopKResult(selected.get(0), selected.get(1), null, null);
        }
        NDList result = Scoped.compute(() -> {
            double coorDescentK = Math.min(k * options.coorDescentKRatio, x.getShape().tail());
            NDArray c = CoordinateDescent.solve(x, coorDescentK, mask, options.coorDescent);
            NDArray gates = c.add(c.onesLike().sub(c).stopGradient());
            NDList selected = select(x.mul(gates), x, k, options.tieBreak);
            NDArray indices = selected.get(1);
            return new NDList(selected.get(0), indices, c.gather(indices, -1), gates.gather(indices, -1));
        }, x, mask);
        return new TopKResult(result.get(0), result.get(1), result.get(2), result.get(3));
    }

    /**
     * The {@code k} largest scores of each row, with ties resolved by {@code tieBreak}; no entry counts as masked.
     *
     * @param scores (..., n) floating scores to rank
     * @param raw (..., n) secondary key for {@link TieBreak#BY_INPUT}; may be null for {@link TieBreak#REFERENCE}
     * @param k entries per row, {@code 1 <= k <= n}
     * @param tieBreak how equal scores are ordered
     * @return see {@link #select(NDArray, NDArray, NDArray, int, TieBreak)}
     * @throws IllegalArgumentException if an argument is out of range or a shape or dtype does not fit
     */
    public static NDList select(NDArray scores, NDArray raw, int k, TieBreak tieBreak) {
        return select(scores, raw, null, k, tieBreak);
    }

    /**
     * The {@code k} largest scores of each row, with ties resolved by {@code tieBreak}.
     *
     * @param scores (..., n) floating scores to rank
     * @param raw (..., n) secondary key for {@link TieBreak#BY_INPUT} (e.g. the raw similarity the scores came
     *     from); unused, and may be null, for {@link TieBreak#REFERENCE}
     * @param mask null, or a boolean (..., n) mask, true = valid: {@link TieBreak#BY_INPUT} ranks a valid entry above
     *     a masked one of equal score; {@link TieBreak#REFERENCE} ignores it, as the reference does
     * @param k entries per row, {@code 1 <= k <= n}
     * @param tieBreak how equal scores are ordered
     * @return [values (..., k) the selected scores, differentiable; indices (..., k) int64], sorted by score
     *     descending; attached to {@code scores}' manager
     * @throws IllegalArgumentException if an argument is out of range or a shape or dtype does not fit
     */
    public static NDList select(NDArray scores, NDArray raw, NDArray mask, int k, TieBreak tieBreak) {
        CoordinateDescent.checkScores("scores", scores);
        checkK(k, scores.getShape());
        if (tieBreak == null) {
            throw new IllegalArgumentException("tieBreak must not be null");
        }
        if (mask != null && (mask.getDataType() != DataType.BOOLEAN || !mask.getShape().equals(scores.getShape()))) {
            throw new IllegalArgumentException("mask must be boolean with the scores' shape " + scores.getShape()
                    + ", got " + mask.getDataType() + " " + mask.getShape());
        }
        if (tieBreak == TieBreak.REFERENCE) {
            return scores.topK(k, -1);
        }
        if (raw == null || !raw.getShape().equals(scores.getShape())) {
            throw new IllegalArgumentException("raw shape " + (raw == null ? null : raw.getShape())
                    + " must equal scores shape " + scores.getShape() + " for tieBreak BY_INPUT");
        }
        long n = scores.getShape().tail();
        if (n > MAX_TIE_BREAK_ROW) {
            throw new IllegalArgumentException(
                    "tieBreak BY_INPUT supports rows of at most " + MAX_TIE_BREAK_ROW + " entries, got " + n);
        }
        if (CondjlOps.supportsTopKByInput(scores) && raw.getDataType() == scores.getDataType()) {
            // one native call where the ops below are a dozen (each a dispatch, and on a GPU a launch)
            NDArray indices = CondjlOps.topKByInput(scores, raw, mask, k);
            return new NDList(scores.gather(indices, -1), indices);
        }
        return byInputWithOps(scores, raw, mask, k);
    }

    /**
     * {@link TieBreak#BY_INPUT} with DJL operations: what {@link CondjlOps#topKByInput} computes in one call, for
     * the arrays it does not take. Arguments are validated.
     */
    static NDList byInputWithOps(NDArray scores, NDArray raw, NDArray mask, int k) {
        long n = scores.getShape().tail();
        return Scoped.compute(() -> {
            // (score, valid, raw, -index) packed into distinct int64 keys (below 2n^3 < 2^63), so the top-k has no
            // ties left to resolve: the raw rank is in [0, n], n + 1 more for a valid entry.
            // n - 1 - index; constants are device arrays: mul(Number) copies from the host, on a GPU a wait
            NDArray reversePosition = scores.getManager().arange((int) n - 1, -1, -1, DataType.INT64,
                    scores.getDevice());
            NDArray second = denseRank(raw);
            if (mask != null) {
                second = second.add(mask.toType(DataType.INT64, false).mul(index(scores, n + 1)));
            }
            NDArray key = denseRank(scores).mul(index(scores, 2 * n + 2)).add(second).mul(index(scores, n))
                    .add(reversePosition);
            NDArray indices = key.topK(k, -1).get(1);
            return new NDList(scores.gather(indices, -1), indices);
        }, scores, raw, mask);
    }

    /**
     * Dense rank along the last axis: int64 in [0, n], equal values equal rank, larger values larger rank, NaN above
     * everything else and all NaNs equal. Independent of how the sort orders ties.
     */
    private static NDArray denseRank(NDArray x) {
        NDArray nan = x.isNaN();
        Shape shape = x.getShape();
        NDArray infinity = x.getManager().full(shape, Float.POSITIVE_INFINITY, x.getDataType());
        NDArray values = NDArrays.where(nan, infinity, x.stopGradient());
        NDArray order = values.argSort(-1, true);
        NDArray sorted = values.gather(order, -1);
        NDArray rises = sorted.get("..., 1:").gt(sorted.get("..., :-1")).toType(DataType.INT64, false);
        NDArray first = x.getManager().zeros(shape.slice(0, shape.dimension() - 1).add(1), DataType.INT64);
        NDArray sortedRank = first.concat(rises, -1).cumSum(-1);
        return sortedRank.gather(order.argSort(-1, true), -1).add(nan.toType(DataType.INT64, false));
    }

    /** A 0-dim int64 constant on {@code like}'s device, filled natively ({@code |value| < 2^24}). */
    private static NDArray index(NDArray like, long value) {
        return like.getManager().full(new Shape(), value, DataType.INT64, like.getDevice());
    }

    static void checkK(int k, Shape shape) {
        if (k <= 0 || k > shape.tail()) {
            throw new IllegalArgumentException("k (" + k + ") must be in [1, " + shape.tail()
                    + "] for last dimension " + shape.tail() + " of shape " + shape);
        }
    }

    /** Ratio, coordinate-descent schedule, mode and tie break of {@link TopK#topk}. Immutable. */
    public static final class Options {

        private final double coorDescentKRatio;
        private final CoordinateDescent.Options coorDescent;
        private final boolean nonDifferentiable;
        private final TieBreak tieBreak;

        private Options(double coorDescentKRatio, CoordinateDescent.Options coorDescent, Builder builder) {
            this.coorDescentKRatio = coorDescentKRatio;
            this.coorDescent = coorDescent;
            nonDifferentiable = builder.nonDifferentiable;
            tieBreak = builder.tieBreak;
        }

        /**
         * Creates a builder with the reference's defaults.
         *
         * @return a new builder
         */
        public static Builder builder() {
            return new Builder();
        }

        /**
         * Returns the factor on {@code k} for the soft top-k ({@code coor_descent_k_ratio}).
         *
         * @return at least 1
         */
        public double getCoorDescentKRatio() {
            return coorDescentKRatio;
        }

        /**
         * Returns the soft top-k's iterations, ε schedule and backend.
         *
         * @return the coordinate-descent options
         */
        public CoordinateDescent.Options getCoorDescent() {
            return coorDescent;
        }

        /**
         * Returns whether only the plain top-k is computed ({@code non_differentiable}).
         *
         * @return true for values and indices only
         */
        public boolean isNonDifferentiable() {
            return nonDifferentiable;
        }

        /**
         * Returns how equal scores are ordered.
         *
         * @return the tie break
         */
        public TieBreak getTieBreak() {
            return tieBreak;
        }

        /** Builds {@link Options}; every option follows the reference's keyword argument of the same name. */
        public static final class Builder {

            private double coorDescentKRatio = 9.0 / 8.0;
            private final CoordinateDescent.Options.Builder coorDescent =
                    CoordinateDescent.Options.builder().setIters(20).optBackend(Backend.UNROLLED);
            private boolean nonDifferentiable;
            private TieBreak tieBreak = TieBreak.REFERENCE;

            private Builder() {}

            /**
             * Sets the factor on {@code k} for the soft top-k ({@code coor_descent_k_ratio}); default 9/8.
             *
             * @param coorDescentKRatio at least 1
             * @return this builder
             */
            public Builder optCoorDescentKRatio(double coorDescentKRatio) {
                this.coorDescentKRatio = coorDescentKRatio;
                return this;
            }

            /**
             * Sets the coordinate-descent iterations ({@code n_iters}); default 20.
             *
             * @param iters at least 1
             * @return this builder
             */
            public Builder optIters(int iters) {
                coorDescent.setIters(iters);
                return this;
            }

            /**
             * Sets the final ε ({@code eps}); default 0.1.
             *
             * @param eps {@code > 0}
             * @return this builder
             */
            public Builder optEps(double eps) {
                coorDescent.optEps(eps);
                return this;
            }

            /**
             * Sets the initial ε ({@code eps_init}); default null.
             *
             * @param epsInit null or {@code > 0}
             * @return this builder
             */
            public Builder optEpsInit(Double epsInit) {
                coorDescent.optEpsInit(epsInit);
                return this;
            }

            /**
             * Sets the per-iteration ε factor ({@code eps_decay}); default 1.0.
             *
             * @param epsDecay {@code > 0}
             * @return this builder
             */
            public Builder optEpsDecay(double epsDecay) {
                coorDescent.optEpsDecay(epsDecay);
                return this;
            }

            /**
             * Sets the soft top-k backend; default {@link Backend#UNROLLED}, the reference's {@code fused=False} and
             * its gradient. {@link Backend#AUTO} corresponds to {@code fused=True}.
             *
             * @param backend the backend
             * @return this builder
             */
            public Builder optBackend(Backend backend) {
                coorDescent.optBackend(backend);
                return this;
            }

            /**
             * Sets whether only the plain top-k is computed ({@code non_differentiable}); default false.
             *
             * @param nonDifferentiable true for values and indices only
             * @return this builder
             */
            public Builder optNonDifferentiable(boolean nonDifferentiable) {
                this.nonDifferentiable = nonDifferentiable;
                return this;
            }

            /**
             * Sets how equal scores are ordered; default {@link TieBreak#REFERENCE}.
             *
             * @param tieBreak the tie break
             * @return this builder
             */
            public Builder optTieBreak(TieBreak tieBreak) {
                this.tieBreak = tieBreak;
                return this;
            }

            /**
             * Validates and builds.
             *
             * @return the options
             * @throws IllegalArgumentException if the ratio is below 1 or not finite, the tie break is null, or a
             *     coordinate-descent option is out of range
             */
            public Options build() {
                if (!(coorDescentKRatio >= 1) || Double.isInfinite(coorDescentKRatio)) {
                    throw new IllegalArgumentException(
                            "coorDescentKRatio (" + coorDescentKRatio + ") must be a finite number >= 1");
                }
                if (tieBreak == null) {
                    throw new IllegalArgumentException("tieBreak must not be null");
                }
                return new Options(coorDescentKRatio, coorDescent.build(), this);
            }
        }
    }
}
