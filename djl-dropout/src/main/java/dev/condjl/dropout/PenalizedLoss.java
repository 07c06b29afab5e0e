package dev.condjl.dropout;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.training.Trainer;
import ai.djl.training.listener.TrainingListener;
import ai.djl.training.listener.TrainingListenerAdapter;
import ai.djl.training.loss.Loss;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A loss plus a scheduled penalty that the model returns as an extra output:
 * {@code base(labels, predictions[0]) + coeff(t) · predictions[penaltyIndex]} (yif-AI's
 * {@code loss = CE + coeff · mean_layers(mean(M²/2))}).
 *
 * <p>The block reports the penalty (e.g. {@link LearnedDropout}'s second output, or a model's mean over its
 * layers); it reports 0 in eval, so validation losses carry no penalty. {@code t} is the optimizer-step index: call
 * {@link #setStep} from a custom loop, or register {@link #stepCounter()} as a training listener, which advances it
 * after every training batch (EasyTrain).
 */
public final class PenalizedLoss extends Loss {

    private final Loss base;
    private final int penaltyIndex;
    private final PenaltyCoefficient coefficient;
    private final AtomicLong step = new AtomicLong();

    /**
     * Creates the loss.
     *
     * @param base the data loss, evaluated on the first prediction only
     * @param penaltyIndex index of the () penalty in the predictions, &ge; 1
     * @param coefficient the coefficient schedule
     * @throws IllegalArgumentException if an argument is null or the index is &lt; 1
     */
    public PenalizedLoss(Loss base, int penaltyIndex, PenaltyCoefficient coefficient) {
        super(base == null ? "PenalizedLoss" : base.getName() + "+penalty");
        if (base == null || coefficient == null) {
            throw new IllegalArgumentException("base loss and coefficient must not be null");
        }
        if (penaltyIndex < 1) {
            throw new IllegalArgumentException("penaltyIndex (" + penaltyIndex + ") must be >= 1");
        }
        this.base = base;
        this.penaltyIndex = penaltyIndex;
        this.coefficient = coefficient;
    }

    /** {@inheritDoc} */
    @Override
    public NDArray evaluate(NDList labels, NDList predictions) {
        if (predictions.size() <= penaltyIndex) {
            throw new IllegalArgumentException(
                    "predictions have " + predictions.size() + " arrays; the penalty is expected at index "
                            + penaltyIndex);
        }
        NDArray data = base.evaluate(labels, new NDList(predictions.get(0)));
        NDArray penalty = predictions.get(penaltyIndex);
        return data.add(penalty.mul(Scalars.of(penalty, coefficient.at(step.get()))));
    }

    /**
     * Sets the optimizer-step index used for the coefficient.
     *
     * @param t step index ≥ 0
     */
    public void setStep(long t) {
        if (t < 0) {
            throw new IllegalArgumentException("step (" + t + ") must be >= 0");
        }
        step.set(t);
    }

    /**
     * The optimizer-step index in use.
     *
     * @return t
     */
    public long getStep() {
        return step.get();
    }

    /**
     * The coefficient schedule.
     *
     * @return the schedule given to the constructor
     */
    public PenaltyCoefficient getCoefficient() {
        return coefficient;
    }

    /**
     * A listener that advances the step index after each training batch; add it with
     * {@code DefaultTrainingConfig.addTrainingListeners}.
     *
     * @return a new listener bound to this loss
     */
    public TrainingListener stepCounter() {
        return new TrainingListenerAdapter() {
            @Override
            public void onTrainingBatch(Trainer trainer, BatchData batchData) {
                step.incrementAndGet();
            }
        };
    }
}
