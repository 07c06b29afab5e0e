package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import org.junit.jupiter.api.Test;

/** LearnedDropout behaviour (spec §4.3, §4.5, §6.5). */
class LearnedDropoutTest {

    private static LearnedDropout block(NDManager manager, Shape shape) {
        LearnedDropout block = LearnedDropout.builder().setEmbedDim((int) shape.get(2)).setNumHeads(2)
                .optShiftInit((float) (Math.PI / 4)).build();
        block.initialize(manager, DataType.FLOAT32, shape);
        // larger attention weights than the 0.02 init so that masks vary across positions and channels
        block.getParameters().get("01batch_attn_weights_weight").getArray().muli(40f);
        return block;
    }

    private static boolean onlyZerosAndOnes(NDArray a) {
        return a.eq(0f).logicalOr(a.eq(1f)).all().getBoolean();
    }

    @Test
    void masksAreExactlyZeroOrOneAndOutputsAreNotRescaled() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(3, 7, 8);
            LearnedDropout block = block(manager, shape);
            NDArray x = manager.randomNormal(shape);
            ParameterStore ps = new ParameterStore(manager, false);
            for (boolean training : new boolean[] {true, false}) {
                NDList out = block.forward(ps, new NDList(x), training);
                NDArray y = out.get(0);
                // every output element is x (kept, no 1/keep scale) or 0
                assertTrue(y.eq(x).logicalOr(y.eq(0f)).all().getBoolean(), "training=" + training);
                float ones = out.get(2).getFloat();
                assertTrue(ones > 0f && ones < 1f, "fraction of ones " + ones);
                assertEquals(y.eq(x).toType(DataType.FLOAT32, false).mean().getFloat(), ones, 1e-6);
            }
            NDArray m = manager.randomUniform(0f, 1f, new Shape(1000));
            assertTrue(onlyZerosAndOnes(LearnedDropout.round(m, manager.randomUniform(0f, 1f, m.getShape()))));
            assertTrue(onlyZerosAndOnes(LearnedDropout.round(m, null)));
        }
    }

    @Test
    void evalIsDeterministicThresholdWithoutPenalty() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(2, 6, 8);
            LearnedDropout block = block(manager, shape);
            NDArray x = manager.randomNormal(shape);
            ParameterStore ps = new ParameterStore(manager, false);
            NDList first = block.forward(ps, new NDList(x), false);
            NDList second = block.forward(ps, new NDList(x), false);
            assertEquals(first.get(0), second.get(0));
            assertEquals(0f, first.get(1).getFloat());
            NDArray m = manager.create(new float[] {0f, 0.49f, 0.5f, 0.51f, 1f});
            assertEquals(manager.create(new float[] {0f, 0f, 1f, 1f, 1f}), LearnedDropout.round(m, null));
        }
    }

    @Test
    void trainingKeepsWithProbabilityMAndPassesTheGradientStraightThrough() {
        try (NDManager manager = NDManager.newBaseManager()) {
            int n = 20000;
            NDArray m = manager.create(new float[] {0.1f, 0.3f, 0.7f, 0.9f}).tile(n).reshape(n, 4);
            NDArray g = manager.randomNormal(m.getShape());
            m.setRequiresGradient(true);
            NDArray rounded;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                rounded = LearnedDropout.round(m, manager.randomUniform(0f, 1f, m.getShape()));
                collector.backward(rounded.mul(g).sum());
            }
            float[] keep = rounded.mean(new int[] {0}).toFloatArray();
            float[] expected = {0.1f, 0.3f, 0.7f, 0.9f};
            for (int i = 0; i < 4; i++) {
                assertEquals(expected[i], keep[i], 5 * Math.sqrt(expected[i] * (1 - expected[i]) / n));
            }
            assertEquals(g, m.getGradient());
        }
    }

    @Test
    void aLaterTokenNeverChangesAnEarlierMask() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(2, 8, 8);
            LearnedDropout block = block(manager, shape);
            NDArray x = manager.randomNormal(shape);
            NDArray changed = x.duplicate();
            changed.set(new NDIndex(":, 5:, :"), manager.randomNormal(new Shape(2, 3, 8)).mul(10f));
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray before = block.forward(ps, new NDList(x), false).get(0);
            NDArray after = block.forward(ps, new NDList(changed), false).get(0);
            assertEquals(before.get(":, :5, :"), after.get(":, :5, :"));
            assertNotEquals(before.get(":, 5:, :"), after.get(":, 5:, :"));

            NDArray w = block.getParameters().get("01batch_attn_weights_weight").getArray();
            NDArray shift = block.getParameters().get("shift").getArray();
            NDArray m = LearnedDropout.keepProbability(Linear.linear(x, w).head(), shift, 2);
            NDArray mChanged = LearnedDropout.keepProbability(Linear.linear(changed, w).head(), shift, 2);
            assertEquals(m.get(":, :5, :"), mChanged.get(":, :5, :"));
        }
    }

    @Test
    void singleTokenAttendsToItselfAndSamplesAreIndependent() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray qkv = manager.randomNormal(new Shape(2, 1, 12));
            NDArray shift = manager.randomUniform(0f, 3f, new Shape(4));
            NDArray v = qkv.get(":, :, 8:");
            NDArray expected = v.add(shift).cos().mul(0.5f).add(0.5f);
            assertTrue(LearnedDropout.keepProbability(qkv, shift, 2).allClose(expected, 1e-6, 1e-7, false));

            NDArray batch = manager.randomNormal(new Shape(3, 6, 12));
            NDArray all = LearnedDropout.keepProbability(batch, shift, 2);
            NDArray one = LearnedDropout.keepProbability(batch.get("1:2"), shift, 2);
            assertTrue(all.get("1:2").allClose(one, 1e-6, 1e-6, false));
        }
    }

    @Test
    void penaltyValues() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray m = manager.create(new float[] {0f, 0.5f, 1f, 1f});
            assertEquals(0.28125f, LearnedDropout.penalty(m, LearnedDropout.PenaltyType.SQUARED).getFloat(), 1e-7);
            assertEquals(0.625f, LearnedDropout.penalty(m, LearnedDropout.PenaltyType.LINEAR).getFloat(), 1e-7);
        }
    }

    @Test
    void detachedEmbedInputGetsNoGradient() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Shape shape = new Shape(2, 4, 8);
            for (boolean detached : new boolean[] {true, false}) {
                LearnedDropout block = LearnedDropout.builder().setEmbedDim(8).setNumHeads(2)
                        .optDropoutInputType(LearnedDropout.DropoutInputType.EMBED)
                        .optUseDetachedInput(detached).build();
                block.initialize(manager, DataType.FLOAT32, shape, shape);
                NDArray x = manager.randomNormal(shape);
                NDArray embed = manager.randomNormal(shape);
                embed.setRequiresGradient(true);
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDList out = block.forward(new ParameterStore(manager, false), new NDList(x, embed), true);
                    collector.backward(out.get(0).sum().add(out.get(1)));
                }
                float embedGrad = embed.getGradient().abs().sum().getFloat();
                assertEquals(detached, embedGrad == 0f, "detached=" + detached + " |grad|=" + embedGrad);
                NDArray w = block.getParameters().get("01batch_attn_weights_weight").getArray();
                assertTrue(w.getGradient().abs().sum().getFloat() > 0f);
            }
        }
    }

    @Test
    void rejectsBadConfiguration() {
        assertThrows(IllegalArgumentException.class, () -> LearnedDropout.builder().setNumHeads(2).build());
        assertThrows(IllegalArgumentException.class,
                () -> LearnedDropout.builder().setEmbedDim(10).setNumHeads(3).build());
        assertThrows(IllegalArgumentException.class,
                () -> LearnedDropout.builder().setEmbedDim(8).setNumHeads(2).optShiftInit(4f).build());
        try (NDManager manager = NDManager.newBaseManager()) {
            LearnedDropout embed = LearnedDropout.builder().setEmbedDim(8).setNumHeads(2)
                    .optDropoutInputType(LearnedDropout.DropoutInputType.EMBED).build();
            assertThrows(IllegalArgumentException.class,
                    () -> embed.initialize(manager, DataType.FLOAT32, new Shape(1, 3, 8)));
        }
    }
}
