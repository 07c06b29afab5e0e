package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.convolutional.Conv1d;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.util.Pair;
import ai.djl.util.PairList;
import dev.condjl.topk.checkpoint.StateDicts;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The parametrization mechanism (spec §3.2, §3.5, §6.4 bookkeeping). */
class ParametrizedTest {

    /** Reads its weight twice per forward: {@code [x·Wᵀ, x·Wᵀ]}. */
    private static final class TwoReads extends AbstractBlock {
        private final Parameter weight;

        TwoReads() {
            weight = addParameter(Parameter.builder().setName("weight").setType(Parameter.Type.WEIGHT)
                    .optShape(new Shape(8, 8)).build());
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            NDArray x = inputs.head();
            NDArray first = Linear.linear(x, ps.getValue(weight, x.getDevice(), training)).head();
            NDArray second = Linear.linear(x, ps.getValue(weight, x.getDevice(), training)).head();
            return new NDList(first, second);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return new Shape[] {inputShapes[0], inputShapes[0]};
        }
    }

    private static Linear linear(NDManager manager, int in, int out) {
        Linear linear = Linear.builder().setUnits(out).build();
        linear.initialize(manager, DataType.FLOAT32, new Shape(2, in));
        return linear;
    }

    @Test
    void evalReadIsTheParameterItself() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Linear plain = linear(manager, 6, 4);
            Parametrized wrapped = Parametrized.wrap(plain)
                    .register("weight", new VariationalNoise(0.5f))
                    .register("weight", new WeightDropout(0.5f));
            NDArray x = manager.randomNormal(new Shape(3, 6));
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray expected = plain.forward(ps, new NDList(x), false).head();
            NDArray actual = wrapped.forward(ps, new NDList(x), false).head();
            assertEquals(expected, actual);
            Parameter weight = plain.getParameters().get("weight");
            ParametrizedStore store = new ParametrizedStore(ps, Map.of(weight.getId(),
                    wrapped.getParametrizations("weight")), manager, true);
            NDArray w = weight.getArray();
            assertSame(w, store.getValue(weight, w.getDevice(), false));
        }
    }

    @Test
    void namesAndSavedBytesAreThoseOfTheWrappedBlock() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            Linear plain = linear(manager, 5, 3);
            Parametrized wrapped = Parametrized.wrap(plain).registerAll(new WeightDropout(0.3f, 2));
            assertEquals(plain.getParameters().keys(), wrapped.getParameters().keys());
            assertEquals(List.of("weight", "bias"), wrapped.getParameters().keys());
            assertSame(plain.getParameters().get("weight"), wrapped.getParameters().get("weight"));

            ByteArrayOutputStream fromWrapped = new ByteArrayOutputStream();
            wrapped.saveParameters(new DataOutputStream(fromWrapped));
            ByteArrayOutputStream fromPlain = new ByteArrayOutputStream();
            plain.saveParameters(new DataOutputStream(fromPlain));
            assertArrayEquals(fromPlain.toByteArray(), fromWrapped.toByteArray());

            Linear other = linear(manager, 5, 3);
            Parametrized otherWrapped = Parametrized.wrap(other).register("weight", new VariationalNoise(1f));
            otherWrapped.loadParameters(
                    manager, new DataInputStream(new ByteArrayInputStream(fromWrapped.toByteArray())));
            assertEquals(plain.getParameters().get("weight").getArray(),
                    other.getParameters().get("weight").getArray());
            assertEquals(plain.getParameters().get("bias").getArray(),
                    other.getParameters().get("bias").getArray());
        }
    }

    @Test
    void trainingForwardUsesTheTransformAndRemovalRestoresThePlainBlock() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Linear plain = linear(manager, 64, 64);
            Parametrized wrapped = Parametrized.wrap(plain).register("weight", new WeightDropout(0.5f));
            NDArray eye = manager.eye(64);
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray bias = plain.getParameters().get("bias").getArray();
            // x = I makes the output rows the (transposed) effective weight
            NDArray effective = wrapped.forward(ps, new NDList(eye), true).head().sub(bias).transpose();
            NDArray w = plain.getParameters().get("weight").getArray();
            NDArray dropped = effective.eq(0f);
            double droppedFraction = dropped.toType(DataType.FLOAT32, false).mean().getFloat();
            assertEquals(0.5, droppedFraction, 5 * Math.sqrt(0.25 / 4096));
            NDArray kept = dropped.logicalNot();
            assertTrue(effective.get(kept).allClose(w.mul(2f).get(kept), 1e-6, 1e-6, false));
            assertEquals(1, wrapped.getParametrizations("weight").size());

            assertTrue(wrapped.remove("weight"));
            assertFalse(wrapped.remove("weight"));
            NDArray restored = wrapped.forward(ps, new NDList(eye), true).head().sub(bias).transpose();
            assertTrue(restored.allClose(w, 1e-6, 1e-6, false));
            assertThrows(IllegalArgumentException.class, () -> wrapped.register("kernel", new WeightDropout(0.1f)));
        }
    }

    @Test
    void cachedReadsShareOneMaskAndUncachedReadsDrawAnew() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray x = manager.randomNormal(new Shape(4, 8));
            for (boolean cached : new boolean[] {true, false}) {
                TwoReads block = new TwoReads();
                block.initialize(manager, DataType.FLOAT32, new Shape(4, 8));
                Parametrized wrapped = Parametrized.builder().setBlock(block).optCached(cached).build()
                        .register("weight", new WeightDropout(0.5f));
                NDList out = wrapped.forward(new ParameterStore(manager, false), new NDList(x), true);
                assertEquals(cached, out.get(0).contentEquals(out.get(1)), "cached=" + cached);
            }
        }
    }

    @Test
    void worksOnConvolutionWeights() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Conv1d conv = Conv1d.builder().setKernelShape(new Shape(3)).setFilters(4).build();
            conv.initialize(manager, DataType.FLOAT32, new Shape(2, 3, 10));
            Parametrized wrapped = Parametrized.wrap(conv).register("weight", new VariationalNoise(0.1f));
            NDArray x = manager.randomNormal(new Shape(2, 3, 10));
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray plain = conv.forward(ps, new NDList(x), true).head();
            NDArray noisy = wrapped.forward(ps, new NDList(x), true).head();
            assertEquals(plain.getShape(), noisy.getShape());
            assertFalse(plain.allClose(noisy, 1e-3, 1e-3, false));
            assertEquals(plain, wrapped.forward(ps, new NDList(x), false).head());
        }
    }

    @Test
    void trainsUnderTrainerAndLeavesNothingInTheModelManager() {
        long[] plain = train(false);
        long[] parametrized = train(true);
        assertTrue(parametrized[1] < 0.25 * parametrized[0],
                "eval loss x1000 " + parametrized[0] + " -> " + parametrized[1]);
        // DJL's optimizer path itself adds gradient wrappers to the model manager each step; the parametrization
        // must add nothing on top (its temporaries belong to the batch)
        assertEquals(plain[2], parametrized[2]);
    }

    /** Returns {eval loss x1000 before, eval loss x1000 after, growth of the model manager over steps 2..60}. */
    private static long[] train(boolean parametrize) {
        try (Model model = Model.newInstance("parametrized")) {
            Linear linear = Linear.builder().setUnits(1).build();
            model.setBlock(parametrize
                    ? Parametrized.wrap(linear).registerAll(new VariationalNoise(0.01f, 2))
                            .registerAll(new WeightDropout(0.2f, 2))
                    : linear);
            DefaultTrainingConfig config = new DefaultTrainingConfig(Loss.l2Loss())
                    .optOptimizer(Optimizer.sgd().setLearningRateTracker(Tracker.fixed(0.1f)).build())
                    .optInitializer(Initializer.ZEROS, Parameter.Type.WEIGHT);
            try (Trainer trainer = model.newTrainer(config)) {
                trainer.initialize(new Shape(16, 4));
                NDManager data = trainer.getManager().newSubManager();
                NDArray x = data.randomNormal(new Shape(16, 4));
                NDArray y = x.matMul(data.create(new float[] {1f, -2f, 0.5f, 3f}, new Shape(4, 1)));
                long[] out = {evalLoss(trainer, x, y), 0, 0};
                for (int step = 0; step < 60; step++) {
                    try (NDManager batch = data.newSubManager();
                            GradientCollector collector = trainer.newGradientCollector()) {
                        NDArray bx = x.duplicate();
                        bx.attach(batch);
                        NDArray loss = trainer.getLoss().evaluate(new NDList(y), trainer.forward(new NDList(bx)));
                        collector.backward(loss);
                    }
                    trainer.step();
                    if (step == 0) {
                        out[2] = -model.getNDManager().getManagedArrays().size();
                    }
                }
                out[2] += model.getNDManager().getManagedArrays().size();
                out[1] = evalLoss(trainer, x, y);
                return out;
            }
        }
    }

    private static long evalLoss(Trainer trainer, NDArray x, NDArray y) {
        try (NDManager batch = x.getManager().newSubManager()) {
            NDArray bx = x.duplicate();
            bx.attach(batch);
            return Math.round(1000 * trainer.getLoss().evaluate(new NDList(y), trainer.evaluate(new NDList(bx)))
                    .getFloat());
        }
    }

    private static LearnedDropoutTransformer transformer(NDManager manager, boolean useBias) {
        LearnedDropoutTransformer model = LearnedDropoutTransformer.builder().setAlphabetSize(11).setContextSize(4)
                .setNEmbed(8).setNLayer(2).setNHead(2).optUseBias(useBias)
                .optLearnedDropout(LearnedDropout.builder()).build();
        model.initialize(manager, DataType.FLOAT32, new Shape(1, 4));
        return model;
    }

    @Test
    void parametersAreNamedByStateDictKeyOrByDjlName() {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = transformer(manager, false);
            String stateDictName = "transformer_blocks.1.feed_forward.linear.weight";
            Parameter parameter = StateDicts.parameters(model).get(stateDictName);
            String djlName = model.getParameters().stream().filter(p -> p.getValue() == parameter)
                    .map(Pair::getKey).findFirst().orElseThrow();
            assertFalse(djlName.equals(stateDictName), djlName);

            WeightDropout dropout = new WeightDropout(0.1f);
            Parametrized wrapped = Parametrized.wrap(model).register(stateDictName, dropout);
            assertEquals(List.of(dropout), wrapped.getParametrizations(djlName));
            VariationalNoise noise = new VariationalNoise(0.1f);
            wrapped.register(djlName, noise);
            assertEquals(List.of(dropout, noise), wrapped.getParametrizations(stateDictName));
            assertTrue(wrapped.remove(stateDictName));
            assertEquals(List.of(), wrapped.getParametrizations(djlName));

            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> wrapped.register("transformer_blocks.1.feed_forward.linear.kernel", dropout));
            assertTrue(e.getMessage().contains("'transformer_blocks.1.feed_forward.linear.kernel'")
                    && e.getMessage().contains(stateDictName), e.getMessage());
        }
    }

    @Test
    void registerAllCoversTheWeightMatricesByDefault() {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = transformer(manager, true);
            Parametrized wrapped = Parametrized.wrap(model).registerAll(new WeightDropout(0.1f));
            List<String> covered = new ArrayList<>();
            for (String name : StateDicts.parameters(model).keySet()) {
                if (!wrapped.getParametrizations(name).isEmpty()) {
                    covered.add(name);
                }
            }
            List<String> expected = new ArrayList<>(List.of("token_embedding.weight", "positional_embedding.weight"));
            for (int i = 0; i < 2; i++) {
                String p = "transformer_blocks." + i + ".";
                expected.addAll(List.of(p + "multi_attn_head.batch_attn_weights.weight",
                        p + "multi_attn_head.residual_proj.weight", p + "feed_forward.linear.weight",
                        p + "feed_forward.residual_proj.weight", p + "feed_forward.dropout.batch_attn_weights.weight"));
            }
            // left out: every bias, ln*.weight/bias (norms) and feed_forward.dropout.shift (type OTHER)
            assertEquals(expected, covered);
        }
    }

    @Test
    void registerAllTakesAPredicateOverStateDictNames() {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = transformer(manager, false);
            Parametrized wrapped = Parametrized.wrap(model).registerAll(new VariationalNoise(0.01f),
                    Parametrized.WEIGHTS.and((name, p) -> name.startsWith("transformer_blocks.1.feed_forward.")));
            assertEquals(List.of("transformer_blocks.1.feed_forward.linear.weight",
                            "transformer_blocks.1.feed_forward.residual_proj.weight",
                            "transformer_blocks.1.feed_forward.dropout.batch_attn_weights.weight"),
                    StateDicts.parameters(model).keySet().stream()
                            .filter(name -> !wrapped.getParametrizations(name).isEmpty()).toList());
            wrapped.removeAll();
            wrapped.registerAll(new VariationalNoise(0.01f), (name, p) -> name.endsWith(".shift"));
            assertEquals(1, wrapped.getParametrizations("transformer_blocks.0.feed_forward.dropout.shift").size());
        }
    }

    @Test
    void aNameTwoParametersShareIsRefusedWithTheDjlNames() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock net = new SequentialBlock().add(Linear.builder().setUnits(3).build())
                    .add(Linear.builder().setUnits(2).build());
            net.initialize(manager, DataType.FLOAT32, new Shape(1, 4));
            Parametrized wrapped = Parametrized.wrap(net);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> wrapped.register("Linear.weight", new WeightDropout(0.1f)));
            assertTrue(e.getMessage().contains("names 2 parameters") && e.getMessage().contains("02Linear_weight"),
                    e.getMessage());
            wrapped.register("02Linear_weight", new WeightDropout(0.1f));
            assertEquals(1, wrapped.getParametrizations("02Linear_weight").size());
            assertEquals(0, wrapped.getParametrizations("01Linear_weight").size());
            // the default covers both weights though their state-dict names coincide
            wrapped.removeAll();
            wrapped.registerAll(new WeightDropout(0.1f));
            assertEquals(1, wrapped.getParametrizations("01Linear_weight").size());
            assertEquals(0, wrapped.getParametrizations("01Linear_bias").size());
        }
    }
}
