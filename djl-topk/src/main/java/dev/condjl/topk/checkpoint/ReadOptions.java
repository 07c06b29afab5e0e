package dev.condjl.topk.checkpoint;

import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * What to read from a checkpoint and the limits that protect the reader from damaged or hostile files.
 *
 * <p>{@code key} picks a nested state dict out of a training checkpoint ({@code {"model": ..., "optimizer": ...,
 * "epoch": 3}}); without it a top-level dict of tensors is taken as is, and a top-level dict holding exactly one
 * dict of tensors is unwrapped. {@code stripPrefix} removes a prefix such as {@code module.} (left by {@code
 * DataParallel}) from the keys that carry it, like PyTorch's {@code consume_prefix_in_state_dict_if_present}.
 *
 * <p>Each key then goes through {@code rename} (a function of the key, e.g. a mapping table or a regex replace),
 * and a key for which {@code exclude} holds is dropped: it is not read, not returned and not counted in
 * {@code maxTotalBytes} (a zip file's entries are still checked against it as a whole). Both see the key after the
 * prefix was stripped; {@code exclude} sees it after {@code rename}. For example, to take the backbone of a
 * {@code torch.compile}d classifier and train a new head:
 *
 * <pre>{@code
 * ReadOptions options = ReadOptions.builder()
 *         .optStripPrefix("_orig_mod.")
 *         .optRename(key -> key.replaceFirst("^backbone\\.", ""))
 *         .optExclude(Pattern.compile("head\\..*").asMatchPredicate())
 *         .build();
 * }</pre>
 *
 * <p>Limits are checked before anything is allocated for the data they bound.
 */
public final class ReadOptions {

    private static final ReadOptions DEFAULTS = builder().build();

    private final String key;
    private final String stripPrefix;
    private final UnaryOperator<String> rename;
    private final Predicate<String> exclude;
    private final int maxEntries;
    private final long maxPickleBytes;
    private final long maxTotalBytes;

    private ReadOptions(Builder builder) {
        key = builder.key;
        stripPrefix = builder.stripPrefix;
        rename = builder.rename;
        exclude = builder.exclude;
        maxEntries = builder.maxEntries;
        maxPickleBytes = builder.maxPickleBytes;
        maxTotalBytes = builder.maxTotalBytes;
    }

    /**
     * The default options: auto-detected state dict, no prefix stripping, default limits.
     *
     * @return shared default options
     */
    public static ReadOptions defaults() {
        return DEFAULTS;
    }

    /**
     * Starts building options.
     *
     * @return a builder holding the defaults
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The top-level key of the state dict inside a training checkpoint.
     *
     * @return the key, or null to auto-detect
     */
    public String key() {
        return key;
    }

    /**
     * The key prefix removed from the state dict's keys.
     *
     * @return the prefix, or null for none
     */
    public String stripPrefix() {
        return stripPrefix;
    }

    /**
     * The renaming applied to every key after the prefix was stripped.
     *
     * @return the function, or null for none
     */
    public UnaryOperator<String> rename() {
        return rename;
    }

    /**
     * The keys to leave out, tested after stripping and renaming.
     *
     * @return the predicate, or null to keep every key
     */
    public Predicate<String> exclude() {
        return exclude;
    }

    /**
     * The most zip entries, or safetensors tensors, a file may hold.
     *
     * @return the entry limit
     */
    public int maxEntries() {
        return maxEntries;
    }

    /**
     * The largest {@code data.pkl} read, in bytes; it bounds the objects the unpickler can create.
     *
     * @return the pickle size limit
     */
    public long maxPickleBytes() {
        return maxPickleBytes;
    }

    /**
     * The most bytes the selected tensors (as read) and, for zip files, all entries together may declare.
     *
     * @return the size limit
     */
    public long maxTotalBytes() {
        return maxTotalBytes;
    }

    /** Builds {@link ReadOptions}; every option has a default. */
    public static final class Builder {

        private String key;
        private String stripPrefix;
        private UnaryOperator<String> rename;
        private Predicate<String> exclude;
        private int maxEntries = 100_000;
        private long maxPickleBytes = 16L << 20;
        private long maxTotalBytes = 64L << 30;

        private Builder() {}

        /**
         * Picks the state dict stored under this top-level key ({@code model}, {@code state_dict}, ...).
         *
         * @param key the key, or null to auto-detect
         * @return this builder
         */
        public Builder optKey(String key) {
            this.key = key;
            return this;
        }

        /**
         * Removes this prefix ({@code module.}) from the keys that start with it.
         *
         * @param prefix the prefix, or null/empty for none
         * @return this builder
         */
        public Builder optStripPrefix(String prefix) {
            this.stripPrefix = prefix == null || prefix.isEmpty() ? null : prefix;
            return this;
        }

        /**
         * Renames every key, after the prefix was stripped ({@code key -> key.replaceFirst("^encoder\\.", "")},
         * {@code key -> table.getOrDefault(key, key)}). Two keys may not end up with the same name.
         *
         * @param rename returns the new, non-empty key; null for no renaming
         * @return this builder
         */
        public Builder optRename(UnaryOperator<String> rename) {
            this.rename = rename;
            return this;
        }

        /**
         * Leaves out the keys for which {@code exclude} is true, tested after stripping and renaming; calling it
         * again adds to the keys already excluded. A glob or regex: {@code
         * Pattern.compile("...").asMatchPredicate()}; a list: {@code Set.of(...)::contains}.
         *
         * @param exclude true for a key to drop
         * @return this builder
         */
        public Builder optExclude(Predicate<String> exclude) {
            if (exclude == null) {
                throw new IllegalArgumentException("exclude must not be null");
            }
            this.exclude = this.exclude == null ? exclude : this.exclude.or(exclude);
            return this;
        }

        /**
         * Sets the most zip entries or safetensors tensors a file may hold (default 100,000).
         *
         * @param maxEntries a positive count
         * @return this builder
         */
        public Builder optMaxEntries(int maxEntries) {
            this.maxEntries = maxEntries;
            return this;
        }

        /**
         * Sets the largest {@code data.pkl} read (default 16 MiB, enough for about 150,000 tensors).
         *
         * @param bytes a positive size
         * @return this builder
         */
        public Builder optMaxPickleBytes(long bytes) {
            this.maxPickleBytes = bytes;
            return this;
        }

        /**
         * Sets the most bytes a file's tensors may declare in total (default 64 GiB).
         *
         * @param bytes a positive size
         * @return this builder
         */
        public Builder optMaxTotalBytes(long bytes) {
            this.maxTotalBytes = bytes;
            return this;
        }

        /**
         * Builds the options.
         *
         * @return immutable options
         * @throws IllegalArgumentException if a limit is not positive or the key is empty
         */
        public ReadOptions build() {
            if (key != null && key.isEmpty()) {
                throw new IllegalArgumentException("key must be null (auto-detect) or non-empty, got ''");
            }
            if (maxEntries <= 0 || maxPickleBytes <= 0 || maxTotalBytes <= 0) {
                throw new IllegalArgumentException(
                        "limits must be positive: maxEntries="
                                + maxEntries
                                + ", maxPickleBytes="
                                + maxPickleBytes
                                + ", maxTotalBytes="
                                + maxTotalBytes);
            }
            return new ReadOptions(this);
        }
    }
}
