package dev.condjl.integration.cli;

import dev.condjl.topk.checkpoint.ReadOptions;

import picocli.CommandLine.Option;

/**
 * The options {@code condjl convert}, {@code condjl inspect} and {@code condjl run} (for {@code --weights}) share:
 * which state dict to read.
 */
public final class CheckpointOptions {

    @Option(names = "--key", paramLabel = "KEY",
            description = "Top-level key of the state dict in a training checkpoint (model, state_dict, ...);"
                    + " default: the top level, or its only dict of tensors.")
    String key;

    @Option(names = "--strip-prefix", paramLabel = "PREFIX",
            description = "Remove this prefix (e.g. module.) from the keys that carry it.")
    String stripPrefix;

    /**
     * The reader options these flags select.
     *
     * @return options with the default limits
     */
    public ReadOptions toReadOptions() {
        return ReadOptions.builder().optKey(key).optStripPrefix(stripPrefix).build();
    }
}
