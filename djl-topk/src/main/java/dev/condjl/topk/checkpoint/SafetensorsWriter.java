package dev.condjl.topk.checkpoint;

import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Writes safetensors files: 8-byte little-endian header length, a JSON header padded with spaces to a multiple of
 * 8 bytes, then the tensors' little-endian bytes back to back in header order. PyTorch reads the result with
 * {@code safetensors.torch.load_file} and {@code load_state_dict}.
 */
final class SafetensorsWriter {

    private static final int ALIGNMENT = 8;

    private SafetensorsWriter() {}

    /** Produces a tensor's bytes when the writer reaches it, so only one tensor is held at a time. */
    @FunctionalInterface
    interface DataSource {
        /**
         * The tensor's bytes.
         *
         * @return a buffer with exactly the declared number of bytes remaining, little-endian
         */
        ByteBuffer bytes() throws IOException;
    }

    /**
     * One tensor to write.
     *
     * @param name the state-dict key
     * @param dtype the stored dtype
     * @param shape the shape
     * @param data its bytes, on demand
     */
    record Entry(String name, CheckpointDType dtype, long[] shape, DataSource data) {

        long bytes() {
            return StoredTensor.numel(shape) * dtype.byteSize();
        }
    }

    /**
     * Writes the tensors to {@code file}, replacing it only once the whole file is written.
     *
     * @param metadata string pairs for {@code __metadata__}
     * @throws IOException if writing fails or a source yields the wrong number of bytes
     */
    static void write(Path file, List<Entry> entries, Map<String, String> metadata) throws IOException {
        byte[] header = header(entries, metadata);
        // a sibling created like any new file (umask permissions), renamed over the target when complete
        Path tmp = file.resolveSibling("." + file.getFileName() + "." + ProcessHandle.current().pid() + "-"
                + System.nanoTime() + ".tmp");
        try {
            try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writeFully(out, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).flip());
                writeFully(out, ByteBuffer.wrap(header));
                for (Entry e : entries) {
                    ByteBuffer data = e.data().bytes();
                    if (data.remaining() != e.bytes()) {
                        throw new IOException("tensor '" + e.name() + "' produced " + data.remaining()
                                + " bytes instead of " + e.bytes());
                    }
                    writeFully(out, data);
                }
            }
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static byte[] header(List<Entry> entries, Map<String, String> metadata) throws IOException {
        StringWriter text = new StringWriter();
        try (JsonWriter json = new JsonWriter(text)) {
            json.setHtmlSafe(false);
            json.beginObject();
            json.name(SafetensorsReader.METADATA).beginObject();
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                json.name(m.getKey()).value(m.getValue());
            }
            json.endObject();
            long offset = 0;
            for (Entry e : entries) {
                json.name(e.name()).beginObject();
                json.name("dtype").value(e.dtype().safetensorsCode());
                json.name("shape").beginArray();
                for (long s : e.shape()) {
                    json.value(s);
                }
                json.endArray();
                json.name("data_offsets").beginArray().value(offset).value(offset + e.bytes()).endArray();
                json.endObject();
                offset += e.bytes();
            }
            json.endObject();
        }
        byte[] utf8 = text.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (utf8.length + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        byte[] header = new byte[padded];
        System.arraycopy(utf8, 0, header, 0, utf8.length);
        Arrays.fill(header, utf8.length, padded, (byte) ' ');
        return header;
    }

    private static void writeFully(FileChannel out, ByteBuffer data) throws IOException {
        while (data.hasRemaining()) {
            out.write(data);
        }
    }
}
