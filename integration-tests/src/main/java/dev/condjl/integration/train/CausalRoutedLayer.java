package dev.condjl.integration.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import dev.condjl.colt5.ConditionalRoutedAutoregressiveAttention;
import dev.condjl.colt5.FeedForward;

/**
 * A decoder layer for the character model: the reference's {@code ConditionalRoutedAutoregressiveAttention} and a
 * dense feed-forward, each with its residual, as {@code ConditionalRoutedTransformerBlock} arranges its two branches:
 *
 * <pre>
 *   h = attn(x) + x            causal: light local attention + heavy attention routed window by window
 *   return ff(h) + h           FeedForward(dim, 4): RMSNorm, Linear, GELU, Linear
 * </pre>
 *
 * <p>The feed-forward is dense because a routed one picks its top-k over the whole sequence, so whether a token took
 * the heavy path would depend on later tokens, and generation would not see what training saw. Children
 * ({@code state_dict} prefixes): {@code attn}, {@code ff}. Input and output {@code (b, n, dim)},
 * {@code n >= lightWindow}.
 */
public final class CausalRoutedLayer extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final ConditionalRoutedAutoregressiveAttention attn;
    private final FeedForward ff;

    /**
     * Builds the layer.
     *
     * @param attn the routed causal attention
     * @param dim the model width
     */
    public CausalRoutedLayer(ConditionalRoutedAutoregressiveAttention attn, int dim) {
        super(VERSION);
        this.dim = dim;
        this.attn = addChildBlock("attn", attn);
        this.ff = addChildBlock("ff", FeedForward.builder().setDim(dim).optMult(4).build());
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        NDArray h = attn.apply(ps, x, null, null, false, training).add(x);
        return new NDList(ff.apply(ps, h, training).add(h));
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape in = new Shape(1, 1, dim);
        attn.initialize(manager, dataType, in);
        ff.initialize(manager, dataType, in);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
