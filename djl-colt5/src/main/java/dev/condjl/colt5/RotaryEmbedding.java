package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The reference's {@code RotaryEmbedding(dim, theta=10000)} ("rotate half" style) used by the heavy branch.
 *
 * <p>Persistent buffer {@code inv_freq (dim/2)} = {@code 1 / θ^(2j/dim)}, a parameter with
 * {@code requiresGradient() == false}. {@link #freqs} gives {@code (n, dim)} = {@code [t·inv_freq, t·inv_freq]}
 * for positions {@code t = 0..n-1}; {@link #rotate} applies {@code x·cos(pos) + rotate_half(x)·sin(pos)} with
 * {@code rotate_half([x1, x2]) = [-x2, x1]}.
 */
public final class RotaryEmbedding extends AbstractBlock {

    private static final byte VERSION = 1;
    private static final double THETA = 10000;

    private final int dim;
    private final Parameter invFreq;

    /**
     * Creates the embedding.
     *
     * @param dim rotated feature size (the head dimension), even and {@code > 0}
     * @throws IllegalArgumentException if {@code dim} is odd or not positive
     */
    public RotaryEmbedding(int dim) {
        super(VERSION);
        if (dim <= 0 || dim % 2 != 0) {
            throw new IllegalArgumentException("rotary dim (" + dim + ") must be even and > 0");
        }
        this.dim = dim;
        invFreq = addParameter(Parameter.builder().setName("inv_freq").setType(Parameter.Type.OTHER)
                .optShape(new Shape(dim / 2)).optRequiresGrad(false)
                .optInitializer((manager, shape, dataType) -> {
                    // float32 throughout, in the reference's order: 1 / theta ** (arange(0, dim, 2) / dim)
                    NDArray exponent = manager.arange(0, dim, 2, DataType.FLOAT32).div(dim);
                    return manager.ones(shape).div(manager.create((float) THETA).pow(exponent));
                })
                .build());
    }

    /**
     * Rotation angles for positions {@code 0..seqLen-1}.
     *
     * @param ps the parameter store
     * @param seqLen number of positions
     * @param like an array of this call (its manager and device receive the result)
     * @param training whether in training mode
     * @return (seqLen, dim) float32 angles
     */
    public NDArray freqs(ParameterStore ps, long seqLen, NDArray like, boolean training) {
        NDArray t = like.getManager().arange(0f, (float) seqLen, 1f, DataType.FLOAT32, like.getDevice());
        NDArray f = t.expandDims(1).mul(ps.getValue(invFreq, like.getDevice(), training));
        return f.concat(f, -1);
    }

    /**
     * Rotates features by angles.
     *
     * @param x (..., n, dim) features
     * @param pos angles broadcastable to {@code x}
     * @return {@code x·cos(pos) + rotate_half(x)·sin(pos)}
     */
    public static NDArray rotate(NDArray x, NDArray pos) {
        int last = x.getShape().dimension() - 1;
        NDList halves = x.split(new long[] {x.getShape().tail() / 2}, last);
        NDArray rotated = halves.get(1).neg().concat(halves.get(0), -1);
        return x.mul(pos.cos()).add(rotated.mul(pos.sin()));
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        return new NDList(freqs(ps, x.getShape().get(x.getShape().dimension() - 2), x, training));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape in = inputShapes[0];
        return new Shape[] {new Shape(in.get(in.dimension() - 2), dim)};
    }
}
