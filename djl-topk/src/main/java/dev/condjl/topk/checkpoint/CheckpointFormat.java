package dev.condjl.topk.checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HexFormat;

/** The file formats {@link Checkpoints} reads, recognized by their first bytes (never by the file name). */
public enum CheckpointFormat {
    /** {@code torch.save} of torch 1.6 or later: a zip holding {@code <name>/data.pkl} and {@code <name>/data/<n>}. */
    PYTORCH_ZIP,
    /** Hugging Face safetensors: 8-byte little-endian header length, JSON header, raw little-endian data. */
    SAFETENSORS;

    private static final int SNIFF_BYTES = 512;
    private static final int TAR_MAGIC_OFFSET = 257;

    /**
     * Recognizes the format of a checkpoint file.
     *
     * @param file the file
     * @return its format
     * @throws CheckpointException if the file cannot be read, is too short, is a legacy (non-zip) {@code
     *     torch.save} file, or is neither format
     */
    public static CheckpointFormat detect(Path file) throws CheckpointException {
        byte[] head;
        try (InputStream in = Files.newInputStream(file)) {
            head = in.readNBytes(SNIFF_BYTES);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file, null, null, "no such file", e);
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(file, null, null, "cannot read the file: " + e, e);
        }
        if (head.length >= 4 && head[0] == 'P' && head[1] == 'K' && (head[2] == 3 || head[2] == 5)) {
            return PYTORCH_ZIP;
        }
        // before the legacy check: a safetensors header length may start with byte 0x80, while a legacy
        // torch.save file has its magic number's byte 0xf9 at offset 8
        if (head.length >= 9 && head[8] == '{') {
            return SAFETENSORS;
        }
        if ((head.length > 0 && (head[0] & 0xff) == 0x80) || isTar(head)) {
            throw new CheckpointException(
                    file,
                    null,
                    null,
                    "legacy torch.save format (written by torch < 1.6 or with _use_new_zipfile_serialization=False),"
                            + " which cannot be read safely; re-save it with torch >= 1.6:"
                            + " torch.save(torch.load(path, weights_only=True), new_path)");
        }
        if (head.length < 9) {
            throw new CheckpointException(file, null, null, "file of " + head.length + " bytes is too short");
        }
        throw new CheckpointException(
                file,
                null,
                null,
                "neither a PyTorch zip checkpoint nor a safetensors file (starts with "
                        + HexFormat.of().formatHex(head, 0, 9)
                        + ")");
    }

    private static boolean isTar(byte[] head) {
        return head.length >= TAR_MAGIC_OFFSET + 5
                && new String(head, TAR_MAGIC_OFFSET, 5, StandardCharsets.US_ASCII).equals("ustar");
    }
}
