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
    if x.size == 0:  # empty in, empty out, as in torch (np.max refuses an empty axis)
        return np.empty_like(x)
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
    if x.size == 0:  # empty in, empty out, as in torch (np.max refuses an empty axis)
        return np.empty_like(x)
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


def _class_targets(target, weight, x: np.ndarray, ignore_index: int):
    """Classes (0 where ignored), the mask of counted targets, the weights, :math:`w_{y_n}`,
    for the classes-last input ``x``.

    A counted target outside ``[0, C)`` raises torch's ``IndexError``; with no classes at
    all (``C = 0``) every target must be ignored, and each :math:`w_{y_n}` is 0."""
    target = np.asarray(target).astype(np.int64)
    n_classes = x.shape[-1]
    if x.size == 0 and target.size and x.ndim not in (1, 2, 4):
        # ATen views an empty input of 3 or more than 4 dims as (N, C, 0, 0), a non-empty
        # target as (N, 1, -1): no classes with positions left is torch's size mismatch
        raise RuntimeError(f"size mismatch (got input: {np.moveaxis(x, -1, 1).shape}, "
                           f"target: {target.shape}): no classes, but positions to score")
    valid = target != ignore_index
    outside = valid & ((target < 0) | (target >= n_classes))
    if outside.any():
        raise IndexError(f"Target {target[outside].flat[0]} is out of bounds.")
    y = np.where(valid, target, 0)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    return y, valid, w, np.where(valid, w[y] if n_classes else 0.0, 0.0)


def _pick(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``a[..., y]``: each position's entry at its class. With no classes there is nothing to
    pick (every target is ignored), and the zeros it returns are masked out."""
    if a.shape[-1] == 0:
        return np.zeros(y.shape)
    return np.take_along_axis(a, y[..., None], axis=-1)[..., 0]


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    r""":math:`l_n = -w_{y_n} x_{n,y_n}` (0 where :math:`y_n` is ``ignore_index``).

    ``mean`` divides by :math:`\sum w_{y_n}` over the counted targets."""
    x, _ = _classes_last(input)
    y, valid, w, w_y = _class_targets(target, weight, x, ignore_index)
    picked = _pick(x, y)
    return reduce(np.where(valid, -picked * w_y, 0.0), reduction, w_y.sum())


def nll_loss_backward(grad_output, input, target, weight=None, ignore_index: int = -100,
                      reduction: str = "mean"):
    r""":math:`\partial L/\partial x_{n,c} = -g_n w_{y_n} \mathbb{1}[c = y_n]` (counted targets)."""
    x, axis = _classes_last(input)
    y, valid, w, w_y = _class_targets(target, weight, x, ignore_index)
    g = np.asarray(grad_output, dtype=np.float64)
    r = np.where(valid, reduce_backward(g, y.shape, reduction, w_y.sum()), 0.0)
    grad = np.zeros_like(x)
    if x.shape[-1]:  # with no classes every target is ignored: nothing to put
        np.put_along_axis(grad, y[..., None], (-r * w_y)[..., None], axis=-1)
    return np.moveaxis(grad, -1, axis)


def _smoothing(label_smoothing) -> float:
    """torch applies label smoothing only when it is > 0 (negative values and nan mean none)."""
    return float(label_smoothing) if label_smoothing > 0 else 0.0


def _share(eps: float, c: int) -> float:
    """:math:`\\varepsilon / C`, each class's share of the smoothing. With no classes ATen's
    :math:`\\varepsilon / 0` is inf (so an ignored row's smoothing term, 0 times it, is nan)."""
    return eps / c if c else (np.inf if eps else 0.0)


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    r"""Class indices: :math:`l_n = (1-\varepsilon) w_{y_n}(-\log p_{y_n})
    + \frac{\varepsilon}{C}\sum_c w_c(-\log p_c)` for counted targets, ``mean`` over
    :math:`\sum w_{y_n}`. Probabilities :math:`t`: :math:`l_n = -\sum_c w_c t'_c \log p_c` with
    :math:`t' = (1-\varepsilon)t + \varepsilon/C`, ``mean`` over positions."""
    x, _ = _classes_last(input)
    log_p = log_softmax(x, -1)
    c, eps = x.shape[-1], _smoothing(label_smoothing)
    share = _share(eps, c)  # eps / C
    if np.shape(target) == np.shape(input):
        t = np.moveaxis(np.asarray(target, dtype=np.float64), 0 if x.ndim == 1 else 1, -1)
        t = t * (1 - eps) + share
        w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
        rows = -(log_p * t * w).sum(axis=-1)
        # ATen's mean divides by numel / C, nan for an empty input (even C = 0 with N rows)
        return reduce(rows, reduction, rows.size if x.size else np.nan)
    y, valid, w, w_y = _class_targets(target, weight, x, ignore_index)
    nll = -_pick(log_p, y) * w_y
    smooth = np.where(valid, -(log_p * w).sum(axis=-1), 0.0)
    # each term reduced, then mixed (ATen's order: with no classes a sum is 0 * inf = nan)
    total = w_y.sum()
    return (1 - eps) * reduce(nll, reduction, total) + share * reduce(smooth, reduction, total)


def cross_entropy_backward(grad_output, input, target, weight=None, ignore_index: int = -100,
                           reduction: str = "mean", label_smoothing: float = 0.0):
    r"""Class indices: :math:`g_n[((1-\varepsilon)w_{y_n} + \frac{\varepsilon}{C}\sum_k w_k) p_c
    - (1-\varepsilon) w_{y_n}\mathbb{1}[c=y_n] - \frac{\varepsilon}{C} w_c]`;
    probabilities: :math:`g_n[p_c \sum_k w_k t'_k - w_c t'_c]`."""
    x, axis = _classes_last(input)
    p = softmax(x, -1)
    c, eps = x.shape[-1], _smoothing(label_smoothing)
    share = _share(eps, c)  # eps / C
    if np.shape(target) == np.shape(input):
        wt = np.moveaxis(np.asarray(target, dtype=np.float64), axis, -1) * (1 - eps) + share
        wt = wt * (1.0 if weight is None else np.asarray(weight, dtype=np.float64))
        positions = p.size // c if p.size else np.nan
        g = np.asarray(grad_output, dtype=np.float64)
        r = reduce_backward(g, x.shape[:-1], reduction, positions)
        grad = r[..., None] * (p * wt.sum(axis=-1, keepdims=True) - wt)
        return np.moveaxis(grad, -1, axis)
    y, valid, w, w_y = _class_targets(target, weight, x, ignore_index)
    g = np.asarray(grad_output, dtype=np.float64)
    r = np.where(valid, reduce_backward(g, y.shape, reduction, w_y.sum()), 0.0)
    one_hot = np.zeros_like(x)
    if c:  # with no classes every target is ignored: no one-hot entry
        np.put_along_axis(one_hot, y[..., None], 1.0, axis=-1)
    scale = (1 - eps) * w_y + share * w.sum()
    hit = (1 - eps) * w_y[..., None] * one_hot
    grad = r[..., None] * (scale[..., None] * p - hit - share * w)
    return np.moveaxis(grad, -1, axis)
