package dev.condjl.integration.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;

import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.Locale;

/** The {@code --device} option of the benchmarks that run on the engine's devices (a picocli mixin). */
final class BenchDevice {

    @Spec(Spec.Target.MIXEE)
    CommandSpec mixee;

    @Option(names = "--device", paramLabel = "DEVICE",
            description = "cpu, gpu (the first GPU) or gpu:N (default: DJL's default device).")
    String name;

    /**
     * The device to run on.
     *
     * @return {@code --device}, or the engine's default device without it
     * @throws CommandLine.ParameterException on a malformed name or a GPU the engine does not see
     */
    Device device() {
        if (name == null) {
            return Engine.getInstance().defaultDevice();
        }
        String s = name.trim().toLowerCase(Locale.ROOT);
        if ("cpu".equals(s)) {
            return Device.cpu();
        }
        int id;
        if ("gpu".equals(s)) {
            id = 0;
        } else if (s.startsWith("gpu:") && s.substring(4).matches("[0-9]+")) {
            id = Integer.parseInt(s.substring(4));
        } else {
            throw new CommandLine.ParameterException(mixee.commandLine(),
                    "--device (" + name + ") must be cpu, gpu or gpu:N");
        }
        int visible = Engine.getInstance().getGpuCount();
        if (id >= visible) {
            throw new CommandLine.ParameterException(mixee.commandLine(), "--device " + name + ": DJL's "
                    + Engine.getInstance().getEngineName() + " engine sees " + visible + " GPU(s)");
        }
        return Device.gpu(id);
    }
}
