package dev.condjl.colt5;

/**
 * The keyword arguments every routed module takes: {@code dim}, {@code router_straight_through} and
 * {@code router_kwargs}; and one option of ours, {@link #optZeroInitHeavyOutput}.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class RoutedBuilder<T extends RoutedBuilder<T>> {

    int dim;
    boolean routerStraightThrough = true;
    CoordinateDescentRouter.Builder routerKwargs;
    boolean zeroInitHeavyOutput;

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
     * Whether the heavy branch's output projection starts at zero (not in the reference, which draws it like every
     * {@code nn.Linear}): {@code heavy_attn.to_out.weight}, or {@code heavy_ff.3.weight} and {@code .bias}. Then a
     * routed token's heavy output is 0 at the start of training, and it grows only where it lowers the loss.
     *
     * <p>Why, for training from scratch: with a random output projection, the heavy branch adds noise to every
     * token it is given. Where that noise costs most (the positions the loss reads, the tokens that carry the
     * answer) the router's gradient pushes those tokens below the cut, and a token that is never routed gets no
     * gradient that could bring it back: the router settles on tokens where the noise is harmless, and the heavy
     * branch never learns (routing collapse). Starting at zero takes the noise away, so the first gradient the
     * router sees says where the heavy branch helps. The same start as ReZero's or a zero-initialised residual
     * branch; loaded weights replace it.
     *
     * @param zeroInitHeavyOutput default false (the reference's initialisation)
     * @return this builder
     */
    public T optZeroInitHeavyOutput(boolean zeroInitHeavyOutput) {
        this.zeroInitHeavyOutput = zeroInitHeavyOutput;
        return self();
    }

    /**
     * The heavy attention as {@link #optZeroInitHeavyOutput} asks.
     *
     * @param heavy the module's heavy attention
     * @return {@code heavy}, its output zero-initialised if asked
     */
    Attention heavyBranch(Attention heavy) {
        return zeroInitHeavyOutput ? heavy.zeroInitOutput() : heavy;
    }

    /**
     * The heavy feed-forward as {@link #optZeroInitHeavyOutput} asks.
     *
     * @param heavy the module's heavy feed-forward
     * @return {@code heavy}, its output zero-initialised if asked
     */
    FeedForward heavyBranch(FeedForward heavy) {
        return zeroInitHeavyOutput ? heavy.zeroInitOutput() : heavy;
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
