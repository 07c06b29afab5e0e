package dev.condjl.integration.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;

/**
 * A lookup table, PyTorch's {@code nn.Embedding}: int64 ids {@code (...)} to rows of {@code weight (count, dim)},
 * giving {@code (..., dim)}. The rows are gathered with the engine's embedding op, so the result belongs to the ids'
 * manager, not to the model's.
 */
public final class EmbeddingTable extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final Parameter weight;

    /**
     * Creates the table.
     *
     * @param count rows (vocabulary size, or positions)
     * @param dim row width
     * @param sigma standard deviation of the N(0, σ²) initial rows
     */
    public EmbeddingTable(int count, int dim, float sigma) {
        super(VERSION);
        this.dim = dim;
        weight = addParameter(Parameter.builder()
                .setName("weight")
                .setType(Parameter.Type.WEIGHT)
                .optShape(new Shape(count, dim))
                .optInitializer(new NormalInitializer(sigma))
                .build());
    }

    /**
     * Looks rows up.
     *
     * @param ps the parameter store
     * @param ids int64 ids, any shape
     * @param training whether in training mode
     * @return {@code (..., dim)}
     */
    public NDArray lookup(ParameterStore ps, NDArray ids, boolean training) {
        NDArray table = ps.getValue(weight, ids.getDevice(), training);
        NDArray index = ids.getDataType() == DataType.INT64 ? ids : ids.toType(DataType.INT64, false);
        return index.getNDArrayInternal().embedding(index, table, SparseFormat.DENSE).head();
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(lookup(ps, inputs.head(), training));
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0].add(dim)};
    }
}
