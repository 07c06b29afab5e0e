package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.util.PairList;
import dev.condjl.cuda.FusedNorm;

/**
 * The reference's {@code RMSNorm(dim)}: {@code y = x / max(‖x‖₂, 1e-12) · √dim · gamma} over the last axis.
 *
 * <p>Parameter: {@code gamma (dim)}, initialised to ones. Input and output {@code (..., dim)}.
 *
 * <p>Where libtorch has it ({@link FusedNorm}), this is one fused op, {@code x / √(mean(x²) + 1e-24/dim) · gamma}
 * (the same value but for rows of norm near 1e-12 or below); else DJL's {@code normalize} and a multiply.
 */
public final class RMSNorm extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final Parameter gamma;

    /**
     * Creates the norm.
     *
     * @param dim the size of the last axis, {@code > 0}
     * @throws IllegalArgumentException if {@code dim <= 0}
     */
    public RMSNorm(int dim) {
        super(VERSION);
        if (dim <= 0) {
            throw new IllegalArgumentException("dim (" + dim + ") must be > 0");
        }
        this.dim = dim;
        gamma = addParameter(Parameter.builder().setName("gamma").setType(Parameter.Type.GAMMA)
                .optInitializer(Initializer.ONES).optShape(new Shape(dim)).build());
    }

    /**
     * Normalises {@code x} with this block's {@code gamma}.
     *
     * @param ps the parameter store
     * @param x (..., dim) input
     * @param training whether in training mode
     * @return (..., dim) {@code normalize(x) · (√dim · gamma)}
     */
    public NDArray apply(ParameterStore ps, NDArray x, boolean training) {
        Inputs.checkLastDim("x", x, dim);
        NDArray g = ps.getValue(gamma, x.getDevice(), training);
        if (FusedNorm.supports(x, g)) {
            // x/rms(x) is x/‖x‖·√dim: the reference's scale is built in
            return FusedNorm.rmsNorm(x, g, Tensors.NORM_EPS * Tensors.NORM_EPS / dim);
        }
        // √dim folded into gamma: one pass over x fewer (differs from (normed·√dim)·gamma by at most an ulp)
        NDArray scaledGamma = Tensors.own(g.mul(Tensors.scalar(x, Math.sqrt(dim))), x);
        return x.normalize(2, -1, Tensors.NORM_EPS).mul(scaledGamma);
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
