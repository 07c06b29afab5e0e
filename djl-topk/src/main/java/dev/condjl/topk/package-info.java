/**
 * Coordinate-descent soft top-k (the CoLT5 router's core): {@link dev.condjl.topk.CoordinateDescent} solves the
 * entropy-regularised top-k problem, {@link dev.condjl.topk.TopK} wraps it into a differentiable hard top-k.
 */
package dev.condjl.topk;
