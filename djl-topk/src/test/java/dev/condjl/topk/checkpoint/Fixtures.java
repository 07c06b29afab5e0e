package dev.condjl.topk.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** The fixtures made by {@code src/test/resources/checkpoint/gen_fixtures.py} and their expected values. */
final class Fixtures {

    /** The DJL type each PyTorch dtype must arrive as (bfloat16 and int16 are widened; DJL aborts on them). */
    private static final Map<String, DataType> DJL_TYPES = Map.of(
            "float32", DataType.FLOAT32, "float16", DataType.FLOAT16, "bfloat16", DataType.FLOAT32,
            "float64", DataType.FLOAT64, "int64", DataType.INT64, "int32", DataType.INT32, "int16", DataType.INT32,
            "int8", DataType.INT8, "uint8", DataType.UINT8, "bool", DataType.BOOLEAN);

    private static JsonObject expected;

    private Fixtures() {}

    static Path path(String name) {
        URL url = Fixtures.class.getResource("/checkpoint/" + name);
        assertNotNull(url, "missing fixture " + name + "; run gen_fixtures.py generate");
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Expected tensors of one fixture file: key to {dtype, shape, values}, in the order the script saved them. */
    static synchronized JsonObject expected(String file) {
        if (expected == null) {
            try {
                expected = JsonParser.parseString(Files.readString(path("expected.json"))).getAsJsonObject();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return expected.getAsJsonObject(file);
    }

    static List<String> expectedKeys(String file) {
        return expected(file).keySet().stream().collect(Collectors.toList());
    }

    /** Asserts dtype (after DJL widening), shape and exact values of an array read from a fixture. */
    static void assertTensor(JsonObject want, NDArray actual, String what) {
        String dtype = want.get("dtype").getAsString();
        assertEquals(DJL_TYPES.get(dtype), actual.getDataType(), what + " dtype");
        JsonArray shape = want.getAsJsonArray("shape");
        long[] wantShape = new long[shape.size()];
        for (int i = 0; i < wantShape.length; i++) {
            wantShape[i] = shape.get(i).getAsLong();
        }
        assertArrayEquals(wantShape, actual.getShape().getShape(), what + " shape");
        JsonArray values = want.getAsJsonArray("values");
        if (actual.getDataType().isFloating()) {
            double[] wantValues = new double[values.size()];
            for (int i = 0; i < wantValues.length; i++) {
                wantValues[i] = values.get(i).getAsDouble();
            }
            assertArrayEquals(wantValues, actual.toType(DataType.FLOAT64, false).toDoubleArray(), what + " values");
        } else {
            long[] wantValues = new long[values.size()];
            for (int i = 0; i < wantValues.length; i++) {
                wantValues[i] = values.get(i).getAsLong();
            }
            assertArrayEquals(wantValues, actual.toType(DataType.INT64, false).toLongArray(), what + " values");
        }
    }

    /** Asserts that {@code actual} holds exactly the fixture's tensors, in order. */
    static void assertStateDict(String file, Map<String, NDArray> actual) {
        assertEquals(expectedKeys(file), List.copyOf(actual.keySet()), file + " keys");
        for (String key : expectedKeys(file)) {
            assertTensor(expected(file).getAsJsonObject(key), actual.get(key), file + "[" + key + "]");
        }
    }
}
