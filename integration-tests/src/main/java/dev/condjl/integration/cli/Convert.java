package dev.condjl.integration.cli;

import dev.condjl.topk.checkpoint.CheckpointInfo;
import dev.condjl.topk.checkpoint.Checkpoints;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code condjl convert IN OUT.safetensors}: rewrites a PyTorch checkpoint as safetensors, keeping dtypes.
 *
 * <p>Reads with the checks of {@link Checkpoints} (no pickle code runs; damaged or hostile files end with exit code 1
 * and one line on stderr). No DJL engine is loaded: tensors are copied byte for byte, views made contiguous.
 */
@Command(
        name = "convert",
        mixinStandardHelpOptions = true,
        description = {
            "Converts a PyTorch checkpoint (.pt/.pth/.bin saved by torch >= 1.6) or a safetensors file to safetensors.",
            "Dtypes are kept (bfloat16 stays bfloat16); non-contiguous and shared tensors are written contiguously."
        })
public final class Convert implements Callable<Integer> {

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IN", description = "The checkpoint to read.")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT.safetensors", description = "The file to write (replaced when done).")
    Path out;

    @Mixin CheckpointOptions options;

    /** {@inheritDoc} */
    @Override
    public Integer call() {
        try {
            CheckpointInfo info = Checkpoints.convertToSafetensors(in, out, options.toReadOptions());
            PrintWriter stdout = spec.commandLine().getOut();
            stdout.printf("wrote %s: %d tensors, %d bytes%s%n", out, info.tensors().size(), info.totalBytes(),
                    info.selectedKey() == null ? "" : " (state dict under key '" + info.selectedKey() + "')");
            stdout.flush();
            return 0;
        } catch (IOException | RuntimeException e) {
            return CheckpointCommands.fail(spec, e);
        }
    }
}
