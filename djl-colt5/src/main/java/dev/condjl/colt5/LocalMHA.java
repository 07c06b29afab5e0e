package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import dev.condjl.cuda.AttentionPrecision;

/**
 * {@code local_attention.LocalMHA} as CoLT5 uses it (no rotary, no qk-rmsnorm, no dropout): the light attention
 * branch (spec colt5.md §2.4a).
 *
 * <p>{@code x := LayerNorm(x)} if {@code prenorm}; {@code q, k, v} = chunks {@code [Q | K | V]} of
 * {@code x·W_qkvᵀ}, head-major; {@link LocalAttention#attend} per head; heads merged; {@code ·W_outᵀ}. Parameters:
 * {@code norm.weight}, {@code norm.bias} (prenorm only), {@code to_qkv.weight (3·h·dh, dim)},
 * {@code to_out.weight (dim, h·dh)}. Input {@code x (b, n, dim)} and optional {@code mask (b, n)}; output
 * {@code (b, n, dim)}. Any {@code n >= 1} works, also shorter than a window (the sequence is padded).
 *
 * <p>Differs from the reference only where {@link LocalAttention} says: zero-padded keys are always masked.
 */
public final class LocalMHA extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final int dimHead;
    private final int heads;
    private final LocalAttention.Window window;
    private final AttentionPrecision precision;
    private final LayerNorm norm;
    private final Linear toQkv;
    private final Linear toOut;

    private LocalMHA(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        dimHead = builder.dimHead;
        heads = builder.heads;
        window = builder.window();
        precision = builder.attentionPrecision;
        long hidden = (long) dimHead * heads;
        norm = builder.prenorm ? addChildBlock("norm", new LayerNorm()) : null;
        toQkv = addChildBlock("to_qkv", Linears.of(dim, 3 * hidden, false));
        toOut = addChildBlock("to_out", Linears.of(hidden, dim, false));
    }

    /**
     * Starts a builder.
     *
     * @return a builder with LocalMHA's defaults
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The window layout.
     *
     * @return window size, causality, look-around and exactness
     */
    public LocalAttention.Window getWindow() {
        return window;
    }

    /**
     * Applies the light attention.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param mask null, or boolean (b, n), true = valid key
     * @param training whether in training mode
     * @return (b, n, dim)
     */
    public NDArray apply(ParameterStore ps, NDArray x, NDArray mask, boolean training) {
        Inputs.checkTokens("x", x, dim);
        Inputs.checkMask("mask", mask, x);
        NDArray h = norm == null ? x : norm.forward(ps, new NDList(x), training).head();
        NDList qkv = MultiHead.split(Linears.apply(ps, toQkv, h, training), 3, heads);
        NDArray out = LocalAttention.attend(qkv.get(0), qkv.get(1), qkv.get(2), mask, window, precision);
        return Linears.apply(ps, toOut, MultiHead.merge(out), training);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x}, optional {@code mask}.
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(apply(ps, Inputs.required(inputs, "x", 0), Inputs.tensor(inputs, "mask", 1), training));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, dim);
        if (norm != null) {
            norm.initialize(manager, dataType, in);
        }
        toQkv.initialize(manager, dataType, in);
        toOut.initialize(manager, dataType, new Shape(1, (long) heads * dimHead));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    /** Builder; options are LocalMHA's keyword arguments. */
    public static final class Builder extends MultiHeadBuilder<Builder> {
        private int windowSize;
        private boolean prenorm;
        private boolean causal;
        private int lookBackward = 1;
        private Integer lookForward;
        private boolean exactWindowsize = true;

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * Sets the window length (required).
         *
         * @param windowSize {@code > 0}
         * @return this builder
         */
        public Builder setWindowSize(int windowSize) {
            this.windowSize = windowSize;
            return this;
        }

        /**
         * Whether a LayerNorm ({@code norm.weight}, {@code norm.bias}) precedes the projection.
         *
         * @param prenorm default false
         * @return this builder
         */
        public Builder optPrenorm(boolean prenorm) {
            this.prenorm = prenorm;
            return this;
        }

        /**
         * Whether queries only see keys at or before them.
         *
         * @param causal default false
         * @return this builder
         */
        public Builder optCausal(boolean causal) {
            this.causal = causal;
            return this;
        }

        /**
         * Sets the number of windows looked back.
         *
         * @param lookBackward default 1
         * @return this builder
         */
        public Builder optLookBackward(int lookBackward) {
            this.lookBackward = lookBackward;
            return this;
        }

        /**
         * Sets the number of windows looked forward.
         *
         * @param lookForward default 0 if causal, else 1
         * @return this builder
         */
        public Builder optLookForward(int lookForward) {
            this.lookForward = lookForward;
            return this;
        }

        /**
         * Whether the visible range is exactly {@code windowSize · look} positions rather than whole windows.
         *
         * @param exactWindowsize default true (local-attention ≥ 1.8.6)
         * @return this builder
         */
        public Builder optExactWindowsize(boolean exactWindowsize) {
            this.exactWindowsize = exactWindowsize;
            return this;
        }

        private LocalAttention.Window window() {
            int forward = lookForward != null ? lookForward : causal ? 0 : 1;
            return new LocalAttention.Window(windowSize, causal, lookBackward, forward, exactWindowsize);
        }

        /**
         * Builds the block.
         *
         * @return the block
         * @throws IllegalArgumentException if a size is out of range
         */
        public LocalMHA build() {
            validate();
            window();
            return new LocalMHA(this);
        }
    }
}
