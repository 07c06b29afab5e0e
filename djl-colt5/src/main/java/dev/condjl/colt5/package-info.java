/**
 * CoLT5 conditional computation for DJL: blocks that send only the tokens that matter through a heavy branch
 * (port of {@code lucidrains/CoLT5-attention} 0.11.1, spec {@code colt5.md}).
 *
 * <ul>
 *   <li>Routed modules: {@link dev.condjl.colt5.ConditionalRoutedFeedForward},
 *       {@link dev.condjl.colt5.ConditionalRoutedAttention}, {@link dev.condjl.colt5.ConditionalRoutedTransformerBlock},
 *       {@link dev.condjl.colt5.ConditionalRoutedCrossAttention}, and their router
 *       {@link dev.condjl.colt5.CoordinateDescentRouter}.
 *   <li>Building blocks: {@link dev.condjl.colt5.RMSNorm}, {@link dev.condjl.colt5.FeedForward},
 *       {@link dev.condjl.colt5.SelfAttention}, the heavy-branch {@link dev.condjl.colt5.Attention},
 *       {@link dev.condjl.colt5.RotaryEmbedding}, and the light branch {@link dev.condjl.colt5.LocalMHA} over
 *       {@link dev.condjl.colt5.LocalAttention}.
 *   <li>Containers: {@link dev.condjl.colt5.Sequential} ({@code torch.nn.Sequential} names) and
 *       {@link dev.condjl.colt5.MaskedSequential}, which carries a padding mask to the children that take one.
 *   <li>Blocks from the reference's keyword arguments: {@link dev.condjl.colt5.ReferenceConfigs}; weights by
 *       PyTorch name through {@link dev.condjl.topk.checkpoint.Checkpoints} (module {@code djl-topk}).
 * </ul>
 *
 * <p>Child-block and parameter names are the reference's {@code state_dict} keys. Outputs match the reference
 * (within 1e-4 on the parity fixtures) except where it has bugs, which are fixed and documented on the class
 * concerned: several kv routes gather from their own batch row, {@code route_block_size} works with any number of
 * blocks, the cross attention runs, and the light attention masks its window padding.
 */
package dev.condjl.colt5;
