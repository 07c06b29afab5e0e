package dev.condjl.colt5.cdattention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import dev.condjl.topk.checkpoint.StateDicts;
import org.junit.jupiter.api.Test;

/** The lookup table of token ids and learned positions. */
class EmbeddingTest {

    @Test
    void firstRowsAreTheLookupOfTheFirstIdsWithItsGradient() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Embedding table = new Embedding(10, 3);
            table.initialize(manager, DataType.FLOAT32, new Shape(4));
            NDArray weight = StateDicts.parameters(table).get("weight").getArray();
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray upstream = manager.randomNormal(new Shape(4, 3));
            NDArray sliced;
            NDArray looked;
            float[] slicedGrad;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                sliced = table.firstRows(ps, 4, manager.getDevice(), true);
                looked = table.forward(ps, new NDList(manager.arange(0, 4, 1, DataType.INT64)), true).head();
                collector.backward(sliced.mul(upstream).sum());
                slicedGrad = weight.getGradient().toFloatArray();
            }
            assertArrayEquals(looked.toFloatArray(), sliced.toFloatArray(), "the same values, bit for bit");
            weight.getGradient().muli(0);
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                NDArray again = table.forward(ps, new NDList(manager.arange(0, 4, 1, DataType.INT64)), true).head();
                collector.backward(again.mul(upstream).sum());
            }
            float[] lookupGrad = weight.getGradient().toFloatArray();
            assertArrayEquals(lookupGrad, slicedGrad, "the lookup's gradient: upstream on rows 0..3, 0 below");
            assertEquals(0f, slicedGrad[4 * 3], "row 4 takes no gradient");
            assertEquals(upstream.getFloat(0, 0), slicedGrad[0]);
            assertEquals(new Shape(10, 3), table.firstRows(ps, 10, manager.getDevice(), false).getShape());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> table.firstRows(ps, 11, manager.getDevice(), false));
            assertTrue(e.getMessage().contains("[1, 10]"), e.getMessage());
        }
    }
}
