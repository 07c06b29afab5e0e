package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.checkpoint.StateDicts;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link ConditionalRoutedViT} (spec colt5.md §2.12, §3.8) against {@code routed_models/gen_fixtures.py}. */
class ConditionalRoutedViTTest {

    /** The configuration of {@code vit.safetensors}. */
    static ConditionalRoutedViT.Builder fixtureConfig() {
        return ConditionalRoutedViT.builder()
                .setImageSize(16)
                .setPatchSize(4)
                .setNumClasses(5)
                .setDim(16)
                .setDepth(2)
                .setAttnNumHeavyTokensQ(2)
                .setAttnNumHeavyTokensKv(3)
                .setAttnHeavyDimHead(8)
                .setAttnHeavyHeads(2)
                .setAttnLightDimHead(8)
                .setAttnLightHeads(2)
                .setAttnLightWindowSize(2)
                .setFfNumHeavyTokens(10)
                .setFfHeavyMult(2)
                .setFfLightMult(0.5);
    }

    @Test
    void logitsMatchFixtureAndSurviveDjlSaveAndLoad() throws IOException, MalformedModelException {
        try (NDManager manager = NDManager.newBaseManager()) {
            RoutedModelFixtures fx = RoutedModelFixtures.read(manager, "vit.safetensors");
            NDArray img = fx.get("img");
            ConditionalRoutedViT vit = fixtureConfig().build();
            vit.initialize(manager, DataType.FLOAT32, img.getShape());
            fx.load(vit);
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray logits = vit.apply(ps, img, false);
            RoutedModelFixtures.assertClose("vit logits", fx.get("logits"), logits);

            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            vit.saveParameters(new DataOutputStream(bytes));
            ConditionalRoutedViT copy = fixtureConfig().build();
            copy.loadParameters(manager, new DataInputStream(new ByteArrayInputStream(bytes.toByteArray())));
            assertEquals(0.0, RoutedModelFixtures.maxAbsDiff(logits, copy.apply(ps, img, false)));
        }
    }

    @Test
    void stateDictFollowsTheReferenceLayout() {
        try (NDManager manager = NDManager.newBaseManager()) {
            ConditionalRoutedViT vit = fixtureConfig().setDepth(1).build();
            vit.initialize(manager, DataType.FLOAT32, new Shape(1, 3, 16, 16));
            List<String> keys = List.copyOf(StateDicts.parameters(vit).keySet());
            assertEquals("to_patch_embedding.1.weight", keys.get(0));
            assertTrue(keys.contains("to_patch_embedding.2.weight"));
            assertTrue(keys.contains("transformer.layers.0.0.heavy_attn.null_kv"));
            assertTrue(keys.contains("transformer.layers.0.0.light_attn.norm.gamma"));
            assertTrue(keys.contains("transformer.layers.0.1.heavy_ff.3.weight"));
            assertEquals(List.of("linear_head.1.weight", "linear_head.1.bias", "linear_head.2.weight",
                    "linear_head.2.bias"), keys.subList(keys.size() - 4, keys.size()));
            assertEquals(new Shape(16, 48),
                    StateDicts.parameters(vit).get("to_patch_embedding.2.weight").getArray().getShape());
        }
    }

    @Test
    void posembFollowsTheFormula() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray pe = ConditionalRoutedViT.posembSincos2d(manager, 3, 5, 8);
            assertEquals(new Shape(3, 5, 8), pe.getShape());
            // row y = 2, column x = 4; ω = [1, 1/10000]
            float[] cell = pe.get("2, 4").toFloatArray();
            double[] omega = {1, 1e-4};
            for (int j = 0; j < 2; j++) {
                assertEquals(Math.sin(4 * omega[j]), cell[j], 1e-6);
                assertEquals(Math.cos(4 * omega[j]), cell[2 + j], 1e-6);
                assertEquals(Math.sin(2 * omega[j]), cell[4 + j], 1e-6);
                assertEquals(Math.cos(2 * omega[j]), cell[6 + j], 1e-6);
            }
            assertThrows(IllegalArgumentException.class, () -> ConditionalRoutedViT.posembSincos2d(manager, 2, 2, 4));
        }
    }

    @Test
    void rejectsBadImagesAndConfigs() {
        try (NDManager manager = NDManager.newBaseManager()) {
            ConditionalRoutedViT vit = fixtureConfig().setDepth(1).build();
            vit.initialize(manager, DataType.FLOAT32, new Shape(1, 3, 16, 16));
            ParameterStore ps = new ParameterStore(manager, false);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> vit.apply(ps, manager.zeros(new Shape(1, 3, 18, 16)), false));
            assertTrue(e.getMessage().contains("(1, 3, 18, 16)"), e.getMessage());
            // 20 / 4 = 5 patches: not a multiple of the 2-patch window
            IllegalArgumentException grid = assertThrows(IllegalArgumentException.class,
                    () -> fixtureConfig().setImageSize(20).build());
            assertEquals("patch grid (5, 5) must be divisible by attnLightWindowSize (2)", grid.getMessage());
            assertThrows(IllegalArgumentException.class, () -> fixtureConfig().setDim(18).build());
            assertThrows(IllegalArgumentException.class, () -> fixtureConfig().setImageSize(15).build());
        }
    }
}
