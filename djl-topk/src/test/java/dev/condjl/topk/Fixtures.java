package dev.condjl.topk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.google.gson.JsonArray;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.util.Random;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/** Golden fixtures made by {@code src/test/resources/fixtures/gen_fixtures.py}, and float comparisons. */
final class Fixtures {

    private Fixtures() {}

    /** The case list {@code fixtures/<name>.json}. */
    static JsonArray cases(String name) {
        try (InputStream in = open(name + ".json")) {
            return JsonParser.parseReader(new InputStreamReader(in, StandardCharsets.UTF_8)).getAsJsonArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The tensors of {@code fixtures/<name>.safetensors} by name ({@code <case>.<field>}). */
    static Map<String, NDArray> tensors(NDManager manager, String name) {
        try (InputStream in = open(name + ".safetensors")) {
            Map<String, NDArray> byName = new HashMap<>();
            for (NDArray array : NDList.decode(manager, in)) {
                byName.put(array.getName(), array);
            }
            return byName;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Standard-normal values drawn on the host from {@code seed}: the same numbers on every device, unlike
     * {@code manager.randomNormal}, whose CPU and CUDA generators differ. Tests whose bound depends on the data
     * (convergence within a fixed number of iterations) use these.
     *
     * @param manager where the array is created (its device)
     * @param seed the generator's seed
     * @param shape the shape
     * @return float32 N(0, 1) values
     */
    static NDArray normal(NDManager manager, long seed, long... shape) {
        Shape s = new Shape(shape);
        Random random = new Random(seed);
        float[] values = new float[Math.toIntExact(s.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return manager.create(values, s);
    }

    private static InputStream open(String file) {
        InputStream in = Fixtures.class.getResourceAsStream("/fixtures/" + file);
        assertNotNull(in, "missing fixture " + file);
        return in;
    }

    /**
     * Asserts a gradient within 1e-4 of the reference, relative to the entry's size where it exceeds 1: small ε
     * amplifies gradients (1/ε ≈ 33 for ε = 0.03), and with them float32 rounding differences between engines.
     */
    static void assertGradientClose(NDArray expected, NDArray actual, String what) {
        assertClose(expected, actual, 1e-4, 1e-4, what);
    }

    /** Asserts equal shapes and {@code |actual - expected| <= atol} everywhere (NaN only where expected is NaN). */
    static void assertClose(NDArray expected, NDArray actual, double atol, String what) {
        assertClose(expected, actual, atol, 0, what);
    }

    private static void assertClose(NDArray expected, NDArray actual, double atol, double rtol, String what) {
        assertEquals(expected.getShape(), actual.getShape(), what + " shape");
        float[] want = expected.toType(DataType.FLOAT32, false).toFloatArray();
        float[] got = actual.toType(DataType.FLOAT32, false).toFloatArray();
        for (int i = 0; i < want.length; i++) {
            double tolerance = Math.max(atol, rtol * Math.abs(want[i]));
            boolean ok = Float.isNaN(want[i]) ? Float.isNaN(got[i]) : Math.abs(got[i] - want[i]) <= tolerance;
            if (!ok) {
                fail(what + ": element " + i + " is " + got[i] + ", expected " + want[i] + " (tolerance " + tolerance
                        + ")");
            }
        }
    }
}
