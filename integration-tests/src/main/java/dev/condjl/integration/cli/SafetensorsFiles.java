package dev.condjl.integration.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads and writes named tensors in the safetensors format: an 8-byte little-endian header length, a JSON header
 * {@code {name: {dtype, shape, data_offsets: [begin, end]}}} and the raw little-endian data. BF16 entries are widened
 * to float32 in Java before DJL sees them (DJL's PyTorch engine aborts on bfloat16).
 */
public final class SafetensorsFiles {

    private static final Map<String, DataType> DTYPES = Map.of(
            "F16", DataType.FLOAT16,
            "F32", DataType.FLOAT32,
            "F64", DataType.FLOAT64,
            "I8", DataType.INT8,
            "U8", DataType.UINT8,
            "I32", DataType.INT32,
            "I64", DataType.INT64,
            "BOOL", DataType.BOOLEAN);
    private static final String METADATA = "__metadata__";

    private SafetensorsFiles() {}

    /**
     * Reads every tensor of a file.
     *
     * @param file the safetensors file
     * @param manager the manager of the new arrays
     * @return the arrays by name, in header order; BF16 entries as float32
     * @throws IOException if the file cannot be read or is not valid safetensors
     */
    public static Map<String, NDArray> read(Path file, NDManager manager) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return read(in, manager);
        } catch (IOException e) {
            throw new IOException("cannot read safetensors file " + file + ": " + reason(e), e);
        }
    }

    /**
     * Reads every tensor of a stream.
     *
     * @param in the safetensors bytes; read to the end, not closed
     * @param manager the manager of the new arrays
     * @return the arrays by name, in header order; BF16 entries as float32
     * @throws IOException if the stream cannot be read or is not valid safetensors
     */
    public static Map<String, NDArray> read(InputStream in, NDManager manager) throws IOException {
        ByteBuffer bytes = ByteBuffer.wrap(in.readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.remaining() < 8) {
            throw new IOException("too short for a safetensors header (" + bytes.remaining() + " bytes)");
        }
        long headerLength = bytes.getLong(0);
        if (headerLength < 2 || headerLength > bytes.capacity() - 8) {
            throw new IOException("header length " + headerLength + " does not fit a file of " + bytes.capacity()
                    + " bytes");
        }
        JsonObject header;
        try {
            String json = new String(bytes.array(), 8, (int) headerLength, StandardCharsets.UTF_8);
            header = JsonParser.parseString(json).getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
            throw new IOException("header is not a JSON object: " + e.getMessage(), e);
        }
        int dataStart = 8 + (int) headerLength;
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> entry : header.entrySet()) {
            if (!entry.getKey().equals(METADATA)) {
                tensors.put(entry.getKey(),
                        readTensor(entry.getKey(), entry.getValue(), bytes, dataStart, manager));
            }
        }
        return tensors;
    }

    private static NDArray readTensor(String name, JsonElement element, ByteBuffer bytes, int dataStart,
            NDManager manager) throws IOException {
        String dtype;
        Shape shape;
        long begin;
        long end;
        try {
            JsonObject info = element.getAsJsonObject();
            dtype = info.get("dtype").getAsString();
            JsonArray dims = info.getAsJsonArray("shape");
            long[] sizes = new long[dims.size()];
            for (int i = 0; i < sizes.length; i++) {
                sizes[i] = dims.get(i).getAsLong();
            }
            shape = new Shape(sizes);
            JsonArray offsets = info.getAsJsonArray("data_offsets");
            begin = offsets.get(0).getAsLong();
            end = offsets.get(1).getAsLong();
        } catch (RuntimeException e) {
            throw new IOException("tensor '" + name + "': malformed header entry " + element, e);
        }
        boolean bf16 = dtype.equals("BF16");
        DataType type = bf16 ? DataType.FLOAT32 : DTYPES.get(dtype);
        if (type == null) {
            throw new IOException("tensor '" + name + "': unsupported dtype " + dtype);
        }
        long expected = shape.size() * (bf16 ? 2 : type.getNumOfBytes());
        if (begin < 0 || end - begin != expected || dataStart + end > bytes.capacity()) {
            throw new IOException("tensor '" + name + "': data_offsets [" + begin + ", " + end + "] do not hold "
                    + dtype + " " + shape + " in a data section of " + (bytes.capacity() - dataStart) + " bytes");
        }
        ByteBuffer data = bytes.slice(dataStart + (int) begin, (int) expected).order(ByteOrder.LITTLE_ENDIAN);
        if (bf16) {
            data = widenBf16(data);
        }
        NDArray array = manager.create(data, shape, type);
        array.setName(name);
        return array;
    }

    /** bfloat16 is the upper half of a float32: shifting its bits up 16 is exact. */
    private static ByteBuffer widenBf16(ByteBuffer bf16) {
        ByteBuffer f32 = ByteBuffer.allocate(bf16.remaining() * 2).order(ByteOrder.LITTLE_ENDIAN);
        while (bf16.hasRemaining()) {
            f32.putInt((bf16.getShort() & 0xFFFF) << 16);
        }
        return f32.flip();
    }

    /**
     * Writes named tensors.
     *
     * @param file the file to create or replace
     * @param tensors the arrays by name, written in iteration order; dtypes F16, F32, F64, I8, U8, I32, I64 or BOOL
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if a dtype has no safetensors code here
     */
    public static void write(Path file, Map<String, NDArray> tensors) throws IOException {
        Map<String, Object> header = new LinkedHashMap<>();
        Map<String, byte[]> blobs = new LinkedHashMap<>();
        long offset = 0;
        for (Map.Entry<String, NDArray> entry : tensors.entrySet()) {
            NDArray array = entry.getValue();
            String dtype = code(entry.getKey(), array.getDataType());
            ByteBuffer buffer = array.toByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            byte[] blob = new byte[buffer.remaining()];
            buffer.get(blob);
            header.put(entry.getKey(), Map.of("dtype", dtype, "shape", array.getShape().getShape(),
                    "data_offsets", new long[] {offset, offset + blob.length}));
            blobs.put(entry.getKey(), blob);
            offset += blob.length;
        }
        byte[] json = new Gson().toJson(header).getBytes(StandardCharsets.UTF_8);
        byte[] headerBytes = Arrays.copyOf(json, (json.length + 7) & ~7);
        Arrays.fill(headerBytes, json.length, headerBytes.length, (byte) ' ');
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
            out.write(headerBytes);
            for (byte[] blob : blobs.values()) {
                out.write(blob);
            }
        } catch (IOException e) {
            throw new IOException("cannot write safetensors file " + file + ": " + reason(e), e);
        }
    }

    /** A readable cause: file-system exceptions carry only the path as their message. */
    static String reason(IOException e) {
        if (e instanceof NoSuchFileException) {
            return "no such file";
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied";
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static String code(String name, DataType type) {
        for (Map.Entry<String, DataType> entry : DTYPES.entrySet()) {
            if (entry.getValue() == type) {
                return entry.getKey();
            }
        }
        throw new IllegalArgumentException("tensor '" + name + "' has dtype " + type + ", which cannot be written");
    }
}
