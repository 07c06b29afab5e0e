package dev.condjl.colt5;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.NormalInitializer;
import ai.djl.util.PairList;
import dev.condjl.cuda.FusedNorm;
import dev.condjl.topk.Backend;
import dev.condjl.topk.CoordinateDescent;
import dev.condjl.topk.StraightThroughSelection;
import dev.condjl.topk.TieBreak;
import dev.condjl.topk.TopK;

/**
 * The reference's {@code CoordinateDescentRouter} (spec colt5.md §2.5): picks the {@code K} tokens of each sequence
 * that a heavy branch processes, with scores that carry a gradient back to the router.
 *
 * <p>For {@code x (b, n, d)}, optional {@code mask (b, n)} and {@code R} routing tokens {@code u (R, d)}:
 *
 * <ol>
 *   <li>if {@code n <= K}: no routing, see {@link RouterReturn};
 *   <li>with {@code routeBlockSize = w}: the first {@code ⌊n/w⌋·w} tokens are cut into {@code nb = ⌊n/w⌋} blocks and
 *       {@code ⌈K/nb⌉} tokens are routed from each block;
 *   <li>{@code s[b, r, j] = ⟨x_j, u_r⟩}, or {@code cosineSimScale · ⟨x_j/‖x_j‖, u_r/‖u_r‖⟩} with cosine routing;
 *       with {@code learnedRoutingTokens} the tokens come from the forward call, shape (b, d) or (b, R, d);
 *   <li>in training with {@code trainingNoise σ > 0}: {@code s += N(0, σ²)} (exploration, not in the reference);
 *   <li>{@code scores = coor_descent(s, k = min(K·fetchKRatio, n), mask)} with the ε schedule
 *       {@code (epsInit, epsDecay, eps)} and {@code nIters} iterations ({@link CoordinateDescent}, backend
 *       {@link Backend#AUTO} by default); {@code random_route} replaces them by N(0, 1) noise (negative control);
 *   <li>the top {@code K} per row ({@link TopK#select} with the configured {@link TieBreak}, see below);
 *   <li>straight-through: {@code sel + (1 - sel).detach()}, exactly 1.0 forward with the gradient of {@code sel}
 *       ({@link StraightThroughSelection}, which fuses it with the top-k where it can);
 *       masked selections score 0;
 *   <li>the selected tokens and mask entries are gathered from the input.
 * </ol>
 *
 * <p><b>Ties.</b> Which tokens the reference routes among scores tied at the cut is whatever {@code torch.topk}
 * returns ({@link TieBreak#REFERENCE}): it depends on device and release, and can be a masked token (score 0) while a
 * valid token whose score underflowed to exactly 0 waits, which wastes a heavy slot on padding. That happens where
 * few tokens carry weight: short windows of image and autoregressive attention, heavily masked rows. The default,
 * {@link TieBreak#BY_INPUT} with the router's mask, routes the same tokens wherever the reference's choice is
 * defined (no tie at the cut), and among ties prefers valid tokens, then the higher similarity (which the scores
 * are monotone in), then the earlier position: never a masked token while a valid one is tied with it, and the same
 * tokens on every device. It costs three sorts per row. {@code optTieBreak(TieBreak.REFERENCE)} restores the plain
 * top-k.
 *
 * <p>Parameter: {@code routing_token (R, d)} drawn from N(0, 1), absent with {@code learnedRoutingTokens}.
 * Hyper-parameters are not part of a checkpoint; they must come from the training configuration.
 *
 * <p>The options are {@link CoordinateDescentRouterBuilder}'s. Scoring (the similarity to the routing tokens) and
 * selection stay together in this file: they are the steps of one procedure, {@link #route}.
 *
 * <p><b>Differences from the reference (bugs fixed):</b>
 *
 * <ul>
 *   <li>With {@code R > 1} and batch {@code > 1} the reference gathers output row {@code i}'s tokens and mask from
 *       input row {@code ⌊i/R⌋} (its R-times repeated batch); here every row gathers from itself.
 *   <li>With {@code routeBlockSize} and two or more blocks the reference gathers from the folded blocks and raises
 *       IndexError; here the tokens are gathered from the (truncated) sequence. As in the reference, the tail of
 *       {@code n mod w} tokens after the last full block is never routed (so a feed-forward gives it 0 heavy output
 *       and an attention its null token), each block routes {@code ⌈K/nb⌉} tokens (so {@code nb·⌈K/nb⌉ >= K} in
 *       all), and with learned routing tokens each block uses its sequence's tokens.
 *   <li>{@code n < routeBlockSize}, {@code ⌈K/nb⌉ > routeBlockSize}, {@code random_route} without a mask and
 *       routing tokens of the wrong kind raise IllegalArgumentException (the reference divides by zero, fails in
 *       topk, raises TypeError, or silently ignores the supplied tokens).
 * </ul>
 */
public final class CoordinateDescentRouter extends AbstractBlock {

    private static final byte VERSION = 1;

    private final int dim;
    private final boolean straightThrough;
    private final double fetchKRatio;
    private final int numRoutingTokens;
    private final boolean cosineSimRouting;
    private final double cosineSimScale;
    private final double trainingNoise;
    private final Integer routeBlockSize;
    private final TieBreak tieBreak;
    private final CoordinateDescent.Options coorDescent;
    private final Parameter routingToken;

    private CoordinateDescentRouter(Builder builder) {
        super(VERSION);
        dim = builder.dim;
        straightThrough = builder.straightThrough;
        fetchKRatio = builder.fetchKRatio;
        numRoutingTokens = builder.numRoutingTokens;
        cosineSimRouting = builder.cosineSimRouting;
        cosineSimScale = builder.cosineSimScale;
        trainingNoise = builder.trainingNoise;
        routeBlockSize = builder.routeBlockSize;
        tieBreak = builder.tieBreak;
        coorDescent = CoordinateDescent.Options.builder()
                .setIters(builder.nIters)
                .optEps(builder.eps)
                .optEpsInit(builder.epsInit)
                .optEpsDecay(builder.epsDecay)
                .optBackend(builder.backend)
                .build();
        routingToken = builder.learnedRoutingTokens
                ? null
                : addParameter(Parameter.builder().setName("routing_token").setType(Parameter.Type.OTHER)
                        .optInitializer(new NormalInitializer(1f)).optShape(new Shape(numRoutingTokens, dim))
                        .build());
    }

    /**
     * Starts a builder.
     *
     * @return a builder with the reference's defaults (0.9.0 and later)
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Number of routing tokens {@code R}.
     *
     * @return R
     */
    public int getNumRoutingTokens() {
        return numRoutingTokens;
    }

    /**
     * Routes with this router's own routing tokens.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param numTokens K, tokens to route per sequence (and route), {@code >= 1}
     * @param mask null, or boolean (b, n), true = valid
     * @param training whether in training mode
     * @return indices, scores, routed tokens and mask
     */
    public RouterReturn route(ParameterStore ps, NDArray x, int numTokens, NDArray mask, boolean training) {
        return route(ps, x, numTokens, mask, null, false, false, training);
    }

    /**
     * {@link #route(ParameterStore, NDArray, int, NDArray, boolean)} with the unit rows of {@code x} already
     * computed ({@link #unitTokens}), so that two routers of the same scoring ({@link #scoresLike}) over one sequence
     * normalise it once.
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param numTokens K, tokens to route per sequence, {@code >= 1}
     * @param mask null, or boolean (b, n), true = valid
     * @param training whether in training mode
     * @param unitTokens {@link #unitTokens} of {@code x} by this router or one that {@link #scoresLike} it, or null
     * @return indices, scores, routed tokens and mask
     */
    RouterReturn route(ParameterStore ps, NDArray x, int numTokens, NDArray mask, boolean training,
            NDArray unitTokens) {
        return route(ps, x, numTokens, mask, null, false, false, training, unitTokens);
    }

    /**
     * The unit rows of {@code x} from which this router's cosine scores are computed: {@code cosineSimScale ·
     * x/‖x‖} as one fused norm where {@link FusedNorm} runs, else {@code x/‖x‖} composed (the scale then multiplies
     * the scores); null for dot-product scores or with route blocks.
     *
     * @param x (b, n, dim) tokens
     * @return (b, n, dim), or null
     */
    NDArray unitTokens(NDArray x) {
        if (!cosineSimRouting || routeBlockSize != null) {
            return null;
        }
        return FusedNorm.supports(x, null) ? Tensors.fusedUnitRows(x, cosineSimScale) : unit(x);
    }

    /**
     * Whether {@code other}'s {@link #unitTokens} of a sequence equal this router's: both cosine routing with the same
     * scale, neither with route blocks.
     *
     * @param other another router
     * @return true when one normalisation serves both
     */
    boolean scoresLike(CoordinateDescentRouter other) {
        return cosineSimRouting && other.cosineSimRouting && cosineSimScale == other.cosineSimScale
                && routeBlockSize == null && other.routeBlockSize == null;
    }

    /**
     * Routes (the reference's {@code forward}).
     *
     * @param ps the parameter store
     * @param x (b, n, dim) tokens
     * @param numTokens K, tokens to route per sequence (and route), {@code >= 1}
     * @param mask null, or boolean (b, n), true = valid
     * @param routingTokens with {@code learnedRoutingTokens} the routing tokens, (b, dim) for R = 1 or (b, R, dim);
     *     otherwise null
     * @param randomRoute negative control: replace the scores by N(0, 1) noise (masked tokens last); needs a mask
     * @param keepOneRouteDim keep the R axis in the outputs even when R = 1
     * @param training whether in training mode
     * @return indices, scores, routed tokens and mask
     * @throws IllegalArgumentException on shapes that do not fit or arguments out of range
     */
    public RouterReturn route(
            ParameterStore ps,
            NDArray x,
            int numTokens,
            NDArray mask,
            NDArray routingTokens,
            boolean randomRoute,
            boolean keepOneRouteDim,
            boolean training) {
        return route(ps, x, numTokens, mask, routingTokens, randomRoute, keepOneRouteDim, training, null);
    }

    private RouterReturn route(
            ParameterStore ps,
            NDArray x,
            int numTokens,
            NDArray mask,
            NDArray routingTokens,
            boolean randomRoute,
            boolean keepOneRouteDim,
            boolean training,
            NDArray unitTokens) {
        Inputs.checkTokens("x", x, dim);
        Inputs.checkMask("mask", mask, x);
        Inputs.checkCount("num_tokens", numTokens);
        NDArray u = checkRoutingTokens(routingTokens, x);
        if (randomRoute && mask == null) {
            throw new IllegalArgumentException("random_route needs a mask (as in the reference)");
        }
        long b = x.getShape().get(0);
        long n = x.getShape().get(1);
        int r = numRoutingTokens;
        boolean routeDim = keepOneRouteDim || r != 1;
        if (n <= numTokens) {
            return unrouted(x, mask, routeDim);
        }

        NDArray src = x;
        NDArray srcMask = mask;
        long blocks = 1;
        long len = n;
        int k = numTokens;
        if (routeBlockSize != null) {
            int w = routeBlockSize;
            blocks = n / w;
            if (blocks == 0) {
                throw new IllegalArgumentException(
                        "sequence length (" + n + ") must be >= routeBlockSize (" + w + ")");
            }
            k = (int) ((numTokens + blocks - 1) / blocks);
            if (k > w) {
                throw new IllegalArgumentException("tokens per route block ceil(" + numTokens + " / " + blocks
                        + ") = " + k + " must be <= routeBlockSize (" + w + ")");
            }
            src = Tensors.slice(x, 1, 0, blocks * w);
            srcMask = mask == null ? null : Tensors.slice(mask, 1, 0, blocks * w);
            u = u == null ? null : u.repeat(0, blocks);
            len = w;
        }
        NDArray xb = reshaped(src, new Shape(b * blocks, len, dim));
        NDArray sim = similarity(ps, xb, u, training, unitTokens);
        if (training && trainingNoise > 0) {
            sim = sim.add(sim.getManager().randomNormal(0f, (float) trainingNoise, sim.getShape(), sim.getDataType(),
                    sim.getDevice()));
        }
        NDArray maskRep = srcMask == null ? null : reshaped(srcMask, new Shape(b * blocks, len));
        if (maskRep != null && r > 1) {
            maskRep = maskRep.repeat(0, r);
        }

        double softK = Math.min(k * fetchKRatio, len);
        NDList selected;
        if (straightThrough && !randomRoute) {
            selected = StraightThroughSelection.select(sim, softK, maskRep, k, coorDescent, tieBreak);
        } else {
            NDArray scores = CoordinateDescent.solve(sim, softK, maskRep, coorDescent);
            if (randomRoute) {
                NDArray noise = scores.getManager().randomNormal(scores.getShape());
                scores = NDArrays.where(maskRep, noise, Tensors.scalar(noise, Tensors.MASK_VALUE));
            }
            selected = TopK.select(scores, sim, maskRep, k, tieBreak);
            if (straightThrough) {
                selected.set(0, StraightThroughSelection.straightThrough(selected.get(0)));
            }
        }
        NDArray selScores = selected.get(0);
        NDArray indices = selected.get(1);
        // (b·blocks·R, k): whether each selected token is valid; with one block, the routed mask
        NDArray selectedMask = maskRep != null && (straightThrough || blocks == 1) ? maskRep.gather(indices, 1) : null;
        if (straightThrough && selectedMask != null) {
            selScores = selScores.mul(selectedMask.toType(selScores.getDataType(), false));
        }

        // (b·blocks·R, k) -> (b, [R,] blocks·k), positions offset by their block's start
        NDArray routedMask;
        if (blocks == 1) {
            // one block: no offsets, and the layout is already (b, [R,] k); every op is a native call
            Shape routed = routeDim ? new Shape(b, r, k) : new Shape(b, k);
            selScores = reshaped(selScores, routed);
            indices = reshaped(indices, routed);
            routedMask = selectedMask == null ? null : reshaped(selectedMask, routed);
        } else {
            NDArray offsets = x.getManager().arange(0, (int) (blocks * len), (int) len, DataType.INT64,
                    x.getDevice()).reshape(1, blocks, 1, 1);
            selScores = unfold(selScores.reshape(b, blocks, r, k), routeDim);
            indices = unfold(indices.reshape(b, blocks, r, k).add(offsets), routeDim);
            routedMask = srcMask == null
                    ? null
                    : reshaped(srcMask.gather(reshaped(indices, new Shape(b, -1)), 1), indices.getShape());
        }

        NDArray tokenIndex = Tensors.tokenIndex(reshaped(indices, new Shape(b, -1)), src);
        NDArray routedTokens = Tensors.gatherRows(src, tokenIndex, indices.getShape());
        return new RouterReturn(indices, selScores, routedTokens, routedMask, tokenIndex);
    }

    /**
     * {@code x.reshape(shape)}, or {@code x} itself where the shape already fits (a reshape is a native call).
     * {@code shape} has at most one -1, which then matches any size (the others fix it).
     */
    private static NDArray reshaped(NDArray x, Shape shape) {
        Shape s = x.getShape();
        boolean same = s.dimension() == shape.dimension();
        for (int i = 0; same && i < s.dimension(); i++) {
            same = shape.get(i) == -1 || s.get(i) == shape.get(i);
        }
        return same ? x : x.reshape(shape);
    }

    /** (b, blocks, R, k) to (b, R, blocks·k), or (b, blocks·k) without a route dimension (R = 1). */
    private static NDArray unfold(NDArray x, boolean routeDim) {
        Shape s = x.getShape();
        NDArray perRoute = x.transpose(0, 2, 1, 3).reshape(s.get(0), s.get(2), s.get(1) * s.get(3));
        return routeDim ? perRoute : perRoute.squeeze(1);
    }

    private RouterReturn unrouted(NDArray x, NDArray mask, boolean routeDim) {
        long b = x.getShape().get(0);
        long n = x.getShape().get(1);
        int r = numRoutingTokens;
        if (!routeDim) {
            return new RouterReturn(null, x.getManager().ones(new Shape(b, n), x.getDataType()), x, mask, null);
        }
        NDArray tokens = x.expandDims(1).broadcast(b, r, n, dim);
        NDArray routedMask = mask == null ? null : mask.expandDims(1).broadcast(b, r, n);
        return new RouterReturn(null, x.getManager().ones(new Shape(b, r, n), x.getDataType()), tokens, routedMask,
                null);
    }

    /**
     * (B, n, d) tokens against the routing tokens: (B·R, n), the rows of (B, R, n). {@code unitTokens}: null, or the
     * {@link #unitTokens} of {@code x}.
     */
    private NDArray similarity(ParameterStore ps, NDArray x, NDArray supplied, boolean training, NDArray unitTokens) {
        // fused norms: the cosine scale rides on x's (constant) weight, no multiply of the scores afterwards
        boolean fused = cosineSimRouting && FusedNorm.supports(x, null);
        NDArray xs = unitTokens != null ? unitTokens
                : !cosineSimRouting ? x : fused ? Tensors.fusedUnitRows(x, cosineSimScale) : unit(x);
        NDArray s;
        if (supplied != null) {
            NDArray u = cosineSimRouting ? unitRows(supplied, fused) : supplied;
            s = xs.matMul(u.transpose(0, 2, 1));
        } else if (numRoutingTokens == 1) {
            // (B, n, d)·(d) is (B, n), already the rows: no transpose of the token, no reshape of the scores
            NDArray u = Tensors.own(ps.getValue(routingToken, x.getDevice(), training).reshape(dim), x);
            s = xs.matMul(cosineSimRouting ? unitRows(u, fused) : u);
        } else {
            NDArray token = ps.getValue(routingToken, x.getDevice(), training);
            NDArray u = Tensors.own(cosineSimRouting ? unitRows(token, fused) : token.transpose(), x);
            s = xs.matMul(cosineSimRouting ? u.transpose() : u);
        }
        if (s.getShape().dimension() == 3) {
            long n = s.getShape().get(1);
            // (B, n, R) to rows; with R = 1 one view does it, the same values in the same layout
            s = s.getShape().get(2) == 1 ? s.reshape(-1, n) : s.transpose(0, 2, 1).reshape(-1, n);
        }
        return cosineSimRouting && !fused ? s.mul(Tensors.scalar(s, cosineSimScale)) : s;
    }

    private static NDArray unitRows(NDArray u, boolean fused) {
        return fused ? Tensors.fusedUnitRows(u, 1) : unit(u);
    }

    private static NDArray unit(NDArray u) {
        return u.normalize(2, -1, Tensors.NORM_EPS);
    }

    /** Validates externally supplied routing tokens and brings them to (b, R, d). */
    private NDArray checkRoutingTokens(NDArray routingTokens, NDArray x) {
        if (routingToken != null) {
            if (routingTokens != null) {
                throw new IllegalArgumentException(
                        "routing_tokens given, but this router has its own (learnedRoutingTokens is false)");
            }
            return null;
        }
        if (routingTokens == null) {
            throw new IllegalArgumentException("routing_tokens are required when learnedRoutingTokens is true");
        }
        long b = x.getShape().get(0);
        NDArray u = routingTokens.getShape().dimension() == 2 ? routingTokens.expandDims(1) : routingTokens;
        Shape expected = new Shape(b, numRoutingTokens, dim);
        if (!u.getShape().equals(expected)) {
            throw new IllegalArgumentException("routing_tokens must have shape " + expected
                    + (numRoutingTokens == 1 ? " or (" + b + ", " + dim + ")" : "") + ", got "
                    + routingTokens.getShape());
        }
        return u;
    }

    /**
     * {@inheritDoc}
     *
     * <p>Inputs (by name, or in this order): {@code x}, optional {@code mask}, optional {@code routing_tokens}.
     * Params: {@code num_tokens} (required), {@code random_route}, {@code keep_one_route_dim}. Outputs, named:
     * {@code indices} (absent when not routed), {@code scores}, {@code routed_tokens}, {@code routed_mask} (absent
     * without a mask).
     */
    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        Integer k = Inputs.integer(params, "num_tokens");
        if (k == null) {
            throw new IllegalArgumentException("param num_tokens is required");
        }
        return route(
                ps,
                Inputs.required(inputs, "x", 0),
                k,
                Inputs.tensor(inputs, "mask", 1),
                Inputs.tensor(inputs, "routing_tokens", 2),
                Inputs.flag(params, "random_route"),
                Inputs.flag(params, "keep_one_route_dim"),
                training)
                .toNDList();
    }

    /**
     * Not available: the output shapes depend on {@code num_tokens}, which is given at forward time.
     *
     * @param inputShapes ignored
     * @return never
     * @throws UnsupportedOperationException always
     */
    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        throw new UnsupportedOperationException(
                "CoordinateDescentRouter output shapes depend on num_tokens, given at forward time");
    }

    /** Builder; its options, the reference's keyword arguments, are {@link CoordinateDescentRouterBuilder}'s. */
    public static final class Builder extends CoordinateDescentRouterBuilder<Builder> {

        private Builder() {}

        /** {@inheritDoc} */
        @Override
        protected Builder self() {
            return this;
        }

        /**
         * A copy of this builder, e.g. to use one as the {@code router_kwargs} of several modules.
         *
         * @return an independent builder with the same options
         */
        public Builder copy() {
            Builder c = new Builder();
            copyOptionsTo(c);
            return c;
        }

        /**
         * Builds the router.
         *
         * @return the router
         * @throws IllegalArgumentException if an option is out of range
         */
        public CoordinateDescentRouter build() {
            validate();
            return new CoordinateDescentRouter(this);
        }
    }
}
