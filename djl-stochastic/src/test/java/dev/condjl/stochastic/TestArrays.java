package dev.condjl.stochastic;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Supplier;

/** Helpers shared by the tests of this package. */
final class TestArrays {

    private TestArrays() {}

    /** Parses a JSON fixture from this package's test resources. */
    static JsonObject readJson(String resource) throws IOException {
        try (Reader r =
                new InputStreamReader(
                        TestArrays.class.getResourceAsStream(resource), StandardCharsets.UTF_8)) {
            return JsonParser.parseReader(r).getAsJsonObject();
        }
    }

    /** Whether row {@code i} of a and b has the same bytes (so -0.0 differs from 0.0). */
    static boolean rowBitsEqual(NDArray a, NDArray b, long i) {
        return Arrays.equals(a.get(i).toByteArray(), b.get(i).toByteArray());
    }

    /** Asserts |a - b| <= tol element-wise, with a message naming the largest difference. */
    static void assertClose(NDArray expected, NDArray actual, double tol) {
        assertArrayEquals(expected.getShape().getShape(), actual.getShape().getShape(), "shape");
        float maxDiff = expected.sub(actual).abs().max().getFloat();
        assertTrue(maxDiff <= tol, "max |difference| " + maxDiff + " > " + tol);
    }

    /**
     * The mean of {@code draws} outputs, each drawn after {@code Engine.setRandomSeed(seed)} with
     * its own seed; intermediate arrays are released per draw.
     */
    static NDArray meanOverSeeds(
            NDManager manager, Shape shape, int draws, Supplier<NDArray> draw) {
        NDArray sum = manager.zeros(shape);
        for (int seed = 0; seed < draws; seed++) {
            Engine.getInstance().setRandomSeed(seed);
            NDScope scope = new NDScope();
            try {
                sum.addi(draw.get());
            } finally {
                scope.close();
            }
        }
        return sum.div(draws);
    }
}
