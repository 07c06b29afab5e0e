package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import dev.condjl.topk.checkpoint.StateDicts;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The yif-AI model layout (spec §4.1, §4.2, §4.7): parameter counts, state-dict names, one training step. */
class LearnedDropoutTransformerTest {

    private static long count(LearnedDropoutTransformer.Builder builder) {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = builder.setAlphabetSize(50257).setContextSize(200).build();
            model.initialize(manager, DataType.FLOAT32, new Shape(1, 8));
            return model.numParams();
        }
    }

    @Test
    void parameterCountsMatchTheReadme() {
        assertEquals(15_335_424L, count(LearnedDropoutTransformer.builder().setNEmbed(144).setNLayer(26)
                .setNHead(9).optLearnedDropout(LearnedDropout.builder())));
        assertEquals(15_418_368L, count(LearnedDropoutTransformer.builder().setNEmbed(144).setNLayer(26)
                .setNHead(9).optLearnedDropout(LearnedDropout.builder().optUseDetachedInput(true)
                        .optDropoutInputType(LearnedDropout.DropoutInputType.EMBED))));
        assertEquals(15_441_192L, count(LearnedDropoutTransformer.builder().setNEmbed(156).setNLayer(26)
                .setNHead(12).optDropoutRate(0.2f)));
    }

    private static LearnedDropoutTransformer small(NDManager manager, boolean detached) {
        LearnedDropoutTransformer model = LearnedDropoutTransformer.builder().setAlphabetSize(11).setContextSize(8)
                .setNEmbed(8).setNLayer(2).setNHead(2)
                .optLearnedDropout(LearnedDropout.builder().optShiftInit(1.5f).optUseDetachedInput(detached)
                        .optDropoutInputType(LearnedDropout.DropoutInputType.EMBED))
                .build();
        model.initialize(manager, DataType.FLOAT32, new Shape(2, 8));
        return model;
    }

    @Test
    void parameterNamesAreTheReferenceStateDictKeys() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, Parameter> names = StateDicts.parameters(small(manager, false));
            List<String> expected = new ArrayList<>(List.of(
                    "token_embedding.weight",
                    "positional_embedding.weight",
                    "dropout_embed_attn.batch_attn_weights.weight",
                    "dropout_embed_attn.linear.weight"));
            for (int i = 0; i < 2; i++) {
                String p = "transformer_blocks." + i + ".";
                expected.addAll(List.of(
                        p + "multi_attn_head.batch_attn_weights.weight",
                        p + "multi_attn_head.residual_proj.weight",
                        p + "feed_forward.linear.weight",
                        p + "feed_forward.residual_proj.weight",
                        p + "feed_forward.dropout.shift",
                        p + "feed_forward.dropout.batch_attn_weights.weight",
                        p + "ln1.weight",
                        p + "ln2.weight"));
            }
            expected.add("ln.weight");
            assertEquals(expected, new ArrayList<>(names.keySet()));
            assertEquals(new Shape(24, 8),
                    names.get("transformer_blocks.1.feed_forward.dropout.batch_attn_weights.weight").getShape());
            assertEquals(1.5f, names.get("transformer_blocks.0.feed_forward.dropout.shift").getArray().min()
                    .getFloat());
        }
    }

    @Test
    void forwardCreatesNothingInTheModelManager() {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = small(manager, false);
            Parametrized wrapped = Parametrized.wrap(model).registerAll(new VariationalNoise(0.01f, 2))
                    .registerAll(new WeightDropout(0.1f, 2));
            try (NDManager batch = manager.newSubManager()) {
                manager.cap(); // any array attached to the model's manager from here on throws
                NDArray tokens = batch.randomInteger(0, 11, new Shape(2, 8), DataType.INT64);
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDList out = wrapped.forward(new ParameterStore(manager, false), new NDList(tokens), true);
                    collector.backward(out.get(0).sum().add(out.get(1)));
                }
                assertEquals(new Shape(2, 8, 11),
                        wrapped.forward(new ParameterStore(manager, false), new NDList(tokens), false).head()
                                .getShape());
            }
        }
    }

    @Test
    void aTrainingStepReachesEveryParameterExceptTheDetachedEmbedAttention() {
        for (boolean detached : new boolean[] {true, false}) {
            try (NDManager manager = NDManager.newBaseManager()) {
                LearnedDropoutTransformer model = small(manager, detached);
                NDArray tokens = manager.randomInteger(0, 11, new Shape(2, 8), DataType.INT64);
                NDArray targets = manager.randomInteger(0, 11, new Shape(2, 8), DataType.INT64);
                PenalizedLoss loss = new PenalizedLoss(Loss.softmaxCrossEntropyLoss(), 1,
                        PenaltyCoefficient.constant(0.1));
                NDList out;
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    out = model.forward(new ParameterStore(manager, false), new NDList(tokens), true);
                    // as yif-AI: cross-entropy over (B·T, V) logits
                    NDList flat = new NDList(out.get(0).reshape(-1, 11), out.get(1));
                    collector.backward(loss.evaluate(new NDList(targets.reshape(-1)), flat));
                }
                assertEquals(new Shape(2, 8, 11), out.get(0).getShape());
                float penalty = out.get(1).getFloat();
                float ones = out.get(2).getFloat();
                assertTrue(penalty > 0f && penalty <= 0.5f, "penalty " + penalty);
                assertTrue(ones >= 0f && ones <= 1f, "ones " + ones);
                List<String> withoutGradient = new ArrayList<>();
                for (Map.Entry<String, Parameter> e : StateDicts.parameters(model).entrySet()) {
                    if (e.getValue().getArray().getGradient().abs().sum().getFloat() == 0f) {
                        withoutGradient.add(e.getKey());
                    }
                }
                List<String> expected = detached
                        ? List.of("dropout_embed_attn.batch_attn_weights.weight", "dropout_embed_attn.linear.weight")
                        : List.of();
                assertEquals(expected, withoutGradient, "detached=" + detached);
                NDList eval = model.forward(new ParameterStore(manager, false), new NDList(tokens), false);
                assertEquals(0f, eval.get(1).getFloat());
            }
        }
    }
}
