package dev.condjl.integration.cli;

import dev.condjl.topk.checkpoint.ReadOptions;

import java.util.List;
import java.util.regex.Pattern;
import picocli.CommandLine.Option;

/**
 * The options {@code condjl convert}, {@code condjl inspect} and {@code condjl run} (for {@code --weights}) share:
 * which state dict to read and which of its keys to leave out.
 */
public final class CheckpointOptions {

    @Option(names = "--key", paramLabel = "KEY",
            description = "Top-level key of the state dict in a training checkpoint (model, state_dict, ...);"
                    + " default: the top level, or its only dict of tensors.")
    String key;

    @Option(names = "--strip-prefix", paramLabel = "PREFIX",
            description = "Remove this prefix (e.g. module.) from the keys that carry it.")
    String stripPrefix;

    @Option(names = "--exclude", paramLabel = "REGEX",
            description = "Leave out the keys this regular expression matches in full, after --strip-prefix"
                    + " (e.g. 'head\\..*'); repeatable.")
    List<Pattern> exclude = List.of();

    /**
     * The reader options these flags select.
     *
     * @return options with the default limits
     */
    public ReadOptions toReadOptions() {
        ReadOptions.Builder builder = ReadOptions.builder().optKey(key).optStripPrefix(stripPrefix);
        exclude.forEach(pattern -> builder.optExclude(pattern.asMatchPredicate()));
        return builder.build();
    }

    /**
     * Whether any flag was given.
     *
     * @return true if {@code --key}, {@code --strip-prefix} or {@code --exclude} was set
     */
    boolean isSet() {
        return key != null || stripPrefix != null || !exclude.isEmpty();
    }
}
