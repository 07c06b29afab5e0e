/**
 * PyTorch checkpoints for any DJL block: reads {@code torch.save} zip files and safetensors safely into DJL arrays,
 * writes safetensors that PyTorch's {@code load_state_dict} takes unchanged, and maps a block's parameters to
 * PyTorch {@code state_dict} names ({@link dev.condjl.topk.checkpoint.StateDicts}). Entry point:
 * {@link dev.condjl.topk.checkpoint.Checkpoints}.
 *
 * <p>It lives in {@code djl-topk}, the module every other condjl module depends on, so that blocks of any module
 * (CoLT5, dropout, stochastic depth) load and export weights without pulling in the CoLT5 blocks.
 */
package dev.condjl.topk.checkpoint;
