/**
 * Host-side cost measurements of the CLI's programs: op and autograd-node counts of a PyTorch profiler trace.
 */
package dev.condjl.integration.profile;
