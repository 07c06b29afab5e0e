package dev.condjl.colt5;

/** Builds a module's router from its {@code router_kwargs} template and the options the module itself fixes. */
final class RouterKwargs {

    private RouterKwargs() {}

    /**
     * A router for a routed module.
     *
     * @param template the user's {@code router_kwargs} (copied), or null for the defaults
     * @param dim the module's width
     * @param straightThrough the module's {@code router_straight_through}
     * @param numRoutingTokens routing tokens the module needs
     * @return the router
     * @throws IllegalArgumentException if the template asks for learned (supplied) routing tokens, which a module
     *     never supplies
     */
    static CoordinateDescentRouter router(
            CoordinateDescentRouter.Builder template, int dim, boolean straightThrough, int numRoutingTokens) {
        return builder(template, dim, straightThrough, numRoutingTokens).build();
    }

    /**
     * As {@link #router}, but returns the builder for further module-fixed options.
     *
     * @param template the user's {@code router_kwargs} (copied), or null for the defaults
     * @param dim the module's width
     * @param straightThrough the module's {@code router_straight_through}
     * @param numRoutingTokens routing tokens the module needs
     * @return the builder
     */
    static CoordinateDescentRouter.Builder builder(
            CoordinateDescentRouter.Builder template, int dim, boolean straightThrough, int numRoutingTokens) {
        CoordinateDescentRouter.Builder b = template == null ? CoordinateDescentRouter.builder() : template.copy();
        if (b.isLearnedRoutingTokens()) {
            throw new IllegalArgumentException(
                    "router_kwargs learnedRoutingTokens is not supported inside a routed module");
        }
        return b.setDim(dim).optStraightThrough(straightThrough).optNumRoutingTokens(numRoutingTokens);
    }
}
