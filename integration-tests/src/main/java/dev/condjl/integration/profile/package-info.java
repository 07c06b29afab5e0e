/**
 * Host-side cost measurements of the CLI's programs: op and autograd-node counts of a PyTorch profiler trace, and
 * where a thread's time goes by samples of its stack.
 */
package dev.condjl.integration.profile;
