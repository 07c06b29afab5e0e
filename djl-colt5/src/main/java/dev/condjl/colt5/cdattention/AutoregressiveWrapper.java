package dev.condjl.colt5.cdattention;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * Next-token training loss and sampling around a {@link Transformer} (coordinate-descent-attention
 * {@code AutoregressiveWrapper}; spec colt5.md §7.4). Its child is {@code net}, so the {@code state_dict} keys are
 * the transformer's under {@code net.}.
 *
 * <p>Forward: for ids {@code x (b, n + 1)}, the mean cross-entropy of {@code net(x[:, :-1])} against
 * {@code x[:, 1:]}, a scalar.
 *
 * <p>{@link #generate}: autoregressive sampling without training-mode behaviour. Each step conditions on the last
 * {@code seqLen} tokens, keeps the {@code int((1 − filterThres)·numTokens)} largest logits (the rest become
 * {@code -finfo.max}), divides by the temperature and samples from the softmax. Multinomial sampling is done with the
 * Gumbel-max trick, {@code argmax(logits/T − log(−log U))}, which draws from the same distribution (DJL's PyTorch
 * engine has no multinomial).
 */
public final class AutoregressiveWrapper extends AbstractBlock {

    private static final byte VERSION = 1;
    private static final float MIN_UNIFORM = 1e-20f;

    private final Transformer net;

    /**
     * Wraps a transformer.
     *
     * @param net the language model
     */
    public AutoregressiveWrapper(Transformer net) {
        super(VERSION);
        this.net = addChildBlock("net", net);
    }

    /**
     * Returns the wrapped transformer.
     *
     * @return the net
     */
    public Transformer getNet() {
        return net;
    }

    /** {@inheritDoc} */
    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape x = inputShapes[0];
        net.initialize(manager, dataType, new Shape(x.get(0), x.get(1) - 1));
    }

    /**
     * Computes the next-token loss.
     *
     * @param ps the parameter store
     * @param inputs token ids {@code (b, n + 1)} with {@code 1 ≤ n ≤ seqLen}
     * @param training whether in training
     * @param params unused
     * @return the mean cross-entropy, shape {@code ()}
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.head();
        if (x.getShape().dimension() != 2 || x.getShape().get(1) < 2) {
            throw new IllegalArgumentException("token ids must be (b, n + 1) with n >= 1, got " + x.getShape());
        }
        NDArray target = x.get(":, 1:").toType(DataType.INT64, false);
        NDArray logits = net.forward(ps, new NDList(x.get(":, :-1")), training).head();
        NDArray logp = logits.logSoftmax(2).gather(target.expandDims(2), 2);
        return new NDList(logp.mean().neg());
    }

    /** {@inheritDoc} */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {new Shape()};
    }

    /**
     * Samples {@code seqLen} new tokens after {@code prompt}.
     *
     * @param ps the parameter store holding the net's parameters
     * @param prompt integer ids {@code (b, p)}, {@code p ≥ 1}
     * @param seqLen number of tokens to generate, at least 1
     * @param temperature softmax temperature, {@code > 0}
     * @param filterThres top-k filter threshold in [0, 1); must keep at least one logit
     * @return the new tokens only, int64 {@code (b, seqLen)}, attached to {@code prompt}'s manager
     * @throws IllegalArgumentException if an argument is out of range
     */
    public NDArray generate(
            ParameterStore ps, NDArray prompt, int seqLen, double temperature, double filterThres) {
        if (prompt.getShape().dimension() != 2 || prompt.getShape().get(1) < 1) {
            throw new IllegalArgumentException("prompt must be (b, p) with p >= 1, got " + prompt.getShape());
        }
        Attention.requireAtLeast("seqLen", seqLen, 1);
        if (!(temperature > 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature (" + temperature + ") must be a finite number > 0");
        }
        if (!(filterThres >= 0 && filterThres < 1)) {
            throw new IllegalArgumentException("filterThres (" + filterThres + ") must be in [0, 1)");
        }
        long vocab = net.getNumTokens();
        int keep = (int) ((1 - filterThres) * vocab);
        if (keep < 1) {
            throw new IllegalArgumentException("filterThres (" + filterThres + ") keeps int((1 - " + filterThres
                    + ") * " + vocab + ") = 0 logits; lower it");
        }
        long start = prompt.getShape().get(1);
        NDManager caller = prompt.getManager();
        try (NDManager scope = caller.newSubManager()) {
            NDArray out = prompt.toType(DataType.INT64, false);
            out.tempAttach(scope);
            for (int i = 0; i < seqLen; i++) {
                long len = out.getShape().get(1);
                NDArray window = out.get(":, " + Math.max(0, len - net.getSeqLen()) + ":");
                NDArray logits = net.forward(ps, new NDList(window), false).head().get(":, -1, :");
                NDArray sample = sample(topKFilter(logits, keep).div(temperature));
                out = out.concat(sample.expandDims(1), 1);
            }
            NDArray result = out.get(":, " + start + ":");
            result.attach(caller);
            return result;
        }
    }

    /** Keeps the {@code keep} largest logits per row and sets the rest to {@code -finfo(float32).max}. */
    static NDArray topKFilter(NDArray logits, int keep) {
        NDList top = logits.topK(keep, 1);
        NDArray filled = logits.zerosLike().sub(Float.MAX_VALUE);
        return filled.scatter(top.get(1), top.get(0), 1);
    }

    /** Draws one index per row of {@code (b, v)} logits from their softmax (Gumbel-max trick). */
    static NDArray sample(NDArray logits) {
        NDArray u = logits.getManager()
                .randomUniform(0f, 1f, logits.getShape(), logits.getDataType())
                .maximum(MIN_UNIFORM);
        NDArray gumbel = u.log().neg().log().neg();
        return logits.add(gumbel).argMax(1);
    }
}
