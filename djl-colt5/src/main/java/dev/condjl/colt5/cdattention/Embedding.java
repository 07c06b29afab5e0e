package dev.condjl.colt5.cdattention;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

/**
 * {@code torch.nn.Embedding(count, dim)}: a lookup table {@code weight (count, dim)}, initialised from N(0, 1).
 *
 * <p>Maps integer ids {@code (...)} to rows {@code (..., dim)}. Further inputs pass through unchanged, so
 * {@code (tokens (b, n), mask (b, n)) -> (embedded (b, n, dim), mask)}: a padded batch keeps its mask in DJL's
 * {@code SequentialBlock}, where the next block (e.g. a {@code StochasticResidual} around a routed block) takes
 * {@code [x, mask]}.
 */
public final class Embedding extends AbstractBlock {

    private static final byte VERSION = 1;

    private final long count;
    private final long dim;
    private final Parameter weight;

    /**
     * Creates a table of {@code count} rows of size {@code dim}.
     *
     * @param count number of rows (vocabulary size or maximum position), at least 1
     * @param dim row size, at least 1
     * @throws IllegalArgumentException if a size is below 1
     */
    public Embedding(long count, long dim) {
        super(VERSION);
        if (count < 1 || dim < 1) {
            throw new IllegalArgumentException("embedding size (" + count + ", " + dim + ") must be positive");
        }
        this.count = count;
        this.dim = dim;
        weight = addParameter(Parameter.builder()
                .setName("weight")
                .setType(Parameter.Type.WEIGHT)
                .optInitializer(new NormalInitializer(1f))
                .optShape(new Shape(count, dim))
                .build());
    }

    /**
     * Looks up rows.
     *
     * @param ps the parameter store
     * @param inputs integer ids {@code (...)} in {@code [0, count)}, then any further inputs (a mask)
     * @param training whether in training
     * @param params unused
     * @return {@code (..., dim)} rows of {@code weight}, then the further inputs
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray ids = inputs.head();
        NDArray w = ps.getValue(weight, ids.getDevice(), training);
        NDArray index = ids.getDataType() == DataType.INT64 ? ids : ids.toType(DataType.INT64, false);
        NDList out = index.getNDArrayInternal().embedding(index, w, SparseFormat.DENSE);
        out.addAll(inputs.subNDList(1));
        return out;
    }

    /**
     * The first {@code n} rows of the table: the lookup of ids {@code 0..n-1} (learned positions), as a slice of
     * the weight. The values are the lookup's; the gradient reaches the same rows through a view, where the lookup's
     * backward sorts its indices on a GPU.
     *
     * @param ps the parameter store
     * @param n rows, in {@code [1, count]}
     * @param device where the rows are needed
     * @param training whether in training
     * @return {@code (n, dim)}
     * @throws IllegalArgumentException if {@code n} is out of range
     */
    public NDArray firstRows(ParameterStore ps, long n, Device device, boolean training) {
        if (n < 1 || n > count) {
            throw new IllegalArgumentException("rows (" + n + ") must be in [1, " + count + "]");
        }
        NDArray w = ps.getValue(weight, device, training);
        return n == count ? w : w.get(new NDIndex().addSliceDim(0, n));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape[] out = inputShapes.clone();
        out[0] = inputShapes[0].add(dim);
        return out;
    }

    /**
     * Returns the number of rows.
     *
     * @return the table size
     */
    public long getCount() {
        return count;
    }
}
