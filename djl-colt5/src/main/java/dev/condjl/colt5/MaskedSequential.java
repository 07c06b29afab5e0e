package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.Set;
import java.util.function.Function;

/**
 * A {@link Sequential} that carries a key-padding mask along, so padded batches {@code (tokens, mask)} reach the
 * routers from DJL's {@code Trainer} / {@code EasyTrain}:
 *
 * <pre>
 *   x, mask = inputs                          x (b, n) tokens or (b, n, d); mask null or boolean (b, n), true = valid
 *   for child in children:
 *       x = child(x, mask)[0]   if the child was added with addMasked (and a mask was given)
 *       x = child(x)[0]         otherwise
 *   return [x]
 * </pre>
 *
 * <p>Children are named by position ({@code "0"}, {@code "1"}, ...) as in {@link Sequential}, so a model built
 * from this container exports {@code state_dict} keys such as {@code 1.conditional_attn.q_router.routing_token}.
 * A masked child gets views of the arrays named {@code x} and {@code mask} (the reference's argument names, which condjl's
 * blocks look up); a block that adds its own residual goes in wrapped by djl-stochastic's {@code
 * StochasticResidual.builder().setResidualBlock(block)}, which passes the mask to it. Only the first output of a
 * child is kept (a penalty output, e.g. {@code LearnedDropout}'s, is dropped).
 *
 * <p>The mask is checked once here against the caller's batch, before any child (or a batch-subset stochastic depth
 * inside one) sees it. Children get the whole forward params. DJL's {@code returnIntermediate} and streaming are not
 * supported.
 */
public final class MaskedSequential extends Sequential {

    private final Set<Block> masked = Collections.newSetFromMap(new IdentityHashMap<>());

    /**
     * Appends a child that gets the tokens only.
     *
     * @param block maps {@code [x]} to {@code [x']} first
     * @return this container
     */
    @Override
    public MaskedSequential add(Block block) {
        super.add(block);
        return this;
    }

    /**
     * Appends a parameter-free step on the tokens only (a pooling, a slice).
     *
     * @param f maps {@code [x]} to {@code [x']} first
     * @return this container
     */
    @Override
    public MaskedSequential add(Function<NDList, NDList> f) {
        return add(new LambdaBlock(f));
    }

    /**
     * Appends a child that gets the tokens and the mask, named {@code x} and {@code mask}.
     *
     * @param block maps {@code [x, mask]} to {@code [x']} first (e.g. a {@code StochasticResidual} around a
     *     {@link ConditionalRoutedTransformerBlock})
     * @return this container
     */
    public MaskedSequential addMasked(Block block) {
        super.add(block);
        masked.add(block);
        return this;
    }

    /**
     * Whether a child gets the mask.
     *
     * @param block a child
     * @return true if it was added with {@link #addMasked}
     */
    public boolean takesMask(Block block) {
        return masked.contains(block);
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x} the tokens, optional {@code mask}. Output: {@code [x]} of the
     * last child.
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = Inputs.required(inputs, "x", 0);
        NDArray mask = Inputs.tensor(inputs, "mask", 1);
        checkMask(x, mask);
        NDArray namedMask = mask == null ? null : named(mask, "mask");
        for (Block child : children.values()) {
            NDList in = namedMask != null && takesMask(child) ? new NDList(named(x, "x"), namedMask) : new NDList(x);
            x = child.forward(ps, in, training, params).head();
        }
        return new NDList(x);
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList data, NDList labels, PairList<String, Object> params) {
        return forwardInternal(ps, data, true, params);
    }

    /** {@inheritDoc} */
    @Override
    public Iterator<NDList> forwardStreamIter(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        throw new UnsupportedOperationException("MaskedSequential does not stream; call forward");
    }

    /** {@inheritDoc} */
    @Override
    public MaskedSequential setReturnIntermediate(boolean returnIntermediate) {
        if (returnIntermediate) {
            throw new UnsupportedOperationException("MaskedSequential returns only the last child's output");
        }
        return this;
    }

    /** {@inheritDoc} */
    @Override
    public void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape x = inputShapes[0];
        for (Block child : children.values()) {
            Shape[] in = childInput(child, x, inputShapes);
            child.initialize(manager, dataType, in);
            x = child.getOutputShapes(in)[0];
        }
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape x = inputShapes[0];
        for (Block child : children.values()) {
            x = child.getOutputShapes(childInput(child, x, inputShapes))[0];
        }
        return new Shape[] {x};
    }

    private Shape[] childInput(Block child, Shape x, Shape[] inputShapes) {
        return inputShapes.length > 1 && takesMask(child) ? new Shape[] {x, inputShapes[1]} : new Shape[] {x};
    }

    /** A view of {@code a} under the reference's argument name; the caller's arrays keep their own names. */
    private static NDArray named(NDArray a, String name) {
        NDArray view = a.reshape(a.getShape());
        view.setName(name);
        return view;
    }

    /** The mask must cover the caller's (b, n), checked before any child could take a subset of the rows. */
    private static void checkMask(NDArray x, NDArray mask) {
        if (mask == null) {
            return;
        }
        Shape s = x.getShape();
        if (s.dimension() < 2) {
            throw new IllegalArgumentException("input 0 'x' must be (batch, seq) tokens or (batch, seq, dim), got "
                    + s + " with a mask");
        }
        Inputs.checkMask("input 1 'mask'", mask, x);
    }
}
