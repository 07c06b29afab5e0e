package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import dev.condjl.cuda.AttentionPrecision;

/**
 * The reference's {@code ConditionalRoutedViT} (module {@code colt5_attention.vit}; spec colt5.md §1.11, §2.12): an
 * image classifier whose layers are {@link ConditionalRoutedImageAttention} and
 * {@link ConditionalRoutedFeedForward}.
 *
 * <pre>
 *   x = to_patch_embedding(img)     (b, c, H, W) → (b, H/p, W/p, p·p·c) → LayerNorm → Linear(dim) → LayerNorm
 *   x = x + posemb_sincos_2d(x)     fixed 2-D sin-cos position code, not a parameter
 *   x = transformer(x)              per layer: x = attn(x) + x on the grid, x = ff(x) + x on the flattened grid
 *   logits = linear_head(x)         mean over the grid → LayerNorm → Linear(numClasses)
 * </pre>
 *
 * <p>Within a patch vector the order is patch row, patch column, then channel (einops
 * {@code b c (h p1) (w p2) -> b h w (p1 p2 c)}). Routers use ε = {@code defaultCoorDescentEps} (1.0) unless a
 * {@code routerKwargs} template is given, which then decides every router option including ε.
 *
 * <p>Fixes against the reference: its README configuration ({@code Kq} = tokens per window) crashes in the image
 * attention; here such windows route every token to the heavy branch (see {@link ConditionalRoutedImageAttention}).
 *
 * <p>{@code state_dict}: {@code to_patch_embedding.1.weight/bias (p·p·c)}, {@code to_patch_embedding.2.weight
 * (dim, p·p·c)}, {@code to_patch_embedding.2.bias}, {@code to_patch_embedding.3.weight/bias (dim)},
 * {@code transformer.layers.L.0.*} (image attention), {@code transformer.layers.L.1.*} (routed feed-forward),
 * {@code linear_head.1.weight/bias (dim)}, {@code linear_head.2.weight (numClasses, dim)},
 * {@code linear_head.2.bias}. Input {@code img (b, channels, H, W)}, output logits {@code (b, numClasses)}.
 *
 * <p>The patch embedding and position code are {@link PatchEmbedding}'s, the layer stack is {@link ViTTransformer}.
 * What stays here is one concept, the classifier and its builder; the builder is long because the reference has
 * twenty keyword arguments, each a setter with its javadoc.
 */
public final class ConditionalRoutedViT extends AbstractBlock {

    private static final byte VERSION = 1;

    private final Sequential toPatchEmbedding;
    private final ViTTransformer transformer;
    private final Sequential linearHead;

    private ConditionalRoutedViT(Builder builder) {
        super(VERSION);
        toPatchEmbedding = addChildBlock("to_patch_embedding",
                PatchEmbedding.toPatchEmbedding(builder.channels, builder.patchHeight, builder.patchWidth, builder.dim));
        transformer = addChildBlock("transformer", new ViTTransformer(builder));
        linearHead = addChildBlock("linear_head", new Sequential());
        linearHead.add(LambdaBlock.singleton(ConditionalRoutedViT::meanOverGrid, "mean"));
        linearHead.add(new LayerNorm());
        linearHead.add(Linear.builder().setUnits(builder.numClasses).build());
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
     * The reference's {@code posemb_sincos_2d}, the position code {@link #apply} adds to the patch tokens.
     *
     * @param manager where the result is created
     * @param height grid rows
     * @param width grid columns
     * @param dim feature size, a multiple of 4 and at least 8
     * @return float32 {@code (height, width, dim)}, see {@link PatchEmbedding#posembSincos2d}
     * @throws IllegalArgumentException if {@code dim} is not a multiple of 4 or is below 8
     */
    public static NDArray posembSincos2d(NDManager manager, int height, int width, int dim) {
        return PatchEmbedding.posembSincos2d(manager, height, width, dim);
    }

    /**
     * Classifies images.
     *
     * @param ps the parameter store
     * @param img {@code (b, channels, H, W)}, H and W multiples of the patch size
     * @param training whether in training mode
     * @return logits {@code (b, numClasses)}
     * @throws IllegalArgumentException if the image shape does not fit
     */
    public NDArray apply(ParameterStore ps, NDArray img, boolean training) {
        NDArray x = toPatchEmbedding.forward(ps, new NDList(img), training).head();
        Shape s = x.getShape();
        NDArray pe = PatchEmbedding.posembSincos2d(x.getManager(), (int) s.get(1), (int) s.get(2), (int) s.get(3));
        x = transformer.forward(ps, new NDList(x.add(pe)), training).head();
        return linearHead.forward(ps, new NDList(x), training).head();
    }

    /** einops {@code Reduce('b h w c -> b c', 'mean')}. */
    private static NDArray meanOverGrid(NDArray x) {
        Shape s = x.getShape();
        return x.reshape(s.get(0), -1, s.get(3)).mean(new int[] {1});
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(apply(ps, inputs.head(), training));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        toPatchEmbedding.initialize(manager, dataType, inputShapes[0]);
        Shape grid = toPatchEmbedding.getOutputShapes(new Shape[] {inputShapes[0]})[0];
        transformer.initialize(manager, dataType, grid);
        linearHead.initialize(manager, dataType, grid);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape grid = toPatchEmbedding.getOutputShapes(new Shape[] {inputShapes[0]})[0];
        return linearHead.getOutputShapes(new Shape[] {grid});
    }

    /** Builder; options are the reference's keyword arguments ({@code router_use_triton}, {@code flash_attn}: none). */
    public static final class Builder {
        int imageHeight;
        int imageWidth;
        int patchHeight;
        int patchWidth;
        int numClasses;
        int dim;
        int depth;
        int attnNumHeavyTokensQ;
        int attnNumHeavyTokensKv;
        int attnHeavyDimHead;
        int attnHeavyHeads;
        int attnLightDimHead;
        int attnLightHeads;
        int attnLightWindowSize;
        int ffNumHeavyTokens;
        double ffHeavyMult;
        double ffLightMult;
        int channels = 3;
        boolean routerStraightThrough = true;
        boolean zeroInitHeavyBranch;
        CoordinateDescentRouter.Builder routerKwargs;
        int attnNumRoutedKv = 1;
        double defaultCoorDescentEps = 1.0;
        AttentionPrecision attentionPrecision = AttentionPrecision.INPUT;

        private Builder() {}

        /**
         * Sets a square image size (required).
         *
         * @param imageSize height and width in pixels
         * @return this builder
         */
        public Builder setImageSize(int imageSize) {
            return setImageSize(imageSize, imageSize);
        }

        /**
         * Sets the image size (required).
         *
         * @param height pixels
         * @param width pixels
         * @return this builder
         */
        public Builder setImageSize(int height, int width) {
            this.imageHeight = height;
            this.imageWidth = width;
            return this;
        }

        /**
         * Sets a square patch size (required).
         *
         * @param patchSize patch height and width
         * @return this builder
         */
        public Builder setPatchSize(int patchSize) {
            return setPatchSize(patchSize, patchSize);
        }

        /**
         * Sets the patch size (required).
         *
         * @param height patch rows
         * @param width patch columns
         * @return this builder
         */
        public Builder setPatchSize(int height, int width) {
            this.patchHeight = height;
            this.patchWidth = width;
            return this;
        }

        /**
         * Sets the number of classes (required).
         *
         * @param numClasses {@code > 0}
         * @return this builder
         */
        public Builder setNumClasses(int numClasses) {
            this.numClasses = numClasses;
            return this;
        }

        /**
         * Sets the model width (required).
         *
         * @param dim a multiple of 4, at least 8
         * @return this builder
         */
        public Builder setDim(int dim) {
            this.dim = dim;
            return this;
        }

        /**
         * Sets the number of layers (required).
         *
         * @param depth {@code > 0}
         * @return this builder
         */
        public Builder setDepth(int depth) {
            this.depth = depth;
            return this;
        }

        /**
         * Sets the queries routed per attention window (required).
         *
         * @param k {@code > 0}
         * @return this builder
         */
        public Builder setAttnNumHeavyTokensQ(int k) {
            this.attnNumHeavyTokensQ = k;
            return this;
        }

        /**
         * Sets the keys/values routed per attention window and route (required).
         *
         * @param k {@code > 0}
         * @return this builder
         */
        public Builder setAttnNumHeavyTokensKv(int k) {
            this.attnNumHeavyTokensKv = k;
            return this;
        }

        /**
         * Sets the heavy attention's head dimension (required).
         *
         * @param dimHead {@code > 0}
         * @return this builder
         */
        public Builder setAttnHeavyDimHead(int dimHead) {
            this.attnHeavyDimHead = dimHead;
            return this;
        }

        /**
         * Sets the heavy attention's heads (required).
         *
         * @param heads {@code > 0}, divisible by {@code attnNumRoutedKv}
         * @return this builder
         */
        public Builder setAttnHeavyHeads(int heads) {
            this.attnHeavyHeads = heads;
            return this;
        }

        /**
         * Sets the light attention's head dimension (required).
         *
         * @param dimHead {@code > 0}
         * @return this builder
         */
        public Builder setAttnLightDimHead(int dimHead) {
            this.attnLightDimHead = dimHead;
            return this;
        }

        /**
         * Sets the light attention's heads (required).
         *
         * @param heads {@code > 0}
         * @return this builder
         */
        public Builder setAttnLightHeads(int heads) {
            this.attnLightHeads = heads;
            return this;
        }

        /**
         * Sets the attention window side in patches (required); the patch grid must be a multiple of it.
         *
         * @param windowSize {@code > 0}
         * @return this builder
         */
        public Builder setAttnLightWindowSize(int windowSize) {
            this.attnLightWindowSize = windowSize;
            return this;
        }

        /**
         * Sets the tokens routed to the heavy feed-forward per image (required).
         *
         * @param k {@code > 0}
         * @return this builder
         */
        public Builder setFfNumHeavyTokens(int k) {
            this.ffNumHeavyTokens = k;
            return this;
        }

        /**
         * Sets the heavy feed-forward's hidden multiplier (required).
         *
         * @param mult {@code > 0}
         * @return this builder
         */
        public Builder setFfHeavyMult(double mult) {
            this.ffHeavyMult = mult;
            return this;
        }

        /**
         * Sets the light feed-forward's hidden multiplier (required).
         *
         * @param mult {@code > 0}
         * @return this builder
         */
        public Builder setFfLightMult(double mult) {
            this.ffLightMult = mult;
            return this;
        }

        /**
         * Sets the image channels.
         *
         * @param channels default 3
         * @return this builder
         */
        public Builder optChannels(int channels) {
            this.channels = channels;
            return this;
        }

        /**
         * Whether the routers' scores are straight-through.
         *
         * @param routerStraightThrough default true
         * @return this builder
         */
        public Builder optRouterStraightThrough(boolean routerStraightThrough) {
            this.routerStraightThrough = routerStraightThrough;
            return this;
        }

        /**
         * Sets every router's options ({@code router_kwargs}); the template's own ε is then used.
         *
         * @param routerKwargs a router builder used as a template (copied), or null for the defaults with ε =
         *     {@code defaultCoorDescentEps}
         * @return this builder
         */
        public Builder optRouterKwargs(CoordinateDescentRouter.Builder routerKwargs) {
            this.routerKwargs = routerKwargs;
            return this;
        }

        /**
         * Whether every layer's heavy branches start at zero (not in the reference; see
         * {@link RoutedBuilder#optZeroInitHeavyBranch}).
         *
         * @param zeroInitHeavyBranch default false
         * @return this builder
         */
        public Builder optZeroInitHeavyBranch(boolean zeroInitHeavyBranch) {
            this.zeroInitHeavyBranch = zeroInitHeavyBranch;
            return this;
        }

        /**
         * Sets the number of kv routes in the attention.
         *
         * @param routes default 1
         * @return this builder
         */
        public Builder optAttnNumRoutedKv(int routes) {
            this.attnNumRoutedKv = routes;
            return this;
        }

        /**
         * Sets the precision of every layer's light and heavy attention, as
         * {@link MultiHeadBuilder#optAttentionPrecision} does for one attention.
         *
         * @param attentionPrecision default {@link AttentionPrecision#INPUT} (float32, as the reference)
         * @return this builder
         */
        public Builder optAttentionPrecision(AttentionPrecision attentionPrecision) {
            this.attentionPrecision = Builders.required("attentionPrecision", attentionPrecision);
            return this;
        }

        /**
         * Sets the routers' ε when no {@code routerKwargs} template is given.
         *
         * @param eps default 1.0
         * @return this builder
         */
        public Builder optDefaultCoorDescentEps(double eps) {
            this.defaultCoorDescentEps = eps;
            return this;
        }

        /**
         * Builds the model.
         *
         * @return the model
         * @throws IllegalArgumentException if a size is missing or out of range, the image is not a multiple of the
         *     patch, or the patch grid is not a multiple of the attention window
         */
        public ConditionalRoutedViT build() {
            Builders.positive("imageSize", Math.min(imageHeight, imageWidth));
            Builders.positive("patchSize", Math.min(patchHeight, patchWidth));
            Builders.positive("numClasses", numClasses);
            Builders.positive("depth", depth);
            Builders.positive("channels", channels);
            Builders.positive("attnLightWindowSize", attnLightWindowSize);
            if (imageHeight % patchHeight != 0 || imageWidth % patchWidth != 0) {
                throw new IllegalArgumentException("image size (" + imageHeight + ", " + imageWidth
                        + ") must be divisible by the patch size (" + patchHeight + ", " + patchWidth + ")");
            }
            int gridH = imageHeight / patchHeight;
            int gridW = imageWidth / patchWidth;
            if (gridH % attnLightWindowSize != 0 || gridW % attnLightWindowSize != 0) {
                throw new IllegalArgumentException("patch grid (" + gridH + ", " + gridW
                        + ") must be divisible by attnLightWindowSize (" + attnLightWindowSize + ")");
            }
            if (dim % 4 != 0 || dim < 8) {
                throw new IllegalArgumentException("dim (" + dim + ") must be a multiple of 4 and >= 8");
            }
            return new ConditionalRoutedViT(this);
        }
    }
}
