package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The routed ViT's {@code Transformer} ({@code colt5_attention.vit.Transformer}): {@code layers.L.0} a
 * {@link ConditionalRoutedImageAttention} (channel-last, null query tokens on) and {@code layers.L.1} a
 * {@link ConditionalRoutedFeedForward}. Per layer {@code x = attn(x) + x} on {@code (b, h, w, dim)}, then
 * {@code x = ff(x) + x} on the flattened {@code (b, h·w, dim)}; output {@code (b, h, w, dim)}.
 */
public final class ViTTransformer extends AbstractBlock {

    private static final byte VERSION = 1;

    private final Sequential layers;

    ViTTransformer(ConditionalRoutedViT.Builder builder) {
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
                    .optZeroInitHeavyBranch(builder.zeroInitHeavyBranch)
                    .optAttentionPrecision(builder.attentionPrecision)
                    .build();
            ConditionalRoutedFeedForward ff = ConditionalRoutedFeedForward.builder()
                    .setDim(builder.dim)
                    .setNumHeavyTokens(builder.ffNumHeavyTokens)
                    .optLightFfMult(builder.ffLightMult)
                    .optHeavyFfMult(builder.ffHeavyMult)
                    .optRouterStraightThrough(builder.routerStraightThrough)
                    .optRouterKwargs(router)
                    .optZeroInitHeavyBranch(builder.zeroInitHeavyBranch)
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
}
