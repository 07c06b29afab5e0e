package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.checkpoint.Checkpoints;
import dev.condjl.topk.checkpoint.ReadOptions;
import dev.condjl.topk.checkpoint.StateDicts;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading a yif-AI {@code state_dict} (a {@code torch.save} file written by {@code learned_dropout/gen_state_dict.py}
 * from the spec's names, §4.1-§4.2) into {@link LearnedDropoutTransformer}, including the reference's tied copy of
 * the token embedding, {@code output_layer.weight}.
 */
class LearnedDropoutCheckpointTest {

    private static Path fixture(String name) throws URISyntaxException {
        return Path.of(LearnedDropoutCheckpointTest.class.getResource("/learned_dropout/" + name).toURI());
    }

    /** The fixture's configuration: vocabulary 13, context 6, width 8, 2 layers, 2 heads, no biases. */
    private static LearnedDropoutTransformer model(NDManager manager) {
        LearnedDropoutTransformer model = LearnedDropoutTransformer.builder().setAlphabetSize(13).setContextSize(6)
                .setNEmbed(8).setNLayer(2).setNHead(2).optLearnedDropout(LearnedDropout.builder()).build();
        model.initialize(manager, DataType.FLOAT32, new Shape(2, 6));
        return model;
    }

    @Test
    void strictLoadAcceptsTheEqualTiedOutputLayerAndReproducesTheLogits() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = model(manager);
            StateDicts.LoadReport report = Checkpoints.loadInto(model, fixture("yif_state_dict.pt"));
            assertTrue(report.isComplete(), report.toString());
            assertEquals(List.of("output_layer.weight"), report.tied());
            assertEquals(StateDicts.parameters(model).size(), report.loaded());

            Map<String, NDArray> expected = Checkpoints.read(fixture("yif_expected.safetensors"), manager);
            NDArray tokens = expected.get("tokens").toType(DataType.INT64, false);
            NDList out = model.forward(new ParameterStore(manager, false), new NDList(tokens), false);
            NDArray logits = out.get(0);
            assertEquals(new Shape(2, 6, 13), logits.getShape());
            float diff = logits.sub(expected.get("logits")).abs().max().getFloat();
            assertTrue(diff < 1e-4f, "max |logits - torch| = " + diff);
        }
    }

    @Test
    void unequalTiedOutputLayerIsRefusedWithTheTieExplained() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = model(manager);
            float[] before = StateDicts.parameters(model).get("token_embedding.weight").getArray().toFloatArray();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Checkpoints.loadInto(model, fixture("yif_state_dict_untied.pt")));
            assertTrue(e.getMessage().contains("output_layer.weight=tied to 'token_embedding.weight'")
                    && e.getMessage().contains("LearnedDropoutTransformer has one parameter for both keys")
                    && e.getMessage().contains("max |difference| 0.500"), e.getMessage());
            assertArrayEquals(before,
                    StateDicts.parameters(model).get("token_embedding.weight").getArray().toFloatArray(),
                    "a refused strict load copies nothing");

            // the way out the message names: drop one of the two keys
            StateDicts.LoadReport report = Checkpoints.loadInto(model, fixture("yif_state_dict_untied.pt"),
                    ReadOptions.builder().optExclude("output_layer.weight"::equals).build(), true);
            assertTrue(report.isComplete() && report.tied().isEmpty(), report.toString());
        }
    }

    @Test
    void exportWritesTheTiedCopyAndReloadsStrictly(@TempDir Path dir) throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropoutTransformer model = model(manager);
            Checkpoints.loadInto(model, fixture("yif_state_dict.pt"));
            Path file = dir.resolve("yif.safetensors");
            Checkpoints.exportBlock(Parametrized.wrap(model).registerAll(new WeightDropout(0.1f)), file);
            Map<String, NDArray> written = Checkpoints.read(file, manager);
            Map<String, NDArray> original = Checkpoints.read(fixture("yif_state_dict.pt"), manager);
            assertEquals(original.keySet(), written.keySet());
            original.forEach((key, array) -> assertEquals(array, written.get(key), key));
            assertEquals(List.of("output_layer.weight"), Checkpoints.loadInto(model(manager), file).tied());
        }
    }
}
