package dev.condjl.dropout;

import ai.djl.MalformedModelException;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.BlockList;
import ai.djl.nn.Parameter;
import ai.djl.nn.ParameterList;
import ai.djl.training.ParameterStore;
import ai.djl.util.Pair;
import ai.djl.util.PairList;
import dev.condjl.topk.checkpoint.StateDicts;
import dev.condjl.topk.checkpoint.TiedWeights;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiPredicate;

/**
 * Runs a block with {@link Parametrization}s registered on some of its parameters: every time the block (or any
 * descendant) reads such a parameter in a forward pass, it sees the transformed value.
 *
 * <p>How: {@code forwardInternal} forwards the wrapped block with a {@link ParameterStore} that wraps the caller's
 * store and transforms registered parameters on the way out. Any DJL block works unchanged ({@code Linear},
 * {@code Conv1d}, our blocks), under {@code Trainer.forward} (the trainer's store keeps the device mirrors and
 * gradients) and on several devices (each device's mirror is transformed on that device, with temporaries in the
 * manager of that device's input).
 *
 * <p>The wrapper is transparent to naming and persistence: {@link #getChildren()}, {@link #getDirectParameters()},
 * {@link #saveParameters} and {@link #loadParameters} are the wrapped block's, so parameter names (including
 * PyTorch-style state-dict names) and saved files are exactly those of the unwrapped block, and a file saved from a
 * parametrized block loads into the plain block and back. Parameters are addressed by their state-dict names
 * ({@code conditional_attn.heavy_attn.to_q.weight}) or DJL's internal names; {@link #registerAll(Parametrization)}
 * covers the weight matrices ({@link #WEIGHTS}), and {@link #registerAll(Parametrization, BiPredicate)} any
 * selection.
 *
 * <p>Several parametrizations on one parameter are applied in registration order (register {@link VariationalNoise}
 * before {@link WeightDropout} for RETURNN's {@code drop(W + σε)}). With the per-forward cache (the default), a
 * parameter is transformed once per forward pass and device, so a block that reads a weight several times (a loop,
 * shared weights) sees one mask; without it, every read draws anew, as PyTorch outside {@code parametrize.cached()}.
 */
public final class Parametrized extends AbstractBlock implements TiedWeights {

    /**
     * The parameters {@link #registerAll(Parametrization)} covers: trained parameters of type
     * {@link Parameter.Type#WEIGHT}, i.e. the weight matrices of linear maps ({@code Linear}, the heavy and light
     * attention projections, the feed-forward layers), convolution kernels and embedding tables.
     *
     * <p>Left out: biases ({@code BIAS}), norm scales and shifts ({@code GAMMA}, {@code BETA}), everything of type
     * {@code OTHER} (CoLT5's {@code routing_token}, {@code null_kv} and {@code null_q_token}, LearnedDropout's
     * {@code shift}, LayerScale's {@code gamma}) and buffers such as {@code rotary_emb.inv_freq}. Why: DropConnect
     * and weight noise regularize the connections of a linear map, as RETURNN's {@code param_dropout} and AWD-LSTM's
     * {@code WeightDrop} use them; a routing token or null key/value is a single learned vector that decides which
     * tokens are routed or attended, and dropping its entries changes that decision rather than thinning a map's
     * connections; norms and biases are per-channel vectors whose dropout only rescales or shifts a channel. A rank
     * test alone ({@code WeightDropout(p, 2)}) does not tell these apart: {@code routing_token} is {@code (r, d)} and
     * {@code null_kv} {@code (2, h, d)}.
     */
    public static final BiPredicate<String, Parameter> WEIGHTS =
            (name, p) -> p.getType() == Parameter.Type.WEIGHT && p.requiresGradient();

    private final Block block;
    private final boolean cached;
    private final Map<String, List<Parametrization>> chains = new ConcurrentHashMap<>();

    private Parametrized(Builder builder) {
        block = builder.block;
        cached = builder.cached;
    }

    /**
     * Wraps a block with the per-forward cache on; shorthand for {@code builder().setBlock(block).build()}.
     *
     * @param block the block to parametrize
     * @return a wrapper with no parametrization registered yet
     */
    public static Parametrized wrap(Block block) {
        return builder().setBlock(block).build();
    }

    /**
     * Creates a builder.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The wrapped block.
     *
     * @return the block given to the builder
     */
    public Block getBlock() {
        return block;
    }

    /**
     * Appends a parametrization to the parameter called {@code name}.
     *
     * @param name the parameter's PyTorch {@code state_dict} name ({@code conditional_attn.heavy_attn.to_q.weight},
     *     see {@link StateDicts}), or its DJL name, a key of the wrapped block's {@code getParameters()}
     *     ({@code 02conditional_attn_04heavy_attn_02to_q_weight}); for a {@code Linear} both are {@code weight}
     * @param parametrization the transform
     * @return this block
     * @throws IllegalArgumentException if no parameter has that name (the message lists the state-dict names), or
     *     the name is ambiguous
     */
    public Parametrized register(String name, Parametrization parametrization) {
        Parameter parameter = find(name);
        if (parameter == null) {
            throw new IllegalArgumentException("no parameter '" + name + "' in " + block.getClass().getSimpleName()
                    + "; its parameters by state-dict name are " + StateDicts.named(block).keys());
        }
        append(parameter, parametrization);
        return this;
    }

    /**
     * Appends a parametrization to the wrapped block's weight matrices: the parameters {@link #WEIGHTS} selects.
     *
     * @param parametrization the transform
     * @return this block
     */
    public Parametrized registerAll(Parametrization parametrization) {
        return registerAll(parametrization, WEIGHTS);
    }

    /**
     * Appends a parametrization to every parameter of the wrapped block that {@code which} selects, for example
     * {@code WEIGHTS.and((name, p) -> name.startsWith("conditional_attn."))} or {@code (name, p) -> true} for all.
     *
     * @param parametrization the transform
     * @param which tested with each parameter's state-dict name (see {@link StateDicts#named}) and the parameter
     * @return this block
     */
    public Parametrized registerAll(Parametrization parametrization, BiPredicate<String, Parameter> which) {
        if (which == null) {
            throw new IllegalArgumentException("the parameter predicate must not be null");
        }
        for (Pair<String, Parameter> p : StateDicts.named(block)) {
            if (which.test(p.getKey(), p.getValue())) {
                append(p.getValue(), parametrization);
            }
        }
        return this;
    }

    private void append(Parameter parameter, Parametrization parametrization) {
        if (parametrization == null) {
            throw new IllegalArgumentException("parametrization must not be null");
        }
        chains.merge(parameter.getId(), List.of(parametrization), (old, add) -> {
            List<Parametrization> chain = new ArrayList<>(old);
            chain.addAll(add);
            return List.copyOf(chain);
        });
    }

    /**
     * The parameter called {@code name}: by state-dict name, else by DJL name.
     *
     * @return the parameter, or null if none has that name
     * @throws IllegalArgumentException if the name stands for two different parameters
     */
    private Parameter find(String name) {
        Set<Parameter> found = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Pair<String, Parameter> p : StateDicts.named(block)) {
            if (p.getKey().equals(name)) {
                found.add(p.getValue());
            }
        }
        Parameter byDjlName = block.getParameters().get(name);
        if (byDjlName != null) {
            found.add(byDjlName);
        }
        if (found.size() > 1) {
            throw new IllegalArgumentException("'" + name + "' names " + found.size() + " parameters of "
                    + block.getClass().getSimpleName() + " (two children share a name); use its DJL name, one of "
                    + block.getParameters().keys());
        }
        return found.isEmpty() ? null : found.iterator().next();
    }

    /**
     * Removes every parametrization of the parameter called {@code name}; its forward value is the plain parameter
     * again.
     *
     * @param name the parameter's state-dict name or DJL name (as for {@link #register})
     * @return whether the parameter had any parametrization
     */
    public boolean remove(String name) {
        Parameter parameter = find(name);
        return parameter != null && chains.remove(parameter.getId()) != null;
    }

    /** Removes every parametrization. */
    public void removeAll() {
        chains.clear();
    }

    /**
     * The parametrizations of the parameter called {@code name}, in application order.
     *
     * @param name the parameter's state-dict name or DJL name (as for {@link #register})
     * @return an unmodifiable list, empty when none is registered or no such parameter exists
     */
    public List<Parametrization> getParametrizations(String name) {
        Parameter parameter = find(name);
        return parameter == null ? List.of() : chains.getOrDefault(parameter.getId(), List.of());
    }

    /** {@inheritDoc} */
    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore, NDList inputs, boolean training, PairList<String, Object> params) {
        if (chains.isEmpty()) {
            return block.forward(parameterStore, inputs, training, params);
        }
        ParameterStore store =
                new ParametrizedStore(parameterStore, Map.copyOf(chains), inputs.head().getManager(), cached);
        return block.forward(store, inputs, training, params);
    }

    /** {@inheritDoc} */
    @Override
    public void initialize(NDManager manager, DataType dataType, Shape... inputShapes) {
        beforeInitialize(inputShapes);
        block.initialize(manager, dataType, inputShapes);
    }

    /** {@inheritDoc} */
    @Override
    public boolean isInitialized() {
        return block.isInitialized();
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return block.getOutputShapes(inputShapes);
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getInputShapes() {
        return block.getInputShapes();
    }

    /** {@inheritDoc} */
    @Override
    public DataType[] getOutputDataTypes() {
        return block.getOutputDataTypes();
    }

    /** {@inheritDoc} */
    @Override
    public PairList<String, Shape> describeInput() {
        return block.describeInput();
    }

    /** {@inheritDoc} */
    @Override
    public BlockList getChildren() {
        return block.getChildren();
    }

    /** {@inheritDoc} */
    @Override
    public ParameterList getDirectParameters() {
        return block.getDirectParameters();
    }

    /** {@inheritDoc} */
    @Override
    public void saveParameters(DataOutputStream os) throws IOException {
        block.saveParameters(os);
    }

    /** {@inheritDoc} */
    @Override
    public void loadParameters(NDManager manager, DataInputStream is) throws IOException, MalformedModelException {
        block.loadParameters(manager, is);
    }

    /**
     * The wrapped block's tied keys, so that a parametrized model loads and exports like the plain one.
     *
     * @return the wrapped block's {@link TiedWeights#tiedKeys()}, or none
     */
    @Override
    public Map<String, String> tiedKeys() {
        return block instanceof TiedWeights tied ? tied.tiedKeys() : Map.of();
    }

    /** {@inheritDoc} */
    @Override
    public String toString() {
        return "Parametrized(" + block + ")";
    }

    /** Builder for {@link Parametrized}. */
    public static final class Builder {

        private Block block;
        private boolean cached = true;

        private Builder() {}

        /**
         * Sets the block to parametrize (required).
         *
         * @param block any DJL block
         * @return this builder
         */
        public Builder setBlock(Block block) {
            this.block = block;
            return this;
        }

        /**
         * Sets whether a parameter is transformed once per forward pass and device (default true) or on every read.
         *
         * @param cached the per-forward cache switch
         * @return this builder
         */
        public Builder optCached(boolean cached) {
            this.cached = cached;
            return this;
        }

        /**
         * Builds the wrapper.
         *
         * @return a {@link Parametrized} with no parametrization registered
         * @throws IllegalArgumentException if no block was set
         */
        public Parametrized build() {
            if (block == null) {
                throw new IllegalArgumentException("block is required: call setBlock(block)");
            }
            return new Parametrized(this);
        }
    }
}
