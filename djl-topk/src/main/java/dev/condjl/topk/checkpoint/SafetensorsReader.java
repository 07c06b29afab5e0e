package dev.condjl.topk.checkpoint;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.EOFException;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads safetensors files: an 8-byte little-endian header length {@code n}, {@code n} bytes of UTF-8 JSON
 * ({@code {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, "__metadata__": {...}}}), then
 * the data section, offsets relative to its start.
 *
 * <p>Checked before any tensor data is read, as the reference implementation does: header length within the file
 * and at most 100 MB, strict JSON with exactly these fields and no duplicate names, known dtypes, non-negative
 * shapes whose byte size equals {@code end - begin}, and offsets that tile the data section exactly (no gaps, no
 * overlap, nothing past the end). This replaces DJL's own reader, which reads the whole file into one array and
 * aborts the JVM on {@code BF16}.
 */
final class SafetensorsReader extends CheckpointReader {

    /** The header size limit of the reference implementation. */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    static final String METADATA = "__metadata__";
    private static final String HEADER = "header";
    private static final int MAX_JSON_NESTING = 4;
    private static final Pattern POSITION = Pattern.compile(" at line \\d+ column \\d+");

    private final FileChannel channel;
    private final Map<String, long[]> ranges = new LinkedHashMap<>();
    private long dataStart;

    SafetensorsReader(Path file, ReadOptions options) throws CheckpointException {
        super(file, options);
        if (options.key() != null) {
            throw fail(null, null, "the key option selects a dict inside a PyTorch checkpoint; a safetensors file"
                    + " holds one flat dict");
        }
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (IOException | RuntimeException e) {
            throw fail(null, null, "cannot open the file: " + e, e);
        }
    }

    /** {@inheritDoc} */
    @Override
    void parse() throws IOException {
        select(parseHeader(), null);
    }

    /** {@inheritDoc} */
    @Override
    CheckpointFormat format() {
        return CheckpointFormat.SAFETENSORS;
    }

    /** {@inheritDoc} */
    @Override
    ByteBuffer elements(StoredTensor tensor) throws CheckpointException {
        long[] range = ranges.get(tensor.key());
        ByteBuffer buffer = ByteBuffer.allocate((int) (range[1] - range[0])).order(ByteOrder.LITTLE_ENDIAN);
        try {
            readFully(dataStart + range[0], buffer);
        } catch (IOException e) {
            throw fail("data", tensor.key(), "cannot read the tensor data: " + e.getMessage(), e);
        }
        return buffer.flip();
    }

    /** {@inheritDoc} */
    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            // closing a read-only channel does not lose data
        }
    }

    private Map<String, StoredTensor> parseHeader() throws IOException {
        long fileSize = channel.size();
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(0, lengthBytes);
        long length = lengthBytes.flip().getLong();
        if (length < 2 || length > MAX_HEADER_BYTES || length > fileSize - 8) {
            throw fail(HEADER, null, "header length " + Long.toUnsignedString(length)
                    + " is not between 2 and min(100 MB, file size " + fileSize + " - 8)");
        }
        ByteBuffer headerBytes = ByteBuffer.allocate((int) length);
        readFully(8, headerBytes);
        String header;
        try {
            header = StandardCharsets.UTF_8.newDecoder().decode(headerBytes.flip()).toString();
        } catch (CharacterCodingException e) {
            throw fail(HEADER, null, "header is not valid UTF-8", e);
        }
        dataStart = 8 + length;
        Map<String, StoredTensor> tensors = new LinkedHashMap<>();
        try (JsonReader json = new JsonReader(new StringReader(header))) {
            json.setStrictness(Strictness.STRICT);
            json.setNestingLimit(MAX_JSON_NESTING);
            json.beginObject();
            while (json.hasNext()) {
                String name = json.nextName();
                if (METADATA.equals(name)) {
                    skipMetadata(json);
                } else if (tensors.containsKey(name) || ranges.containsKey(name)) {
                    throw fail(HEADER, name, "tensor name appears twice");
                } else if (tensors.size() >= options.maxEntries()) {
                    throw fail(HEADER, name, "more than maxEntries (" + options.maxEntries() + ") tensors");
                } else {
                    tensors.put(name, parseTensor(json, name));
                }
            }
            json.endObject();
            if (json.peek() != JsonToken.END_DOCUMENT) {
                throw fail(HEADER, null, "text follows the header object");
            }
        } catch (IllegalStateException | NumberFormatException | IOException e) {
            if (e instanceof CheckpointException) {
                throw e;
            }
            throw fail(HEADER, null, "malformed JSON header: " + jsonProblem(e), e);
        }
        checkTiling(fileSize - dataStart);
        return tensors;
    }

    /** Gson's first message line, without its advice to parse leniently. */
    private static String jsonProblem(Exception e) {
        String first = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
        if (!first.startsWith("Use JsonReader.setStrictness")) {
            return first;
        }
        Matcher where = POSITION.matcher(first);
        return "syntax error" + (where.find() ? where.group() : "");
    }

    private static void skipMetadata(JsonReader json) throws IOException {
        json.beginObject();
        while (json.hasNext()) {
            json.nextName();
            if (json.peek() != JsonToken.STRING) {
                throw new IllegalStateException("__metadata__ values must be strings");
            }
            json.nextString();
        }
        json.endObject();
    }

    private StoredTensor parseTensor(JsonReader json, String name) throws IOException {
        String dtypeCode = null;
        long[] shape = null;
        long[] offsets = null;
        json.beginObject();
        while (json.hasNext()) {
            String field = json.nextName();
            if ("dtype".equals(field) && dtypeCode == null && json.peek() == JsonToken.STRING) {
                dtypeCode = json.nextString();
            } else if ("shape".equals(field) && shape == null) {
                shape = longArray(json);
            } else if ("data_offsets".equals(field) && offsets == null) {
                offsets = longArray(json);
            } else {
                throw fail(HEADER, name, "unexpected or repeated field " + CheckpointException.quote(field));
            }
        }
        json.endObject();
        if (dtypeCode == null || shape == null || offsets == null || offsets.length != 2) {
            throw fail(HEADER, name, "needs \"dtype\", \"shape\" and two \"data_offsets\"");
        }
        String code = dtypeCode;
        CheckpointDType dtype = CheckpointDType.fromSafetensors(code)
                .orElseThrow(() -> fail(HEADER, name, "dtype " + CheckpointException.quote(code) + " is not supported"));
        StoredTensor tensor;
        try {
            tensor = StoredTensor.contiguous(name, dtype, shape, name);
        } catch (IllegalArgumentException e) {
            throw fail(HEADER, name, e.getMessage(), e);
        }
        if (offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != tensor.storedBytes()) {
            throw fail(HEADER, name, "data_offsets [" + offsets[0] + ", " + offsets[1] + "] do not hold "
                    + tensor.shape() + " " + dtype.torchName() + " (" + tensor.storedBytes() + " bytes)");
        }
        ranges.put(name, offsets);
        return tensor;
    }

    private static long[] longArray(JsonReader json) throws IOException {
        List<Long> values = new ArrayList<>();
        json.beginArray();
        while (json.hasNext()) {
            if (json.peek() != JsonToken.NUMBER || values.size() > 64) {
                throw new IllegalStateException("expected at most 64 integers");
            }
            values.add(json.nextLong());
        }
        json.endArray();
        return values.stream().mapToLong(Long::longValue).toArray();
    }

    /** The data section must be covered exactly once, in any order of names, like the reference reader requires. */
    private void checkTiling(long dataLength) throws CheckpointException {
        List<Map.Entry<String, long[]>> sorted = new ArrayList<>(ranges.entrySet());
        sorted.sort(Comparator.comparingLong((Map.Entry<String, long[]> e) -> e.getValue()[0])
                .thenComparingLong(e -> e.getValue()[1]));
        long expected = 0;
        for (Map.Entry<String, long[]> e : sorted) {
            if (e.getValue()[0] != expected) {
                throw fail(HEADER, e.getKey(), "data_offsets start at " + e.getValue()[0] + " where byte "
                        + expected + " was expected (gap or overlap)");
            }
            expected = e.getValue()[1];
        }
        if (expected != dataLength) {
            throw fail(HEADER, null, "tensors cover " + expected + " bytes but the data section holds "
                    + dataLength);
        }
    }

    private void readFully(long position, ByteBuffer buffer) throws IOException {
        long at = position;
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, at);
            if (n < 0) {
                throw new EOFException("file ends at byte " + at);
            }
            at += n;
        }
    }
}
