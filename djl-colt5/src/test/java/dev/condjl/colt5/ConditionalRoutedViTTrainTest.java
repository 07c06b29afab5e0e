package dev.condjl.colt5;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.metric.Metrics;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.EasyTrain;
import ai.djl.training.Trainer;
import ai.djl.training.TrainingResult;
import ai.djl.training.dataset.ArrayDataset;
import ai.djl.training.evaluator.Accuracy;
import ai.djl.training.listener.TrainingListener;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.translate.TranslateException;
import java.io.IOException;
import org.apache.logging.log4j.LogManager;
import org.junit.jupiter.api.Test;

/**
 * The image-classification example: a small {@link ConditionalRoutedViT} trained with DJL's {@link Trainer},
 * {@link EasyTrain} and a softmax cross-entropy loss on a synthetic two-class task (horizontal vs
 * vertical stripes; the patch LayerNorm would erase a mere brightness difference). The README's ViT snippet
 * shows the same code.
 */
class ConditionalRoutedViTTrainTest {

    @Test
    void aFewEpochsLowerTheLoss() throws IOException, TranslateException {
        Engine.getInstance().setRandomSeed(8);
        try (NDManager manager = NDManager.newBaseManager()) {
            // 32 images 3×8×8: class 1 has horizontal stripes (rows alternate ±1), class 0 vertical ones
            NDArray labels = manager.arange(0, 32, 1, DataType.INT32).mod(2);
            NDArray horizontal = labels.toType(DataType.FLOAT32, false).reshape(32, 1, 1, 1);
            NDArray alternate = manager.arange(0, 8, 1, DataType.FLOAT32).mod(2).mul(2).sub(1);
            NDArray stripes = horizontal.mul(alternate.reshape(1, 1, 8, 1))
                    .add(horizontal.neg().add(1).mul(alternate.reshape(1, 1, 1, 8)));
            NDArray images = manager.randomNormal(new Shape(32, 3, 8, 8)).mul(0.5f).add(stripes);
            ArrayDataset data = new ArrayDataset.Builder()
                    .setData(images)
                    .optLabels(labels)
                    .setSampling(8, true)
                    .build();

            ConditionalRoutedViT vit = ConditionalRoutedViT.builder()
                    .setImageSize(8)
                    .setPatchSize(2)
                    .setNumClasses(2)
                    .setDim(16)
                    .setDepth(1)
                    .setAttnNumHeavyTokensQ(2)
                    .setAttnNumHeavyTokensKv(2)
                    .setAttnHeavyDimHead(8)
                    .setAttnHeavyHeads(2)
                    .setAttnLightDimHead(8)
                    .setAttnLightHeads(2)
                    .setAttnLightWindowSize(2)
                    .setFfNumHeavyTokens(8)
                    .setFfHeavyMult(2)
                    .setFfLightMult(0.5)
                    .build();
            try (Model model = Model.newInstance("routed-vit")) {
                model.setBlock(vit);
                DefaultTrainingConfig config = new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss())
                        .addEvaluator(new Accuracy())
                        .addTrainingListeners(TrainingListener.Defaults.basic())
                        .optOptimizer(Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.01f)).build());
                try (Trainer trainer = model.newTrainer(config)) {
                    trainer.setMetrics(new Metrics());
                    trainer.initialize(new Shape(8, 3, 8, 8));
                    EasyTrain.fit(trainer, 1, data, null);
                    float first = trainer.getTrainingResult().getTrainLoss();
                    EasyTrain.fit(trainer, 2, data, null);
                    TrainingResult result = trainer.getTrainingResult();
                    LogManager.getLogger(ConditionalRoutedViTTrainTest.class).info("vit example: loss {} -> {}, accuracy {}",
                            first, result.getTrainLoss(), result.getTrainEvaluation("Accuracy"));
                    assertTrue(result.getTrainLoss() < first, "loss " + first + " -> " + result.getTrainLoss());
                    assertTrue(result.getTrainEvaluation("Accuracy") > 0.8,
                            "training accuracy " + result.getTrainEvaluation("Accuracy"));
                }
            }
        }
    }
}
