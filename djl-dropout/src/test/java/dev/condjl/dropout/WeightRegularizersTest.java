package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
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

/** WeightDropout and VariationalNoise (spec §3.1, §6.4 statistics and order). */
class WeightRegularizersTest {

    private static float fraction(NDArray bool) {
        return bool.toType(DataType.FLOAT32, false).mean().getFloat();
    }

    @Test
    void evalAndZeroRateAreTheIdentity() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray w = manager.randomNormal(new Shape(4, 3));
            assertSame(w, new WeightDropout(0.5f).apply(w, manager, false));
            assertSame(w, new VariationalNoise(0.5f).apply(w, manager, false));
            assertSame(w, new WeightDropout(0f).apply(w, manager, true));
            assertSame(w, new VariationalNoise(0f).apply(w, manager, true));
            NDArray bias = manager.randomNormal(new Shape(3));
            assertSame(bias, new WeightDropout(0.5f, 2).apply(bias, manager, true));
            assertSame(bias, new VariationalNoise(0.5f, 2).apply(bias, manager, true));
        }
    }

    @Test
    void dropConnectIsUnbiasedAndDropsTheRequestedFraction() {
        float p = 0.5f;
        int draws = 200;
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray w = manager.randomNormal(new Shape(64, 64));
            NDArray sum = manager.zeros(w.getShape());
            long dropped = 0;
            for (int i = 0; i < draws; i++) {
                try (NDManager draw = manager.newSubManager()) {
                    NDArray d = WeightDropout.dropConnect(w, p, draw);
                    dropped += d.eq(0f).sum().getLong();
                    NDArray kept = d.neq(0f);
                    // kept elements are exactly W / (1 - p)
                    assertEquals(w.mul(2f).get(kept), d.get(kept));
                    sum.addi(d);
                }
            }
            double n = (double) draws * w.size();
            assertEquals(p, dropped / n, 5 * Math.sqrt(p * (1 - p) / n));
            // Tolerance: the mean of 200 draws has standard error |W|·sqrt(p/q/200) per element; every element
            // must lie within 5.5 standard errors (a false alarm over 4096 elements has probability ~2e-4).
            NDArray standardError = w.abs().mul((float) Math.sqrt(p / (1 - p) / draws));
            NDArray z = sum.div(draws).sub(w).abs().div(standardError);
            assertTrue(z.max().getFloat() < 5.5f, "max z " + z.max().getFloat());
        }
    }

    @Test
    void dropConnectGradientIsTheMaskOverKeep() {
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray w = manager.randomNormal(new Shape(16, 8));
            NDArray g = manager.randomNormal(new Shape(16, 8));
            w.setRequiresGradient(true);
            NDArray d;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                d = WeightDropout.dropConnect(w, 0.25f, manager);
                collector.backward(d.mul(g).sum());
            }
            NDArray expected = d.neq(0f).toType(DataType.FLOAT32, false).mul(g).div(0.75f);
            assertTrue(w.getGradient().allClose(expected, 1e-6, 1e-7, false));
        }
    }

    @Test
    void noiseHasMeanZeroAndStdSigmaAndUnitGradient() {
        float sigma = 0.075f;
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray w = manager.randomNormal(new Shape(256, 256));
            w.setRequiresGradient(true);
            NDArray noisy;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                noisy = VariationalNoise.addNoise(w, sigma, manager);
                collector.backward(noisy.sum());
            }
            NDArray eps = noisy.sub(w);
            double n = eps.size();
            float mean = eps.mean().getFloat();
            float std = (float) Math.sqrt(eps.sub(mean).square().mean().getFloat());
            assertEquals(0.0, mean, 5 * sigma / Math.sqrt(n));
            // the sample std of n = 65536 normals has relative standard error 1/sqrt(2n) = 0.28%
            assertEquals(sigma, std, 0.015 * sigma);
            assertEquals(manager.ones(w.getShape()), w.getGradient());
        }
    }

    /** Effective weight of a parametrized Linear(64 → 64) in one training forward: rows of the output for x = I. */
    private static NDArray effectiveWeight(Parametrized block, Linear linear, NDManager manager) {
        NDArray eye = manager.eye(64);
        NDArray bias = linear.getParameters().get("bias").getArray();
        return block.forward(new ParameterStore(manager, false), new NDList(eye), true).head().sub(bias)
                .transpose();
    }

    @Test
    void noiseRegisteredBeforeDropoutGivesDropOfNoisyWeight() {
        float p = 0.3f;
        float sigma = 0.05f;
        try (NDManager manager = NDManager.newBaseManager()) {
            Linear linear = Linear.builder().setUnits(64).build();
            linear.initialize(manager, DataType.FLOAT32, new Shape(1, 64));
            NDArray w = linear.getParameters().get("weight").getArray();
            Parametrized block = Parametrized.wrap(linear)
                    .register("weight", new VariationalNoise(sigma))
                    .register("weight", new WeightDropout(p));
            NDArray effective = effectiveWeight(block, linear, manager);
            // drop(W + σε): dropped entries are exactly 0, kept ones are (W + σε)/q
            NDArray zero = effective.eq(0f);
            assertEquals(p, fraction(zero), 5 * Math.sqrt(p * (1 - p) / 4096));
            NDArray kept = zero.logicalNot();
            NDArray eps = effective.get(kept).mul(1 - p).sub(w.get(kept)).div(sigma);
            float std = (float) Math.sqrt(eps.square().mean().getFloat());
            assertEquals(1.0, std, 0.05);

            // the other order (noise on the dropped weight) leaves no exact zeros: registration order is applied
            Parametrized reversed = Parametrized.wrap(linear)
                    .register("weight", new WeightDropout(p))
                    .register("weight", new VariationalNoise(sigma));
            assertEquals(0f, fraction(effectiveWeight(reversed, linear, manager).eq(0f)));
        }
    }

    @Test
    void minRankSkipsTheBias() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Linear linear = Linear.builder().setUnits(64).build();
            linear.initialize(manager, DataType.FLOAT32, new Shape(1, 64));
            linear.getParameters().get("bias").getArray().set(new NDIndex("..."), 1f);
            Parametrized block = Parametrized.wrap(linear).registerAll(new WeightDropout(0.5f, 2));
            // a zero input isolates the bias: dropped or scaled bias entries would differ from 1
            NDArray zeros = manager.zeros(new Shape(1, 64));
            NDArray out = block.forward(new ParameterStore(manager, false), new NDList(zeros), true).head();
            assertEquals(manager.ones(new Shape(1, 64)), out);
        }
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> new WeightDropout(1f));
        assertThrows(IllegalArgumentException.class, () -> new WeightDropout(-0.1f));
        assertThrows(IllegalArgumentException.class, () -> new WeightDropout(0.1f, -1));
        assertThrows(IllegalArgumentException.class, () -> new VariationalNoise(-1f));
        assertThrows(IllegalArgumentException.class, () -> new VariationalNoise(Float.NaN));
        assertThrows(IllegalArgumentException.class, () -> Parametrized.builder().build());
    }
}
