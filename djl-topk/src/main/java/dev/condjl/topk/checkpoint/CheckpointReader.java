package dev.condjl.topk.checkpoint;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A checkpoint opened for reading: the checked metadata of the selected tensors up front, their bytes on demand.
 * Subclasses parse one format each; this class applies the options every format shares.
 */
abstract class CheckpointReader implements Closeable {

    protected final Path file;
    protected final ReadOptions options;
    private Map<String, StoredTensor> tensors;
    private String selectedKey;

    CheckpointReader(Path file, ReadOptions options) {
        this.file = file;
        this.options = options;
    }

    /**
     * Opens a checkpoint of either format.
     *
     * @throws CheckpointException if the file is unreadable, of an unknown or legacy format, or fails a check
     */
    static CheckpointReader open(Path file, ReadOptions options) throws CheckpointException {
        CheckpointReader reader = CheckpointFormat.detect(file) == CheckpointFormat.PYTORCH_ZIP
                ? new TorchZipReader(file, options)
                : new SafetensorsReader(file, options);
        try {
            reader.parse();
            return reader;
        } catch (CheckpointException e) {
            reader.close();
            throw e;
        } catch (IOException | RuntimeException e) {
            reader.close();
            throw reader.fail(null, null, "cannot read the file: " + e, e);
        }
    }

    abstract CheckpointFormat format();

    /**
     * Reads and checks the metadata, then calls {@link #select}. The constructor only opens the file.
     *
     * @throws IOException if the file cannot be read; {@link CheckpointException} if it fails a check
     */
    abstract void parse() throws IOException;

    /**
     * Reads the stored bytes of one tensor.
     *
     * @param tensor one of {@link #tensors()}
     * @return {@link StoredTensor#spanBytes()} bytes from the tensor's first element on, in the file's byte order
     * @throws CheckpointException if the data is damaged (short entry, checksum mismatch, I/O error)
     */
    abstract ByteBuffer elements(StoredTensor tensor) throws CheckpointException;

    /** The selected tensors under their final keys (prefix stripped, renamed, exclusions dropped), in file order. */
    final Map<String, StoredTensor> tensors() {
        return tensors;
    }

    /** The top-level key of the nested state dict that was selected, or null. */
    final String selectedKey() {
        return selectedKey;
    }

    /**
     * Records the selected tensors: strips the prefix, renames, drops excluded keys and checks the total size of
     * the rest against the options.
     *
     * @param selected checked tensors under the keys stored in the file
     * @param fromKey the nested dict they came from, or null
     */
    final void select(Map<String, StoredTensor> selected, String fromKey) throws CheckpointException {
        Map<String, StoredTensor> out = new LinkedHashMap<>();
        Map<String, String> sources = new HashMap<>();
        long total = 0;
        for (Map.Entry<String, StoredTensor> e : selected.entrySet()) {
            String key = e.getKey();
            if (key.chars().anyMatch(c -> c < 0x20 || (c >= 0x7f && c <= 0x9f))) {
                throw fail(null, key, "key contains control characters");
            }
            String name = finalKey(key);
            if (options.exclude() != null && options.exclude().test(name)) {
                continue;
            }
            String earlier = sources.put(name, key);
            if (earlier != null) {
                throw fail(null, key, "stripping the prefix and renaming make this key and "
                        + CheckpointException.quote(earlier) + " both " + CheckpointException.quote(name));
            }
            out.put(name, e.getValue());
            total += e.getValue().outputBytes(true);
            if (total > options.maxTotalBytes()) {
                throw fail(null, key, "the tensors hold more than maxTotalBytes (" + options.maxTotalBytes()
                        + ") bytes");
            }
        }
        this.tensors = Collections.unmodifiableMap(out);
        this.selectedKey = fromKey;
    }

    private String finalKey(String key) throws CheckpointException {
        String prefix = options.stripPrefix();
        String stripped = prefix != null && key.startsWith(prefix) ? key.substring(prefix.length()) : key;
        if (options.rename() == null) {
            return stripped;
        }
        String renamed = options.rename().apply(stripped);
        if (renamed == null || renamed.isEmpty()) {
            throw fail(null, key, "rename returned " + (renamed == null ? "null" : "an empty key") + " for "
                    + CheckpointException.quote(stripped));
        }
        return renamed;
    }

    final CheckpointException fail(String entry, String key, String problem) {
        return new CheckpointException(file, entry, key, problem);
    }

    final CheckpointException fail(String entry, String key, String problem, Throwable cause) {
        return new CheckpointException(file, entry, key, problem, cause);
    }

    /** {@inheritDoc} */
    @Override
    public abstract void close();
}
