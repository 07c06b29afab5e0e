package dev.condjl.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link StraightThroughSelection}: its fused form (gates from the top-k kernel, one gathered gradient path) gives
 * the composition's indices, values and gradients bit for bit.
 */
class StraightThroughSelectionTest {

    private static final CoordinateDescent.Options ROUTER = CoordinateDescent.Options.builder().setIters(20)
            .optEps(0.03).optEpsInit(4.0).optEpsDecay(0.7).optBackend(Backend.FUSED).build();

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        Engine.getInstance().setRandomSeed(23);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    @ParameterizedTest(name = "{0}, mask {1}")
    @CsvSource({"FLOAT32, false", "FLOAT32, true", "FLOAT16, false", "FLOAT16, true"})
    void fusedSelectionIsTheCompositionBitForBit(DataType type, boolean masked) {
        // narrow scores: the selected entries stay below 1 (saturated ones take no gradient)
        NDArray scores = manager.randomNormal(0, 0.02f, new Shape(6, 96), DataType.FLOAT32).toType(type, false);
        NDArray mask = masked ? manager.randomUniform(0, 1, new Shape(6, 96)).lt(0.7f) : null;
        NDArray upstream = manager.randomNormal(new Shape(6, 8)).toType(type, false);

        NDArray fusedLeaf = scores.duplicate();
        fusedLeaf.setRequiresGradient(true);
        NDList fused;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            assertNotNull(CoordinateDescent.fusedParts(fusedLeaf, 12, mask, ROUTER), "the fused form must run here");
            fused = StraightThroughSelection.select(fusedLeaf, 12, mask, 8, ROUTER, TieBreak.BY_INPUT);
            collector.backward(fused.get(0).mul(upstream).sum());
        }

        NDArray composedLeaf = scores.duplicate();
        composedLeaf.setRequiresGradient(true);
        NDArray values;
        NDArray indices;
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray soft = CoordinateDescent.solve(composedLeaf, 12, mask, ROUTER);
            NDList selected = TopK.select(soft, composedLeaf, mask, 8, TieBreak.BY_INPUT);
            values = StraightThroughSelection.straightThrough(selected.get(0));
            indices = selected.get(1);
            collector.backward(values.mul(upstream).sum());
        }

        assertArrayEquals(indices.toLongArray(), fused.get(1).toLongArray(), "indices");
        assertEquals(type, fused.get(0).getDataType());
        assertArrayEquals(values.toByteArray(), fused.get(0).toByteArray(), "values");
        float[] expectedGrad = composedLeaf.getGradient().toType(DataType.FLOAT32, false).toFloatArray();
        assertArrayEquals(expectedGrad, fusedLeaf.getGradient().toType(DataType.FLOAT32, false).toFloatArray(),
                "gradients");
        float largest = 0;
        for (float g : expectedGrad) {
            largest = Math.max(largest, Math.abs(g));
        }
        assertTrue(largest > 0, "the scores take a gradient");
        for (float v : fused.get(0).toType(DataType.FLOAT32, false).toFloatArray()) {
            assertEquals(1f, v, "c + (1 - c) is exactly 1 for c in [0, 1]");
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"REFERENCE", "BY_INPUT"})
    void outsideACollectorOrWithTheReferenceTieBreakItIsTheComposition(TieBreak tieBreak) {
        NDArray scores = manager.randomNormal(new Shape(3, 40));
        assertNull(CoordinateDescent.fusedParts(scores, 5, null, ROUTER), "no fused parts outside a collector");
        NDList selected = StraightThroughSelection.select(scores, 5, null, 4, ROUTER, tieBreak);
        NDList expected = TopK.select(CoordinateDescent.solve(scores, 5, null, ROUTER), scores, null, 4, tieBreak);
        assertArrayEquals(expected.get(1).toLongArray(), selected.get(1).toLongArray());
        assertArrayEquals(StraightThroughSelection.straightThrough(expected.get(0)).toFloatArray(),
                selected.get(0).toFloatArray());
        assertEquals(scores.getManager(), selected.get(0).getManager(), "results join the scores' manager");
    }
}
