package dev.condjl.integration.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.ParameterStore;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Evaluates a {@link RoutedModel} on a fixed set of sequences: mean cross-entropy, accuracy, and per layer where the
 * routers sent the tokens.
 *
 * <p>Routing statistics per layer: {@code q routed}, {@code kv routed}, {@code ff routed} (fraction of positions sent
 * to the heavy branch), and for the retrieval task how often the routers picked the tokens that matter:
 * {@code kv: value}, {@code kv: key} (the key/value router picked the queried record's value, key),
 * {@code q: query} (the query router picked the last position), {@code q: near query} (it picked a position whose
 * light attention reaches the last one, within half a light window, through which the answer can be relayed by the
 * next layer), {@code ff: query} (the heavy feed-forward saw the last position).
 */
public final class Evaluation {

    private Evaluation() {}

    /**
     * Evaluation results.
     *
     * @param loss mean cross-entropy per prediction (nats)
     * @param accuracy fraction of correct arg-max predictions
     * @param sequences sequences evaluated
     * @param routing per layer, statistic name to value (see the class comment)
     */
    public record Result(double loss, double accuracy, int sequences, List<Map<String, Double>> routing) {

        /**
         * The routing statistics for people, one line per layer.
         *
         * @param routing per layer, statistic name to fraction
         * @return lines {@code routing L0  q routed 6%, ...}
         */
        public static String routingText(List<Map<String, Double>> routing) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < routing.size(); i++) {
                StringBuilder line = new StringBuilder();
                routing.get(i).forEach((k, v) ->
                        line.append(String.format(Locale.ROOT, "%s %.0f%%, ", k, 100 * v)));
                sb.append(String.format(Locale.ROOT, "routing L%d  %s%n", i, line.substring(0, line.length() - 2)));
            }
            return sb.toString();
        }
    }

    /**
     * Runs the evaluation in chunks.
     *
     * @param model the model
     * @param ps a parameter store for it
     * @param manager where temporaries go (its device runs the model)
     * @param task the task (for chance levels and marks)
     * @param sample the sequences
     * @param chunk sequences per forward pass
     * @return the results
     */
    public static Result run(
            RoutedModel model, ParameterStore ps, NDManager manager, TrainingTask task, Sample sample, int chunk) {
        ModelConfig c = model.getConfig();
        double lossSum = 0;
        double correct = 0;
        long predictions = 0;
        List<Map<String, Double>> routing = new ArrayList<>();
        for (int from = 0; from < sample.batchSize(); from += chunk) {
            Sample part = sample.rows(from, Math.min(sample.batchSize(), from + chunk));
            try (NDManager m = manager.newSubManager()) {
                RoutingTrace trace = model.trace(ps, part.tokenArray(m));
                NDArray labels = part.labelArray(m);
                NDArray logp = trace.logits().logSoftmax(-1);
                NDArray picked = logp.mul(labels.oneHot(c.numClasses())).sum(new int[] {-1});
                lossSum -= picked.sum().getFloat();
                correct += logp.argMax(-1).eq(labels).sum().getLong();
                predictions += labels.size();
                accumulate(routing, trace, part, c, task, part.batchSize() / (double) sample.batchSize());
            }
        }
        return new Result(lossSum / predictions, correct / predictions, sample.batchSize(), routing);
    }

    private static void accumulate(List<Map<String, Double>> routing, RoutingTrace trace, Sample part,
            ModelConfig c, TrainingTask task, double weight) {
        int n = part.seqLen();
        for (int layer = 0; layer < trace.layers().size(); layer++) {
            Map<String, Double> s = new LinkedHashMap<>();
            s.put("q routed", trace.routedFraction(layer, RoutingTrace.Router.Q, n));
            s.put("kv routed", trace.routedFraction(layer, RoutingTrace.Router.KV, n));
            s.put("ff routed", trace.routedFraction(layer, RoutingTrace.Router.FF, n));
            if (task instanceof RetrievalTask) {
                int[][] marks = part.marks();
                s.put("kv: value", trace.hitRate(layer, RoutingTrace.Router.KV, marks, RetrievalTask.VALUE, 0));
                s.put("kv: key", trace.hitRate(layer, RoutingTrace.Router.KV, marks, RetrievalTask.KEY, 0));
                s.put("q: query", trace.hitRate(layer, RoutingTrace.Router.Q, marks, RetrievalTask.QUERY, 0));
                s.put("q: near query", trace.hitRate(layer, RoutingTrace.Router.Q, marks, RetrievalTask.QUERY,
                        c.lightWindow() / 2));
                s.put("ff: query", trace.hitRate(layer, RoutingTrace.Router.FF, marks, RetrievalTask.QUERY, 0));
            }
            if (routing.size() <= layer) {
                routing.add(new LinkedHashMap<>());
            }
            Map<String, Double> total = routing.get(layer);
            s.forEach((k, v) -> total.merge(k, v * weight, Double::sum));
        }
    }
}
