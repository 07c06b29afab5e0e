package dev.condjl.integration.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@link SafetensorsFiles}: round trip, BF16 widening and malformed files. */
class SafetensorsFilesTest {

    @TempDir Path dir;

    @Test
    void roundTripsNamedTensors() throws IOException {
        try (NDManager manager = NDManager.newBaseManager()) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            tensors.put("x", manager.create(new float[] {1.5f, -2, 3, 4, 5, 6}, new Shape(2, 3)));
            tensors.put("idx", manager.create(new long[] {7, -1}));
            tensors.put("mask", manager.create(new boolean[] {true, false, true}));
            tensors.put("scalar", manager.create(2.5));
            Path file = dir.resolve("t.safetensors");
            SafetensorsFiles.write(file, tensors);
            Map<String, NDArray> back = SafetensorsFiles.read(file, manager);
            assertEquals(List.copyOf(tensors.keySet()), List.copyOf(back.keySet()));
            for (String name : tensors.keySet()) {
                assertEquals(tensors.get(name).getDataType(), back.get(name).getDataType(), name);
                assertEquals(tensors.get(name), back.get(name), name);
            }
            assertEquals(0, (Files.size(file) - 8 - (6 * 4 + 2 * 8 + 3 + 8)) % 8, "header padded to 8 bytes");
        }
    }

    @Test
    void widensBf16ToFloat32() throws IOException {
        // bf16 bits of 1.0, -2.5, 3.140625: the upper halves of the float32 bits.
        short[] bits = {0x3F80, (short) 0xC020, 0x4049};
        String header = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},\"__metadata__\":{}}";
        ByteBuffer file = safetensors(header, 6);
        for (short b : bits) {
            file.putShort(b);
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray w = SafetensorsFiles.read(new ByteArrayInputStream(file.array()), manager).get("w");
            assertEquals(DataType.FLOAT32, w.getDataType());
            assertArrayEquals(new float[] {1f, -2.5f, 3.140625f}, w.toFloatArray());
        }
    }

    @Test
    void rejectsMalformedFiles() {
        String tooShort = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        assertRejected(safetensors(tooShort, 8).array(), "data_offsets [0, 8] do not hold F32 (3)");
        String unsupported = "{\"w\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}";
        assertRejected(safetensors(unsupported, 8).array(), "unsupported dtype C64");
        assertRejected(new byte[] {1, 2, 3}, "too short");
        assertRejected(safetensors("[1, 2]", 0).array(), "header is not a JSON object");
    }

    private static void assertRejected(byte[] bytes, String fragment) {
        try (NDManager manager = NDManager.newBaseManager()) {
            IOException e = assertThrows(IOException.class,
                    () -> SafetensorsFiles.read(new ByteArrayInputStream(bytes), manager));
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
        }
    }

    /** A buffer holding the length prefix and header, positioned at the start of {@code dataBytes} of data. */
    private static ByteBuffer safetensors(String header, int dataBytes) {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer file = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        return file.putLong(json.length).put(json);
    }
}
