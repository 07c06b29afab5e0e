package dev.condjl.topk.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.util.PairList;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Naming and loading by PyTorch {@code state_dict} keys. */
class StateDictsTest {

    /** A block that returns its input: the tests below only name and load parameters. */
    private abstract static class PassThrough extends AbstractBlock {
        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            return inputs;
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputShapes) {
            return inputShapes;
        }
    }

    /** A block shaped like a small reference module: a direct parameter, a buffer, nested children. */
    private static final class Toy extends PassThrough {
        private final Parameter token;
        private final Parameter buffer;
        private final Linear toQ;
        private final Inner ff;

        Toy() {
            token = addParameter(Parameter.builder().setName("routing_token").setType(Parameter.Type.OTHER)
                    .optInitializer(Initializer.ONES).optShape(new Shape(2, 4)).build());
            buffer = addParameter(Parameter.builder().setName("inv_freq").setType(Parameter.Type.OTHER)
                    .optInitializer(Initializer.ZEROS).optShape(new Shape(3)).optRequiresGrad(false).build());
            toQ = addChildBlock("to_q", Linear.builder().setUnits(5).optBias(false).build());
            ff = addChildBlock("ff", new Inner());
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            toQ.initialize(manager, dataType, inputShapes);
            ff.initialize(manager, dataType, inputShapes);
        }
    }

    private static final class Inner extends PassThrough {
        private final Linear first;

        Inner() {
            first = addChildBlock("1", Linear.builder().setUnits(3).build());
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            first.initialize(manager, dataType, inputShapes);
        }
    }

    @Test
    void namesAreDottedStateDictKeys() {
        Toy toy = new Toy();
        assertEquals(
                List.of("routing_token", "inv_freq", "to_q.weight", "ff.1.weight", "ff.1.bias"),
                List.copyOf(StateDicts.parameters(toy).keySet()));
        assertSame(toy.buffer, StateDicts.parameters(toy).get("inv_freq"));
    }

    @Test
    void loadCopiesInPlaceAndKeepsRequiresGrad() {
        try (NDManager m = NDManager.newBaseManager()) {
            Toy toy = new Toy();
            toy.initialize(m, DataType.FLOAT32, new Shape(1, 4));
            NDArray before = toy.toQ.getParameters().get("weight").getArray();
            Map<String, NDArray> sd = new LinkedHashMap<>();
            sd.put("routing_token", m.arange(8f).reshape(2, 4));
            sd.put("inv_freq", m.create(new double[] {1, 2, 3})); // float64 source: converted
            sd.put("to_q.weight", m.ones(new Shape(5, 4)).mul(2));
            sd.put("ff.1.weight", m.ones(new Shape(3, 4)));
            sd.put("ff.1.bias", m.create(new float[] {7, 8, 9}));
            StateDicts.LoadReport report = StateDicts.load(toy, sd, true);
            assertTrue(report.isComplete(), report.toString());
            assertEquals(5, report.loaded());
            assertSame(before, toy.toQ.getParameters().get("weight").getArray());
            assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5, 6, 7}, toy.token.getArray().toFloatArray());
            assertArrayEquals(new float[] {1, 2, 3}, toy.buffer.getArray().toFloatArray());
            assertEquals(DataType.FLOAT32, toy.buffer.getArray().getDataType());
            assertArrayEquals(new float[] {7, 8, 9}, StateDicts.parameters(toy).get("ff.1.bias").getArray()
                    .toFloatArray());
            assertTrue(toy.token.getArray().hasGradient());
            assertFalse(toy.buffer.requiresGradient());
        }
    }

    @Test
    void reportsMissingUnexpectedAndMisShapedByName() {
        try (NDManager m = NDManager.newBaseManager()) {
            Toy toy = new Toy();
            toy.initialize(m, DataType.FLOAT32, new Shape(1, 4));
            float[] original = toy.token.getArray().toFloatArray();
            float[] toQBefore = toy.toQ.getParameters().get("weight").getArray().toFloatArray();
            Map<String, NDArray> sd = new LinkedHashMap<>();
            sd.put("routing_token", m.zeros(new Shape(1, 4)));
            sd.put("to_q.weight", m.zeros(new Shape(5, 4)));
            sd.put("ff.2.weight", m.zeros(new Shape(3)));
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> StateDicts.load(toy, sd, true));
            assertTrue(e.getMessage().contains("inv_freq"), e.getMessage());
            assertTrue(e.getMessage().contains("ff.2.weight"), e.getMessage());
            assertTrue(e.getMessage().contains("routing_token"), e.getMessage());
            assertArrayEquals(toQBefore, toQ(toy), "strict failure must copy nothing");

            StateDicts.LoadReport report = StateDicts.load(toy, sd, false);
            assertEquals(List.of("inv_freq", "ff.1.weight", "ff.1.bias"), report.missing());
            assertEquals(List.of("ff.2.weight"), report.unexpected());
            assertEquals(List.of("routing_token"), List.copyOf(report.mismatched().keySet()));
            assertEquals(1, report.loaded());
            assertArrayEquals(new float[5 * 4], toQ(toy));
            assertArrayEquals(original, toy.token.getArray().toFloatArray());
        }
    }

    private static float[] toQ(Toy toy) {
        return toy.toQ.getParameters().get("weight").getArray().toFloatArray();
    }

    /** {@code embed.weight} is also the output layer, stored by PyTorch a second time as {@code head.weight}. */
    private static final class TiedToy extends PassThrough implements TiedWeights {
        private final Parameter embed;

        TiedToy() {
            embed = addParameter(Parameter.builder().setName("embed.weight").setType(Parameter.Type.WEIGHT)
                    .optInitializer(Initializer.ZEROS).optShape(new Shape(3, 2)).build());
        }

        @Override
        public Map<String, String> tiedKeys() {
            return Map.of("head.weight", "embed.weight");
        }
    }

    /** The tied toy as the child {@code lm} of another block: tied keys carry the child's prefix. */
    private static final class Outer extends PassThrough {
        private final TiedToy lm;

        Outer() {
            lm = addChildBlock("lm", new TiedToy());
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            lm.initialize(manager, dataType, inputShapes);
        }
    }

    @Test
    void equalTiedCopyIsAcceptedStrictly() {
        try (NDManager m = NDManager.newBaseManager()) {
            Outer outer = new Outer();
            outer.initialize(m, DataType.FLOAT32, new Shape(1, 2));
            assertEquals(Map.of("lm.head.weight", "lm.embed.weight"), StateDicts.tiedKeys(outer));
            NDArray table = m.arange(6f).reshape(3, 2);
            Map<String, NDArray> sd = new LinkedHashMap<>();
            sd.put("lm.embed.weight", table);
            sd.put("lm.head.weight", table.duplicate());
            StateDicts.LoadReport report = StateDicts.load(outer, sd, true);
            assertTrue(report.isComplete(), report.toString());
            assertEquals(List.of("lm.head.weight"), report.tied());
            assertEquals(1, report.loaded());
            assertArrayEquals(table.toFloatArray(), outer.lm.embed.getArray().toFloatArray());
        }
    }

    @Test
    void unequalTiedCopyIsRefusedWithTheTieExplained() {
        try (NDManager m = NDManager.newBaseManager()) {
            TiedToy toy = tiedToy(m);
            Map<String, NDArray> sd = new LinkedHashMap<>();
            sd.put("embed.weight", m.arange(6f).reshape(3, 2));
            sd.put("head.weight", m.arange(6f).reshape(3, 2).add(m.create(new float[] {0, 0, 0, 0, 0, 0.25f})
                    .reshape(3, 2)));
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, () -> StateDicts.load(toy, sd, true));
            assertTrue(e.getMessage().contains("head.weight=tied to 'embed.weight'")
                    && e.getMessage().contains("max |difference| 0.250"), e.getMessage());
            assertArrayEquals(new float[6], toy.embed.getArray().toFloatArray(), "strict failure copies nothing");

            StateDicts.LoadReport lenient = StateDicts.load(toy, sd, false);
            assertEquals(List.of("head.weight"), List.copyOf(lenient.mismatched().keySet()));
            assertEquals(List.of(), lenient.tied());
            assertEquals(List.of(), lenient.unexpected());
            assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5}, toy.embed.getArray().toFloatArray(),
                    "lenient: the parameter's own key is loaded");
        }
    }

    @Test
    void tiedCopyAloneLoadsTheParameter() {
        try (NDManager m = NDManager.newBaseManager()) {
            TiedToy toy = tiedToy(m);
            StateDicts.LoadReport report =
                    StateDicts.load(toy, Map.of("head.weight", m.ones(new Shape(3, 2))), true);
            assertEquals(List.of("head.weight"), report.tied());
            assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1}, toy.embed.getArray().toFloatArray());
        }
    }

    @Test
    void exportWritesTheTiedCopyForPyTorch(@TempDir Path dir) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            TiedToy toy = tiedToy(m);
            StateDicts.load(toy, Map.of("embed.weight", m.arange(6f).reshape(3, 2)), true);
            Path file = dir.resolve("tied.safetensors");
            Checkpoints.exportBlock(toy, file);
            Map<String, NDArray> sd = Checkpoints.read(file, m);
            assertEquals(List.of("embed.weight", "head.weight"), List.copyOf(sd.keySet()));
            assertEquals(sd.get("embed.weight"), sd.get("head.weight"));
            assertEquals(1, Checkpoints.loadInto(tiedToy(m), file).tied().size());
        }
    }

    private static TiedToy tiedToy(NDManager m) {
        TiedToy toy = new TiedToy();
        toy.initialize(m, DataType.FLOAT32, new Shape(1, 2));
        return toy;
    }

    @Test
    void childrenWithOneNameAreReportedWithTheFix() {
        SequentialBlock djl = new SequentialBlock().add(Linear.builder().setUnits(2).build())
                .add(Linear.builder().setUnits(2).build());
        assertEquals(List.of("Linear.weight", "Linear.bias", "Linear.weight", "Linear.bias"),
                StateDicts.named(djl).keys());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> StateDicts.parameters(djl));
        assertTrue(e.getMessage().contains("'Linear.weight'") && e.getMessage().contains("Sequential"),
                e.getMessage());
    }

    @Test
    void uninitializedBlockIsRejected() {
        Toy toy = new Toy();
        assertThrows(IllegalStateException.class, () -> StateDicts.load(toy, Map.of(), false));
    }
}
