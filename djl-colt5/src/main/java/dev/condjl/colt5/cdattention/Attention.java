package dev.condjl.colt5.cdattention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Activation;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.ConstantInitializer;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;
import dev.condjl.colt5.LayerNorm;
import dev.condjl.topk.CoordinateDescent;

/**
 * Causal self-attention whose weights come either from a softmax or from coordinate descent over the q·k
 * similarities (coordinate-descent-attention 0.0.11 {@code Attention}; spec colt5.md §7.1).
 *
 * <p>For {@code x (b, n, d)}: {@code xn = LayerNorm(x)}; {@code q, k, v = split(to_qkv(xn))}, each
 * {@code (b, h, n, dh)}; {@code nn = attnNullKv} learned null keys/values are prepended to every head's keys and
 * values; {@code sim = (q·dh^-0.5)·kᵀ (b, h, n, n + nn)}; query {@code i} may see key {@code j} iff
 * {@code j ≤ i + nn} (null tokens always visible). Softmax mode: {@code attn = softmax(sim)} over the allowed keys.
 * Coordinate-descent mode: {@code attn = coor_descent(sim, k = κ)}, a soft top-κ in [0, 1] per row that sums to
 * about κ (not 1); κ is {@code coorDescentSparsityK}, or with {@code learnedSparsityK}
 * {@code κ = sigmoid(to_learned_k(xn))·(K − 1) + 1} per token and head. Output {@code to_out(merge(attn·v))}.
 *
 * <p>Fixes against the reference: a learned κ is applied per row {@code (b, h, n, 1)}, which the reference only
 * manages when {@code b·h = 1} (spec §7.5.3), and a fixed κ works for any {@code b·h} (§7.5.2).
 *
 * <p>{@code state_dict}: {@code null_kv (2, h, nn, dh)} (present with zero elements when {@code nn = 0}),
 * {@code norm.weight/bias}, {@code to_qkv.weight (3·h·dh, d)}, {@code to_out.weight (d, h·dh)}, and
 * {@code to_learned_k.weight (h, d)}, {@code to_learned_k.bias (h)} with a learned κ. The zero-element
 * {@code null_kv} is a real DJL parameter of shape {@code (2, h, 0, dh)}: it loads, saves and trains (it never
 * receives a gradient) like any other, so a reference checkpoint loads with {@code strict = true}.
 */
public final class Attention extends AbstractBlock {

    private static final byte VERSION = 1;
    private static final float LEARNED_K_BIAS = -10f;

    private final int heads;
    private final int dimHead;
    private final int nullKv;
    private final boolean useCoorDescent;
    private final double sparsityK;
    private final CoordinateDescent.Options options;
    private final Parameter nullKvParam;
    private final LayerNorm norm;
    private final Linear toQkv;
    private final Linear toOut;
    private final Linear toLearnedK;

    private Attention(Builder builder) {
        super(VERSION);
        heads = builder.heads;
        dimHead = builder.dimHead;
        nullKv = builder.attnNullKv;
        useCoorDescent = builder.useCoorDescent;
        sparsityK = builder.coorDescentSparsityK;
        options = builder.options();
        nullKvParam = addParameter(Parameter.builder()
                .setName("null_kv")
                .setType(Parameter.Type.OTHER)
                .optInitializer(new NormalInitializer(1f))
                .optShape(new Shape(2, heads, nullKv, dimHead))
                .build());
        norm = addChildBlock("norm", new LayerNorm());
        long inner = (long) heads * dimHead;
        toQkv = addChildBlock("to_qkv", Linear.builder().setUnits(3 * inner).optBias(false).build());
        toOut = addChildBlock("to_out", Linear.builder().setUnits(builder.dim).optBias(false).build());
        if (builder.learnedSparsityK) {
            toLearnedK = addChildBlock("to_learned_k", Linear.builder().setUnits(heads).build());
            toLearnedK.setInitializer(new ConstantInitializer(LEARNED_K_BIAS), Parameter.Type.BIAS);
        } else {
            toLearnedK = null;
        }
    }

    /**
     * Creates a builder; {@link Builder#setDim} is required.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape x = inputShapes[0];
        norm.initialize(manager, dataType, x);
        toQkv.initialize(manager, dataType, x);
        toOut.initialize(manager, dataType, new Shape(x.get(0), x.get(1), (long) heads * dimHead));
        if (toLearnedK != null) {
            toLearnedK.initialize(manager, dataType, x);
        }
    }

    /**
     * Attends causally.
     *
     * @param ps the parameter store
     * @param inputs {@code x (b, n, d)}
     * @param training whether in training
     * @param params unused
     * @return {@code (b, n, d)}
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        if (x.getShape().dimension() != 3) {
            throw new IllegalArgumentException("x must be (b, n, d), got " + x.getShape());
        }
        long b = x.getShape().get(0);
        long n = x.getShape().get(1);
        NDArray xn = norm.forward(ps, new NDList(x), training).head();
        NDList qkv = toQkv.forward(ps, new NDList(xn), training).head().split(3, 2);
        NDArray q = splitHeads(qkv.get(0));
        NDArray k = splitHeads(qkv.get(1));
        NDArray v = splitHeads(qkv.get(2));
        if (nullKv > 0) {
            NDArray nkv = ps.getValue(nullKvParam, x.getDevice(), training);
            // adding to batch-scoped zeros keeps the result (and its gradient path) out of the model's manager
            NDArray nullB = x.getManager()
                    .zeros(new Shape(b, 2, heads, nullKv, dimHead), x.getDataType())
                    .add(nkv);
            k = nullB.get(":, 0").concat(k, 2);
            v = nullB.get(":, 1").concat(v, 2);
        }
        NDArray sim = q.mul(constant(q, Math.pow(dimHead, -0.5))).matMul(k.transpose(0, 1, 3, 2));
        NDArray allowed = causalMask(x.getManager(), n, nullKv).broadcast(sim.getShape());
        NDArray attn;
        if (useCoorDescent) {
            if (toLearnedK != null) {
                NDArray kappa = Activation.sigmoid(toLearnedK.forward(ps, new NDList(xn), training).head())
                        .mul(constant(x, sparsityK - 1))
                        .add(constant(x, 1))
                        .transpose(0, 2, 1);
                attn = CoordinateDescent.solve(sim, kappa, allowed, options);
            } else {
                attn = CoordinateDescent.solve(sim, sparsityK, allowed, options);
            }
        } else {
            NDArray masked = NDArrays.where(allowed, sim,
                    sim.getManager().full(sim.getShape(), -Float.MAX_VALUE, sim.getDataType(), sim.getDevice()));
            attn = masked.softmax(-1);
        }
        NDArray out = attn.matMul(v).transpose(0, 2, 1, 3).reshape(b, n, (long) heads * dimHead);
        return toOut.forward(ps, new NDList(out), training);
    }

    /** {@code (b, n, h·dh) -> (b, h, n, dh)}, head-major columns. */
    private NDArray splitHeads(NDArray t) {
        Shape s = t.getShape();
        return t.reshape(s.get(0), s.get(1), heads, dimHead).transpose(0, 2, 1, 3);
    }

    /**
     * The causal rule of §7.1 step 4 with {@code nn} always-visible null keys in front.
     *
     * @param manager where the mask is created
     * @param n the number of queries
     * @param nn the number of null keys
     * @return boolean {@code (n, n + nn)}, true where query {@code i} may see key {@code j}, i.e. {@code j ≤ i + nn}
     */
    static NDArray causalMask(NDManager manager, long n, long nn) {
        NDArray rows = manager.arange(0, n, 1, DataType.INT64).reshape(n, 1);
        NDArray cols = manager.arange(0, n + nn, 1, DataType.INT64).reshape(1, n + nn);
        return cols.lte(rows.add(nn));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /** Builds an {@link Attention}; option names follow the reference's keyword arguments. */
    public static final class Builder extends CoorDescentBuilder<Builder> {

        private int dimHead = 64;
        private int heads = 8;
        private boolean useCoorDescent;
        private double coorDescentSparsityK = 1;
        private int attnNullKv;
        private boolean learnedSparsityK;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the head dimension ({@code dim_head}); default 64.
         *
         * @param dimHead at least 1
         * @return this builder
         */
        public Builder optDimHead(int dimHead) {
            this.dimHead = dimHead;
            return this;
        }

        /**
         * Sets the number of heads ({@code heads}); default 8.
         *
         * @param heads at least 1
         * @return this builder
         */
        public Builder optHeads(int heads) {
            this.heads = heads;
            return this;
        }

        /**
         * Chooses coordinate descent instead of softmax ({@code use_coor_descent}); default false.
         *
         * @param useCoorDescent whether attention weights come from coordinate descent
         * @return this builder
         */
        public Builder optUseCoorDescent(boolean useCoorDescent) {
            this.useCoorDescent = useCoorDescent;
            return this;
        }

        /**
         * Sets the sparsity κ, or its maximum K when learned ({@code coor_descent_sparsity_k}); default 1.
         *
         * @param k {@code > 0}; {@code ≥ 1} with a learned κ
         * @return this builder
         */
        public Builder optCoorDescentSparsityK(double k) {
            this.coorDescentSparsityK = k;
            return this;
        }

        /**
         * Sets the number of learned null key/value pairs per head ({@code attn_null_kv}); default 0.
         *
         * @param attnNullKv at least 0
         * @return this builder
         */
        public Builder optAttnNullKv(int attnNullKv) {
            this.attnNullKv = attnNullKv;
            return this;
        }

        /**
         * Lets the network predict κ per token and head ({@code learned_sparsity_k}); default false.
         *
         * @param learnedSparsityK whether to add {@code to_learned_k}
         * @return this builder
         */
        public Builder optLearnedSparsityK(boolean learnedSparsityK) {
            this.learnedSparsityK = learnedSparsityK;
            return this;
        }

        /**
         * Validates and builds.
         *
         * @return the block
         * @throws IllegalArgumentException if a size is out of range or the coordinate-descent settings are invalid
         */
        public Attention build() {
            requireAtLeast("dim", dim, 1);
            requireAtLeast("dimHead", dimHead, 1);
            requireAtLeast("heads", heads, 1);
            requireAtLeast("attnNullKv", attnNullKv, 0);
            if (!(coorDescentSparsityK > 0) || Double.isInfinite(coorDescentSparsityK)) {
                throw new IllegalArgumentException(
                        "coorDescentSparsityK (" + coorDescentSparsityK + ") must be a finite number > 0");
            }
            if (learnedSparsityK && coorDescentSparsityK < 1) {
                throw new IllegalArgumentException("coorDescentSparsityK (" + coorDescentSparsityK
                        + ") must be >= 1 with a learned sparsity k, which ranges over [1, k]");
            }
            return new Attention(this);
        }
    }

    /**
     * A 0-dim constant for products on the gradient path. {@code NDArray.mul(Number)} would wrap the number in a
     * {@code from_blob} tensor over a Java buffer and close it at once; autograd keeps that tensor for backward, so a
     * GC before backward corrupts the gradient. {@code full} allocates natively and is safe.
     *
     * @param like gives the manager and dtype
     * @param value the constant
     * @return a 0-dim array in {@code like}'s manager
     */
    static NDArray constant(NDArray like, double value) {
        return like.getManager().full(new Shape(), (float) value, like.getDataType());
    }

    static void requireAtLeast(String name, long value, long min) {
        if (value < min) {
            throw new IllegalArgumentException(name + " (" + value + ") must be >= " + min);
        }
    }
}
