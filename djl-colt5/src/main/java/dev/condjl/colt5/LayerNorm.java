package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * {@code torch.nn.LayerNorm(dim)}: normalisation over the last axis with an affine {@code weight} and {@code bias}.
 *
 * <p>{@code y = (x - mean(x)) / sqrt(var(x) + eps) · weight + bias} over the last axis, biased variance,
 * {@code eps = 1e-5}. Unlike DJL's {@code LayerNorm} it always normalises the last axis whatever the rank, and its
 * parameters carry PyTorch's {@code state_dict} names ({@code weight} = 1 and {@code bias} = 0 initially).
 */
public final class LayerNorm extends AbstractBlock {

    private static final byte VERSION = 1;
    private static final float EPS = 1e-5f;

    private final Parameter weight;
    private final Parameter bias;

    /** Creates a layer norm whose size is taken from the last axis of the first input. */
    public LayerNorm() {
        super(VERSION);
        weight = addParameter(Parameter.builder().setName("weight").setType(Parameter.Type.GAMMA).build());
        bias = addParameter(Parameter.builder().setName("bias").setType(Parameter.Type.BETA).build());
    }

    /** {@inheritDoc} */
    @Override
    protected void prepare(Shape[] inputShapes) {
        Shape last = new Shape(inputShapes[0].tail());
        weight.setShape(last);
        bias.setShape(last);
    }

    /**
     * Normalises {@code x (..., d)} over its last axis.
     *
     * @param ps the parameter store
     * @param inputs {@code x (..., d)}
     * @param training whether in training
     * @param params unused
     * @return {@code (..., d)}
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        NDArray w = ps.getValue(weight, x.getDevice(), training);
        NDArray b = ps.getValue(bias, x.getDevice(), training);
        return x.getNDArrayInternal().layerNorm(x, new Shape(x.getShape().tail()), w, b, EPS);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
