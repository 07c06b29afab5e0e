package dev.condjl.stochastic;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import java.util.function.UnaryOperator;

/**
 * A residual connection with stochastic depth around any branch Block: {@code out = x + ls(f(x))}
 * in eval, and during training one of the {@link StochasticDepthMode}s.
 *
 * <p>Inputs: {@code x (b, ...)} the residual stream first, then any further inputs of the branch
 * (e.g. a mask). The branch gets the whole list and returns its residual {@code (b, ...)} first
 * (further outputs are ignored). Outputs: {@code [out, inputs[1], inputs[2], ...]}, so a stack of
 * wrappers can pass a mask along; input names are kept on the rows handed to the branch and on
 * {@code out}.
 *
 * <ul>
 *   <li>{@code BATCH_SUBSET}: {@code k = max((int) (b (1 - p)), 1)} random rows run the branch; the
 *       rows of every batch-major input (rank >= 1 with leading size b) are taken, other inputs are
 *       passed unchanged; {@code out_i = x_i + (b/k) ls(f(x))_i} on those rows, the other rows are
 *       bit-identical to {@code x}.
 *   <li>{@code DROP_PATH}: {@code out = x + dropPath(ls(f(x)), p)}.
 *   <li>{@code LAYER_DROP}: with probability p {@code out = x} (the branch runs on one dummy sample
 *       times zero so its parameters get zero gradients), otherwise {@code x + ls(f(x))}.
 *   <li>{@code AUTO}: {@code BATCH_SUBSET} if {@code p > 0.1}, else {@code DROP_PATH} (DINOv2).
 * </ul>
 *
 * <p><b>The branch is the residual only.</b> Give {@link Builder#setBranch} the {@code f} of {@code x + f(x)}
 * (an attention or MLP sub-layer, DINOv2's {@code attn_residual_func}); give a block that already returns
 * {@code x + g(x)} (CoLT5's {@code ConditionalRoutedTransformerBlock}, DJL's {@code TransformerEncoderBlock}, a
 * whole pre-norm layer) to {@link Builder#setResidualBlock} instead, which drops {@code f(x) = block(x) - x}
 * (see {@link ResidualBranch}); as a branch such a block would silently compute {@code 2x + g(x)}. {@link
 * Builder#build} refuses the blocks {@link ResidualBranch#addsOwnResidual} knows.
 *
 * <p>LayerScale ({@code gamma}, DINOv2's {@code ls1}/{@code ls2}) sits inside the branch, before
 * the drop. The branch must be per-sample (no BatchNorm, no mixing across the batch) for the subset
 * and DropPath expectations to hold. Children: {@code branch} and, if enabled, the LayerScale under
 * its configured name (default {@code ls1}).
 */
public final class StochasticResidual extends AbstractBlock {

    private static final byte VERSION = 1;

    private final Block branch;
    private final LayerScale layerScale;
    private final double dropProb;
    private final StochasticDepthMode mode;

    private StochasticResidual(Builder builder) {
        super(VERSION);
        branch = addChildBlock("branch", builder.branch);
        layerScale =
                builder.layerScaleInit == null
                        ? null
                        : addChildBlock(
                                builder.layerScaleName, new LayerScale(builder.layerScaleInit));
        dropProb = builder.dropProb;
        mode = builder.mode;
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        long b = StochasticDepth.batchSize(x);
        NDArray out;
        NDArray r;
        if (!training || dropProb == 0) {
            r = residual(ps, inputs, training, params);
            out = x.add(r);
        } else {
            switch (mode.resolve(dropProb)) {
                case BATCH_SUBSET:
                    NDArray idx = StochasticDepth.sampleSubset(x.getManager(), b, dropProb);
                    NDList sub = batchRows(inputs, b, in -> StochasticDepth.rows(in, idx));
                    r = subsetResidual(ps, inputs, sub, params);
                    out = StochasticDepth.addSubsetResidual(x, idx, sub.head(), r);
                    break;
                case DROP_PATH:
                    r = residual(ps, inputs, true, params);
                    NDArray dropped = DropPath.dropPath(r, dropProb, true, true);
                    out = x.add(dropped);
                    dropped.close(); // always created by dropPath since p > 0 and training
                    break;
                case LAYER_DROP:
                    if (LayerDrop.sampleDrop(x.getManager(), dropProb)) {
                        NDList dummy = batchRows(inputs, b, LayerDrop::dummyRows);
                        r = residual(ps, dummy, true, params);
                        out = LayerDrop.addZero(x, r);
                    } else {
                        r = residual(ps, inputs, true, params);
                        out = x.add(r);
                    }
                    break;
                default:
                    throw new AssertionError("unresolved mode " + mode);
            }
        }
        if (layerScale != null) {
            // our own LayerScale output: not needed by autograd (it keeps its input), and DJL
            // would otherwise hold it until the step's manager closes
            r.close();
        }
        NDList result = new NDList(named(out, x));
        result.addAll(inputs.subNDList(1));
        return result;
    }

    private NDArray residual(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray r = branch.forward(ps, inputs, training, params).head();
        if (layerScale != null) {
            r = layerScale.forward(ps, new NDList(r), training, params).head();
        }
        return r;
    }

    /**
     * The branch on the subset rows; a branch's complaint about its inputs names the caller's shapes, since the
     * shapes the branch saw are those of the subset (leading size k, not the caller's b).
     */
    private NDArray subsetResidual(
            ParameterStore ps, NDList inputs, NDList sub, PairList<String, Object> params) {
        try {
            return residual(ps, sub, true, params);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("branch rejected inputs " + shapes(inputs) + " (batch size "
                    + inputs.head().getShape().get(0) + "): " + e.getMessage() + " [shapes in this message are of the "
                    + sub.head().getShape().get(0) + " rows that batch-subset stochastic depth ran the branch on]", e);
        }
    }

    private static String shapes(NDList inputs) {
        StringBuilder s = new StringBuilder("[");
        for (int i = 0; i < inputs.size(); i++) {
            NDArray in = inputs.get(i);
            s.append(i == 0 ? "" : ", ").append(in.getName() == null ? "" : in.getName() + " ").append(in.getShape());
        }
        return s.append(']').toString();
    }

    /**
     * Applies {@code select} to every batch-major input (rank >= 1, leading size b), keeping input
     * names (blocks such as CoLT5's look their inputs up by name).
     */
    private static NDList batchRows(NDList inputs, long b, UnaryOperator<NDArray> select) {
        NDList rows = new NDList(inputs.size());
        for (NDArray in : inputs) {
            Shape s = in.getShape();
            rows.add(s.dimension() >= 1 && s.get(0) == b ? named(select.apply(in), in) : in);
        }
        return rows;
    }

    private static NDArray named(NDArray array, NDArray like) {
        if (like.getName() != null) {
            array.setName(like.getName());
        }
        return array;
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(
            NDManager manager, DataType dataType, Shape... inputShapes) {
        branch.initialize(manager, dataType, inputShapes);
        if (layerScale != null) {
            layerScale.initialize(manager, dataType, inputShapes[0]);
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return inputShapes;
    }

    /**
     * The drop probability of this layer.
     *
     * @return {@code p}
     */
    public double getDropProb() {
        return dropProb;
    }

    /**
     * The configured mode ({@link StochasticDepthMode#AUTO} is resolved per forward).
     *
     * @return the mode
     */
    public StochasticDepthMode getMode() {
        return mode;
    }

    /**
     * Creates a builder.
     *
     * @return a new builder (mode AUTO, drop probability 0, no LayerScale)
     */
    public static Builder builder() {
        return new Builder();
    }

    /** Builder for {@link StochasticResidual}. */
    public static final class Builder {

        private Block branch;
        private double dropProb;
        private StochasticDepthMode mode = StochasticDepthMode.AUTO;
        private Float layerScaleInit;
        private String layerScaleName = "ls1";

        private Builder() {}

        /**
         * Sets the residual branch {@code f} of {@code x + f(x)} (this or {@link #setResidualBlock} is required).
         *
         * @param branch maps the wrapper's inputs to the residual {@code (b, ...)} first; not a block that adds its
         *     own residual (use {@link #setResidualBlock} for those)
         * @return this builder
         */
        public Builder setBranch(Block branch) {
            this.branch = branch;
            return this;
        }

        /**
         * Sets a block that adds its own residual, {@code block(x) = x + g(x)}, such as a whole transformer layer:
         * the branch becomes {@code new ResidualBranch(block)}, {@code f(x) = block(x) - x}, so eval gives {@code
         * block(x)} and stochastic depth scales and drops {@code g} only.
         *
         * @param block maps {@code [x (b, ...), ...]} to {@code x + g(x)} first
         * @return this builder
         */
        public Builder setResidualBlock(Block block) {
            this.branch = new ResidualBranch(block);
            return this;
        }

        /**
         * Sets the drop probability (default 0: plain residual), e.g. from {@link
         * DepthSchedule#linear}.
         *
         * @param dropProb {@code p} in {@code [0, 1]}
         * @return this builder
         */
        public Builder optDropProb(double dropProb) {
            this.dropProb = dropProb;
            return this;
        }

        /**
         * Sets the mode (default {@link StochasticDepthMode#AUTO}).
         *
         * @param mode the mode
         * @return this builder
         */
        public Builder optMode(StochasticDepthMode mode) {
            this.mode = mode;
            return this;
        }

        /**
         * Adds a LayerScale after the branch (default: none).
         *
         * @param initValues the initial value of {@code gamma} (DINOv2: 1e-5)
         * @return this builder
         */
        public Builder optLayerScale(float initValues) {
            this.layerScaleInit = initValues;
            return this;
        }

        /**
         * Sets the LayerScale's child name (default {@code ls1}; DINOv2's MLP branch uses {@code
         * ls2}), so its parameter maps to the reference key {@code <name>.gamma}.
         *
         * @param layerScaleName the child name
         * @return this builder
         */
        public Builder optLayerScaleName(String layerScaleName) {
            this.layerScaleName = layerScaleName;
            return this;
        }

        /**
         * Builds the block.
         *
         * @return a new {@link StochasticResidual}
         */
        public StochasticResidual build() {
            if (branch == null) {
                throw new IllegalArgumentException("branch is required (setBranch or setResidualBlock)");
            }
            if (ResidualBranch.addsOwnResidual(branch)) {
                throw new IllegalArgumentException(branch.getClass().getSimpleName()
                        + " adds its own residual (returns x + g(x)), so as a branch it would give 2x + g(x);"
                        + " use setResidualBlock(block), which drops block(x) - x");
            }
            if (mode == null) {
                throw new IllegalArgumentException("mode must not be null");
            }
            if (layerScaleName == null || layerScaleName.isEmpty()) {
                throw new IllegalArgumentException("layerScaleName must not be empty");
            }
            StochasticDepth.checkProbability("dropProb", dropProb);
            return new StochasticResidual(this);
        }
    }
}
