package dev.condjl.integration.train;

import ai.djl.Model;
import ai.djl.training.ParameterStore;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code condjl eval}: evaluates a {@code condjl train} checkpoint on its task's validation set. */
@Command(
        name = "eval",
        mixinStandardHelpOptions = true,
        description = "Evaluates a condjl train checkpoint: validation loss, accuracy and routing statistics.")
public final class EvalCommand implements Callable<Integer> {

    @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
            description = "a checkpoint directory written by condjl train")
    Path checkpoint;

    @Option(names = "--corpus", paramLabel = "FILE",
            description = "text models: evaluate on this file instead of the training corpus")
    Path corpus;

    @Option(names = "--eval-size", description = "validation sequences (${DEFAULT-VALUE})", defaultValue = "256")
    int evalSize;

    @Option(names = "--devices", description = "cpu, gpu or gpu:0 (the first is used; ${DEFAULT-VALUE})",
            defaultValue = "cpu")
    String devices;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        Evaluation.Result r;
        TrainingTask task;
        try {
            try (Model model = RunCheckpoint.open(checkpoint, DeviceList.parse(devices)[0])) {
                RoutedModel block = (RoutedModel) model.getBlock();
                task = block.getConfig().task(corpus);
                r = Evaluation.run(block, new ParameterStore(model.getNDManager(), false), model.getNDManager(),
                        task, task.validation(evalSize), 32);
            }
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage(), e);
        }
        var out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "task        %s%n", task.describe());
        out.printf(Locale.ROOT, "loss        %.4f%n", r.loss());
        out.printf(Locale.ROOT, "accuracy    %.1f%% on %d validation sequences (chance %.1f%%)%n",
                100 * r.accuracy(), r.sequences(), 100.0 / task.numClasses());
        out.print(Evaluation.Result.routingText(r.routing()));
        out.flush();
        return 0;
    }
}
