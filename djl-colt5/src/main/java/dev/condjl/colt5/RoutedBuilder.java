package dev.condjl.colt5;

/**
 * The keyword arguments every routed module takes: {@code dim}, {@code router_straight_through} and
 * {@code router_kwargs}; and one option of ours, {@link #optZeroInitHeavyBranch}.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class RoutedBuilder<T extends RoutedBuilder<T>> {

    int dim;
    boolean routerStraightThrough = true;
    CoordinateDescentRouter.Builder routerKwargs;
    boolean zeroInitHeavyBranch;

    RoutedBuilder() {}

    /**
     * This builder as its concrete type.
     *
     * @return {@code this}
     */
    protected abstract T self();

    /**
     * Sets the model width (required).
     *
     * @param dim {@code > 0}
     * @return this builder
     */
    public T setDim(int dim) {
        this.dim = dim;
        return self();
    }

    /**
     * Whether the routers' scores are straight-through (exactly 1.0 forward, gradient of the soft score).
     *
     * @param routerStraightThrough default true
     * @return this builder
     */
    public T optRouterStraightThrough(boolean routerStraightThrough) {
        this.routerStraightThrough = routerStraightThrough;
        return self();
    }

    /**
     * Sets the routers' other options ({@code router_kwargs}); dim, straight-through and the routing-token count
     * are set by the module.
     *
     * @param routerKwargs a router builder used as a template (copied)
     * @return this builder
     */
    public T optRouterKwargs(CoordinateDescentRouter.Builder routerKwargs) {
        this.routerKwargs = routerKwargs;
        return self();
    }

    /**
     * Whether the heavy branch starts at zero (not in the reference, which draws these weights like every
     * {@code nn.Linear}): the heavy attention's {@code heavy_attn.to_q.weight} and {@code to_out.weight}, or the
     * heavy feed-forward's {@code heavy_ff.3.weight} and {@code .bias}. A routed token's heavy output is then 0 at
     * the start of training and grows only where it lowers the loss, and the heavy attention starts uniform over
     * its keys.
     *
     * <p>Why, for training from scratch:
     * <ul>
     *   <li>Output projection. With a random one the heavy branch adds noise to every token it is given. Where that
     *       noise costs most (the positions the loss reads, the tokens that carry the answer) the router's gradient
     *       pushes those tokens below the cut, and a token that is never routed gets no gradient that could bring
     *       it back: the router settles on tokens where the noise is harmless and the heavy branch never learns
     *       (routing collapse). At zero, the first gradient the router sees says where the heavy branch helps.
     *   <li>Query projection. With a random one a query can start out attending to keys of its own content (in a
     *       retrieval task: the stored key instead of the value beside it) with a saturated softmax, whose
     *       gradient is too small to leave; from zero, attention grows only toward keys that lower the loss.
     * </ul>
     * <p>The same start as ReZero's or a zero-initialised residual branch. Loaded weights replace it; an initializer
     * set afterwards for all weights (a training configuration's) does too.
     *
     * @param zeroInitHeavyBranch default false (the reference's initialisation)
     * @return this builder
     */
    public T optZeroInitHeavyBranch(boolean zeroInitHeavyBranch) {
        this.zeroInitHeavyBranch = zeroInitHeavyBranch;
        return self();
    }

    /**
     * The heavy attention as {@link #optZeroInitHeavyBranch} asks.
     *
     * @param heavy the module's heavy attention
     * @return {@code heavy}, its query and output projections zero-initialised if asked
     */
    Attention heavyBranch(Attention heavy) {
        return zeroInitHeavyBranch ? heavy.zeroInitQueryAndOutput() : heavy;
    }

    /**
     * The heavy feed-forward as {@link #optZeroInitHeavyBranch} asks.
     *
     * @param heavy the module's heavy feed-forward
     * @return {@code heavy}, its output zero-initialised if asked
     */
    FeedForward heavyBranch(FeedForward heavy) {
        return zeroInitHeavyBranch ? heavy.zeroInitOutput() : heavy;
    }

    /**
     * A router for this module (see {@link RouterKwargs#builder}).
     *
     * @param numRoutingTokens routing tokens the module needs
     * @return the router builder, with dim, straight-through and the routing-token count set
     */
    CoordinateDescentRouter.Builder router(int numRoutingTokens) {
        return RouterKwargs.builder(routerKwargs, dim, routerStraightThrough, numRoutingTokens);
    }
}
