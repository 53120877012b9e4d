"""NumPy reference of the regression losses (ATen's ``mse_loss`` / ``mse_loss_backward``, ...)."""

from __future__ import annotations

import numpy as np

from ._common import reduce, reduce_backward, unbroadcast

__all__ = ["mse_loss", "mse_loss_backward"]


def mse_loss(input, target, reduction: str = "mean"):
    """:math:`l_n = (x_n - y_n)^2`, then ``reduction``."""
    x, y = np.broadcast_arrays(np.asarray(input), np.asarray(target))
    return reduce((x - y) ** 2, reduction)


def mse_loss_backward(grad_output, input, target, reduction: str = "mean"):
    """:math:`\\partial L / \\partial x_n = 2 (x_n - y_n) \\cdot` (the reduction's factor)."""
    x, y = np.broadcast_arrays(np.asarray(input), np.asarray(target))
    grad = 2 * (x - y) * reduce_backward(grad_output, x.shape, reduction)
    return unbroadcast(grad, np.shape(input))
