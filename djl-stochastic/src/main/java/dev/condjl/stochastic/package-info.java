/**
 * Stochastic depth for DJL residual networks: DINOv2's batch-subset method ({@link
 * dev.condjl.stochastic.StochasticDepth}), timm's {@link dev.condjl.stochastic.DropPath}, layer
 * drop that keeps every parameter in the graph ({@link dev.condjl.stochastic.LayerDrop}), the Block
 * wrapper {@link dev.condjl.stochastic.StochasticResidual} with optional {@link
 * dev.condjl.stochastic.LayerScale} (and {@link dev.condjl.stochastic.ResidualBranch} for a block
 * that adds its own residual), and the linear {@link dev.condjl.stochastic.DepthSchedule}.
 * All randomness comes from the engine's generator, so {@code Engine.setRandomSeed} makes runs
 * reproducible.
 */
package dev.condjl.stochastic;
