package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

import dev.condjl.cuda.AttentionPrecision;

/**
 * The reference's heavy-branch {@code Attention} (spec colt5.md §2.3): attention of routed queries over routed
 * key/value tokens, optionally in several kv routes, each route feeding its own group of heads.
 *
 * <p>With {@code h} heads, {@code R} routes and {@code hpr = h/R}:
 *
 * <ol>
 *   <li>{@code x := RMSNorm(x)}, {@code context := RMSNorm(context)} with the same {@code norm.gamma} (context
 *       defaults to the normed x; a 3-D context is one route);
 *   <li>{@code q = x·W_qᵀ} head-major, times {@code normalized_scores_q} if given;
 *   <li>route {@code r} projects {@code context[:, r]} with the {@code to_kv} rows of heads {@code r·hpr ..
 *       r·hpr+hpr-1}; the rows of head {@code H} are {@code [H·2dh, H·2dh+dh)} for K and {@code [H·2dh+dh,
 *       (H+1)·2dh)} for V (per-head interleaving, not [all K; all V]);
 *   <li>{@code v *= normalized_scores_kv} (and {@code k} too with {@code multiplyKeysByScore});
 *   <li>rotary (optional) on q and k, by the tokens' original positions;
 *   <li>a learned null key/value ({@code null_kv[0][H]}, {@code null_kv[1][H]}) is prepended, never masked;
 *   <li>{@code softmax(q·kᵀ·dh^-0.5)·v} with masked keys at {@code -finfo.max}; heads merged; {@code ·W_outᵀ}.
 * </ol>
 *
 * <p>Parameters: {@code null_kv (2, h, dh)}, {@code norm.gamma (dim)}, {@code to_q.weight (h·dh, dim)},
 * {@code to_kv.weight (2·h·dh, dim)}, {@code to_out.weight (dim, h·dh)}; no biases.
 */
public final class Attention extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int dimHead;
    private final int heads;
    private final boolean multiplyKeysByScore;
    private final AttentionPrecision precision;
    private final Parameter nullKv;
    private final RMSNorm norm;
    private final Linear toQ;
    private final Linear toKv;
    private final Linear toOut;

    private Attention(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        dimHead = builder.dimHead;
        heads = builder.heads;
        multiplyKeysByScore = builder.multiplyKeysByScore;
        precision = builder.attentionPrecision;
        long hidden = (long) dimHead * heads;
        nullKv = addParameter(Parameter.builder().setName("null_kv").setType(Parameter.Type.OTHER)
                .optInitializer(new NormalInitializer(1f)).optShape(new Shape(2, heads, dimHead)).build());
        norm = addChildBlock("norm", new RMSNorm(dim));
        toQ = addChildBlock("to_q", Linears.of(dim, hidden, false));
        toKv = addChildBlock("to_kv", Linears.of(dim, 2 * hidden, false));
        toOut = addChildBlock("to_out", Linears.of(hidden, dim, false));
    }

    /**
     * Initialises {@code to_q.weight} and {@code to_out.weight} to zero: the attention starts uniform over the keys
     * and its output at 0, until training grows them.
     *
     * @return this block
     */
    Attention zeroInitQueryAndOutput() {
        Linears.zeroInit(toQ);
        Linears.zeroInit(toOut);
        return this;
    }

    /**
     * Starts a builder.
     *
     * @return a builder with the reference's defaults
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Number of heads.
     *
     * @return {@code heads}
     */
    public int getHeads() {
        return heads;
    }

    /**
     * Routed attention.
     *
     * @param ps the parameter store
     * @param x (b, nq, dim) routed query tokens
     * @param context null (attend over x), (b, nk, dim), or (b, R, nk, dim) with {@code heads % R == 0}
     * @param mask null, or boolean (b, nk) / (b, R, nk) key mask, true = attend
     * @param normalizedScoresKv null, or (b, nk) / (b, R, nk) key/value scores
     * @param normalizedScoresQ null, or (b, nq) query scores
     * @param qPos null, or rotary angles for the queries broadcastable to (b, h, nq, dh): (nq, dh) or (b, 1, nq, dh)
     * @param kPos null, or rotary angles for the keys broadcastable to (b, R, hpr, nk, dh): (nk, dh) or
     *     (b, R, 1, nk, dh); given together with {@code qPos}
     * @param training whether in training mode
     * @return (b, nq, dim)
     * @throws IllegalArgumentException on a shape that does not fit, or heads not divisible by R
     */
    public NDArray attend(
            ParameterStore ps,
            NDArray x,
            NDArray context,
            NDArray mask,
            NDArray normalizedScoresKv,
            NDArray normalizedScoresQ,
            NDArray qPos,
            NDArray kPos,
            boolean training) {
        Inputs.checkTokens("x", x, dim);
        long b = x.getShape().get(0);
        long nq = x.getShape().get(1);
        NDArray xn = norm.apply(ps, x, training);
        NDArray ctx = context == null ? xn : norm.apply(ps, context, training);
        if (ctx.getShape().dimension() == 3) {
            ctx = ctx.expandDims(1);
        }
        if (ctx.getShape().dimension() != 4 || ctx.getShape().get(0) != b) {
            throw new IllegalArgumentException("context must be (" + b + ", nk, " + dim + ") or (" + b + ", R, nk, "
                    + dim + "), got " + context.getShape());
        }
        long routes = ctx.getShape().get(1);
        long nk = ctx.getShape().get(2);
        if (heads % routes != 0) {
            throw new IllegalArgumentException(
                    "number of heads (" + heads + ") must be divisible by the number of key/value routes (" + routes
                            + ")");
        }
        long hpr = heads / routes;

        NDArray q = MultiHead.split(Linears.apply(ps, toQ, xn, training), 1, heads).head();
        if (normalizedScoresQ != null) {
            q = q.mul(normalizedScoresQ.reshape(b, 1, nq, 1));
        }

        NDArray kv;
        if (routes == 1) {
            // one route: every head's rows of to_kv, one linear layer
            kv = Linears.apply(ps, toKv, ctx, training);
        } else {
            NDArray w = ps.getValue(toKv.getDirectParameters().get("weight"), x.getDevice(), training);
            kv = ctx.matMul(Tensors.own(w.reshape(routes, hpr * 2 * dimHead, dim).transpose(0, 2, 1), x));
        }
        kv = kv.reshape(b, routes, nk, hpr, 2L * dimHead).transpose(0, 1, 3, 2, 4);
        NDArray k = kv.get("..., :" + dimHead);
        NDArray v = kv.get("..., " + dimHead + ":");

        if (normalizedScoresKv != null) {
            NDArray s = normalizedScoresKv.reshape(b, routes, 1, nk, 1);
            v = v.mul(s);
            if (multiplyKeysByScore) {
                k = k.mul(s);
            }
        }
        if (qPos != null) {
            q = RotaryEmbedding.rotate(q, qPos);
            k = RotaryEmbedding.rotate(k, kPos);
        }
        k = k.reshape(b, heads, nk, dimHead);
        v = v.reshape(b, heads, nk, dimHead);

        NDArray nulls = Tensors.own(ps.getValue(nullKv, x.getDevice(), training)
                .reshape(2, 1, heads, 1, dimHead), x);
        k = batchOf(nulls.get(0), b).concat(k, 2);
        v = batchOf(nulls.get(1), b).concat(v, 2);

        NDArray keep = null;
        if (mask != null) {
            keep = mask.getShape().dimension() == 3
                    ? mask.repeat(1, hpr).expandDims(2)
                    : mask.reshape(b, 1, 1, nk);
            keep = Tensors.padAxis(keep, -1, 1, 0, 1);
        }
        // the null key is always kept
        NDArray out = MultiHead.merge(Attend.attend(q, k, v, keep, true, precision));
        return Linears.apply(ps, toOut, out, training);
    }

    /** (1, ...) broadcast to (b, ...); as it is for b = 1, where the broadcast would be one more native call. */
    private static NDArray batchOf(NDArray x, long b) {
        return b == 1 ? x : x.broadcast(new Shape(b).addAll(x.getShape().slice(1)));
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x}, {@code context}, {@code mask}, {@code normalized_scores_kv},
     * {@code normalized_scores_q}, {@code q_pos}, {@code k_pos}. Output: (b, nq, dim).
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(attend(
                ps,
                Inputs.required(inputs, "x", 0),
                Inputs.tensor(inputs, "context", 1),
                Inputs.tensor(inputs, "mask", 2),
                Inputs.tensor(inputs, "normalized_scores_kv", 3),
                Inputs.tensor(inputs, "normalized_scores_q", 4),
                Inputs.tensor(inputs, "q_pos", 5),
                Inputs.tensor(inputs, "k_pos", 6),
                training));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, dim);
        norm.initialize(manager, dataType, in);
        toQ.initialize(manager, dataType, in);
        toKv.initialize(manager, dataType, in);
        toOut.initialize(manager, dataType, new Shape(1, (long) heads * dimHead));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /** Builder; options are the reference's keyword arguments. */
    public static final class Builder extends MultiHeadBuilder<Builder> {
        private boolean multiplyKeysByScore;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Whether keys are scaled by the kv scores too (values always are).
         *
         * @param multiplyKeysByScore default false
         * @return this builder
         */
        public Builder optMultiplyKeysByScore(boolean multiplyKeysByScore) {
            this.multiplyKeysByScore = multiplyKeysByScore;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if a size is not positive
         */
        public Attention build() {
            validate();
            return new Attention(this);
        }
    }
}
