"""NumPy reference of the KL divergence (ATen's ``kl_div`` and its gradient w.r.t. ``input``).

Defined in :doc:`/chapters/05_kl_divergence`.
"""

from __future__ import annotations

import numpy as np

from ._common import reduce, reduce_backward, unbroadcast

__all__ = ["kl_div", "kl_div_backward"]


def _pointwise(x, y, log_target):
    """:math:`y(\\log y - x)` with :math:`0 \\log 0 = 0`, or :math:`e^y (y - x)` for a log
    target."""
    if log_target:
        return np.exp(y) * (y - x)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, y)))
    return ylogy - y * x


def _divisor(x, reduction):
    """``'batchmean'`` divides the sum by the batch size ``x.shape[0]`` (by 1 for a 0-dim input)."""
    return x.shape[0] if reduction == "batchmean" and x.ndim else 1


def kl_div(input, target, reduction: str = "mean", log_target: bool = False):
    """:math:`l_n = y_n (\\log y_n - x_n)`, then ``reduction`` (``'batchmean'``: sum / batch
    size)."""
    x, y = np.broadcast_arrays(np.asarray(input), np.asarray(target))
    loss = _pointwise(x, y, log_target)
    if reduction == "batchmean":  # the sum over the batch size
        return reduce(loss, "mean", _divisor(np.asarray(input), reduction))
    return reduce(loss, reduction)


def kl_div_backward(grad_output, input, target, reduction: str = "mean", log_target: bool = False):
    """:math:`\\partial L / \\partial x_n = -y_n` (or :math:`-e^{y_n}`) times the reduction's
    factor."""
    x, y = np.broadcast_arrays(np.asarray(input), np.asarray(target))
    g = np.asarray(grad_output, dtype=np.float64)
    if reduction == "batchmean":  # the sum over the batch size
        g = reduce_backward(g, x.shape, "mean", _divisor(np.asarray(input), reduction))
    else:
        g = reduce_backward(g, x.shape, reduction)
    grad = -(np.exp(y) if log_target else y) * g
    return unbroadcast(grad, np.shape(input))
