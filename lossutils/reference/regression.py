"""NumPy reference of the regression losses (ATen's ``mse_loss`` / ``mse_loss_backward``, ...).

Each loss is a function of the residual :math:`d = x - y`; its backward is the
slope :math:`\\ell'(d)` times the reduction's factor, summed back to ``input``'s
shape where ``target`` broadcast it.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import numpy as np

from ._common import unbroadcast, weighted_reduce, weighted_reduce_backward

__all__ = [
    "l1_loss", "l1_loss_backward",
    "mse_loss", "mse_loss_backward",
    "smooth_l1_loss", "smooth_l1_loss_backward",
    "huber_loss", "huber_loss_backward",
]


def _residual(input, target):
    x, y = np.broadcast_arrays(np.asarray(input), np.asarray(target))
    return x - y


def _backward(slope, grad_output, input, weight, reduction, mean_by_weight=True):
    factor = weighted_reduce_backward(grad_output, slope.shape, weight, reduction, mean_by_weight)
    grad = slope * factor
    return unbroadcast(grad, np.shape(input))


def l1_loss(input, target, reduction: str = "mean", weight=None):
    """:math:`l_n = w_n |x_n - y_n|`, then ``reduction`` (weighted mean: divided by
    :math:`\\sum w`)."""
    return weighted_reduce(np.abs(_residual(input, target)), weight, reduction)


def l1_loss_backward(grad_output, input, target, reduction: str = "mean", weight=None):
    """:math:`\\partial L / \\partial x_n = \\operatorname{sign}(x_n - y_n)\\, w_n \\cdot`
    (the reduction's factor)."""
    return _backward(np.sign(_residual(input, target)), grad_output, input, weight, reduction)


def mse_loss(input, target, reduction: str = "mean", weight=None):
    """:math:`l_n = w_n (x_n - y_n)^2`, then ``reduction`` (weighted mean: divided by
    :math:`\\sum w`)."""
    return weighted_reduce(_residual(input, target) ** 2, weight, reduction)


def mse_loss_backward(grad_output, input, target, reduction: str = "mean", weight=None):
    """:math:`\\partial L / \\partial x_n = 2 (x_n - y_n)\\, w_n \\cdot` (the reduction's
    factor)."""
    return _backward(2 * _residual(input, target), grad_output, input, weight, reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    """:math:`l_n = 0.5 d_n^2/\\beta` for :math:`|d_n| < \\beta`, else :math:`|d_n| - 0.5\\beta`;
    ``beta=0`` is L1."""
    z = np.abs(_residual(input, target))
    if beta == 0:
        return weighted_reduce(z, None, reduction)
    return weighted_reduce(np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta), None, reduction)


def smooth_l1_loss_backward(grad_output, input, target, reduction: str = "mean", beta: float = 1.0):
    """:math:`\\partial l_n / \\partial x_n = \\operatorname{clip}(d_n/\\beta, -1, 1)`
    (``sign(d_n)`` for ``beta=0``)."""
    d = _residual(input, target)
    slope = np.sign(d) if beta == 0 else np.clip(d / beta, -1.0, 1.0)
    return _backward(slope, grad_output, input, None, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    """:math:`l_n = w_n \\cdot 0.5 d_n^2` for :math:`|d_n| < \\delta`, else
    :math:`w_n \\delta(|d_n| - 0.5\\delta)`.

    A weighted ``mean`` divides by N (torch 2.13), not by :math:`\\sum w`.
    """
    z = np.abs(_residual(input, target))
    loss = np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))
    return weighted_reduce(loss, weight, reduction, mean_by_weight=False)


def huber_loss_backward(grad_output, input, target, reduction: str = "mean", delta: float = 1.0,
                        weight=None):
    """:math:`\\partial l_n / \\partial x_n = w_n \\operatorname{clip}(d_n, -\\delta, \\delta)`."""
    slope = np.clip(_residual(input, target), -delta, delta)
    return _backward(slope, grad_output, input, weight, reduction, mean_by_weight=False)
