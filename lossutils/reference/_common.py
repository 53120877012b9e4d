"""NumPy helpers shared by the reference losses: reduction, weighting and their backward."""

from __future__ import annotations

import numpy as np


def reduce(loss: np.ndarray, reduction: str = "mean", total=None):
    """``'none'``: the losses; ``'sum'``: their sum; ``'mean'``: that sum over ``total``
    (default: their number; an empty mean is nan, and so is 0 / 0, as in torch)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if total is None:
        return loss.mean() if loss.size else np.float64(np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return loss.sum() / total


def reduce_backward(grad_output, shape, reduction: str = "mean", total=None):
    """d reduce(loss) / d loss_n, times grad_output, as an array of ``shape``."""
    grad_output = np.asarray(grad_output)
    if reduction == "none":
        return np.broadcast_to(grad_output, shape)
    scale = grad_output
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = grad_output / (max(int(np.prod(shape)), 1) if total is None else total)
    return np.full(shape, scale, dtype=np.result_type(grad_output, np.float64))


def weighted_reduce(loss: np.ndarray, weight, reduction: str = "mean", mean_by_weight: bool = True):
    """``reduce(w * loss)``; a weighted ``mean`` divides by ``sum(w)`` (or by N when not
    ``mean_by_weight``)."""
    if weight is None:
        return reduce(loss, reduction)
    weight = np.asarray(weight)
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return reduce(loss, reduction)


def weighted_reduce_backward(grad_output, shape, weight, reduction: str = "mean",
                             mean_by_weight: bool = True):
    """d weighted_reduce(loss) / d loss_n, times grad_output, as an array of ``shape``."""
    if weight is None:
        return reduce_backward(grad_output, shape, reduction)
    weight = np.asarray(weight)
    if reduction == "mean" and mean_by_weight:
        return np.broadcast_to(weight * (np.asarray(grad_output) / weight.sum()), shape)
    return reduce_backward(grad_output, shape, reduction) * weight


def unbroadcast(grad: np.ndarray, shape) -> np.ndarray:
    """Sum ``grad`` down to ``shape`` (the adjoint of broadcasting)."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
