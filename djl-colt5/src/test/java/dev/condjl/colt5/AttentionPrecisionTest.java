package dev.condjl.colt5;

import static dev.condjl.cuda.AttentionGradients.assertWithinScale;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;

import dev.condjl.cuda.AttentionPrecision;
import dev.condjl.topk.checkpoint.StateDicts;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * {@code optAttentionPrecision}, on DJL's default device: every attention module built in float16 or bfloat16 and
 * given the weights of its float32 twin returns float32 outputs and parameter gradients within 16-bit rounding of the
 * twin's, and not equal to them (the option reached the fused attention); where the attention is composed (a light
 * branch with a key-padding mask) it stays float32, equal to the twin bit for bit.
 */
class AttentionPrecisionTest {

    private static final int DIM = 32;
    private NDManager manager;

    @BeforeEach
    void setUp() {
        manager = NDManager.newBaseManager();
        Engine.getInstance().setRandomSeed(7);
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    /** A module in one precision, the input shapes it is initialised for. */
    private record Case(String name, Function<AttentionPrecision, Block> build, Shape... shapes) {}

    private static List<Case> cases() {
        return List.of(
                new Case("Attention", p -> Attention.builder().setDim(DIM).optDimHead(8).optHeads(4)
                        .optAttentionPrecision(p).build(), new Shape(2, 24, DIM)),
                new Case("SelfAttention", p -> SelfAttention.builder().setDim(DIM).optDimHead(8).optHeads(4)
                        .optPrenorm(true).optAttentionPrecision(p).build(), new Shape(2, 24, DIM)),
                new Case("LocalMHA", p -> LocalMHA.builder().setDim(DIM).optDimHead(8).optHeads(4).setWindowSize(8)
                        .optAttentionPrecision(p).build(), new Shape(2, 37, DIM)),
                new Case("ConditionalRoutedTransformerBlock", p -> ConditionalRoutedTransformerBlock.builder()
                        // every token routed to the feed-forward: a router that reads the attention's output
                        // could otherwise pick another token for 16-bit rounding's sake
                        .setDim(DIM).setNumHeavyAttnTokensQ(10).setNumHeavyAttnTokensKv(12).setNumHeavyFfTokens(40)
                        .optLightDimHead(8).optLightHeads(4).optLightWindowSize(8).optHeavyDimHead(8)
                        .optHeavyHeads(4).optAttentionPrecision(p).build(), new Shape(2, 40, DIM)),
                new Case("ConditionalRoutedAutoregressiveAttention", p -> ConditionalRoutedAutoregressiveAttention
                        .builder().setDim(DIM).setNumHeavyTokensQ(6).setNumHeavyTokensKv(8).optLightWindowSize(8)
                        .optLightDimHead(8).optLightHeads(4).optHeavyDimHead(8).optHeavyHeads(4)
                        .optAttentionPrecision(p).build(), new Shape(1, 32, DIM)),
                new Case("ConditionalRoutedImageAttention", p -> ConditionalRoutedImageAttention.builder()
                        .setDim(DIM).setNumHeavyTokensQ(8).setNumHeavyTokensKv(8).optLightWindowSize(4)
                        .optLightDimHead(8).optLightHeads(4).optHeavyDimHead(8).optHeavyHeads(4)
                        .optAttentionPrecision(p).build(), new Shape(1, 8, 8, DIM)),
                // one layer whose 16 patches all go to the feed-forward: its routers read only the patch embedding
                new Case("ConditionalRoutedViT", p -> ConditionalRoutedViTTest.fixtureConfig().setDepth(1)
                        .setFfNumHeavyTokens(16).optAttentionPrecision(p).build(), new Shape(1, 3, 16, 16)),
                new Case("ConditionalRoutedCrossAttention", p -> ConditionalRoutedCrossAttention.builder()
                        .setDim(DIM).setNumTokensQ(6).setNumTokensKv(10).optDimHead(8).optHeads(4)
                        .optAttentionPrecision(p).build(), new Shape(2, 16, DIM), new Shape(2, 30, DIM)));
    }

    @ParameterizedTest
    @EnumSource(value = AttentionPrecision.class, names = {"FLOAT16", "BFLOAT16"})
    void everyModuleAgreesWithItsFloat32TwinWithinRounding(AttentionPrecision precision) {
        double tolerance = precision == AttentionPrecision.FLOAT16 ? 5e-3 : 4e-2;
        for (Case c : cases()) {
            Block exact = c.build().apply(AttentionPrecision.INPUT);
            Block reduced = c.build().apply(precision);
            exact.initialize(manager, DataType.FLOAT32, c.shapes());
            reduced.initialize(manager, DataType.FLOAT32, c.shapes());
            copyParameters(exact, reduced);
            NDList inputs = new NDList();
            for (Shape s : c.shapes()) {
                inputs.add(manager.randomNormal(s));
            }
            Map<String, NDArray> want = outputAndGradients(exact, inputs);
            Map<String, NDArray> got = outputAndGradients(reduced, inputs);
            String what = c.name() + " in " + precision;
            assertEquals(want.keySet(), got.keySet(), what);
            // a gradient far below the module's largest (a straight-through router's) carries that one's rounding
            double largest = want.entrySet().stream().filter(e -> !e.getKey().equals("output"))
                    .mapToDouble(e -> e.getValue().abs().max().getFloat()).max().orElse(0);
            for (Map.Entry<String, NDArray> e : want.entrySet()) {
                NDArray g = got.get(e.getKey());
                assertEquals(DataType.FLOAT32, g.getDataType(), what + " " + e.getKey());
                double minScale = e.getKey().equals("output") ? 0 : 1e-3 * largest;
                assertWithinScale(e.getValue(), g, tolerance, minScale, what + " " + e.getKey());
            }
            assertFalse(Arrays.equals(want.get("output").toFloatArray(), got.get("output").toFloatArray()),
                    what + ": the output carries 16-bit rounding");
        }
    }

    @Test
    void maskedLightAttentionStaysFloat32() {
        Block exact = LocalMHA.builder().setDim(DIM).optDimHead(8).optHeads(4).setWindowSize(8).build();
        Block reduced = LocalMHA.builder().setDim(DIM).optDimHead(8).optHeads(4).setWindowSize(8)
                .optAttentionPrecision(AttentionPrecision.FLOAT16).build();
        Shape shape = new Shape(2, 21, DIM);
        exact.initialize(manager, DataType.FLOAT32, shape);
        reduced.initialize(manager, DataType.FLOAT32, shape);
        copyParameters(exact, reduced);
        NDArray x = manager.randomNormal(shape);
        NDArray mask = manager.randomUniform(0, 1, new Shape(2, 21)).gt(0.3);
        ParameterStore ps = new ParameterStore(manager, false);
        float[] want = exact.forward(ps, new NDList(x, mask), false).head().toFloatArray();
        float[] got = reduced.forward(ps, new NDList(x, mask), false).head().toFloatArray();
        assertArrayEquals(want, got, 0f);
    }

    @Test
    void refusesNoPrecision() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Attention.builder().optAttentionPrecision(null));
        assertEquals("attentionPrecision must not be null", e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> ConditionalRoutedTransformerBlock.builder().optAttentionPrecision(null));
        assertThrows(IllegalArgumentException.class,
                () -> ConditionalRoutedCrossAttention.builder().optAttentionPrecision(null));
    }

    private static void copyParameters(Block from, Block to) {
        Map<String, Parameter> target = StateDicts.parameters(to);
        for (Map.Entry<String, Parameter> e : StateDicts.parameters(from).entrySet()) {
            target.get(e.getKey()).getArray().set(e.getValue().getArray().toByteBuffer());
        }
    }

    /** "output" and each parameter's gradient for the loss {@code sum(output · w)}, w fixed by the seed. */
    private Map<String, NDArray> outputAndGradients(Block block, NDList inputs) {
        ParameterStore ps = new ParameterStore(manager, false);
        Map<String, NDArray> result = new TreeMap<>();
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray out = block.forward(ps, inputs, true).head();
            NDArray w = manager.arange((float) out.size()).reshape(out.getShape()).mul(0.37f).sin();
            gc.backward(out.mul(w).sum());
            result.put("output", out.duplicate());
        }
        for (Map.Entry<String, Parameter> e : StateDicts.parameters(block).entrySet()) {
            result.put(e.getKey(), e.getValue().getArray().getGradient().duplicate());
        }
        return result;
    }
}
