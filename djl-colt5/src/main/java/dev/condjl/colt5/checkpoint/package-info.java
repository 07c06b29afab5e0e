/**
 * Reads PyTorch checkpoints ({@code torch.save} zip files, safetensors) safely into DJL arrays and writes
 * safetensors that PyTorch's {@code load_state_dict} takes unchanged. Entry point: {@link
 * dev.condjl.colt5.checkpoint.Checkpoints}.
 */
package dev.condjl.colt5.checkpoint;
