"""NumPy helpers shared by the reference losses: reduction and its backward."""

from __future__ import annotations

import numpy as np


def reduce(loss: np.ndarray, reduction: str = "mean"):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean() if loss.size else np.float64(np.nan)


def reduce_backward(grad_output, shape, reduction: str = "mean"):
    """d reduce(loss) / d loss_n, times grad_output, as an array of ``shape``."""
    grad_output = np.asarray(grad_output)
    if reduction == "none":
        return np.broadcast_to(grad_output, shape)
    scale = grad_output / max(int(np.prod(shape)), 1) if reduction == "mean" else grad_output
    return np.full(shape, scale, dtype=np.result_type(grad_output, np.float64))


def unbroadcast(grad: np.ndarray, shape) -> np.ndarray:
    """Sum ``grad`` down to ``shape`` (the adjoint of broadcasting)."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
