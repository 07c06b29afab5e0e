/**
 * {@code condjl train}, {@code condjl eval} and {@code condjl generate}: a routed long-context model built from
 * condjl's blocks, trained end to end with DJL's Trainer on a generated retrieval task or on a text corpus.
 */
package dev.condjl.integration.train;
