package dev.condjl.example;

import ai.djl.MalformedModelException;
import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.core.Linear;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.ParameterStore;
import ai.djl.training.Trainer;
import ai.djl.training.dataset.ArrayDataset;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.translate.TranslateException;
import ai.djl.util.Pair;
import dev.condjl.colt5.ConditionalRoutedTransformerBlock;
import dev.condjl.colt5.MaskedSequential;
import dev.condjl.colt5.cdattention.Embedding;
import dev.condjl.topk.checkpoint.Checkpoints;
import dev.condjl.topk.checkpoint.ReadOptions;
import dev.condjl.dropout.Parametrized;
import dev.condjl.dropout.WeightDropout;
import dev.condjl.stochastic.DepthSchedule;
import dev.condjl.stochastic.StochasticDepthMode;
import dev.condjl.stochastic.StochasticResidual;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * condjl used from another Maven project (see {@code pom.xml} beside {@code src/}): a classifier of padded token
 * sequences built from {@link ConditionalRoutedTransformerBlock}s with batch-subset stochastic depth and
 * DropConnect, trained with DJL's {@code EasyTrain} on {@code (tokens, mask)} batches, saved and loaded with
 * {@code Model.save/load}; its first block can start from reference PyTorch weights by {@code state_dict} name.
 *
 * <p>The task: label 1 iff token 1 occurs among a sequence's valid (unpadded) positions; the padding holds random
 * tokens too, so a model that looked at padding would be misled. The code between {@code README:begin} and {@code
 * README:end} is the README's example, verbatim (a test checks it).
 */
public final class PaddedRoutedExample {

    static final int VOCAB = 8;
    static final int SEQ = 16;
    static final int DIM = 16;

    private PaddedRoutedExample() {}

    /**
     * What one run measured.
     *
     * @param lossBefore the training-set loss before training
     * @param lossAfter the training-set loss after training
     * @param reloadedMaxDiff max |logits of the model loaded with {@code Model.load} - logits of the trained one|
     * @param referenceKeys the number of reference tensors loaded into the first block (0 without a checkpoint)
     */
    public record Result(float lossBefore, float lossAfter, float reloadedMaxDiff, int referenceKeys) {}

    /**
     * Runs the example.
     *
     * @param args {@code [output dir [reference .pt/.safetensors of a ConditionalRoutedTransformerBlock with this
     *     example's configuration [epochs]]]}
     * @throws Exception if training, saving or loading fails
     */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", "true");
        Path dir = Path.of(args.length > 0 ? args[0] : "target/example-model");
        Path reference = args.length > 1 ? Path.of(args[1]) : null;
        int epochs = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        System.out.println(run(dir, reference, epochs));
    }

    // README:begin
    /** One layer: the reference's ConditionalRoutedTransformerBlock with its keyword arguments in camelCase. */
    static ConditionalRoutedTransformerBlock routedBlock() {
        return ConditionalRoutedTransformerBlock.builder().setDim(DIM)
                .setNumHeavyAttnTokensQ(6).setNumHeavyAttnTokensKv(8).setNumHeavyFfTokens(7)
                .optLightWindowSize(8).optLightHeads(2).optLightDimHead(8).optHeavyHeads(4).optHeavyDimHead(8)
                .build();
    }

    /** (tokens (b, n), mask (b, n)) -> (b, 2) logits; the container hands the mask to the addMasked children. */
    static MaskedSequential model(List<ConditionalRoutedTransformerBlock> blocks) {
        MaskedSequential net = new MaskedSequential().add(new Embedding(VOCAB, DIM));
        double[] rates = DepthSchedule.linear(0.2, blocks.size());        // 0 at the first layer, 0.2 at the last
        for (int i = 0; i < blocks.size(); i++) {
            Parametrized dropConnect = Parametrized.wrap(blocks.get(i));  // DropConnect on every linear weight
            for (Pair<String, Parameter> p : blocks.get(i).getParameters()) {
                if ("weight".equals(p.getValue().getName())) {
                    dropConnect.register(p.getKey(), new WeightDropout(0.1f, 2));
                }
            }
            // the block returns x + attn + ff itself: setResidualBlock, never setBranch (that would give 2x + ...)
            net.addMasked(StochasticResidual.builder().setResidualBlock(dropConnect)
                    .optDropProb(rates[i]).optMode(StochasticDepthMode.BATCH_SUBSET).build());
        }
        return net.addMasked(new LambdaBlock(PaddedRoutedExample::meanOverValid))
                .add(Linear.builder().setUnits(2).build());
    }

    static Result run(Path dir, Path reference, int epochs)
            throws IOException, TranslateException, MalformedModelException {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDList batch = paddedSequences(manager, 64);                  // tokens (64, 16) int64, mask (64, 16) bool
            NDArray labels = labels(batch);
            ArrayDataset dataset = new ArrayDataset.Builder()
                    .setData(batch.get(0), batch.get(1)).optLabels(labels).setSampling(16, true).build();
            List<ConditionalRoutedTransformerBlock> blocks = List.of(routedBlock(), routedBlock());
            MaskedSequential net = model(blocks);
            float before;
            float after;
            float[] trained;                                              // logits, kept past the model's close
            int referenceKeys = 0;
            try (Model model = Model.newInstance("routed")) {
                model.setBlock(net);
                DefaultTrainingConfig config = new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                        .optOptimizer(Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.01f)).build());
                try (Trainer trainer = model.newTrainer(config)) {
                    trainer.initialize(new Shape(16, SEQ), new Shape(16, SEQ));
                    if (reference != null) {                              // PyTorch weights, by state_dict name
                        referenceKeys = Checkpoints.loadInto(blocks.get(0), reference, ReadOptions.defaults(), true)
                                .loaded();
                    }
                    before = loss(net, batch, labels);
                    EasyTrain.fit(trainer, epochs, dataset, null);
                    after = loss(net, batch, labels);
                    trained = logits(net, batch).toFloatArray();
                }
                model.save(dir, "routed");                                // dir/routed-0000.params
            }
            try (Model loaded = Model.newInstance("routed")) {
                loaded.setBlock(model(List.of(routedBlock(), routedBlock())));
                loaded.load(dir, "routed");
                NDArray diff = logits(loaded.getBlock(), batch).flatten().sub(manager.create(trained)).abs().max();
                return new Result(before, after, diff.getFloat(), referenceKeys);
            }
        }
    }
    // README:end

    /** (b, n, d) and an optional (b, n) mask -> (b, d): the mean over valid positions. */
    private static NDList meanOverValid(NDList in) {
        NDArray x = in.get(0);
        if (in.size() == 1) {
            return new NDList(x.mean(new int[] {1}));
        }
        NDArray valid = in.get(1).toType(DataType.FLOAT32, false).expandDims(-1);
        return new NDList(x.mul(valid).sum(new int[] {1}).div(valid.sum(new int[] {1})));
    }

    /** Random tokens in [1, VOCAB) and lengths in [4, SEQ]; positions past the length are padding. */
    private static NDList paddedSequences(NDManager manager, int count) {
        NDArray tokens = manager.randomInteger(1, VOCAB, new Shape(count, SEQ), DataType.INT64);
        NDArray lengths = manager.randomInteger(4, SEQ + 1, new Shape(count, 1), DataType.INT64);
        return new NDList(tokens, manager.arange(0, SEQ, 1, DataType.INT64).expandDims(0).lt(lengths));
    }

    /** 1 where token 1 is at a valid position, int64 (b). */
    private static NDArray labels(NDList batch) {
        NDArray hits = batch.get(0).eq(1).logicalAnd(batch.get(1)).toType(DataType.INT64, false);
        return hits.sum(new int[] {1}).gt(0).toType(DataType.INT64, false);
    }

    private static NDArray logits(Block net, NDList batch) {
        return net.forward(new ParameterStore(batch.head().getManager(), false), batch, false).head();
    }

    private static float loss(Block net, NDList batch, NDArray labels) {
        return Loss.softmaxCrossEntropyLoss().evaluate(new NDList(labels), new NDList(logits(net, batch))).getFloat();
    }
}
