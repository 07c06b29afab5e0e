package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.ConstantInitializer;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

/**
 * yif-AI's LearnedDropout: an input-dependent 0/1 mask computed by causal attention (spec §4).
 *
 * <p>Forward, for {@code x: (B, T, C)}:
 * <ol>
 *   <li>{@code s = x} ({@link DropoutInputType#HIDDEN_STATE}) or the second input ({@link DropoutInputType#EMBED},
 *       the pre-computed-mask variant); detached if {@code useDetachedInput};
 *   <li>{@code a = CausalAttention(batch_attn_weights(s))}, H heads, no output projection, no residual;
 *   <li>{@code M = 0.5·cos(a + shift) + 0.5 ∈ [0, 1]};
 *   <li>{@code M_r ∈ {0, 1}}: in training 1 with probability M ({@code U[0,1) ≤ M}), in eval {@code M ≥ 0.5};
 *       straight-through, {@code M_r = M + stopGradient(M_r − M)}, so the gradient reaching M is the upstream one;
 *   <li>output {@code x ⊙ M_r}, with no 1/keep rescaling.
 * </ol>
 *
 * <p>Outputs: {@code [x ⊙ M_r (B, T, C), penalty (), fraction of ones in M_r ()]}. The penalty is computed from the
 * unrounded M, {@code mean(M²/2)} ({@link PenaltyType#SQUARED}) or {@code mean(M)} ({@link PenaltyType#LINEAR}), in
 * training only (0 in eval); add {@code coefficient × penalty} to the loss with {@link PenalizedLoss}. The fraction
 * of ones is yif-AI's {@code rounded_dropout_l1_norm} (detached).
 *
 * <p>Parameters, named as in yif-AI's {@code LearnedDropout}: {@code batch_attn_weights.weight} (3C, C) (plus
 * {@code batch_attn_weights.bias} if {@code useBias}) and {@code shift} (C), filled with {@code shiftInit}.
 *
 * <p>Deviation: the reference rounds through fp16 ({@code fp16(M) + fp16(scaling)}), which also rounds the gradient
 * reaching M to fp16; DJL casts are not differentiable, so this version stays in fp32, where {@code M + fl(1 − M)}
 * and {@code M − M} are still exactly 1 and 0, and passes the fp32 gradient through unrounded.
 */
public final class LearnedDropout extends AbstractBlock {

    /** What the mask is computed from (yif-AI's {@code DropoutInputType}). */
    public enum DropoutInputType {
        /** The tensor being masked (the FFN output). */
        HIDDEN_STATE,
        /** A second input, the pre-computed {@code dropout_embed} of the whole model. */
        EMBED
    }

    /** The sparsity penalty on the unrounded mask (yif-AI's {@code L1NormPenaltyType}). */
    public enum PenaltyType {
        /** {@code mean(M)}. */
        LINEAR,
        /** {@code mean(M²/2)}, the reference default. */
        SQUARED
    }

    private static final byte VERSION = 1;

    private final int embedDim;
    private final int numHeads;
    private final DropoutInputType inputType;
    private final boolean useDetachedInput;
    private final PenaltyType penaltyType;
    private final Linear batchAttnWeights;
    private final Parameter shift;

    private LearnedDropout(Builder builder, int embedDim, int numHeads, boolean useBias) {
        super(VERSION);
        this.embedDim = embedDim;
        this.numHeads = numHeads;
        inputType = builder.inputType;
        useDetachedInput = builder.useDetachedInput;
        penaltyType = builder.penaltyType;
        batchAttnWeights = addChildBlock(
                "batch_attn_weights", Linear.builder().setUnits(3L * embedDim).optBias(useBias).build());
        batchAttnWeights.setInitializer(new NormalInitializer(0.02f), Parameter.Type.WEIGHT);
        shift = addParameter(Parameter.builder()
                .setName("shift")
                .setType(Parameter.Type.OTHER)
                .optInitializer(new ConstantInitializer(builder.shiftInit))
                .optShape(new Shape(embedDim))
                .build());
    }

    /**
     * Creates a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * What the mask is computed from.
     *
     * @return {@code HIDDEN_STATE} (one input) or {@code EMBED} (a second input)
     */
    public DropoutInputType getDropoutInputType() {
        return inputType;
    }

    /**
     * The keep probabilities {@code M = 0.5·cos(CausalAttention(qkv) + shift) + 0.5}.
     *
     * @param qkv (B, T, 3C) output of {@code batch_attn_weights}
     * @param shift (C) the shift B
     * @param numHeads attention heads H, dividing C
     * @return (B, T, C) values in [0, 1]; row t depends on positions ≤ t only
     */
    public static NDArray keepProbability(NDArray qkv, NDArray shift, int numHeads) {
        NDArray cos = CausalAttention.attend(qkv, numHeads, 0f, false).add(shift).cos();
        NDArray half = Scalars.of(cos, 0.5);
        return cos.mul(half).add(half);
    }

    /**
     * Rounds M to exact 0/1 with the straight-through trick (yif-AI's {@code NOISE_AND_LINEAR}):
     * {@code M_r = M + stopGradient(where(keep, 1 − M, −M))}.
     *
     * @param m (any shape) keep probabilities in [0, 1]
     * @param uniform U[0, 1) draws of m's shape for a training pass ({@code keep = uniform ≤ M}), or null for the
     *     deterministic eval rule {@code keep = M ≥ 0.5}
     * @return m's shape, every element exactly 0 or 1; gradient with respect to m is the identity
     */
    public static NDArray round(NDArray m, NDArray uniform) {
        NDArray detached = m.stopGradient();
        NDArray keep = uniform == null ? detached.gte(Scalars.of(detached, 0.5)) : uniform.lte(detached);
        NDArray scaling = NDArrays.where(keep, Scalars.of(detached, 1).sub(detached), detached.neg());
        return m.add(scaling);
    }

    /**
     * The sparsity penalty of one module, from the unrounded mask.
     *
     * @param m (any shape) keep probabilities
     * @param type {@code SQUARED}: {@code mean(M²/2)}; {@code LINEAR}: {@code mean(M)}
     * @return () the penalty, differentiable
     */
    public static NDArray penalty(NDArray m, PenaltyType type) {
        if (type != PenaltyType.SQUARED) {
            return m.mean();
        }
        NDArray squared = m.square();
        return squared.mul(Scalars.of(squared, 0.5)).mean();
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.get(0);
        NDArray source = inputType == DropoutInputType.EMBED ? inputs.get(1) : x;
        if (useDetachedInput) {
            source = source.stopGradient();
        }
        NDArray qkv = batchAttnWeights.forward(parameterStore, new NDList(source), training).head();
        NDArray m = keepProbability(qkv, parameterStore.getValue(shift, x.getDevice(), training), numHeads);
        NDManager manager = x.getManager();
        NDArray uniform = training ? manager.randomUniform(0f, 1f, m.getShape(), m.getDataType(), m.getDevice()) : null;
        NDArray rounded = round(m, uniform);
        NDArray penalty = training ? penalty(m, penaltyType) : manager.zeros(new Shape(), m.getDataType());
        return new NDList(x.mul(rounded), penalty, rounded.stopGradient().mean());
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape sourceShape = inputShapes[inputType == DropoutInputType.EMBED ? 1 : 0];
        batchAttnWeights.initialize(manager, dataType, sourceShape);
    }

    /** {@inheritDoc} */
    @Override
    protected void beforeInitialize(Shape... inputShapes) {
        int needed = inputType == DropoutInputType.EMBED ? 2 : 1;
        if (inputShapes.length != needed) {
            throw new IllegalArgumentException(
                    "LearnedDropout with input type " + inputType + " takes " + needed + " input(s), got "
                            + inputShapes.length);
        }
        for (Shape s : inputShapes) {
            if (s.dimension() != 3 || s.get(2) != embedDim) {
                throw new IllegalArgumentException("inputs must be (B, T, " + embedDim + "), got " + s);
            }
        }
        super.beforeInitialize(inputShapes);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0], new Shape(), new Shape()};
    }

    /** Builder for {@link LearnedDropout}; options follow yif-AI's {@code LearnedDropoutConfig}. */
    public static final class Builder {

        private int embedDim;
        private int numHeads;
        private Boolean useBias;
        private float shiftInit;
        private boolean useDetachedInput;
        private DropoutInputType inputType = DropoutInputType.HIDDEN_STATE;
        private PenaltyType penaltyType = PenaltyType.SQUARED;

        private Builder() {}

        /**
         * Sets C, the channel count of the input (required, yif-AI's {@code embed_dim}).
         *
         * @param embedDim C &gt; 0
         * @return this builder
         */
        public Builder setEmbedDim(int embedDim) {
            this.embedDim = embedDim;
            return this;
        }

        /**
         * Sets H, the attention heads (required, yif-AI's {@code n_head}).
         *
         * @param numHeads H &gt; 0 dividing C
         * @return this builder
         */
        public Builder setNumHeads(int numHeads) {
            this.numHeads = numHeads;
            return this;
        }

        /**
         * Sets whether {@code batch_attn_weights} has a bias (default false).
         *
         * @param useBias yif-AI's {@code use_bias}
         * @return this builder
         */
        public Builder optUseBias(boolean useBias) {
            this.useBias = useBias;
            return this;
        }

        /**
         * Sets the initial value of every {@code shift} element (default 0; yif-AI tried 0, π/2 and π).
         *
         * @param shiftInit in [0, π]
         * @return this builder
         */
        public Builder optShiftInit(float shiftInit) {
            this.shiftInit = shiftInit;
            return this;
        }

        /**
         * Sets whether the mask's input is detached (default false).
         *
         * @param useDetachedInput yif-AI's {@code use_detached_input}
         * @return this builder
         */
        public Builder optUseDetachedInput(boolean useDetachedInput) {
            this.useDetachedInput = useDetachedInput;
            return this;
        }

        /**
         * Sets what the mask is computed from (default {@code HIDDEN_STATE}).
         *
         * @param inputType yif-AI's {@code dropout_input_type}
         * @return this builder
         */
        public Builder optDropoutInputType(DropoutInputType inputType) {
            this.inputType = inputType;
            return this;
        }

        /**
         * Sets the penalty (default {@code SQUARED}).
         *
         * @param penaltyType yif-AI's {@code l1_norm_penalty_type}
         * @return this builder
         */
        public Builder optPenaltyType(PenaltyType penaltyType) {
            this.penaltyType = penaltyType;
            return this;
        }

        DropoutInputType getDropoutInputType() {
            return inputType;
        }

        /**
         * Builds the block.
         *
         * @return a new {@link LearnedDropout}
         * @throws IllegalArgumentException if a required option is missing or out of range
         */
        public LearnedDropout build() {
            return build(embedDim, numHeads, Boolean.TRUE.equals(useBias));
        }

        /**
         * Builds the block for an enclosing model: C is the model's, and H and the bias switch default to the
         * model's where not set (yif-AI's {@code n_head = None}, {@code use_bias = None}). The builder is unchanged.
         */
        LearnedDropout buildFor(int modelEmbedDim, int modelNumHeads, boolean modelUseBias) {
            return build(modelEmbedDim, numHeads == 0 ? modelNumHeads : numHeads,
                    useBias == null ? modelUseBias : useBias);
        }

        private LearnedDropout build(int c, int h, boolean bias) {
            if (c <= 0) {
                throw new IllegalArgumentException("embedDim (" + c + ") must be > 0: call setEmbedDim");
            }
            if (h <= 0 || c % h != 0) {
                throw new IllegalArgumentException("numHeads (" + h + ") must be > 0 and divide embedDim (" + c + ")");
            }
            if (!(shiftInit >= 0f && shiftInit <= (float) Math.PI)) {
                throw new IllegalArgumentException("shiftInit (" + shiftInit + ") must be in [0, π]");
            }
            if (inputType == null || penaltyType == null) {
                throw new IllegalArgumentException("dropoutInputType and penaltyType must not be null");
            }
            return new LearnedDropout(this, c, h, bias);
        }
    }
}
