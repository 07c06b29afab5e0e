package dev.condjl.dropout;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterServer;
import ai.djl.training.ParameterStore;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A {@link ParameterStore} for one forward pass that returns transformed values for registered parameters and
 * delegates everything else to the store it wraps.
 *
 * <p>DJL blocks read every parameter through {@link ParameterStore#getValue}, so handing this store to a block's
 * {@code forward} applies the registered {@link Parametrization}s to any block without changing it. The wrapped
 * store still owns the device mirrors, gradients and optimizer updates (the {@code Trainer}'s store keeps one mirror
 * per device; this store transforms the mirror of the device asked for).
 */
final class ParametrizedStore extends ParameterStore {

    private final ParameterStore delegate;
    private final Map<String, List<Parametrization>> chains;
    private final NDManager batchManager;
    private final Map<String, NDArray> cache;

    /**
     * @param delegate the store of the enclosing forward pass
     * @param chains parameter id to the parametrizations applied to it, in order
     * @param batchManager the manager of the forward pass's input, which owns every transformed value
     * @param cached whether each parameter is transformed once per forward pass and device rather than on every read
     */
    ParametrizedStore(
            ParameterStore delegate,
            Map<String, List<Parametrization>> chains,
            NDManager batchManager,
            boolean cached) {
        super(delegate.getManager(), false);
        this.delegate = delegate;
        this.chains = chains;
        this.batchManager = batchManager;
        this.cache = cached ? new ConcurrentHashMap<>() : null;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray getValue(Parameter parameter, Device device, boolean training) {
        NDArray value = delegate.getValue(parameter, device, training);
        List<Parametrization> chain = parameter == null ? null : chains.get(parameter.getId());
        if (chain == null) {
            return value;
        }
        if (cache == null) {
            return transform(parameter, value, chain, device, training);
        }
        return cache.computeIfAbsent(
                parameter.getId() + '@' + device, k -> transform(parameter, value, chain, device, training));
    }

    private NDArray transform(
            Parameter parameter, NDArray value, List<Parametrization> chain, Device device, boolean training) {
        NDManager manager =
                batchManager.getDevice().equals(device) ? batchManager : batchManager.newSubManager(device);
        NDArray current = value;
        for (Parametrization parametrization : chain) {
            NDArray next = parametrization.apply(current, manager, training);
            if (!next.getShape().equals(value.getShape())) {
                throw new IllegalStateException(
                        "parametrization " + parametrization + " changed the shape of parameter '"
                                + parameter.getName() + "' from " + value.getShape() + " to " + next.getShape());
            }
            // An intermediate of the chain is not needed after the next step consumed it (autograd keeps what it
            // saved); closing it now keeps one transformed copy per parameter alive instead of one per step.
            if (current != value && current != next) {
                current.close();
            }
            current = next;
        }
        return current;
    }

    /** {@inheritDoc} */
    @Override
    public NDManager getManager() {
        return delegate.getManager();
    }

    /** {@inheritDoc} */
    @Override
    public void setParameterServer(ParameterServer parameterServer, Device[] devices) {
        delegate.setParameterServer(parameterServer, devices);
    }

    /** {@inheritDoc} */
    @Override
    public void updateAllParameters() {
        delegate.updateAllParameters();
    }

    /** {@inheritDoc} */
    @Override
    public void sync() {
        delegate.sync();
    }
}
