package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

import dev.condjl.topk.checkpoint.Checkpoints;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;

/**
 * The example cases of {@code condjl run} (main resources {@code examples/}) and their expected outputs (test
 * resources {@code run/}, made by {@code gen_run_fixtures.py}).
 */
final class RunFixtures {

    private RunFixtures() {}

    /** Copies {@code examples/<module>.json} and {@code .safetensors} into {@code dir}; returns the case file. */
    static Path copyExample(String module, Path dir) throws IOException {
        copy("/examples/" + module + ".safetensors", dir.resolve(module + ".in.safetensors"));
        return copy("/examples/" + module + ".json", dir.resolve(module + ".json"));
    }

    /** A test resource as a file: test resources are plain files under target/test-classes. */
    private static Path resource(String name) {
        URL url = RunFixtures.class.getResource(name);
        assertNotNull(url, "missing resource " + name);
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Path copy(String resource, Path target) throws IOException {
        try (InputStream in = RunFixtures.class.getResourceAsStream(resource)) {
            assertNotNull(in, "missing resource " + resource);
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
        return target;
    }

    /** Asserts that {@code outputFile} holds the expected outputs of {@code module} (floats within 1e-5). */
    static void assertExpectedOutputs(String module, Path outputFile) throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> expected = Checkpoints.read(resource("/run/" + module + ".expected.safetensors"),
                    manager);
            Map<String, NDArray> actual = Checkpoints.read(outputFile, manager);
            assertEquals(expected.keySet(), actual.keySet(), module + " output names");
            for (Map.Entry<String, NDArray> entry : expected.entrySet()) {
                NDArray want = entry.getValue();
                NDArray got = actual.get(entry.getKey());
                String what = module + " " + entry.getKey();
                assertEquals(want.getDataType(), got.getDataType(), what + " dtype");
                assertEquals(want.getShape(), got.getShape(), what + " shape");
                // Gradients through ε = 0.03 reach ~1/ε; compare them relative to their size, like djl-topk's tests.
                double atol = entry.getKey().startsWith("grad_") ? 1e-4 : 1e-5;
                double rtol = entry.getKey().startsWith("grad_") ? 1e-4 : 0;
                assertTrue(want.toType(DataType.FLOAT64, false).allClose(got.toType(DataType.FLOAT64, false),
                        rtol, atol, false), what + ": expected " + want + " got " + got);
            }
        }
    }
}
