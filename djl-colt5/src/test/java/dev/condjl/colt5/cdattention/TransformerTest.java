package dev.condjl.colt5.cdattention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import dev.condjl.colt5.RoutedModelFixtures;
import dev.condjl.topk.checkpoint.StateDicts;
import dev.condjl.topk.Backend;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The coordinate-descent-attention {@code Transformer} and its loss (spec colt5.md §7.3, §7.4). */
class TransformerTest {

    /**
     * The configuration of {@code cd_transformer.safetensors}: every coordinate-descent option on, unrolled so that
     * gradients are the reference's (autograd through every iteration).
     */
    static Transformer fixtureModel() {
        return Transformer.builder()
                .optCoorDescentBackend(Backend.UNROLLED)
                .setNumTokens(20)
                .setDim(16)
                .setSeqLen(12)
                .setDepth(2)
                .optDimHead(8)
                .optHeads(2)
                .optAttnUseCoorDescent(true)
                .optFfUseCoorDescent(true)
                .optAttnCoorDescentSparsityK(2)
                .optFfCoorDescentSparsityK(4)
                .optAttnNullKv(1)
                .optLearnedSparsityK(true)
                .build();
    }

    @Test
    void logitsLossAndGradientsMatchFixture() {
        try (NDManager manager = NDManager.newBaseManager()) {
            RoutedModelFixtures fx = RoutedModelFixtures.read(manager, "cd_transformer.safetensors");
            NDArray ids = fx.get("ids");
            AutoregressiveWrapper wrapper = new AutoregressiveWrapper(fixtureModel());
            wrapper.initialize(manager, DataType.FLOAT32, ids.getShape());
            Map<String, NDArray> sd = fx.stateDict();
            StateDicts.LoadReport report = StateDicts.load(wrapper.getNet(), sd, true);
            assertEquals(sd.size(), report.loaded());

            ParameterStore ps = new ParameterStore(manager, false);
            NDArray logits = wrapper.getNet().forward(ps, new NDList(ids.get(":, :-1")), false).head();
            RoutedModelFixtures.assertClose("cd_transformer logits", fx.get("logits"), logits);

            Map<String, Parameter> params = StateDicts.parameters(wrapper.getNet());
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray loss = wrapper.forward(ps, new NDList(ids), true).head();
                RoutedModelFixtures.assertClose("cd_transformer loss", fx.get("loss").reshape(), loss);
                gc.backward(loss);
            }
            for (String name : new String[] {
                "layers.0.0.to_learned_k.weight", "layers.1.0.to_qkv.weight", "token_emb.weight"}) {
                NDArray grad = params.get(name).getArray().getGradient();
                RoutedModelFixtures.assertClose("cd_transformer grad " + name, fx.get("grad." + name), grad);
            }
        }
    }

    @Test
    void stateDictKeysAreTheReferences() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Transformer net = fixtureModel();
            net.initialize(manager, DataType.FLOAT32, new Shape(1, 4));
            RoutedModelFixtures fx = RoutedModelFixtures.read(manager, "cd_transformer.safetensors");
            assertEquals(fx.stateDict().keySet(), StateDicts.parameters(net).keySet());
        }
    }

    @Test
    void rejectsSequencesLongerThanSeqLen() {
        try (NDManager manager = NDManager.newBaseManager()) {
            Transformer net = fixtureModel();
            net.initialize(manager, DataType.FLOAT32, new Shape(1, 4));
            NDArray ids = manager.zeros(new Shape(1, 13), DataType.INT64);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> net.forward(new ParameterStore(manager, false), new NDList(ids), false));
            assertEquals("token ids must be (b, n) with 1 <= n <= seqLen (12), got (1, 13)", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Transformer.builder().setNumTokens(2).build());
        }
    }
}
