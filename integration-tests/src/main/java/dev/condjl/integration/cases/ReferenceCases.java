package dev.condjl.integration.cases;

import java.util.List;
import java.util.stream.Collectors;

/** The modules {@code condjl run} knows. To add one, implement {@link ReferenceCase} and add it to the list. */
public final class ReferenceCases {

    private static final List<ReferenceCase> CASES = List.of(
            new CoorDescentCase(),
            new TopKCase(),
            Colt5Case.ROUTER, Colt5Case.FEED_FORWARD, Colt5Case.ATTENTION, Colt5Case.BLOCK, Colt5Case.CROSS_ATTENTION,
            Colt5Case.IMAGE_ATTENTION, Colt5Case.AUTOREGRESSIVE_ATTENTION, Colt5Case.VIT, Colt5Case.CD_ATTENTION,
            Colt5Case.CD_FEED_FORWARD, Colt5Case.CD_TRANSFORMER, Colt5Case.CD_AUTOREGRESSIVE_WRAPPER);

    private ReferenceCases() {}

    /**
     * Looks a case up by its reference name.
     *
     * @param name the value of {@code "module"}
     * @return the case
     * @throws IllegalArgumentException if no case has that name
     */
    public static ReferenceCase get(String name) {
        return CASES.stream()
                .filter(c -> c.name().equals(name))
                .findFirst()
                .orElseThrow(() -> new IllegalArgumentException(
                        "unknown module '" + name + "' (known: " + String.join(", ", names()) + ")"));
    }

    /**
     * Returns the known reference names.
     *
     * @return the names in registration order
     */
    public static List<String> names() {
        return CASES.stream().map(ReferenceCase::name).collect(Collectors.toList());
    }
}
