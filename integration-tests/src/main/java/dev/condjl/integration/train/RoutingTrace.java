package dev.condjl.integration.train;

import ai.djl.ndarray.NDArray;

import java.util.List;

/**
 * Where each layer's routers sent the tokens of some sequences, from {@link RoutedModel#trace}.
 *
 * @param logits the model's output for the sequences
 * @param layers per layer, the routed positions
 */
public record RoutingTrace(NDArray logits, List<Layer> layers) {

    /** The routers of one layer. */
    public enum Router {
        /** The attention's query router: these positions receive heavy attention output. */
        Q,
        /** The attention's key/value router: these positions can be attended to by heavy attention. */
        KV,
        /** The feed-forward router: these positions go through the heavy feed-forward. */
        FF
    }

    /**
     * One layer's routed positions, per sequence.
     *
     * @param q query router, [b][Kq]
     * @param kv key/value router, [b][Kkv·R]
     * @param ff feed-forward router, [b][Kff]
     */
    public record Layer(long[][] q, long[][] kv, long[][] ff) {

        /**
         * One router's positions.
         *
         * @param router which router
         * @return [b][K]
         */
        public long[][] of(Router router) {
            return switch (router) {
                case Q -> q;
                case KV -> kv;
                case FF -> ff;
            };
        }
    }

    /**
     * Copies int64 indices {@code (b, K)} or {@code (b, R, K)} to the host, one row per sequence.
     *
     * @param indices the routers' positions
     * @return [b][K] or [b][R·K]
     */
    static long[][] rows(NDArray indices) {
        long b = indices.getShape().get(0);
        long[] flat = indices.toLongArray();
        int per = (int) (flat.length / b);
        long[][] out = new long[(int) b][per];
        for (int i = 0; i < b; i++) {
            System.arraycopy(flat, i * per, out[i], 0, per);
        }
        return out;
    }

    /**
     * Fraction of sequences in which a router picked a position within {@code radius} of a marked position.
     *
     * @param layer the layer
     * @param router the router
     * @param marks per sequence the marked positions ({@link Sample#marks()})
     * @param mark which mark, e.g. {@link RetrievalTask#VALUE}
     * @param radius 0 for the position itself
     * @return the fraction in [0, 1]
     */
    public double hitRate(int layer, Router router, int[][] marks, int mark, int radius) {
        long[][] picked = layers.get(layer).of(router);
        int hits = 0;
        for (int row = 0; row < picked.length; row++) {
            long target = marks[row][mark];
            for (long p : picked[row]) {
                if (Math.abs(p - target) <= radius) {
                    hits++;
                    break;
                }
            }
        }
        return (double) hits / picked.length;
    }

    /**
     * Fraction of the positions a router sends to the heavy branch.
     *
     * @param layer the layer
     * @param router the router
     * @param seqLen n
     * @return distinct routed positions / n, averaged over sequences
     */
    public double routedFraction(int layer, Router router, int seqLen) {
        long[][] picked = layers.get(layer).of(router);
        double sum = 0;
        for (long[] row : picked) {
            sum += java.util.Arrays.stream(row).distinct().count() / (double) seqLen;
        }
        return sum / picked.length;
    }
}
