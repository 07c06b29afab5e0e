/**
 * The coordinate-descent top-k attention family (reference package {@code coordinate-descent-attention} 0.0.11,
 * spec colt5.md §7): {@link dev.condjl.colt5.cdattention.Attention} (softmax or coordinate-descent attention weights),
 * {@link dev.condjl.colt5.cdattention.FeedForward}, the causal language model
 * {@link dev.condjl.colt5.cdattention.Transformer} and its {@link dev.condjl.colt5.cdattention.AutoregressiveWrapper}
 * (loss and sampling). Child and parameter names follow the reference's {@code state_dict}.
 */
package dev.condjl.colt5.cdattention;
