package dev.condjl.integration.train;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.loss.Loss;
import ai.djl.training.tracker.Tracker;
import dev.condjl.cuda.CondjlOps;
import dev.condjl.cuda.FusedAdam;
import dev.condjl.cuda.GraphCaptureException;
import dev.condjl.cuda.GraphedBackward;
import dev.condjl.dropout.GradientClipping;
import dev.condjl.dropout.PenalizedLoss;
import dev.condjl.dropout.PenaltyCoefficient;
import dev.condjl.integration.cli.ResidentMemory;
import dev.condjl.integration.profile.OpProfile;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.Collectors;

/**
 * The training program behind {@code condjl train}: DJL's {@link Trainer} with AdamW (or Adam), linear warm-up and
 * cosine decay, global-norm gradient clipping, one batch split over the devices, per-step memory scopes, periodic
 * validation, and at the end a checkpoint, a picture and a report.
 *
 * <p>One step: draw a batch on the host; in a sub-manager of the trainer's manager (closed after the step, so
 * nothing of the step outlives it) put each device's rows on its device; inside one {@link GradientCollector} (one
 * per process) forward each part and back-propagate its loss weighted by its share of the batch; clip the summed
 * gradients to the global norm; update the parameters ({@link FusedAdam#step} on one device, {@code trainer.step()}
 * on several). No {@code NDScope} is used: parameters and optimizer state are created before or in the first step
 * and must outlive it.
 *
 * <p>On one GPU (without {@code --profile} or {@code --no-cuda-graph}) the first step captures the forward and
 * backward in a CUDA graph ({@link GraphedBackward}) and every step replays it on its batch, then clips and updates
 * as above; a model that cannot be captured gets one warning and eager steps. The report's {@code stepMode} says
 * which ran.
 */
public final class TrainingRun {

    private static final Logger LOG = LogManager.getLogger(TrainingRun.class);
    private static final int EVAL_CHUNK = 32;
    private static final int CURVE_SEQUENCES = 64;
    private static final int PICTURE_SEQUENCES = 4;
    /** The memory sample after warm-up that later ones are compared with. */
    private static final int FIRST_MEMORY_SAMPLE = 100;

    private TrainingRun() {}

    /**
     * Trains a model and writes checkpoint, picture and report into the run directory.
     *
     * @param config the model (when resuming, the checkpoint's configuration)
     * @param task the data
     * @param s the training settings
     * @param err where the progress bar goes
     * @return the report
     * @throws IOException if the checkpoint cannot be read or the outputs cannot be written
     */
    public static RunReport train(ModelConfig config, TrainingTask task, TrainSettings s, PrintStream err)
            throws IOException {
        Engine.getEngine("PyTorch").setRandomSeed((int) s.seed());
        Files.createDirectories(s.runDir());
        try (Model model = Model.newInstance("condjl-train", s.devices()[0], "PyTorch")) {
            RoutedModel block = new RoutedModel(config);
            model.setBlock(block);
            int first = s.resumeFrom() == null ? 0 : RunCheckpoint.load(s.resumeFrom(), model);
            if (first >= s.steps()) {
                throw new IllegalArgumentException("the checkpoint has done " + first + " steps; --steps ("
                        + s.steps() + ") must be larger to continue");
            }
            Loss loss = "learned".equals(config.dropout())
                    ? new PenalizedLoss(Loss.softmaxCrossEntropyLoss(), 1,
                            PenaltyCoefficient.constant(config.dropoutRate()))
                    : Loss.softmaxCrossEntropyLoss();
            FusedAdam optimizer = optimizer(s, first);
            DefaultTrainingConfig tc = new DefaultTrainingConfig(loss)
                    .optOptimizer(optimizer)
                    .optDevices(s.devices());
            LOG.info("{}", task.describe());
            try (Trainer trainer = model.newTrainer(tc)) {
                trainer.initialize(new Shape(Math.max(1, s.batchSize() / s.devices().length), config.seqLen()));
                LOG.info("model: {} parameters, {} routed layers of width {}, devices {}", parameterCount(block),
                        config.depth(), config.dim(), Arrays.toString(s.devices()));
                // one device: the optimizer steps the parameters itself, without the parameter server's copies
                Loop loop = new Loop(model, trainer, block, task, s, first,
                        s.devices().length == 1 ? optimizer : null);
                try {
                    loop.run(err);
                    return loop.finish();
                } finally {
                    loop.closeGraph();
                }
            }
        }
    }

    private static long parameterCount(RoutedModel block) {
        return block.getParameters().values().stream()
                .filter(Parameter::requiresGradient).mapToLong(p -> p.getArray().size()).sum();
    }

    /** The steps of one run and what they measured. */
    private static final class Loop {
        private final Model model;
        private final Trainer trainer;
        private final RoutedModel block;
        private final TrainingTask task;
        private final TrainSettings s;
        private final int first;
        private final FusedAdam direct;
        private final ParameterStore evalStore;
        private final Sample curveSet;
        private final RunCharts.Curve curve = new RunCharts.Curve();
        private double smooth = Double.NaN;
        private long trainNanos;
        private final List<double[]> stepMillis = new ArrayList<>();
        private long cpuNanos;
        private int skipped;
        private final List<long[]> gpuMemory = new ArrayList<>();
        private final List<double[]> phaseMillis = new ArrayList<>();
        private OpProfile traced;
        private int tracedStep;
        /** The captured forward+backward of the steps, once the first step has made it. */
        private GraphedBackward graphed;
        /** Why the steps could not be captured, or null. */
        private String uncapturable;

        Loop(Model model, Trainer trainer, RoutedModel block, TrainingTask task, TrainSettings s, int first,
                FusedAdam direct) {
            this.model = model;
            this.trainer = trainer;
            this.block = block;
            this.task = task;
            this.s = s;
            this.first = first;
            this.direct = direct;
            evalStore = new ParameterStore(model.getNDManager(), false);
            curveSet = task.validation(Math.min(CURVE_SEQUENCES, s.evalSize()));
        }

        private Evaluation.Result evaluate(Sample sample) {
            return Evaluation.run(block, evalStore, model.getNDManager(), task, sample, EVAL_CHUNK);
        }

        void run(PrintStream err) {
            // a resumed run draws other batches than the first part did
            SplittableRandom data = new SplittableRandom(s.seed() + first);
            long tokensPerStep = (long) s.batchSize() * block.getConfig().seqLen();
            ProgressLine progress = s.progress()
                    ? new ProgressLine(err, first, s.steps(), System.console() != null) : null;
            curve.addValid(first, evaluate(curveSet));
            double tokensPerSecond = 0;
            for (int step = first; step < s.steps(); step++) {
                Sample batch = task.sample(data, s.batchSize());
                if (trainer.getLoss() instanceof PenalizedLoss penalized) {
                    penalized.setStep(step);
                }
                long cpu0 = processCpuNanos();
                long t0 = System.nanoTime();
                double[] stats = s.profile() != null ? profiledStep(step, batch)
                        : useGraph() ? graphedStep(batch)
                        : step(trainer, block, batch, s.clipNorm(), direct, null);
                long dt = System.nanoTime() - t0;
                trainNanos += dt;
                stepMillis.add(new double[] {dt / 1e6});
                cpuNanos += processCpuNanos() - cpu0;
                double tps = tokensPerStep / (dt / 1e9);
                tokensPerSecond = step == first ? tps : 0.9 * tokensPerSecond + 0.1 * tps;
                record(step, stats);
                if (s.memoryEvery() > 0 && ((step + 1) % s.memoryEvery() == 0 || step + 1 == FIRST_MEMORY_SAMPLE)) {
                    sampleGpuMemory(step + 1);
                }
                if ((step + 1) % s.evalEvery() == 0 || step + 1 == s.steps()) {
                    curve.addValid(step + 1, evaluate(curveSet));
                }
                if (progress != null) {
                    progress.update(step + 1, smooth, tokensPerSecond);
                }
            }
        }

        /** Whether this step replays the graph: asked for, and not found uncapturable. */
        private boolean useGraph() {
            return s.graphedSteps() && uncapturable == null;
        }

        /**
         * A step as a replay of the captured forward+backward (captured in the first such step, from its batch),
         * then {@link #clipAndUpdate}. Where the capture fails, one warning and this and later steps run eagerly.
         */
        private double[] graphedStep(Sample batch) {
            try (NDManager m = trainer.getManager().newSubManager()) {
                NDList inputs = new NDList(batch.tokenArray(m), batch.labelArray(m));
                if (graphed == null) {
                    try {
                        graphed = GraphedBackward.capture(inputs,
                                in -> lossOf(trainer.getLoss(), trainer.forward(new NDList(in.get(0))), in.get(1)),
                                block.getParameters().values(), 3);
                    } catch (IllegalStateException e) {  // not capturable, or no graphs on this libtorch
                        uncapturable = e instanceof GraphCaptureException g ? g.reason() : e.getMessage();
                        LOG.warn("the training step cannot be captured in a CUDA graph ({}); it runs eagerly",
                                uncapturable);
                        return step(trainer, block, batch, s.clipNorm(), direct, null);
                    }
                }
                double lossValue = graphed.step(inputs).getFloat();
                return new double[] {lossValue, clipAndUpdate(trainer, block, s.clipNorm(), direct)};
            }
        }

        /** How the steps ran, for the report. */
        private String stepMode() {
            if (graphed != null) {
                return "CUDA graph";
            }
            return uncapturable == null ? "eager" : "eager (not capturable: " + uncapturable + ")";
        }

        /** Frees the captured step, if any. */
        void closeGraph() {
            if (graphed != null) {
                graphed.close();
                graphed = null;
            }
        }

        /**
         * A step under {@code --profile}: the run's middle step traced to the profile file (by then the JIT has
         * compiled the step's Java code, whose time between ops the trace shows), every other one timed by phase.
         */
        private double[] profiledStep(int step, Sample batch) {
            if (step != first + (s.steps() - first) / 2) {
                long[] nanos = new long[2];
                double[] stats = step(trainer, block, batch, s.clipNorm(), direct, nanos);
                phaseMillis.add(new double[] {nanos[0] / 1e6, nanos[1] / 1e6});
                return stats;
            }
            double[][] stats = new double[1][];
            try {
                traced = OpProfile.record(s.profile(),
                        () -> stats[0] = step(trainer, block, batch, s.clipNorm(), direct, null));
            } catch (IOException e) {
                throw new UncheckedIOException("could not read back the trace " + s.profile(), e);
            }
            tracedStep = step;
            return stats[0];
        }

        /**
         * The median wall time of the run's second half of steps, ms: the steady state, after the JIT has compiled
         * the step's Java code (the first hundreds of steps run slower, mostly on a GPU, where the host sets the
         * pace). Every step ends with a read of its loss, so the time includes the device's work.
         */
        private double secondHalfMedian() {
            return median(stepMillis.subList(stepMillis.size() / 2, stepMillis.size()), 0);
        }

        /** The profile with the phases' medians, or null without {@code --profile}. */
        private StepProfile finishedProfile() {
            return traced == null ? null : new StepProfile(phaseMillis.size(), median(phaseMillis, 0),
                    median(phaseMillis, 1), tracedStep, s.profile().toString(), traced.forwardTotal(),
                    traced.backwardTotal());
        }

        /** Empties PyTorch's CUDA cache and books the device memory still in use. */
        private void sampleGpuMemory(int step) {
            if (!s.devices()[0].isGpu() || !CondjlOps.cudaAvailable()) {
                if (gpuMemory.isEmpty() && step == FIRST_MEMORY_SAMPLE) {
                    LOG.warn("--gpu-memory-every: no GPU memory to read on {} ({})", s.devices()[0],
                            CondjlOps.isAvailable() ? CondjlOps.cudaUnavailableReason() : CondjlOps.unavailableReason());
                }
                return;
            }
            JniUtils.emptyCudaCache();
            long used = CondjlOps.cudaMemoryUsed();
            gpuMemory.add(new long[] {step, used});
            LOG.info("step {}: {} MiB of GPU memory in use", step, String.format(Locale.ROOT, "%.1f", used / 1048576.0));
        }

        /** Books one step's {loss, gradient norm}; stops on a non-finite loss. */
        private void record(int step, double[] stats) {
            if (!Double.isFinite(stats[0])) {
                throw new IllegalStateException("the loss is " + stats[0] + " at step " + step
                        + "; try a smaller --lr");
            }
            if (s.clipNorm() > 0 && !Double.isFinite(stats[1])) {
                skipped++;
                LOG.warn("gradient norm {} at step {}: update skipped ({} so far)", stats[1], step, skipped);
            }
            smooth = Double.isNaN(smooth) ? stats[0] : 0.95 * smooth + 0.05 * stats[0];
            curve.addTrain(step + 1, stats[0], smooth, stats[1]);
        }

        /**
         * Final evaluation, checkpoint, picture, metrics and report. The checkpoint is the run's result and its
         * failure fails the run; the picture, the metrics and the report are extras: each that fails is logged in
         * one warning and the others are still written.
         */
        RunReport finish() throws IOException {
            ModelConfig config = block.getConfig();
            Sample valid = task.validation(s.evalSize());
            Evaluation.Result result = evaluate(valid);
            Path checkpoint = s.runDir().resolve("checkpoint");
            RunCheckpoint.save(checkpoint, model, s.steps());
            Path picture = s.runDir().resolve("train.png");
            boolean drawn = bestEffort("the picture " + picture, () -> {
                try (NDManager m = model.getNDManager().newSubManager()) {
                    Sample shown = valid.rows(0, Math.min(PICTURE_SEQUENCES, valid.batchSize()));
                    RunCharts.write(picture, curve, block.trace(evalStore, shown.tokenArray(m)), shown, task, config);
                }
            });
            Path metrics = s.runDir().resolve("metrics.csv");
            bestEffort("the metrics " + metrics, () -> curve.writeCsv(metrics));
            int done = s.steps() - first;
            double seconds = trainNanos / 1e9;
            RunReport report = new RunReport(task.describe(),
                    Arrays.stream(s.devices()).map(Device::toString).collect(Collectors.joining(",")),
                    parameterCount(block), first, s.steps(), s.batchSize(), config.seqLen(), seconds,
                    seconds * 1e3 / done, secondHalfMedian(), cpuNanos / 1e6 / done,
                    (double) done * s.batchSize() * config.seqLen() / seconds, smooth, skipped, result.loss(),
                    result.accuracy(), 1.0 / config.numClasses(), result.sequences(), result.routing(),
                    curve.valid(), ResidentMemory.peakBytesIfKnown(), checkpoint.toString(),
                    drawn ? picture.toString() : null, gpuMemory, finishedProfile(), stepMode());
            Path reportFile = s.runDir().resolve("report.json");
            bestEffort("the report " + reportFile, () -> report.save(reportFile));
            return report;
        }
    }

    /** Output that a run can do without. */
    @FunctionalInterface
    private interface Extra {
        void write() throws IOException;
    }

    /**
     * Writes an extra; a failure (I/O, or graphics without fonts) becomes one warning.
     *
     * @return whether it was written
     */
    private static boolean bestEffort(String what, Extra extra) {
        try {
            extra.write();
            return true;
        } catch (IOException | RuntimeException | Error e) {
            if (e instanceof VirtualMachineError fatal) {
                throw fatal;
            }
            // the JDK reports missing fonts and other headless-graphics failures as plain Errors
            LOG.warn("could not write {} ({}); the run's other results are kept", what, e.toString());
            return false;
        }
    }

    /** CPU time of the whole process (all threads, native included), or 0 where the JVM cannot tell. */
    private static long processCpuNanos() {
        return ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.OperatingSystemMXBean os ? Math.max(0, os.getProcessCpuTime()) : 0;
    }

    /**
     * One optimizer step: the batch split over the trainer's devices, then {@link #clipAndUpdate}.
     *
     * @param direct null, or the trainer's optimizer to step the parameters with ({@link #clipAndUpdate})
     * @param phaseNanos null, or receives {forward+backward, clip+update}, each timed until the device is done: the
     *     loss is read, then a parameter value
     * @return {loss, gradient norm before clipping (NaN without clipping)}
     */
    static double[] step(Trainer trainer, RoutedModel block, Sample batch, double clip, FusedAdam direct,
            long[] phaseNanos) {
        try (NDManager stepManager = trainer.getManager().newSubManager()) {
            long t0 = System.nanoTime();
            double lossValue = backward(trainer, batch, trainer.getDevices(), stepManager);
            long t1 = System.nanoTime();
            double norm = clipAndUpdate(trainer, block, clip, direct);
            if (phaseNanos != null) {
                // flatten's result would join the parameter's manager, which lives as long as the model
                NDArray flat = block.getParameters().valueAt(0).getArray().flatten();
                flat.attach(stepManager);
                flat.get(0).getFloat();
                phaseNanos[0] = t1 - t0;
                phaseNanos[1] = System.nanoTime() - t1;
            }
            return new double[] {lossValue, norm};
        }
    }

    private static double median(List<double[]> rows, int column) {
        double[] values = rows.stream().mapToDouble(r -> r[column]).sorted().toArray();
        return values.length == 0 ? Double.NaN : values[values.length / 2];
    }

    /**
     * Clips the gradients to their global norm over every device's copy, each copy once (the trainer's devices,
     * whatever the parts of the batch were), then {@code trainer.step()} unless the norm is not finite. With
     * {@code direct}, the trainer's own optimizer on a one-device trainer, {@link FusedAdam#step} updates the
     * parameters instead of {@code trainer.step()}: the same update, without the parameter server's copy of each
     * gradient.
     *
     * @param clip the largest norm, or {@code <= 0} for no clipping
     * @param direct null, or the trainer's optimizer when the trainer has one device
     * @return the norm before clipping, NaN without clipping
     */
    static double clipAndUpdate(Trainer trainer, RoutedModel block, double clip, FusedAdam direct) {
        double norm = clip > 0
                ? GradientClipping.clipByGlobalNorm(block.getLastParameterStore(), block.getParameters().values(),
                        trainer.getDevices(), clip)
                : Double.NaN;
        if (clip <= 0 || Double.isFinite(norm)) {
            if (direct != null) {
                direct.step(block.getParameters());
            } else {
                trainer.step();
            }
        }
        return norm;
    }

    /**
     * Forward and backward of a batch in {@code parts.length} consecutive row ranges inside one collector, part
     * {@code d} on {@code parts[d]}. With the trainer's devices each device's parameter copy receives its part's
     * gradient, which the parameter server sums; several parts on one device accumulate into its one copy.
     *
     * @param parts the device of each part
     * @param stepManager where the step's arrays go (closed by the caller)
     * @return the batch's loss (the parts' weighted losses summed)
     */
    static double backward(Trainer trainer, Sample batch, Device[] parts, NDManager stepManager) {
        double lossValue = 0;
        try (GradientCollector collector = trainer.newGradientCollector()) {
            int b = batch.batchSize();
            for (int d = 0; d < parts.length; d++) {
                lossValue += backwardPart(trainer, collector, batch, d * b / parts.length,
                        (d + 1) * b / parts.length, stepManager.newSubManager(parts[d]));
            }
        }
        return lossValue;
    }

    /**
     * Forward of rows {@code [from, to)} of a batch on {@code m}'s device, and backward of their mean loss times
     * their share {@code (to - from) / b} of the batch, so that the parts' gradients sum to the whole batch's.
     *
     * @return the part's weighted loss
     */
    static double backwardPart(Trainer trainer, GradientCollector collector, Sample batch, int from, int to,
            NDManager m) {
        Sample part = batch.rows(from, to);
        NDList out = trainer.forward(new NDList(part.tokenArray(m)));
        // a native scalar: mul(Number) wraps the number in a Java buffer that autograd reads in
        // backward after DJL has freed it (garbage gradients after a GC)
        NDArray share = m.full(new Shape(), (float) (to - from) / batch.batchSize(), DataType.FLOAT32);
        NDArray l = lossOf(trainer.getLoss(), out, part.labelArray(m)).mul(share);
        collector.backward(l);
        return l.getFloat();
    }

    /**
     * The loss of a forward output: logits {@code (b, C)} against labels {@code (b)}, or {@code (b, n, C)} against
     * {@code (b, n)} (flattened to one prediction per token); further outputs (a penalty) are passed on.
     *
     * @param loss the loss function
     * @param out the model's output
     * @param labels the labels
     * @return the () loss
     */
    static NDArray lossOf(Loss loss, NDList out, NDArray labels) {
        NDArray logits = out.head();
        NDList predictions = new NDList(logits.reshape(-1, logits.getShape().getLastDimension()));
        predictions.addAll(out.subNDList(1));
        return loss.evaluate(new NDList(labels.reshape(-1)), predictions);
    }

    /**
     * AdamW or Adam ({@link FusedAdam}: DJL's, in native calls) on warm-up then cosine decay, the
     * schedule shifted to continue from {@code first}.
     */
    private static FusedAdam optimizer(TrainSettings s, int first) {
        float lr = (float) s.learningRate();
        int warmup = Math.min(s.warmupSteps(), s.steps() - 1);
        Tracker cosine = Tracker.cosine()
                .setBaseValue(lr)
                .optFinalValue(lr / 10)
                .setMaxUpdates(Math.max(1, s.steps() - warmup))
                .build();
        Tracker schedule = Tracker.warmUp()
                .setMainTracker(cosine)
                .optWarmUpSteps(warmup)
                .optWarmUpBeginValue(0f)
                .build();
        // the optimizer counts its own updates from 0 (fresh moments); the schedule continues
        Tracker shifted = numUpdate -> schedule.getNewValue(numUpdate + first);
        return ("adam".equals(s.optimizer()) ? FusedAdam.adamBuilder() : FusedAdam.adamWBuilder())
                .optLearningRateTracker(shifted).optWeightDecays((float) s.weightDecay()).build();
    }

    /**
     * Creates a new timestamped run directory under a base directory; runs started in the same second (several
     * trainings at once) get {@code -2}, {@code -3}, ... appended, each directory claimed atomically.
     *
     * @param base e.g. {@code runs}
     * @return {@code base/train-YYYYMMDD-HHMMSS[-i]}, created
     * @throws IOException if no directory can be created under {@code base}
     */
    public static Path newRunDir(Path base) throws IOException {
        Files.createDirectories(base);
        String stamp = String.format(Locale.ROOT, "train-%1$tY%1$tm%1$td-%1$tH%1$tM%1$tS", System.currentTimeMillis());
        for (int i = 1; ; i++) {
            Path dir = base.resolve(i == 1 ? stamp : stamp + "-" + i);
            try {
                return Files.createDirectory(dir);
            } catch (FileAlreadyExistsException taken) {
                // another run claimed it first
            }
        }
    }
}
