package dev.condjl.colt5.cdattention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import dev.condjl.colt5.RoutedModelFixtures;
import dev.condjl.topk.checkpoint.StateDicts;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Coordinate-descent-attention {@code Attention} (spec colt5.md §7.1) against {@code gen_fixtures.py}. */
class AttentionTest {

    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static Attention.Builder small() {
        return Attention.builder().setDim(16).optDimHead(8).optHeads(2);
    }

    private NDArray run(Attention block, String fixture) {
        RoutedModelFixtures fx = RoutedModelFixtures.read(manager, fixture);
        NDArray x = fx.get("x");
        block.initialize(manager, DataType.FLOAT32, x.getShape());
        fx.load(block);
        NDArray y = block.forward(new ParameterStore(manager, false), new NDList(x), false).head();
        RoutedModelFixtures.assertClose(fixture, fx.get("y"), y);
        return y;
    }

    @Test
    void softmaxWithNullKvMatchesFixture() {
        run(small().optAttnNullKv(2).build(), "cd_attention_softmax.safetensors");
    }

    @Test
    void coordinateDescentWithEmptyNullKvMatchesFixture() {
        Attention block = small().optUseCoorDescent(true).optCoorDescentIters(15).optCoorDescentSparsityK(2).build();
        run(block, "cd_attention_cd.safetensors");
        Parameter nullKv = StateDicts.parameters(block).get("null_kv");
        assertEquals(new Shape(2, 2, 0, 8), nullKv.getArray().getShape());
    }

    @Test
    void learnedSparsityPerRowMatchesFixture() {
        // b·h = 4 rows of kappa: the reference only broadcasts when b·h = 1 (spec §7.5.3)
        Attention block = small()
                .optUseCoorDescent(true)
                .optCoorDescentIters(15)
                .optCoorDescentSparsityK(3)
                .optAttnNullKv(1)
                .optLearnedSparsityK(true)
                .build();
        run(block, "cd_attention_learned_k.safetensors");
    }

    @Test
    void stateDictNamesFollowTheReference() {
        Attention block = small().optLearnedSparsityK(true).build();
        block.initialize(manager, DataType.FLOAT32, new Shape(1, 3, 16));
        Map<String, Parameter> params = StateDicts.parameters(block);
        assertEquals(
                List.of("null_kv", "norm.weight", "norm.bias", "to_qkv.weight", "to_out.weight",
                        "to_learned_k.weight", "to_learned_k.bias"),
                List.copyOf(params.keySet()));
        assertEquals(new Shape(48, 16), params.get("to_qkv.weight").getArray().getShape());
        // to_learned_k starts at kappa ≈ 1: bias −10
        assertEquals(-10f, params.get("to_learned_k.bias").getArray().getFloat(0));
    }

    @Test
    void emptyNullKvSurvivesDjlSaveAndLoad() throws Exception {
        Attention block = small().build();
        block.initialize(manager, DataType.FLOAT32, new Shape(1, 3, 16));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        block.saveParameters(new DataOutputStream(bytes));
        Attention copy = small().build();
        copy.loadParameters(manager, new DataInputStream(new ByteArrayInputStream(bytes.toByteArray())));
        assertEquals(new Shape(2, 2, 0, 8), StateDicts.parameters(copy).get("null_kv").getArray().getShape());
    }

    @Test
    void laterTokensDoNotChangeEarlierOutputs() {
        for (boolean cd : new boolean[] {false, true}) {
            Attention block = small().optUseCoorDescent(cd).optAttnNullKv(1).build();
            NDArray x = manager.randomNormal(new Shape(2, 9, 16));
            block.initialize(manager, DataType.FLOAT32, x.getShape());
            ParameterStore ps = new ParameterStore(manager, false);
            NDArray y = block.forward(ps, new NDList(x), false).head();
            NDArray perturbed = x.duplicate();
            perturbed.set(new NDIndex(":, 5:"), manager.randomNormal(new Shape(2, 4, 16)));
            NDArray y2 = block.forward(ps, new NDList(perturbed), false).head();
            assertEquals(0.0, RoutedModelFixtures.maxAbsDiff(y.get(":, :5"), y2.get(":, :5")), 1e-6, "cd=" + cd);
            assertTrue(RoutedModelFixtures.maxAbsDiff(y.get(":, 5:"), y2.get(":, 5:")) > 1e-3, "cd=" + cd);
        }
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> Attention.builder().build());
        assertThrows(IllegalArgumentException.class, () -> small().optAttnNullKv(-1).build());
        assertThrows(IllegalArgumentException.class,
                () -> small().optLearnedSparsityK(true).optCoorDescentSparsityK(0.5).build());
        assertThrows(IllegalArgumentException.class, () -> small().optCoorDescentIters(0).build());
        Attention block = small().build();
        block.initialize(manager, DataType.FLOAT32, new Shape(1, 3, 16));
        NDArray flat = manager.ones(new Shape(3, 16));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> block.forward(new ParameterStore(manager, false), new NDList(flat), false));
        assertTrue(e.getMessage().contains("(3, 16)"), e.getMessage());
    }
}
