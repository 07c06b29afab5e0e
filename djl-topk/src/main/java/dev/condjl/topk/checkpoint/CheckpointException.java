package dev.condjl.topk.checkpoint;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A checkpoint file could not be read: it is damaged, hostile, of an unsupported kind, or beyond a limit of
 * {@link ReadOptions}. The message names the file, the archive entry and the state-dict key where known, e.g.
 * {@code model.pt: entry 'archive/data/3', key 'fc.weight': shape (4, 5) needs storage elements up to 19 but the
 * storage holds 12}.
 */
public class CheckpointException extends IOException {

    private static final long serialVersionUID = 1L;
    private static final int MAX_QUOTED = 120;

    private final transient Path file;
    private final String entry;
    private final String key;

    /**
     * Creates an exception about one place in a checkpoint.
     *
     * @param file the checkpoint file
     * @param entry the zip entry or file section ({@code "header"}), or null
     * @param key the state-dict key, or null
     * @param problem what is wrong, as a sentence fragment
     */
    public CheckpointException(Path file, String entry, String key, String problem) {
        this(file, entry, key, problem, null);
    }

    /**
     * Creates an exception about one place in a checkpoint, with its cause.
     *
     * @param file the checkpoint file
     * @param entry the zip entry or file section ({@code "header"}), or null
     * @param key the state-dict key, or null
     * @param problem what is wrong, as a sentence fragment
     * @param cause the underlying error, or null
     */
    public CheckpointException(Path file, String entry, String key, String problem, Throwable cause) {
        super(format(file, entry, key, problem), cause);
        this.file = file;
        this.entry = entry;
        this.key = key;
    }

    /**
     * The checkpoint file.
     *
     * @return the path as given to the reader
     */
    public Path getFile() {
        return file;
    }

    /**
     * The zip entry or file section at fault.
     *
     * @return the entry name, or null when the fault is not in one entry
     */
    public String getEntry() {
        return entry;
    }

    /**
     * The state-dict key at fault.
     *
     * @return the key as stored in the file, or null
     */
    public String getKey() {
        return key;
    }

    /**
     * Quotes text that came from a file for an error message: non-printable characters become {@code ?} (no
     * terminal escapes from hostile files) and long text is cut.
     *
     * @param text any text, may be null
     * @return {@code 'text'}, or {@code null}
     */
    static String quote(String text) {
        if (text == null) {
            return "null";
        }
        StringBuilder sb = new StringBuilder(Math.min(text.length(), MAX_QUOTED) + 5).append('\'');
        for (int i = 0; i < text.length() && i < MAX_QUOTED; i++) {
            char c = text.charAt(i);
            sb.append(c >= 0x20 && c < 0x7f ? c : '?');
        }
        return sb.append(text.length() > MAX_QUOTED ? "...'" : "'").toString();
    }

    private static String format(Path file, String entry, String key, String problem) {
        StringBuilder sb = new StringBuilder(String.valueOf(file));
        if (entry != null) {
            sb.append(": entry ").append(quote(entry));
        }
        if (key != null) {
            sb.append(entry == null ? ": key " : ", key ").append(quote(key));
        }
        sb.append(": ");
        // library messages may span lines or echo file bytes; keep the message one printable line
        for (int i = 0; i < problem.length(); i++) {
            char c = problem.charAt(i);
            sb.append(c == '\n' || c == '\r' || c == '\t' ? ' ' : c < 0x20 || (c >= 0x7f && c <= 0x9f) ? '?' : c);
        }
        return sb.toString();
    }
}
