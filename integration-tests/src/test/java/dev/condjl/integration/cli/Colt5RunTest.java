package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.util.JsonUtils;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import dev.condjl.topk.checkpoint.Checkpoints;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code condjl run} on the CoLT5 modules, in-process, against the djl-colt5 parity fixtures (made by
 * {@code djl-colt5/src/test/resources/colt5/gen_fixtures.py} from a PyTorch re-implementation of the reference):
 * case file from {@code cases.json}, {@code --weights} the exported {@code state_dict}, outputs compared at valid
 * positions within 1e-4.
 */
class Colt5RunTest {

    private static final Path FIXTURES = Path.of("..", "djl-colt5", "src", "test", "resources", "colt5");

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
        List<String> names = List.of("router_mask_odd", "ff_mask_odd", "attn_two_routes_rotary", "block_mask_odd",
                "cross_masks_two_routes", "cross_no_null");
        for (JsonElement element : cases) {
            JsonObject c = element.getAsJsonObject();
            String name = c.get("name").getAsString();
            if (names.contains(name)) {
                check(name, c, FIXTURES.resolve(name + ".weights.safetensors"));
            }
        }
        assertTrue(out.toString().contains("ConditionalRoutedCrossAttention: 1 output tensor(s)"), out.toString());
    }

    /** Runs fixture {@code name} with the given weights and extra arguments; asserts its outputs. */
    private void check(String name, JsonObject c, Path weights, String... extraArgs) throws IOException {
        JsonObject spec = new JsonObject();
        spec.add("module", c.get("module"));
        spec.add("config", c.get("config"));
        spec.add("forward", c.get("forward"));
        Path specFile = Files.writeString(dir.resolve(name + ".json"), spec.toString());
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> io = Checkpoints.read(FIXTURES.resolve(name + ".io.safetensors"), manager);
            Map<String, NDArray> inputs = new LinkedHashMap<>();
            for (JsonElement input : c.getAsJsonArray("inputs")) {
                inputs.put(input.getAsString(), io.get(input.getAsString()));
            }
            Path in = dir.resolve(name + ".in.safetensors");
            Checkpoints.writeSafetensors(in, inputs);
            Path outFile = dir.resolve(name + ".out.safetensors");
            List<String> args = new ArrayList<>(List.of("run", "--spec", specFile.toString(), "--input", in.toString(),
                    "--weights", weights.toString(), "--output", outFile.toString()));
            args.addAll(List.of(extraArgs));
            int code = run(args.toArray(String[]::new));
            assertEquals(0, code, name + ": " + err);
            Map<String, NDArray> actual = Checkpoints.read(outFile, manager);
            if (name.startsWith("router")) {
                // the selected token sets (valid tokens only), order-free
                NDArray valid = io.get("routed_mask");
                assertEquals(selected(io.get("indices"), valid), selected(actual.get("indices"), actual.get(
                        "routed_mask")), name);
                return;
            }
            NDArray diff = actual.get("output").sub(io.get("output")).abs();
            if (inputs.containsKey("mask")) {
                diff = diff.mul(inputs.get("mask").toType(DataType.FLOAT32, false).expandDims(-1));
            }
            float max = diff.max().getFloat();
            assertTrue(max <= 1e-4, name + ": max abs diff " + max);
        }
    }

    @Test
    void stripPrefixLoadsDataParallelWeights() throws IOException {
        String name = "ff_mask_odd";
        JsonArray cases = JsonUtils.GSON.fromJson(Files.readString(FIXTURES.resolve("cases.json")), JsonArray.class);
        JsonObject c = cases.asList().stream().map(JsonElement::getAsJsonObject)
                .filter(e -> e.get("name").getAsString().equals(name)).findFirst().orElseThrow();
        Path prefixed = dir.resolve("module.weights.safetensors");
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> weights = new LinkedHashMap<>();
            Checkpoints.read(FIXTURES.resolve(name + ".weights.safetensors"), manager)
                    .forEach((key, array) -> weights.put("module." + key, array));
            Checkpoints.writeSafetensors(prefixed, weights);
        }
        check(name, c, prefixed, "--strip-prefix", "module.");
        // check() left the case and input files behind; without the option the keys do not line up
        assertEquals(1, run("run", "--spec", dir.resolve(name + ".json").toString(), "--input",
                dir.resolve(name + ".in.safetensors").toString(), "--weights", prefixed.toString()));
        String text = err.toString();
        assertTrue(text.startsWith("condjl run: ") && text.contains("module."), text);
        assertEquals(1, text.strip().lines().count(), text);
    }

    /** Per row, the sorted indices whose routed mask is true. */
    private static String selected(NDArray indices, NDArray mask) {
        long k = indices.getShape().tail();
        long[] idx = indices.toLongArray();
        boolean[] keep = mask.toBooleanArray();
        StringBuilder rows = new StringBuilder();
        for (int row = 0; row < idx.length / k; row++) {
            List<Long> picked = new ArrayList<>();
            for (int j = 0; j < k; j++) {
                int p = (int) (row * k + j);
                if (keep[p]) {
                    picked.add(idx[p]);
                }
            }
            Collections.sort(picked);
            rows.append(picked).append(';');
        }
        return rows.toString();
    }

    @Test
    void badArgumentsAreOneLine() throws IOException {
        Path spec = Files.writeString(dir.resolve("bad.json"),
                "{\"module\": \"ConditionalRoutedFeedForward\", \"config\": {\"dim\": 16}}");
        try (NDManager manager = NDManager.newBaseManager()) {
            Path in = dir.resolve("in.safetensors");
            Checkpoints.writeSafetensors(in,
                    Map.of("x", manager.randomNormal(new ai.djl.ndarray.types.Shape(1, 4, 16))));
            assertEquals(1, run("run", "--spec", spec.toString(), "--input", in.toString()));
            assertEquals("condjl run: ConditionalRoutedFeedForward: missing required argument 'num_heavy_tokens'",
                    err.toString().strip());
        }
    }
}
