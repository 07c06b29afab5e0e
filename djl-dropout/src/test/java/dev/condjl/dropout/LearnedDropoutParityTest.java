package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.engine.Engine;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * LearnedDropout against fixtures from {@code src/test/resources/learned_dropout/gen_fixtures.py} (a PyTorch
 * implementation of spec §4.3-§4.5; B=2, T=5, C=12, H=3, with bias, injected U[0,1) noise).
 */
class LearnedDropoutParityTest {

    private static Map<String, NDArray> fixtures(NDManager manager, String prefix) throws IOException {
        try (InputStream in = LearnedDropoutParityTest.class.getResourceAsStream(
                "/learned_dropout/fixtures.safetensors")) {
            NDList list = NDList.decode(manager, in.readAllBytes());
            Map<String, NDArray> out = new HashMap<>();
            for (NDArray array : list) {
                if (array.getName().startsWith(prefix + ".")) {
                    out.put(array.getName().substring(prefix.length() + 1), array);
                }
            }
            return out;
        }
    }

    /** Max |a − b| relative to max |b|. */
    private static float relativeError(NDArray actual, NDArray expected) {
        return actual.sub(expected).abs().max().getFloat() / expected.abs().max().getFloat();
    }

    @ParameterizedTest
    @ValueSource(strings = {"hidden", "embed"})
    void trainingPassMatchesTheReferenceWithInjectedNoise(String variant) throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> f = fixtures(manager, variant);
            NDArray x = f.get("x");
            NDArray embed = f.get("embed");
            NDArray weight = f.get("weight");
            NDArray bias = f.get("bias");
            NDArray shift = f.get("shift");
            for (NDArray leaf : new NDArray[] {x, embed, weight, bias, shift}) {
                leaf.setRequiresGradient(true);
            }
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                NDArray source = variant.equals("hidden") ? x : embed;
                NDArray m = LearnedDropout.keepProbability(Linear.linear(source, weight, bias).head(), shift, 3);
                NDArray rounded = LearnedDropout.round(m, f.get("noise"));
                NDArray out = x.mul(rounded);
                NDArray squared = LearnedDropout.penalty(m, LearnedDropout.PenaltyType.SQUARED);
                NDArray linear = LearnedDropout.penalty(m, LearnedDropout.PenaltyType.LINEAR);

                assertTrue(m.allClose(f.get("m"), 1e-5, 1e-6, false), "M");
                assertEquals(f.get("rounded"), rounded);
                assertEquals(f.get("out"), out);
                assertEquals(f.get("penalty_squared").getFloat(), squared.getFloat(), 1e-6);
                assertEquals(f.get("penalty_linear").getFloat(), linear.getFloat(), 1e-6);

                collector.backward(out.mul(f.get("upstream")).sum().add(squared.mul(0.1f)));
            }
            // the reference rounds the gradient reaching M to fp16 (2^-11 relative); ours stays fp32
            assertTrue(relativeError(x.getGradient(), f.get("grad_x")) < 2e-3, "grad x");
            assertTrue(relativeError(weight.getGradient(), f.get("grad_weight")) < 2e-3, "grad weight");
            assertTrue(relativeError(bias.getGradient(), f.get("grad_bias")) < 2e-3, "grad bias");
            assertTrue(relativeError(shift.getGradient(), f.get("grad_shift")) < 2e-3, "grad shift");
            if (variant.equals("embed")) {
                assertTrue(relativeError(embed.getGradient(), f.get("grad_embed")) < 2e-3, "grad embed");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"hidden", "embed"})
    void evalBlockWithReferenceWeightsMatches(String variant) throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> f = fixtures(manager, variant);
            boolean embed = variant.equals("embed");
            LearnedDropout block = LearnedDropout.builder().setEmbedDim(12).setNumHeads(3).optUseBias(true)
                    .optDropoutInputType(embed ? LearnedDropout.DropoutInputType.EMBED
                            : LearnedDropout.DropoutInputType.HIDDEN_STATE)
                    .build();
            NDList inputs = embed ? new NDList(f.get("x"), f.get("embed")) : new NDList(f.get("x"));
            block.initialize(manager, DataType.FLOAT32, inputs.getShapes());
            Map<String, NDArray> byName = Map.of(
                    "01batch_attn_weights_weight", f.get("weight"),
                    "01batch_attn_weights_bias", f.get("bias"),
                    "shift", f.get("shift"));
            assertEquals(byName.keySet(), new java.util.HashSet<>(block.getParameters().keys()));
            byName.forEach((name, value) ->
                    block.getParameters().get(name).getArray().set(new NDIndex("..."), value));

            NDList out = block.forward(new ParameterStore(manager, false), inputs, false);
            assertEquals(f.get("out_eval"), out.get(0));
            assertEquals(0f, out.get(1).getFloat());
            assertEquals(f.get("rounded_eval").mean().getFloat(), out.get(2).getFloat(), 1e-7);
        }
    }
}
