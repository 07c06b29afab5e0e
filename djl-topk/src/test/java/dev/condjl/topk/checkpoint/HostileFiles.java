package dev.condjl.topk.checkpoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Builds checkpoint files byte by byte for the hostile-input tests: pickles from raw opcodes, torch-like zips
 * around them, and raw safetensors. Nothing here runs a pickle.
 */
final class HostileFiles {

    private HostileFiles() {}

    /** A pickle written opcode by opcode. */
    static final class Pickle {

        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        /** Starts with {@code PROTO n}. */
        static Pickle proto(int protocol) {
            return new Pickle().op(0x80).op(protocol);
        }

        Pickle op(int... opcodes) {
            for (int b : opcodes) {
                out.write(b);
            }
            return this;
        }

        Pickle bytes(byte[] data) {
            out.writeBytes(data);
            return this;
        }

        /** {@code GLOBAL module name}. */
        Pickle global(String module, String name) {
            return op('c').bytes((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
        }

        /** {@code BINUNICODE s}. */
        Pickle str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            return op('X').bytes(le(4, b.length)).bytes(b);
        }

        /** {@code SHORT_BINUNICODE s} (protocol 4). */
        Pickle shortStr(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            return op(0x8c, b.length).bytes(b);
        }

        /** {@code BININT v} when it fits, else {@code LONG1} of 8 bytes. */
        Pickle integer(long v) {
            return v == (int) v ? op('J').bytes(le(4, v)) : op(0x8a, 8).bytes(le(8, v));
        }

        Pickle tuple(long... values) {
            op('(');
            for (long v : values) {
                integer(v);
            }
            return op('t');
        }

        /** {@code ('storage', torch.<storageClass>, key, 'cpu', numel)} as a persistent id. */
        Pickle storage(String storageClass, String key, long numel) {
            return op('(').str("storage").global("torch", storageClass).str(key).str("cpu").integer(numel)
                    .op('t', 'Q');
        }

        /** {@code torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}. */
        Pickle tensor(String storageClass, String key, long numel, long offset, long[] size, long[] stride) {
            global("torch._utils", "_rebuild_tensor_v2").op('(');
            storage(storageClass, key, numel).integer(offset).tuple(size).tuple(stride);
            return op(0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R');
        }

        /** A float32 tensor over storage {@code key}. */
        Pickle floatTensor(String key, long numel, long offset, long[] size, long[] stride) {
            return tensor("FloatStorage", key, numel, offset, size, stride);
        }

        /** Ends with {@code STOP}. */
        byte[] stop() {
            return op('.').out.toByteArray();
        }
    }

    /** A state dict {@code {"w": float32 tensor}} over storage "0"; the usual body for tensor-metadata cases. */
    static byte[] oneTensor(long numel, long offset, long[] size, long[] stride) {
        return Pickle.proto(2).op('}', '(').str("w").floatTensor("0", numel, offset, size, stride).op('u').stop();
    }

    /** Little-endian float32 bytes. */
    static byte[] floats(float... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        return b.array();
    }

    /** Writes a zip laid out like torch.save: {@code archive/data.pkl}, {@code archive/data/<key>}, ... */
    static Path torchZip(Path file, byte[] pickle, Map<String, byte[]> storages) throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        storages.forEach((key, data) -> entries.put("archive/data/" + key, data));
        entries.put("archive/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        return zip(file, entries, ZipEntry.STORED);
    }

    /** Writes a zip of the given entries, stored or deflated. */
    static Path zip(Path file, Map<String, byte[]> entries, int method) throws IOException {
        try (OutputStream os = Files.newOutputStream(file); ZipOutputStream zip = new ZipOutputStream(os)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey());
                entry.setMethod(method);
                if (method == ZipEntry.STORED) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    entry.setSize(e.getValue().length);
                    entry.setCompressedSize(e.getValue().length);
                    entry.setCrc(crc.getValue());
                }
                zip.putNextEntry(entry);
                zip.write(e.getValue());
                zip.closeEntry();
            }
        }
        return file;
    }

    /** Writes a safetensors file from a raw header text (not padded or checked) and data section. */
    static Path safetensors(Path file, String header, byte[] data) throws IOException {
        return safetensors(file, header.getBytes(StandardCharsets.UTF_8), data);
    }

    /** Writes a safetensors file from raw header bytes and a data section. */
    static Path safetensors(Path file, byte[] h, byte[] data) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(le(8, h.length));
        out.writeBytes(h);
        out.writeBytes(data);
        Files.write(file, out.toByteArray());
        return file;
    }

    static byte[] le(int bytes, long value) {
        byte[] b = new byte[bytes];
        for (int i = 0; i < bytes; i++) {
            b[i] = (byte) (value >>> (8 * i));
        }
        return b;
    }
}
