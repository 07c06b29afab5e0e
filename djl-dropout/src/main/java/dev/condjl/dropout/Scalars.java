package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * Native 0-dim constants for arithmetic on gradient paths.
 *
 * <p>DJL's {@code mul(Number)} and {@code div(Number)} wrap the number in a tensor over a Java buffer that is
 * released right after the operation, while autograd keeps that tensor for the backward pass: a garbage
 * collection in between corrupts the gradient. A tensor made by {@code full} owns native memory. On a GPU the
 * wrapped number is also copied from the host, which waits for all queued work; {@code full} fills on the device.
 */
final class Scalars {

    private Scalars() {}

    /**
     * Returns {@code value} as a 0-dim array of {@code like}'s data type, device and manager.
     *
     * @param like the array the constant will be combined with
     * @param value the constant
     * @return a native 0-dim array
     */
    static NDArray of(NDArray like, double value) {
        return like.getManager().full(new Shape(), (float) value, like.getDataType(), like.getDevice());
    }
}
