package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.metric.Metrics;
import ai.djl.ndarray.NDArray;
import dev.condjl.topk.checkpoint.StateDicts;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.LambdaBlock;
import ai.djl.nn.SequentialBlock;
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
import dev.condjl.colt5.cdattention.Embedding;

import java.io.IOException;

import org.junit.jupiter.api.Test;

/**
 * Padded {@code (tokens, mask)} batches through DJL's {@code EasyTrain}: {@link MaskedSequential} carries the mask
 * to the routed blocks, {@link Embedding} keeps it.
 */
class MaskedSequentialTest {

    private static final int N = 8;
    private static final int VOCAB = 6;
    private static final int DIM = 16;

    /** token_emb, a routed block that takes the mask, masked mean pooling, a linear head over 2 classes. */
    private static MaskedSequential model() {
        return new MaskedSequential()
                .add(new Embedding(VOCAB, DIM))
                .addMasked(ConditionalRoutedTransformerBlock.builder()
                        .setDim(DIM).setNumHeavyAttnTokensQ(2).setNumHeavyAttnTokensKv(2).setNumHeavyFfTokens(2)
                        .optLightWindowSize(2).optLightHeads(2).optLightDimHead(8)
                        .optHeavyHeads(2).optHeavyDimHead(8).build())
                .addMasked(new LambdaBlock(MaskedSequentialTest::meanOverValid))
                .add(Linear.builder().setUnits(2).build());
    }

    /** (b, n, d), optional (b, n) mask -> (b, d) mean over the valid positions. */
    private static NDList meanOverValid(NDList in) {
        NDArray x = in.get(0);
        if (in.size() < 2) {
            return new NDList(x.mean(new int[] {1}));
        }
        NDArray w = in.get(1).toType(DataType.FLOAT32, false).expandDims(-1);
        return new NDList(x.mul(w).sum(new int[] {1}).div(w.sum(new int[] {1})));
    }

    /** Tokens in [1, VOCAB) with random lengths in [3, N]; padding holds random tokens too. */
    private static NDList paddedBatch(NDManager manager, int b) {
        NDArray tokens = manager.randomInteger(1, VOCAB, new Shape(b, N), DataType.INT64);
        NDArray lengths = manager.randomInteger(3, N + 1, new Shape(b, 1), DataType.INT64);
        NDArray mask = manager.arange(0, N, 1, DataType.INT64).expandDims(0).lt(lengths);
        return new NDList(tokens, mask);
    }

    /** Label 1 iff token 1 occurs among the valid positions. */
    private static NDArray labels(NDArray tokens, NDArray mask) {
        return tokens.eq(1).logicalAnd(mask).toType(DataType.INT64, false).sum(new int[] {1}).gt(0).toType(DataType.INT64, false);
    }

    private static float loss(MaskedSequential block, NDManager manager, NDList data, NDArray labels) {
        NDArray logits = block.forward(new ParameterStore(manager, false), data, false).head();
        return Loss.softmaxCrossEntropyLoss().evaluate(new NDList(labels), new NDList(logits)).getFloat();
    }

    @Test
    void easyTrainOnPaddedBatchesLowersTheLossAndPaddingNeverLeaks() throws IOException, TranslateException {
        Engine.getInstance().setRandomSeed(15);
        try (NDManager manager = NDManager.newBaseManager()) {
            NDList data = paddedBatch(manager, 64);
            NDArray labels = labels(data.get(0), data.get(1));
            ArrayDataset dataset = new ArrayDataset.Builder()
                    .setData(data.get(0), data.get(1))
                    .optLabels(labels)
                    .setSampling(16, true)
                    .build();
            MaskedSequential block = model();
            try (Model model = Model.newInstance("masked")) {
                model.setBlock(block);
                DefaultTrainingConfig config = new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                        .optOptimizer(Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.01f)).build());
                try (Trainer trainer = model.newTrainer(config)) {
                    trainer.setMetrics(new Metrics());
                    trainer.initialize(new Shape(16, N), new Shape(16, N));
                    float before = loss(block, manager, data, labels);
                    EasyTrain.fit(trainer, 8, dataset, null);
                    float after = loss(block, manager, data, labels);
                    assertTrue(after < 0.8 * before, "loss " + before + " -> " + after);
                }

                // other tokens at the padded positions: valid positions see the same, so the logits are equal
                NDArray mask = data.get(1);
                NDArray otherPadding = manager.randomInteger(1, VOCAB, new Shape(64, N), DataType.INT64);
                NDArray repadded = NDArrays.where(mask, data.get(0), otherPadding);
                ParameterStore ps = new ParameterStore(manager, false);
                NDArray y = block.forward(ps, new NDList(data.get(0), mask), false).head();
                NDArray yRepadded = block.forward(ps, new NDList(repadded, mask), false).head();
                assertTrue(y.allClose(yRepadded, 1e-5, 1e-5, false), "padding changed the valid positions' output");
                // the property can fail: without the mask the padding changes the output
                NDArray yNoMask = block.forward(ps, new NDList(data.get(0)), false).head();
                NDArray yNoMaskRepadded = block.forward(ps, new NDList(repadded), false).head();
                assertFalse(yNoMask.allClose(yNoMaskRepadded, 1e-3, 1e-3, false));
            }
        }
    }

    @Test
    void childrenAreNamedByPositionAndOnlyMaskedOnesGetTheMask() {
        MaskedSequential block = model();
        try (NDManager manager = NDManager.newBaseManager()) {
            block.initialize(manager, DataType.FLOAT32, new Shape(2, N), new Shape(2, N));
            assertTrue(StateDicts.parameters(block).containsKey("0.weight"));
            assertTrue(StateDicts.parameters(block).containsKey("1.conditional_attn.q_router.routing_token"));
            assertTrue(StateDicts.parameters(block).containsKey("3.weight"));
            assertTrue(block.takesMask(block.getChildren().get(1).getValue()));
            assertFalse(block.takesMask(block.getChildren().get(0).getValue()));
            assertEquals(new Shape(2, 2), block.getOutputShapes(new Shape[] {new Shape(2, N), new Shape(2, N)})[0]);
        }
    }

    @Test
    void errorsNameTheMissingInputAndTheCallersBatch() {
        MaskedSequential block = model();
        try (NDManager manager = NDManager.newBaseManager()) {
            block.initialize(manager, DataType.FLOAT32, new Shape(8, N), new Shape(8, N));
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray mask = manager.ones(new Shape(8, N), DataType.BOOLEAN);
            mask.setName("mask");
            IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                    () -> block.forward(ps, new NDList(mask), false));
            assertEquals("input 0 'x' is missing; got only 'mask'", missing.getMessage());

            NDArray tokens = manager.ones(new Shape(8, N), DataType.INT64);
            NDArray shortMask = manager.ones(new Shape(8, N - 1), DataType.BOOLEAN);
            IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class,
                    () -> block.forward(ps, new NDList(tokens, shortMask), false));
            assertEquals("input 1 'mask' must be a boolean mask of shape (8, 8), got boolean (8, 7)",
                    wrong.getMessage());
            IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                    () -> block.forward(ps, new NDList(), false));
            assertEquals("input 0 'x' is missing; got no inputs", none.getMessage());
        }
    }

    @Test
    void theEmbeddingKeepsTheMaskInDjlsSequentialBlock() {
        try (NDManager manager = NDManager.newBaseManager()) {
            SequentialBlock block = new SequentialBlock().add(new Embedding(VOCAB, DIM));
            block.initialize(manager, DataType.FLOAT32, new Shape(2, N), new Shape(2, N));
            NDList batch = paddedBatch(manager, 2);
            NDList out = block.forward(new ParameterStore(manager, false), batch, false);
            assertEquals(new Shape(2, N, DIM), out.get(0).getShape());
            assertSame(batch.get(1), out.get(1));
            assertEquals(new Shape(2, N), block.getOutputShapes(new Shape[] {new Shape(2, N), new Shape(2, N)})[1]);
        }
    }
}
