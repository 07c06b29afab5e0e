package dev.condjl.integration.cli;

import dev.condjl.topk.checkpoint.CheckpointInfo;
import dev.condjl.topk.checkpoint.Checkpoints;
import dev.condjl.topk.checkpoint.TensorEntry;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code condjl inspect FILE}: lists a checkpoint's tensors (key, dtype, shape, bytes) without reading their data.
 */
@Command(
        name = "inspect",
        mixinStandardHelpOptions = true,
        description = "Lists the tensors of a PyTorch checkpoint or safetensors file: key, dtype, shape, bytes.")
public final class Inspect implements Callable<Integer> {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "FILE", description = "The checkpoint to describe.")
    Path file;

    @Mixin CheckpointOptions options;

    /** {@inheritDoc} */
    @Override
    public Integer call() {
        try {
            CheckpointInfo info = Checkpoints.inspect(file, options.toReadOptions());
            PrintWriter out = spec.commandLine().getOut();
            int keyWidth = info.tensors().stream().mapToInt(t -> t.key().length()).max().orElse(3);
            String row = "%-" + Math.max(keyWidth, 3) + "s  %-8s  %-20s  %s%n";
            out.printf(row, "key", "dtype", "shape", "bytes");
            for (TensorEntry t : info.tensors()) {
                out.printf(row, t.key(), t.dtype().torchName(), t.shape(), t.bytes());
            }
            out.printf("%s: %s, %d tensors, %d bytes%s%n", file, info.format(), info.tensors().size(),
                    info.totalBytes(), info.selectedKey() == null ? ""
                            : ", state dict under key '" + info.selectedKey() + "'");
            out.flush();
            return 0;
        } catch (IOException | RuntimeException e) {
            return CheckpointCommands.fail(spec, e);
        }
    }
}
