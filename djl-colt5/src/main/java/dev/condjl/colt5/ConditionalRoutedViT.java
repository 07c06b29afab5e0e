package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

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
 */
public final class ConditionalRoutedViT extends AbstractBlock {

    private static final byte VERSION = 1;
    private static final double TEMPERATURE = 10000;

    private final int channels;
    private final int patchHeight;
    private final int patchWidth;
    private final Sequential toPatchEmbedding;
    private final Transformer transformer;
    private final Sequential linearHead;

    private ConditionalRoutedViT(Builder builder) {
        super(VERSION);
        channels = builder.channels;
        patchHeight = builder.patchHeight;
        patchWidth = builder.patchWidth;
        toPatchEmbedding = addChildBlock("to_patch_embedding", new Sequential());
        toPatchEmbedding.add(LambdaBlock.singleton(this::patchify, "patchify"));
        toPatchEmbedding.add(new LayerNorm());
        toPatchEmbedding.add(Linear.builder().setUnits(builder.dim).build());
        toPatchEmbedding.add(new LayerNorm());
        transformer = addChildBlock("transformer", new Transformer(builder));
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
     * The reference's {@code posemb_sincos_2d}: for the grid cell at row {@code y}, column {@code x},
     * {@code pe = [sin(x·ω), cos(x·ω), sin(y·ω), cos(y·ω)]} with {@code ω_j = 10000^(−j/(dim/4 − 1))},
     * {@code j = 0..dim/4−1}, computed in float32 as the reference does.
     *
     * @param manager where the result is created
     * @param height grid rows
     * @param width grid columns
     * @param dim feature size, a multiple of 4 and at least 8
     * @return float32 {@code (height, width, dim)}
     * @throws IllegalArgumentException if {@code dim} is not a multiple of 4 or is below 8
     */
    public static NDArray posembSincos2d(NDManager manager, int height, int width, int dim) {
        if (dim % 4 != 0 || dim < 8) {
            throw new IllegalArgumentException(
                    "feature dimension (" + dim + ") must be a multiple of 4 and >= 8 for the sin-cos embedding");
        }
        int quarter = dim / 4;
        float[] omega = new float[quarter];
        for (int j = 0; j < quarter; j++) {
            float exponent = (float) j / (float) (quarter - 1);
            omega[j] = (float) (1.0 / (float) Math.pow(TEMPERATURE, exponent));
        }
        float[] pe = new float[height * width * dim];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int base = (y * width + x) * dim;
                for (int j = 0; j < quarter; j++) {
                    float ax = x * omega[j];
                    float ay = y * omega[j];
                    pe[base + j] = (float) Math.sin(ax);
                    pe[base + quarter + j] = (float) Math.cos(ax);
                    pe[base + 2 * quarter + j] = (float) Math.sin(ay);
                    pe[base + 3 * quarter + j] = (float) Math.cos(ay);
                }
            }
        }
        return manager.create(pe, new Shape(height, width, dim));
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
        NDArray pe = posembSincos2d(x.getManager(), (int) s.get(1), (int) s.get(2), (int) s.get(3));
        x = transformer.forward(ps, new NDList(x.add(pe)), training).head();
        return linearHead.forward(ps, new NDList(x), training).head();
    }

    /** einops {@code b c (h p1) (w p2) -> b h w (p1 p2 c)}, with the image checks. */
    private NDArray patchify(NDArray img) {
        Shape s = img.getShape();
        if (s.dimension() != 4 || s.get(1) != channels || s.get(2) % patchHeight != 0
                || s.get(3) % patchWidth != 0) {
            throw new IllegalArgumentException("img must have shape (b, " + channels + ", H, W) with H a multiple of "
                    + patchHeight + " and W a multiple of " + patchWidth + ", got " + s);
        }
        long b = s.get(0);
        long h = s.get(2) / patchHeight;
        long w = s.get(3) / patchWidth;
        return img.reshape(b, channels, h, patchHeight, w, patchWidth)
                .transpose(0, 2, 4, 3, 5, 1)
                .reshape(b, h, w, (long) patchHeight * patchWidth * channels);
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

    /**
     * The ViT's {@code Transformer} ({@code colt5_attention.vit.Transformer}): {@code layers.L.0} a
     * {@link ConditionalRoutedImageAttention} (channel-last, null query tokens on) and {@code layers.L.1} a
     * {@link ConditionalRoutedFeedForward}. Per layer {@code x = attn(x) + x} on {@code (b, h, w, dim)}, then
     * {@code x = ff(x) + x} on the flattened {@code (b, h·w, dim)}; output {@code (b, h, w, dim)}.
     */
    public static final class Transformer extends AbstractBlock {

        private final Sequential layers;

        private Transformer(Builder builder) {
            super(VERSION);
            CoordinateDescentRouter.Builder router = builder.routerKwargs != null
                    ? builder.routerKwargs
                    : CoordinateDescentRouter.builder().optEps(builder.defaultCoorDescentEps);
            layers = addChildBlock("layers", new Sequential());
            for (int i = 0; i < builder.depth; i++) {
                ConditionalRoutedImageAttention attn = ConditionalRoutedImageAttention.builder()
                        .setDim(builder.dim)
                        .setNumHeavyTokensQ(builder.attnNumHeavyTokensQ)
                        .setNumHeavyTokensKv(builder.attnNumHeavyTokensKv)
                        .optNumRoutedKv(builder.attnNumRoutedKv)
                        .optLightDimHead(builder.attnLightDimHead)
                        .optLightHeads(builder.attnLightHeads)
                        .optLightWindowSize(builder.attnLightWindowSize)
                        .optHeavyDimHead(builder.attnHeavyDimHead)
                        .optHeavyHeads(builder.attnHeavyHeads)
                        .optRouterStraightThrough(builder.routerStraightThrough)
                        .optRouterKwargs(router)
                        .build();
                ConditionalRoutedFeedForward ff = ConditionalRoutedFeedForward.builder()
                        .setDim(builder.dim)
                        .setNumHeavyTokens(builder.ffNumHeavyTokens)
                        .optLightFfMult(builder.ffLightMult)
                        .optHeavyFfMult(builder.ffHeavyMult)
                        .optRouterStraightThrough(builder.routerStraightThrough)
                        .optRouterKwargs(router)
                        .build();
                layers.add(new Layer(attn, ff));
            }
        }

        /** {@inheritDoc} */
        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            return layers.forward(ps, inputs, training);
        }

        /** {@inheritDoc} */
        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            layers.initialize(manager, dataType, inputShapes);
        }

        /** {@inheritDoc} */
        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }
    }

    /** One layer ({@code layers.L}): attention on the grid, feed-forward on the flattened grid, both residual. */
    private static final class Layer extends AbstractBlock {

        private final Block attn;
        private final Block ff;

        Layer(Block attn, Block ff) {
            super(VERSION);
            this.attn = addChildBlock("0", attn);
            this.ff = addChildBlock("1", ff);
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            NDArray x = inputs.head();
            Shape grid = x.getShape();
            x = attn.forward(ps, new NDList(x), training).head().add(x);
            NDArray flat = x.reshape(grid.get(0), -1, grid.get(3));
            flat = ff.forward(ps, new NDList(flat), training).head().add(flat);
            return new NDList(flat.reshape(grid));
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            Shape grid = inputShapes[0];
            attn.initialize(manager, dataType, grid);
            ff.initialize(manager, dataType, new Shape(grid.get(0), grid.get(1) * grid.get(2), grid.get(3)));
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }
    }

    /** Builder; options are the reference's keyword arguments ({@code router_use_triton}, {@code flash_attn}: none). */
    public static final class Builder {
        private int imageHeight;
        private int imageWidth;
        private int patchHeight;
        private int patchWidth;
        private int numClasses;
        private int dim;
        private int depth;
        private int attnNumHeavyTokensQ;
        private int attnNumHeavyTokensKv;
        private int attnHeavyDimHead;
        private int attnHeavyHeads;
        private int attnLightDimHead;
        private int attnLightHeads;
        private int attnLightWindowSize;
        private int ffNumHeavyTokens;
        private double ffHeavyMult;
        private double ffLightMult;
        private int channels = 3;
        private boolean routerStraightThrough = true;
        private CoordinateDescentRouter.Builder routerKwargs;
        private int attnNumRoutedKv = 1;
        private double defaultCoorDescentEps = 1.0;

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
