package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.util.PairList;

/**
 * PyTorch's {@code nn.LayerNorm(dim)}: normalisation over the last axis with eps 1e-5 and the parameter names
 * {@code weight} and {@code bias} (DJL's own LayerNorm names them {@code gamma}/{@code beta} and normalises over
 * every non-batch axis by default). Input and output {@code (..., dim)}.
 */
public final class LastAxisLayerNorm extends AbstractBlock {

    private static final byte VERSION = 1;
    private static final float EPS = 1e-5f;

    private final int dim;
    private final Parameter weight;
    private final Parameter bias;

    /**
     * Creates the norm with weight ones and bias zeros.
     *
     * @param dim size of the last axis, {@code > 0}
     * @throws IllegalArgumentException if {@code dim <= 0}
     */
    public LastAxisLayerNorm(int dim) {
        super(VERSION);
        Builders.positive("dim", dim);
        this.dim = dim;
        weight = addParameter(Parameter.builder().setName("weight").setType(Parameter.Type.GAMMA)
                .optInitializer(Initializer.ONES).optShape(new Shape(dim)).build());
        bias = addParameter(Parameter.builder().setName("bias").setType(Parameter.Type.BETA)
                .optInitializer(Initializer.ZEROS).optShape(new Shape(dim)).build());
    }

    /**
     * Normalises {@code x}.
     *
     * @param ps the parameter store
     * @param x (..., dim) input
     * @param training whether in training mode
     * @return (..., dim) {@code (x - mean) / sqrt(var + 1e-5) · weight + bias}
     */
    public NDArray apply(ParameterStore ps, NDArray x, boolean training) {
        Inputs.checkLastDim("x", x, dim);
        return LayerNorm.layerNorm(x, new Shape(dim), ps.getValue(weight, x.getDevice(), training),
                ps.getValue(bias, x.getDevice(), training), EPS).head();
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(apply(ps, inputs.head(), training));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
