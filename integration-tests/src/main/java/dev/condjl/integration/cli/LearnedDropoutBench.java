package dev.condjl.integration.cli;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;

import com.google.gson.JsonObject;

import dev.condjl.dropout.LearnedDropout;
import dev.condjl.dropout.LearnedDropoutTransformer;
import dev.condjl.dropout.PenalizedLoss;
import dev.condjl.dropout.PenaltyCoefficient;
import dev.condjl.integration.train.TextCorpus;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;

/**
 * {@code condjl bench learned-dropout}: trains a small decoder-only character model
 * ({@link LearnedDropoutTransformer}) for a fixed number of steps without dropout, with dropout and with
 * LearnedDropout, and prints train and validation loss and the fraction of ones in the LearnedDropout masks, like
 * yif-AI's results table (spec §4.7).
 *
 * <p>Protocol (as yif-AI's): AdamW (betas 0.9/0.95, weight decay 0.1), constant learning rate; losses are estimated
 * in eval mode (no dropout, deterministic masks, no penalty) on fixed random batches of each split; the fraction of
 * ones is the mean of the training-time masks over the last evaluation interval. The corpus is split 90/10 into
 * train and validation text; every variant sees the same batches.
 */
@Command(
        name = "learned-dropout",
        mixinStandardHelpOptions = true,
        description = "Char-level decoder-only training: no dropout vs dropout vs LearnedDropout; one JSON line per"
                + " variant, then a table.")
public final class LearnedDropoutBench implements Callable<Integer> {

    private static final Logger LOGGER = LogManager.getLogger(LearnedDropoutBench.class);

    @Option(names = "--corpus", description = "UTF-8 text file (default: generated text, see --synthetic-chars)")
    Path corpus;

    @Option(names = "--synthetic-chars", defaultValue = "60000",
            description = "size of the generated corpus (default ${DEFAULT-VALUE})")
    int syntheticChars;

    @Option(names = "--steps", defaultValue = "600",
            description = "optimizer steps per variant (default ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--eval-interval", defaultValue = "200",
            description = "steps between loss estimates (default ${DEFAULT-VALUE})")
    int evalInterval;

    @Option(names = "--eval-batches", defaultValue = "20",
            description = "batches per loss estimate and split (default ${DEFAULT-VALUE})")
    int evalBatches;

    @Option(names = "--batch-size", defaultValue = "32", description = "default ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--context", defaultValue = "64", description = "tokens per sequence (default ${DEFAULT-VALUE})")
    int context;

    @Option(names = "--embed", defaultValue = "64", description = "model width C (default ${DEFAULT-VALUE})")
    int embed;

    @Option(names = "--layers", defaultValue = "2", description = "default ${DEFAULT-VALUE}")
    int layers;

    @Option(names = "--heads", defaultValue = "4", description = "default ${DEFAULT-VALUE}")
    int heads;

    @Option(names = "--lr", defaultValue = "3e-3", description = "AdamW learning rate (default ${DEFAULT-VALUE})")
    float lr;

    @Option(names = "--dropout", defaultValue = "0.2",
            description = "rate of the dropout baseline (default ${DEFAULT-VALUE})")
    float dropout;

    @Option(names = "--penalty-coeff", defaultValue = "0.1",
            description = "constant LearnedDropout penalty coefficient (default ${DEFAULT-VALUE})")
    double penaltyCoeff;

    @Option(names = "--shift-init", defaultValue = "0",
            description = "LearnedDropout shift init (default ${DEFAULT-VALUE})")
    float shiftInit;

    @Option(names = "--seed", defaultValue = "7", description = "default ${DEFAULT-VALUE}")
    long seed;

    @Mixin BenchDevice device = new BenchDevice();

    /** The split text as token ids over a sorted alphabet. */
    private record Data(int[] train, int[] val, int alphabet) {}

    /** Losses in eval mode and the training-time fraction of ones (NaN without LearnedDropout). */
    private record Result(String name, double trainLoss, double valLoss, double ones, long params, double seconds) {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws IOException {
        validate();
        String text = corpus == null ? SyntheticText.generate(seed, syntheticChars)
                : Files.readString(corpus, StandardCharsets.UTF_8);
        Data data = encode(text);
        if (data.val().length <= context + 1) {
            throw new IllegalArgumentException("corpus too short: the validation tenth (" + data.val().length
                    + " characters) must exceed context + 1 (" + (context + 1) + ")");
        }
        String source = corpus == null ? "generated (seed " + seed + ", " + syntheticChars + " chars)"
                : corpus.toString();
        LOGGER.info("corpus {}: {} train / {} val characters, alphabet {}", source, data.train().length,
                data.val().length, data.alphabet());
        List<Result> results = new ArrayList<>();
        results.add(train("no dropout", data, 0f, null));
        results.add(train("dropout " + dropout, data, dropout, null));
        results.add(train(String.format(Locale.ROOT, "LearnedDropout (shift %s, coeff %s)", shiftInit, penaltyCoeff),
                data, 0f, LearnedDropout.builder().optShiftInit(shiftInit)));
        for (Result r : results) {
            JsonObject json = new JsonObject();
            json.addProperty("bench", "learned-dropout");
            json.addProperty("case", r.name());
            json.addProperty("corpus", source);
            json.addProperty("device", device.device().toString());
            json.addProperty("steps", steps);
            json.addProperty("train_loss", round(r.trainLoss()));
            json.addProperty("val_loss", round(r.valLoss()));
            json.addProperty("ones_fraction", Double.isNaN(r.ones()) ? null : round(r.ones()));
            json.addProperty("params", r.params());
            json.addProperty("seconds", Math.round(r.seconds()));
            System.out.println(json);
        }
        System.out.println("| run | train loss | val loss | avg fraction of 1s | params | seconds |");
        System.out.println("|---|---|---|---|---|---|");
        for (Result r : results) {
            System.out.printf(Locale.ROOT, "| %s | %.3f | %.3f | %s | %,d | %.0f |%n", r.name(), r.trainLoss(),
                    r.valLoss(), Double.isNaN(r.ones()) ? "NA" : String.format(Locale.ROOT, "%.4f", r.ones()),
                    r.params(), r.seconds());
        }
        return 0;
    }

    private void validate() {
        if (steps <= 0 || evalInterval <= 0 || evalBatches <= 0 || batchSize <= 0 || context <= 0 || embed <= 0
                || layers <= 0 || heads <= 0 || embed % heads != 0) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "steps (%d), eval-interval (%d), eval-batches (%d), batch-size (%d), context (%d), embed (%d),"
                            + " layers (%d) and heads (%d) must be > 0, and heads must divide embed",
                    steps, evalInterval, evalBatches, batchSize, context, embed, layers, heads));
        }
    }

    private static Data encode(String text) {
        String alphabet = TextCorpus.alphabetOf(text);
        int[] ids = TextCorpus.encode(text, alphabet);
        int split = (int) (ids.length * 0.9);
        return new Data(Arrays.copyOf(ids, split), Arrays.copyOfRange(ids, split, ids.length),
                alphabet.codePointCount(0, alphabet.length()));
    }

    private Result train(String name, Data data, float rate, LearnedDropout.Builder learned) {
        Engine.getInstance().setRandomSeed((int) seed);
        LearnedDropoutTransformer block = LearnedDropoutTransformer.builder().setAlphabetSize(data.alphabet())
                .setContextSize(context).setNEmbed(embed).setNLayer(layers).setNHead(heads).optDropoutRate(rate)
                .optLearnedDropout(learned).build();
        Loss crossEntropy = Loss.softmaxCrossEntropyLoss();
        Loss loss = learned == null ? crossEntropy
                : new PenalizedLoss(crossEntropy, 1, PenaltyCoefficient.constant(penaltyCoeff));
        Optimizer adamW = Optimizer.adamW().optLearningRateTracker(Tracker.fixed(lr)).optBeta1(0.9f)
                .optBeta2(0.95f).optWeightDecays(0.1f).build();
        Random batches = new Random(seed);
        long start = System.nanoTime();
        Device dev = device.device();
        try (Model model = Model.newInstance("learned-dropout-bench", dev)) {
            model.setBlock(block);
            try (Trainer trainer = model.newTrainer(new DefaultTrainingConfig(loss).optOptimizer(adamW)
                    .optDevices(new Device[] {dev}))) {
                trainer.initialize(new Shape(batchSize, context));
                double[] losses = {Double.NaN, Double.NaN};
                double onesSum = 0;
                int onesCount = 0;
                for (int step = 0; step < steps; step++) {
                    try (NDManager batch = trainer.getManager().newSubManager();
                            GradientCollector collector = trainer.newGradientCollector()) {
                        NDList xy = sample(batch, data.train(), batches);
                        NDList out = trainer.forward(new NDList(xy.get(0)));
                        collector.backward(loss.evaluate(new NDList(xy.get(1)), flatten(out)));
                        if (learned != null && steps - step <= evalInterval) {
                            onesSum += out.get(2).getFloat();
                            onesCount++;
                        }
                    }
                    trainer.step();
                    if (loss instanceof PenalizedLoss penalized) {
                        penalized.setStep(step + 1);
                    }
                    if ((step + 1) % evalInterval == 0 || step + 1 == steps) {
                        losses[0] = estimate(trainer, crossEntropy, data.train());
                        losses[1] = estimate(trainer, crossEntropy, data.val());
                        LOGGER.info("{} step {}: train {} val {}", name, step + 1, round(losses[0]), round(losses[1]));
                    }
                }
                return new Result(name, losses[0], losses[1], onesCount == 0 ? Double.NaN : onesSum / onesCount,
                        block.numParams(), (System.nanoTime() - start) / 1e9);
            }
        }
    }

    /** Eval-mode cross-entropy on fixed batches (the same for every call and variant). */
    private double estimate(Trainer trainer, Loss crossEntropy, int[] split) {
        Random fixed = new Random(seed + 1);
        double sum = 0;
        for (int i = 0; i < evalBatches; i++) {
            try (NDManager batch = trainer.getManager().newSubManager()) {
                NDList xy = sample(batch, split, fixed);
                NDList out = trainer.evaluate(new NDList(xy.get(0)));
                sum += crossEntropy.evaluate(new NDList(xy.get(1)), new NDList(flatten(out).get(0))).getFloat();
            }
        }
        return sum / evalBatches;
    }

    /** Random windows: inputs (B, T) and next-character targets (B·T). */
    private NDList sample(NDManager manager, int[] split, Random random) {
        long[] x = new long[batchSize * context];
        long[] y = new long[batchSize * context];
        for (int b = 0; b < batchSize; b++) {
            int start = random.nextInt(split.length - context - 1);
            for (int t = 0; t < context; t++) {
                x[b * context + t] = split[start + t];
                y[b * context + t] = split[start + t + 1];
            }
        }
        return new NDList(manager.create(x, new Shape(batchSize, context)), manager.create(y));
    }

    /** Logits (B, T, V) to (B·T, V) for the cross-entropy, keeping any extra outputs. */
    private static NDList flatten(NDList out) {
        NDArray logits = out.get(0);
        NDList flat = new NDList(logits.reshape(-1, logits.getShape().get(2)));
        flat.addAll(out.subNDList(1));
        return flat;
    }

    private static double round(double v) {
        return Math.round(v * 1e4) / 1e4;
    }
}
