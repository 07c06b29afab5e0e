package dev.condjl.dropout;

import ai.djl.engine.Engine;
import ai.djl.ndarray.*;
import ai.djl.ndarray.types.*;
import ai.djl.training.*;
import ai.djl.training.loss.Loss;
import org.junit.jupiter.api.Test;

class TmpDebugTest {
    @Test
    void dbg() {
        for (int seed = 0; seed < 300; seed++) {
            Engine.getInstance().setRandomSeed(seed);
            try (NDManager manager = NDManager.newBaseManager()) {
                LearnedDropoutTransformer model = LearnedDropoutTransformer.builder().setAlphabetSize(11).setContextSize(8)
                        .setNEmbed(8).setNLayer(2).setNHead(2)
                        .optLearnedDropout(LearnedDropout.builder().optShiftInit(1.5f)
                                .optDropoutInputType(LearnedDropout.DropoutInputType.EMBED)).build();
                model.initialize(manager, DataType.FLOAT32, new Shape(2, 8));
                NDArray tokens = manager.randomInteger(0, 11, new Shape(2, 8), DataType.INT64);
                NDArray targets = manager.randomInteger(0, 11, new Shape(2, 8), DataType.INT64);
                PenalizedLoss loss = new PenalizedLoss(Loss.softmaxCrossEntropyLoss(), 1, PenaltyCoefficient.constant(0.1));
                NDList out;
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    out = model.forward(new ParameterStore(manager, false), new NDList(tokens), true);
                    collector.backward(loss.evaluate(new NDList(targets.reshape(-1)), new NDList(out.get(0).reshape(-1, 11), out.get(1))));
                }
                StringBuilder sb = new StringBuilder("seed " + seed + " pen " + out.get(1).getFloat() + " ones " + out.get(2).getFloat());
                for (var p : model.getParameters()) {
                    if (p.getValue().getArray().getGradient().abs().sum().getFloat() == 0f) {
                        sb.append("\n ").append(p.getKey()).append(" ").append(p.getValue().getArray().getGradient().getShape()).append(" ").append(p.getValue().getArray().getGradient().abs().sum().getFloat());
                    }
                }
                if (sb.indexOf("\n") >= 0) System.out.println(sb);
            }
        }
    }
}
