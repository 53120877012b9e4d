"""NumPy reference of binary cross-entropy: ATen's ``binary_cross_entropy`` and
``binary_cross_entropy_with_logits``, and their ``_backward``.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import numpy as np

from ._common import reduce, reduce_backward

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward",
]


def _weighted(values, weight):
    return values if weight is None else values * np.asarray(weight)


def _same_size(input, target, logits: bool):
    """The two arrays; torch's ``ValueError`` when their shapes differ (these losses never
    broadcast ``target``, not even against an empty ``input``)."""
    x, y = np.asarray(input), np.asarray(target)
    if x.shape != y.shape:
        raise ValueError(
            f"Target size ({y.shape}) must be the same as input size ({x.shape})" if logits else
            f"Using a target size ({y.shape}) that is different to the input size ({x.shape}) "
            "is deprecated. Please ensure they have the same size."
        )
    return x, y


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
    """:math:`l_n = -w_n [y_n \\max(\\log x_n, -100) + (1 - y_n) \\max(\\log(1 - x_n), -100)]`."""
    x, y = _same_size(input, target, logits=False)
    with np.errstate(divide="ignore"):  # log(0) = -inf, then clamped to -100
        log_x = np.maximum(np.log(x), -100.0)
        log_1mx = np.maximum(np.log1p(-x), -100.0)
    return reduce(_weighted((y - 1) * log_1mx - y * log_x, weight), reduction)


def binary_cross_entropy_backward(grad_output, input, target, weight=None, reduction: str = "mean"):
    """:math:`\\partial l_n / \\partial x_n = w_n (x_n - y_n) / \\max((1 - x_n) x_n, 10^{-12})`."""
    x, y = _same_size(input, target, logits=False)
    grad = (x - y) / np.maximum((1 - x) * x, 1e-12)
    return _weighted(grad, weight) * reduce_backward(grad_output, x.shape, reduction)


def _log_sigmoid(x):
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None):
    """:math:`l_n = w_n [(1 - y_n) x_n - (1 + (p - 1) y_n) \\log\\sigma(x_n)]`, with
    :math:`\\log\\sigma` computed stably."""
    x, y = _same_size(input, target, logits=True)
    log_sig = _log_sigmoid(x)
    if pos_weight is not None:
        log_sig = log_sig * ((np.asarray(pos_weight) - 1) * y + 1)
    return reduce(_weighted((1 - y) * x - log_sig, weight), reduction)


def binary_cross_entropy_with_logits_backward(grad_output, input, target, weight=None,
                                              reduction: str = "mean", pos_weight=None):
    """:math:`\\partial l_n / \\partial x_n = w_n [(p y_n + 1 - y_n) \\sigma(x_n) - p y_n]`."""
    x, y = _same_size(input, target, logits=True)
    p = 1.0 if pos_weight is None else np.asarray(pos_weight)
    sigma = np.exp(_log_sigmoid(x))
    grad = (p * y + 1 - y) * sigma - p * y
    return _weighted(grad, weight) * reduce_backward(grad_output, x.shape, reduction)
