package dev.condjl.integration.cli;

import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.SequentialBlock;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.nn.transformer.ScaledDotProductAttentionBlock;

import dev.condjl.stochastic.StochasticDepthMode;
import dev.condjl.stochastic.StochasticResidual;

/**
 * A pre-norm ViT-like stack built from DJL's own blocks, each residual branch wrapped in a {@link
 * StochasticResidual}: per layer {@code x += ls1(attn(norm1(x)))}, then {@code x +=
 * ls2(mlp(norm2(x)))} with a 4x GELU MLP. Input and output {@code (b, n, dim)}.
 */
final class VitStack {

    private VitStack() {}

    /**
     * Builds the stack.
     *
     * @param layers number of blocks
     * @param dim embedding size
     * @param heads attention heads (must divide dim)
     * @param mode the stochastic depth mode of every residual branch
     * @param dropProb the (uniform) drop probability; 0 gives plain residuals
     * @return the stack
     */
    static Block build(int layers, int dim, int heads, StochasticDepthMode mode, double dropProb) {
        SequentialBlock stack = new SequentialBlock();
        for (int i = 0; i < layers; i++) {
            Block attn =
                    new SequentialBlock()
                            .add(LayerNorm.builder().axis(2).build())
                            .add(
                                    ScaledDotProductAttentionBlock.builder()
                                            .setEmbeddingSize(dim)
                                            .setHeadCount(heads)
                                            .optAttentionProbsDropoutProb(0)
                                            .build());
            Block mlp =
                    new SequentialBlock()
                            .add(LayerNorm.builder().axis(2).build())
                            .add(Linear.builder().setUnits(4L * dim).build())
                            .add(Activation::gelu)
                            .add(Linear.builder().setUnits(dim).build());
            stack.add(residual(attn, "ls1", mode, dropProb));
            stack.add(residual(mlp, "ls2", mode, dropProb));
        }
        return stack;
    }

    private static Block residual(
            Block branch, String layerScaleName, StochasticDepthMode mode, double dropProb) {
        return StochasticResidual.builder()
                .setBranch(branch)
                .optMode(mode)
                .optDropProb(dropProb)
                .optLayerScale(1e-5f)
                .optLayerScaleName(layerScaleName)
                .build();
    }
}
