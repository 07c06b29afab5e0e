package dev.condjl.cuda;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;

import java.util.function.Function;

/**
 * The forward and backward of a training step as one {@link CudaGraph}: each {@link #step} copies a batch into the
 * graph's own input arrays, replays the graph and returns the loss array it rewrote; the parameters' gradients
 * accumulate in place, as an eager backward's do, for the optimizer step that follows (which zeroes them, as
 * {@link FusedAdam} does). On a GPU where the host's cost per op sets the pace this turns a step of hundreds of op
 * launches into one.
 *
 * <p>What the forward must satisfy is {@link CudaGraph}'s: no reads of device values, no arithmetic with a Java
 * number, no host-side randomness or schedule that changes from step to step (a value the Java code computes is
 * frozen at its captured value). Random ops on the device (dropout masks, random subsets) draw new numbers on every
 * replay, but the runs before the capture consume the generator, so a graphed run's random stream differs from an
 * eager run with the same seed. Every batch must have the example's shapes and data types.
 *
 * <p>Usage with a DJL {@code Trainer} on one GPU:
 * <pre>{@code
 * GraphedBackward graphed = GraphedBackward.capture(new NDList(tokens, labels),
 *         in -> loss.evaluate(new NDList(in.get(1)), trainer.forward(new NDList(in.get(0)))),
 *         block.getParameters().values(), 3);
 * float l = graphed.step(new NDList(nextTokens, nextLabels)).getFloat();  // then clip and step the optimizer
 * }</pre>
 */
public final class GraphedBackward implements AutoCloseable {

    private final NDManager manager;
    private final NDList inputs;
    private final NDArray loss;
    private final CudaGraph graph;

    private GraphedBackward(NDManager manager, NDList inputs, NDArray loss, CudaGraph graph) {
        this.manager = manager;
        this.inputs = inputs;
        this.loss = loss;
        this.graph = graph;
    }

    /**
     * Runs {@code forwardLoss} and its backward {@code warmupRuns} times, captures one more run, and zeroes the
     * gradients that these runs accumulated.
     *
     * @param example a batch: its arrays' shapes, types and device are those of every step's batch (it is copied,
     *     not kept)
     * @param forwardLoss the forward and the scalar loss of a batch, differentiable with respect to the parameters;
     *     it is given the graph's own input arrays
     * @param parameters the parameters whose gradients the runs accumulate into (zeroed afterwards)
     * @param warmupRuns eager runs before the captured one, {@code >= 1}
     * @return the graphed step
     * @throws IllegalArgumentException if the example is empty or its arrays are not on one GPU
     * @throws IllegalStateException where {@link CudaGraph#unavailableReason} is not empty
     * @throws GraphCaptureException when the forward or backward cannot be captured; the gradients are zeroed then
     *     too, so that the caller can go on with eager steps
     */
    public static GraphedBackward capture(NDList example, Function<NDList, NDArray> forwardLoss,
            Iterable<Parameter> parameters, int warmupRuns) {
        if (example.isEmpty()) {
            throw new IllegalArgumentException("the example batch has no arrays");
        }
        Device device = example.head().getDevice();
        for (NDArray a : example) {
            if (!a.getDevice().equals(device)) {
                throw new IllegalArgumentException("the example batch's arrays must be on one device, got "
                        + device + " and " + a.getDevice());
            }
        }
        NDManager manager = NDManager.newBaseManager(device);
        try {
            NDList inputs = new NDList();
            for (NDArray a : example) {
                NDArray copy = manager.zeros(a.getShape(), a.getDataType());
                CudaGraph.copyInPlace(copy, a);
                inputs.add(copy);
            }
            NDArray[] loss = new NDArray[1];
            int[] runs = {0};
            CudaGraph graph;
            try {
                graph = CudaGraph.capture(device, warmupRuns, () -> {
                    boolean captured = runs[0]++ == warmupRuns;
                    try (NDManager run = manager.newSubManager()) {
                        inputs.forEach(a -> a.tempAttach(run));
                        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                            NDArray l = forwardLoss.apply(inputs);
                            gc.backward(l);
                            if (captured) {
                                l.attach(manager);  // what every replay rewrites; the run's other arrays close
                                loss[0] = l;
                            }
                        }
                    }
                });
            } finally {
                zeroGradients(parameters);
            }
            return new GraphedBackward(manager, inputs, loss[0], graph);
        } catch (RuntimeException | Error e) {
            manager.close();
            throw e;
        }
    }

    /**
     * One forward+backward: the batch copied into the graph's inputs, the graph replayed.
     *
     * @param batch arrays of the example's shapes and data types, in its order, on any device
     * @return the loss array the replay rewrites (read it before the next step; the read waits for the device)
     * @throws IllegalArgumentException if the batch does not match the example
     */
    public NDArray step(NDList batch) {
        if (batch.size() != inputs.size()) {
            throw new IllegalArgumentException("the batch has " + batch.size() + " arrays, the graph's example "
                    + inputs.size());
        }
        for (int i = 0; i < inputs.size(); i++) {
            CudaGraph.copyInPlace(inputs.get(i), batch.get(i));
        }
        graph.replay();
        return loss;
    }

    /** Frees the graph, its inputs and its loss. */
    @Override
    public void close() {
        graph.close();
        manager.close();
    }

    /** Sets every defined gradient of the parameters to 0 in place (DJL's {@code zeroGrad}: a fill, NaN-proof). */
    private static void zeroGradients(Iterable<Parameter> parameters) {
        for (Parameter p : parameters) {
            if (p.requiresGradient() && p.isInitialized() && p.getArray() instanceof PtNDArray array) {
                JniUtils.zeroGrad(array);
            }
        }
    }
}
