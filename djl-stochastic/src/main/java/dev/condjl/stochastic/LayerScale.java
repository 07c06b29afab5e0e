package dev.condjl.stochastic;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.ConstantInitializer;
import ai.djl.util.PairList;

/**
 * DINOv2 / timm {@code LayerScale}: a learned per-channel scale {@code gamma} of shape {@code (d)},
 * initialised to {@code initValues} (DINOv2 uses 1e-5). Maps {@code (..., d)} to {@code x * gamma}.
 * The parameter is named {@code gamma} like the reference's state_dict key.
 */
public final class LayerScale extends AbstractBlock {

    private static final byte VERSION = 1;

    private final Parameter gamma;

    /**
     * Creates a LayerScale; the channel count is taken from the input's last axis.
     *
     * @param initValues the initial value of every entry of {@code gamma}
     */
    public LayerScale(float initValues) {
        super(VERSION);
        // Type OTHER: a trainer's default initializer for WEIGHT/GAMMA must not override it
        gamma =
                addParameter(
                        Parameter.builder()
                                .setName("gamma")
                                .setType(Parameter.Type.OTHER)
                                .optInitializer(new ConstantInitializer(initValues))
                                .build());
    }

    /** {@inheritDoc} */
    @Override
    protected void prepare(Shape[] inputShapes) {
        Shape in = inputShapes[0];
        gamma.setShape(new Shape(in.get(in.dimension() - 1)));
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        return new NDList(x.mul(parameterStore.getValue(gamma, x.getDevice(), training)));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }
}
