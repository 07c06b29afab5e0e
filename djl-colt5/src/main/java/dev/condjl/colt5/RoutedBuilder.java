package dev.condjl.colt5;

/**
 * The keyword arguments every routed module takes: {@code dim}, {@code router_straight_through} and
 * {@code router_kwargs}.
 *
 * @param <T> the concrete builder, returned by every setter
 */
public abstract class RoutedBuilder<T extends RoutedBuilder<T>> {

    int dim;
    boolean routerStraightThrough = true;
    CoordinateDescentRouter.Builder routerKwargs;

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
     * A router for this module (see {@link RouterKwargs#builder}).
     *
     * @param numRoutingTokens routing tokens the module needs
     * @return the router builder, with dim, straight-through and the routing-token count set
     */
    CoordinateDescentRouter.Builder router(int numRoutingTokens) {
        return RouterKwargs.builder(routerKwargs, dim, routerStraightThrough, numRoutingTokens);
    }
}
