package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.util.JsonUtils;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.condjl.topk.checkpoint.Checkpoints;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code condjl run} on the issue-8 modules (routed image / autoregressive attention, routed ViT,
 * coordinate-descent-attention), in-process, against the djl-colt5 fixtures of {@code routed_models/gen_fixtures.py}: each
 * fixture holds the reference {@code state_dict} plus {@code @}-prefixed inputs and outputs; {@code cases.json}
 * beside it gives the module name, its kwargs, the tensor names and the key prefix of the module's state_dict.
 */
class RoutedModelsRunTest {

    private static final Path FIXTURES = Path.of("..", "djl-colt5", "src", "test", "resources", "routed_models");

    @TempDir Path dir;

    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        CommandLine cli = new CommandLine(new Condjl());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    @Test
    void everyModuleMatchesItsFixture() throws IOException {
        JsonArray cases = JsonUtils.GSON.fromJson(Files.readString(FIXTURES.resolve("cases.json")), JsonArray.class);
        assertEquals(9, cases.size());
        for (JsonElement element : cases) {
            check(element.getAsJsonObject());
        }
        assertTrue(out.toString().contains("ConditionalRoutedViT: 1 output tensor(s)"), out.toString());
    }

    private void check(JsonObject c) throws IOException {
        String fixture = c.get("fixture").getAsString();
        JsonObject spec = new JsonObject();
        spec.add("module", c.get("module"));
        spec.add("config", c.get("config"));
        Path specFile = Files.writeString(dir.resolve(fixture + ".json"), spec.toString());
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> all = Checkpoints.read(FIXTURES.resolve(fixture), manager);
            String prefix = c.get("weights_prefix").getAsString();
            Map<String, NDArray> weights = new LinkedHashMap<>();
            all.forEach((name, array) -> {
                if (!name.startsWith("@")) {
                    weights.put(prefix + name, array);
                }
            });
            Map<String, NDArray> inputs = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> e : c.getAsJsonObject("inputs").entrySet()) {
                inputs.put(e.getValue().getAsString(), all.get("@" + e.getKey()));
            }
            Path in = dir.resolve(fixture + ".in.safetensors");
            Path weightFile = dir.resolve(fixture + ".weights.safetensors");
            Path outFile = dir.resolve(fixture + ".out.safetensors");
            Checkpoints.writeSafetensors(in, inputs);
            Checkpoints.writeSafetensors(weightFile, weights);
            int code = run("run", "--spec", specFile.toString(), "--input", in.toString(), "--weights",
                    weightFile.toString(), "--output", outFile.toString());
            assertEquals(0, code, fixture + ": " + err);
            NDArray expected = all.get("@" + c.get("output").getAsString());
            NDArray actual = Checkpoints.read(outFile, manager).get("output");
            assertEquals(expected.getShape().size() == 1 ? new Shape() : expected.getShape(), actual.getShape(),
                    fixture);
            double diff = expected.toType(DataType.FLOAT64, false).reshape(actual.getShape())
                    .sub(actual.toType(DataType.FLOAT64, false)).abs().max().getDouble();
            assertTrue(diff <= 1e-4, fixture + ": max abs diff " + diff);
        }
    }

    @Test
    void shortSequenceIsAOneLineError() throws IOException {
        Path spec = Files.writeString(dir.resolve("ar.json"), "{\"module\": \"ConditionalRoutedAutoregressiveAttention\","
                + " \"config\": {\"dim\": 8, \"num_heavy_tokens_q\": 2, \"num_heavy_tokens_kv\": 2,"
                + " \"light_window_size\": 4, \"light_dim_head\": 4, \"light_heads\": 2, \"heavy_dim_head\": 4,"
                + " \"heavy_heads\": 2}}");
        try (NDManager manager = NDManager.newBaseManager()) {
            Path in = dir.resolve("in.safetensors");
            Checkpoints.writeSafetensors(in, Map.of("x", manager.randomNormal(new Shape(1, 3, 8))));
            assertEquals(1, run("run", "--spec", spec.toString(), "--input", in.toString()));
            assertEquals("condjl run: sequence length (3) must be >= heavyWindowSize (4); x has shape (1, 3, 8)",
                    err.toString().strip());
        }
    }
}
