package dev.condjl.dropout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.training.listener.TrainingListener;
import ai.djl.training.loss.Loss;
import org.junit.jupiter.api.Test;

/** Penalty coefficient schedules and the penalized loss (spec §4.5). */
class PenaltyScheduleTest {

    @Test
    void constantSchedule() {
        PenaltyCoefficient c = PenaltyCoefficient.constant(0.1);
        assertEquals(0.1, c.at(0));
        assertEquals(0.1, c.at(26_000));
    }

    @Test
    void exponentialRampFromZeroReachesTheCapAfterLnOnePointOneOverRate() {
        PenaltyCoefficient c = PenaltyCoefficient.exponential(1e-4, 0.1);
        assertEquals(0.0, c.at(0));
        assertEquals(Math.exp(0.05) - 1, c.at(500), 1e-15);
        assertEquals(0.051271096376024, c.at(500), 1e-12);
        // ln(1.1)/1e-4 = 953.1: below the cap at 953, capped from 954 on
        assertEquals(0.0999888, c.at(953), 1e-6);
        assertEquals(0.1, c.at(954));
        assertEquals(0.1, c.at(100_000));
    }

    @Test
    void exponentialRampFromAMinimum() {
        PenaltyCoefficient c = PenaltyCoefficient.exponential(0.01, 1e-5, 1.0);
        assertEquals(0.01, c.at(0), 1e-15);
        assertEquals(Math.exp(0.1) - 1 + 0.01, c.at(10_000), 1e-15);
        // the legacy sweep reaches 1 at ln(2 - 0.01)/1e-5 = 68,813 steps
        assertEquals(1.0, c.at(68_814));
    }

    @Test
    void rejectsConfigurationsTheReferenceRejects() {
        assertThrows(IllegalArgumentException.class, () -> PenaltyCoefficient.constant(0));
        assertThrows(IllegalArgumentException.class, () -> PenaltyCoefficient.exponential(1.0, 0.1));
        assertThrows(IllegalArgumentException.class, () -> PenaltyCoefficient.exponential(0, 0.1));
        assertThrows(IllegalArgumentException.class, () -> PenaltyCoefficient.exponential(0.2, 1e-3, 0.1));
        assertThrows(IllegalArgumentException.class, () -> PenaltyCoefficient.exponential(-0.1, 1e-3, 0.1));
        assertThrows(IllegalArgumentException.class, () -> PenaltyCoefficient.constant(0.1).at(-1));
    }

    @Test
    void penalizedLossAddsTheScheduledPenaltyAndCountsSteps() {
        try (NDManager manager = NDManager.newBaseManager()) {
            PenalizedLoss loss = new PenalizedLoss(Loss.l1Loss(), 1, PenaltyCoefficient.exponential(0.5, 10));
            NDList labels = new NDList(manager.create(new float[] {1f, 2f}));
            NDList predictions = new NDList(manager.create(new float[] {1.5f, 2.5f}), manager.create(0.2f));
            float data = Loss.l1Loss().evaluate(labels, new NDList(predictions.get(0))).getFloat();
            assertEquals(data, loss.evaluate(labels, predictions).getFloat(), 1e-7);
            TrainingListener counter = loss.stepCounter();
            counter.onTrainingBatch(null, null);
            counter.onTrainingBatch(null, null);
            assertEquals(2, loss.getStep());
            NDArray total = loss.evaluate(labels, predictions);
            assertEquals(data + 0.2 * (Math.exp(1.0) - 1), total.getFloat(), 1e-6);
            loss.setStep(0);
            assertEquals(data, loss.evaluate(labels, predictions).getFloat(), 1e-7);
            assertThrows(IllegalArgumentException.class,
                    () -> loss.evaluate(labels, new NDList(predictions.get(0))));
        }
    }
}
