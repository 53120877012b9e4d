"""NumPy reference of the softmax family and the cross-entropy losses.

Mirrors ATen's ``_softmax`` / ``_log_softmax`` / ``nll_loss`` / ``cross_entropy_loss``
and their backwards. The class axis is moved last (``(..., C)``), so every
formula below reads along ``axis=-1``; ``*_backward`` returns the gradient
with respect to ``input`` in the input's layout.

Defined in :doc:`/chapters/03_cross_entropy`.
"""

from __future__ import annotations

import numpy as np

from ._common import reduce, reduce_backward

__all__ = [
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
    "nll_loss", "nll_loss_backward", "cross_entropy", "cross_entropy_backward",
]


def _dim(x: np.ndarray, dim) -> int:
    """torch's legacy implicit choice when ``dim`` is None: 0 for 0-, 1-, 3-d arrays, else 1."""
    if dim is None:
        return 0 if x.ndim in (0, 1, 3) else 1
    return dim


def softmax(input, dim=None):
    r""":math:`y_i = e^{x_i - m} / \sum_j e^{x_j - m}` with :math:`m = \max_j x_j`."""
    x = np.asarray(input)
    dim = _dim(x, dim)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(grad_output, input, dim=None):
    r""":math:`\partial L/\partial x_i = y_i (g_i - \sum_j g_j y_j)`."""
    dim = _dim(np.asarray(input), dim)
    y, g = softmax(input, dim), np.asarray(grad_output)
    return y * (g - (g * y).sum(axis=dim, keepdims=True))


def log_softmax(input, dim=None):
    r""":math:`y_i = (x_i - m) - \log \sum_j e^{x_j - m}`."""
    x = np.asarray(input)
    dim = _dim(x, dim)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax_backward(grad_output, input, dim=None):
    r""":math:`\partial L/\partial x_i = g_i - e^{y_i} \sum_j g_j`."""
    dim = _dim(np.asarray(input), dim)
    g = np.asarray(grad_output)
    return g - softmax(input, dim) * g.sum(axis=dim, keepdims=True)


def _classes_last(input):
    """The input with its class axis (0 for 1-d, else 1) moved last, and that axis."""
    x = np.asarray(input, dtype=np.float64)
    axis = 0 if x.ndim == 1 else 1
    return np.moveaxis(x, axis, -1), axis


def _class_targets(target, weight, n_classes: int, ignore_index: int):
    """Classes (0 where ignored), the mask of counted targets, the weights, :math:`w_{y_n}`."""
    target = np.asarray(target).astype(np.int64)
    valid = target != ignore_index
    y = np.where(valid, target, 0)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    return y, valid, w, np.where(valid, w[y], 0.0)


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    r""":math:`l_n = -w_{y_n} x_{n,y_n}` (0 where :math:`y_n` is ``ignore_index``).

    ``mean`` divides by :math:`\sum w_{y_n}` over the counted targets."""
    x, _ = _classes_last(input)
    y, valid, w, w_y = _class_targets(target, weight, x.shape[-1], ignore_index)
    picked = np.take_along_axis(x, y[..., None], axis=-1)[..., 0]
    return reduce(np.where(valid, -picked * w_y, 0.0), reduction, w_y.sum())


def nll_loss_backward(grad_output, input, target, weight=None, ignore_index: int = -100,
                      reduction: str = "mean"):
    r""":math:`\partial L/\partial x_{n,c} = -g_n w_{y_n} \mathbb{1}[c = y_n]` (counted targets)."""
    x, axis = _classes_last(input)
    y, valid, w, w_y = _class_targets(target, weight, x.shape[-1], ignore_index)
    g = np.asarray(grad_output, dtype=np.float64)
    r = np.where(valid, reduce_backward(g, y.shape, reduction, w_y.sum()), 0.0)
    grad = np.zeros_like(x)
    np.put_along_axis(grad, y[..., None], (-r * w_y)[..., None], axis=-1)
    return np.moveaxis(grad, -1, axis)


def _smoothing(label_smoothing) -> float:
    """torch applies label smoothing only when it is > 0 (negative values and nan mean none)."""
    return float(label_smoothing) if label_smoothing > 0 else 0.0


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    r"""Class indices: :math:`l_n = (1-\varepsilon) w_{y_n}(-\log p_{y_n})
    + \frac{\varepsilon}{C}\sum_c w_c(-\log p_c)` for counted targets, ``mean`` over
    :math:`\sum w_{y_n}`. Probabilities :math:`t`: :math:`l_n = -\sum_c w_c t'_c \log p_c` with
    :math:`t' = (1-\varepsilon)t + \varepsilon/C`, ``mean`` over positions."""
    x, _ = _classes_last(input)
    log_p = log_softmax(x, -1)
    c, eps = x.shape[-1], _smoothing(label_smoothing)
    if np.shape(target) == np.shape(input):
        t = np.moveaxis(np.asarray(target, dtype=np.float64), 0 if x.ndim == 1 else 1, -1)
        t = t * (1 - eps) + eps / c
        w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
        rows = -(log_p * t * w).sum(axis=-1)
        return reduce(rows, reduction, rows.size if rows.size else np.nan)
    y, valid, w, w_y = _class_targets(target, weight, c, ignore_index)
    nll = -np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0] * w_y
    smooth = np.where(valid, -(log_p * w).sum(axis=-1), 0.0)
    return reduce((1 - eps) * nll + (eps / c) * smooth, reduction, w_y.sum())


def cross_entropy_backward(grad_output, input, target, weight=None, ignore_index: int = -100,
                           reduction: str = "mean", label_smoothing: float = 0.0):
    r"""Class indices: :math:`g_n[((1-\varepsilon)w_{y_n} + \frac{\varepsilon}{C}\sum_k w_k) p_c
    - (1-\varepsilon) w_{y_n}\mathbb{1}[c=y_n] - \frac{\varepsilon}{C} w_c]`;
    probabilities: :math:`g_n[p_c \sum_k w_k t'_k - w_c t'_c]`."""
    x, axis = _classes_last(input)
    p = softmax(x, -1)
    c, eps = x.shape[-1], _smoothing(label_smoothing)
    if np.shape(target) == np.shape(input):
        wt = np.moveaxis(np.asarray(target, dtype=np.float64), axis, -1) * (1 - eps) + eps / c
        wt = wt * (1.0 if weight is None else np.asarray(weight, dtype=np.float64))
        positions = p.size // c if p.size else np.nan
        g = np.asarray(grad_output, dtype=np.float64)
        r = reduce_backward(g, x.shape[:-1], reduction, positions)
        grad = r[..., None] * (p * wt.sum(axis=-1, keepdims=True) - wt)
        return np.moveaxis(grad, -1, axis)
    y, valid, w, w_y = _class_targets(target, weight, c, ignore_index)
    g = np.asarray(grad_output, dtype=np.float64)
    r = np.where(valid, reduce_backward(g, y.shape, reduction, w_y.sum()), 0.0)
    one_hot = np.zeros_like(x)
    np.put_along_axis(one_hot, y[..., None], 1.0, axis=-1)
    scale = (1 - eps) * w_y + (eps / c) * w.sum()
    hit = (1 - eps) * w_y[..., None] * one_hot
    grad = r[..., None] * (scale[..., None] * p - hit - (eps / c) * w)
    return np.moveaxis(grad, -1, axis)
