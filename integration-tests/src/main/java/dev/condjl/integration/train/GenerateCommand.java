package dev.condjl.integration.train;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code condjl generate}: continues a prompt with a character-level model trained by {@code condjl train --corpus},
 * sampling each next character from the model's softmax at a temperature (0 = greedy), with the last
 * {@code seq-len} characters as context. A context shorter than the attention window (which the routed causal
 * attention requires) is padded on the left with spaces (or the alphabet's first character).
 */
@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        description = "Generates text from a condjl train --corpus checkpoint.")
public final class GenerateCommand implements Callable<Integer> {

    @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
            description = "a checkpoint directory written by condjl train --corpus")
    Path checkpoint;

    @Option(names = "--prompt", required = true, description = "the text to continue")
    String prompt;

    @Option(names = "--length", description = "characters to generate (${DEFAULT-VALUE})", defaultValue = "200")
    int length;

    @Option(names = "--temperature", description = "sampling temperature, 0 = greedy (${DEFAULT-VALUE})",
            defaultValue = "0.8")
    double temperature;

    @Option(names = "--seed", description = "sampling seed (${DEFAULT-VALUE})", defaultValue = "42")
    long seed;

    @Option(names = "--devices", description = "cpu or gpu:0 (${DEFAULT-VALUE})", defaultValue = "cpu")
    String devices;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        if (length < 0 || temperature < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--length and --temperature must be >= 0");
        }
        Engine.getEngine("PyTorch").setRandomSeed((int) seed);
        try (Model model = RunCheckpoint.open(checkpoint, DeviceList.parse(devices)[0])) {
            RoutedModel block = (RoutedModel) model.getBlock();
            ModelConfig config = block.getConfig();
            if (!config.causal()) {
                throw new IllegalArgumentException("--checkpoint " + checkpoint + " is a " + config.task()
                        + " model; condjl generate needs a model trained with --corpus");
            }
            long[] ids = Arrays.stream(TextCorpus.encode(prompt, config.alphabet())).asLongStream().toArray();
            String text = TextCorpus.decode(generate(model, block, ids, length, temperature, seed),
                    config.alphabet());
            spec.commandLine().getOut().println(prompt + text);
            spec.commandLine().getOut().flush();
            return 0;
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage(), e);
        }
    }

    /**
     * Samples a continuation.
     *
     * @param model the model
     * @param block its block
     * @param prompt prompt token ids (at least one)
     * @param length tokens to generate
     * @param temperature softmax temperature, 0 for arg-max
     * @param seed the sampling seed
     * @return the generated ids
     */
    static long[] generate(Model model, RoutedModel block, long[] prompt, int length, double temperature,
            long seed) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("--prompt must not be empty");
        }
        ModelConfig config = block.getConfig();
        int n = config.seqLen();
        int minimum = Math.min(n, config.lightWindow());
        long pad = Math.max(0, config.alphabet().indexOf(' '));
        ParameterStore ps = new ParameterStore(model.getNDManager(), false);
        SplittableRandom random = new SplittableRandom(seed);
        long[] all = Arrays.copyOf(prompt, prompt.length + length);
        for (int t = prompt.length; t < all.length; t++) {
            long[] context = Arrays.copyOfRange(all, Math.max(0, t - n), t);
            if (context.length < minimum) {
                long[] padded = new long[minimum];
                Arrays.fill(padded, pad);
                System.arraycopy(context, 0, padded, minimum - context.length, context.length);
                context = padded;
            }
            try (NDManager m = model.getNDManager().newSubManager()) {
                NDArray tokens = m.create(context, new Shape(1, context.length));
                NDArray logits = block.forward(ps, new NDList(tokens), false).head();
                float[] last = logits.get("0, -1, :").toFloatArray();
                all[t] = pick(last, temperature, random);
            }
        }
        return Arrays.copyOfRange(all, prompt.length, all.length);
    }

    private static int pick(float[] logits, double temperature, SplittableRandom random) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            best = logits[i] > logits[best] ? i : best;
        }
        if (temperature == 0) {
            return best;
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp((logits[i] - logits[best]) / temperature);
            sum += p[i];
        }
        double u = random.nextDouble() * sum;
        for (int i = 0; i < p.length; i++) {
            u -= p[i];
            if (u <= 0) {
                return i;
            }
        }
        return best;
    }
}
