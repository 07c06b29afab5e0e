package dev.condjl.colt5;

/** Argument checks shared by the blocks' builders. */
final class Builders {

    private Builders() {}

    /**
     * Checks that a size is positive.
     *
     * @param name option name for the message
     * @param value its value
     * @throws IllegalArgumentException if {@code value <= 0}
     */
    static void positive(String name, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + " (" + value + ") must be > 0");
        }
    }

    /**
     * Checks that an option is given.
     *
     * @param name option name for the message
     * @param value its value
     * @param <V> its type
     * @return {@code value}
     * @throws IllegalArgumentException if {@code value} is null
     */
    static <V> V required(String name, V value) {
        if (value == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
        return value;
    }

    /**
     * Checks that heads split evenly into routes.
     *
     * @param headsName option name of the head count
     * @param heads head count
     * @param routesName option name of the route count
     * @param routes route count
     * @throws IllegalArgumentException if {@code heads % routes != 0}
     */
    static void divisible(String headsName, int heads, String routesName, int routes) {
        if (heads % routes != 0) {
            throw new IllegalArgumentException(
                    headsName + " (" + heads + ") must be divisible by " + routesName + " (" + routes + ")");
        }
    }
}
