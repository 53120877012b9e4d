"""Negative log-likelihood and cross-entropy, for class indices and class probabilities.

Defined in :doc:`/chapters/03_cross_entropy` (its memory budget: :doc:`/chapters/07_llm_scale`).

Every input is looked at as a 3-d tensor ``(N, C, D)``: a 1-d input ``(C,)`` is
``(1, C, 1)``, ``(N, C)`` is ``(N, C, 1)`` and ``(N, C, d1, ..., dk)`` is
``(N, C, d1 * ... * dk)``, so one code path serves torch's three input layouts;
the class dimension is always 1.

The cross-entropy Functions are memory-lean: they never hold an ``N x C``
tensor of log-probabilities. Forward walks the logits in blocks of rows
through one scratch buffer (at most 64 MiB) and keeps two numbers per row, the maximum
:math:`m` and :math:`\\log\\sum_c e^{x_c - m}` (together the log-sum-exp; kept
apart because :math:`m + \\log\\sum` rounds away digits when :math:`m \\approx 10^4`
in float32, see pytorch issue 11752). Backward writes
:math:`p = e^{(x - m) - \\log\\sum}` straight into one fresh buffer, the gradient's,
and finishes the gradient there in place (class indices: whole-tensor passes;
probabilities: block by block).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _reduction
from .._autograd import once_differentiable
from .._checks import require_floating
from .._reduction import reduce, reduction_grad
from ._cross_entropy_checks import check_class_dim, check_class_target, check_probability_target

__all__ = ["nll_loss", "cross_entropy"]

# Elements per block of rows that forward pushes through its scratch buffer.
# With one thread, blocks that fit a core's L2 cache make each pass after the
# first nearly free. With several threads every op is a fork and a join, and
# on a busy machine a join waits for a descheduled thread: there, few big
# blocks win (measured with benchmarks/cross_entropy_memory.py). 64 MiB of
# float32 at most, small next to an N x C tensor at LLM sizes.
BLOCK_ELEMENTS_ONE_THREAD = 1 << 18
BLOCK_ELEMENTS = 1 << 24


def _blocks(x3: Tensor):
    """Slices of whole rows (dim 0) of ``x3``, each about one block of elements."""
    size = BLOCK_ELEMENTS_ONE_THREAD if torch.get_num_threads() == 1 else BLOCK_ELEMENTS
    step = max(1, size // max(x3.shape[1] * x3.shape[2], 1))
    return [slice(i, i + step) for i in range(0, x3.shape[0], step)]


def _as_ncd(x: Tensor) -> Tensor:
    """``(C,)`` -> ``(1, C, 1)``; ``(N, C)`` -> ``(N, C, 1)``; ``(N, C, d...)`` -> ``(N, C, D)``."""
    if x.dim() == 1:
        return x.reshape(1, x.shape[0], 1)
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def _row_shape(input: Tensor) -> tuple:
    """Shape of the unreduced loss: the input without its class dimension."""
    return () if input.dim() == 1 else (input.shape[0], *input.shape[2:])


def _class_view(weight: Tensor) -> Tensor:
    return weight.reshape(1, -1, 1)


def _targets(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int):
    """Per position: the class (0 where ignored) as ``(N, 1, D)``, the mask of counted
    positions and their weights :math:`w_{y_n}` (0 where ignored), both ``(N, 1, D)``."""
    x3 = _as_ncd(input)
    y = target.reshape(x3.shape[0], 1, x3.shape[2]).long()
    valid = y != ignore_index
    y = y.masked_fill(~valid, 0)
    w_y = weight.reshape(-1)[y] if weight is not None else torch.ones((), dtype=input.dtype)
    return y, valid, torch.where(valid, w_y, 0).to(input.dtype)


def _rows_grad(grad_output: Tensor, reduction: str, shape: tuple, total) -> Tensor:
    """The incoming gradient per position, ``(N, 1, D)``, or a scalar (``mean``: over ``total``)."""
    if reduction == "none":
        grad_output = grad_output.reshape(shape[0], 1, shape[2])
    return reduction_grad(grad_output, reduction, shape[0] * shape[2], total)


def _class_index_reduce(nll: Tensor, smooth: Tensor | None, w_y: Tensor, reduction: str,
                        eps: float, n_classes: int, row_shape: tuple) -> Tensor:
    """Combine and reduce as ATen does: :math:`(1-\\varepsilon)\\,\\mathrm{nll}
    + \\frac{\\varepsilon}{C}\\,\\mathrm{smooth}`, each term divided by
    :math:`\\sum_n w_{y_n}` (over the counted targets) for ``mean``."""
    total = w_y.sum() if reduction == "mean" else None
    loss = reduce(nll, reduction, total)
    if smooth is not None:
        loss = (1 - eps) * loss + reduce(smooth, reduction, total) * (eps / n_classes)
    return loss.reshape(row_shape) if reduction == "none" else loss


class NLLLossFunction(Function):
    r"""Negative log-likelihood of class indices.

    .. math::
        l_n = -w_{y_n} x_{n, y_n} \mathbb{1}_n, \qquad
        \frac{\partial l_n}{\partial x_{n,c}} = -w_{y_n} \mathbb{1}[c = y_n] \mathbb{1}_n, \qquad
        \mathbb{1}_n = \mathbb{1}[y_n \ne \text{ignore\_index}]

    ``mean`` divides by :math:`\sum_n w_{y_n}` over the non-ignored positions
    (nan when there are none, like torch). Only the targets are saved.
    """

    @staticmethod
    def forward(input, target, weight, reduction, ignore_index):
        y, valid, w_y = _targets(input, target, weight, ignore_index)
        picked = _as_ncd(input).gather(1, y)
        nll = torch.where(valid, -picked * w_y, 0)
        return _class_index_reduce(nll, None, w_y, reduction, 0.0, 0, _row_shape(input))

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction, ctx.ignore_index = inputs
        ctx.input_shape, ctx.dtype = input.shape, input.dtype
        ctx.save_for_backward(target, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        target, weight = ctx.saved_tensors
        grad = torch.zeros(ctx.input_shape, dtype=ctx.dtype)
        y, valid, w_y = _targets(grad, target, weight, ctx.ignore_index)
        g3 = _as_ncd(grad)
        r = torch.where(valid, _rows_grad(grad_output, ctx.reduction, g3.shape, w_y.sum()), 0)
        g3.scatter_(1, y, -(r * w_y))
        return grad, None, None, None, None


class CrossEntropyFunction(Function):
    r"""Cross-entropy of logits and class indices, with label smoothing :math:`\varepsilon`.

    With :math:`p = \operatorname{softmax}(x_n)`, :math:`C` classes, :math:`w` the
    class weights (ones by default), :math:`S = \sum_c w_c`, and
    :math:`\mathbb{1}_n = \mathbb{1}[y_n \ne \text{ignore\_index}]`:

    .. math::
        l_n = \mathbb{1}_n \Big[(1-\varepsilon)\, w_{y_n} (-\log p_{y_n})
              + \frac{\varepsilon}{C} \sum_c w_c (-\log p_c)\Big]

    .. math::
        \frac{\partial l_n}{\partial x_{n,c}} = \mathbb{1}_n \Big[
            \Big((1-\varepsilon) w_{y_n} + \frac{\varepsilon}{C} S\Big) p_c
            - (1-\varepsilon) w_{y_n} \mathbb{1}[c = y_n] - \frac{\varepsilon}{C} w_c \Big]

    ``mean`` divides by :math:`\sum_n \mathbb{1}_n w_{y_n}`. Saved for backward:
    the logits, targets, weight and two numbers per row (:math:`m` and
    :math:`\log\sum_c e^{x_c - m}`); backward rebuilds :math:`p` in the
    gradient buffer itself, scales it by the bracket's first factor, then
    subtracts the one-hot and smoothing terms in place.
    """

    @staticmethod
    def forward(input, target, weight, reduction, ignore_index, label_smoothing):
        x = _as_ncd(input)
        y, valid, w_y = _targets(input, target, weight, ignore_index)
        n, c, d = x.shape
        m, log_sum, picked = (input.new_empty(n, 1, d) for _ in range(3))
        dot = input.new_empty(n, 1, d) if label_smoothing else None
        w = None if weight is None else _class_view(weight)
        scratch = None
        for rows in _blocks(x):
            xb = x[rows]
            if scratch is None or scratch.shape != xb.shape:
                scratch = torch.empty(xb.shape, dtype=x.dtype)
            torch.amax(xb, 1, keepdim=True, out=m[rows])
            torch.sub(xb, m[rows], out=scratch)  # x - m <= 0: exp cannot overflow
            torch.gather(scratch, 1, y[rows], out=picked[rows])
            if dot is not None:  # sum_c w_c (x_c - m), before scratch is exponentiated
                torch.sum(scratch if w is None else scratch * w, 1, keepdim=True, out=dot[rows])
            torch.sum(scratch.exp_(), 1, keepdim=True, out=log_sum[rows]).log_()
        # -log p_y = log_sum - (x_y - m): ATen's order, so the digits survive large logits
        nll = torch.where(valid, (log_sum - picked) * w_y, 0)
        smooth = None
        if dot is not None:
            total_w = c if weight is None else weight.sum()
            smooth = torch.where(valid, total_w * log_sum - dot, 0)
        loss = _class_index_reduce(nll, smooth, w_y, reduction, label_smoothing, c,
                                   _row_shape(input))
        return loss, m, log_sum

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction, ctx.ignore_index, ctx.eps = inputs
        _, m, log_sum = output
        ctx.mark_non_differentiable(m, log_sum)
        ctx.save_for_backward(input, target, weight, m, log_sum)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, _grad_m, _grad_log_sum):
        input, target, weight, m, log_sum = ctx.saved_tensors
        eps = ctx.eps
        x = _as_ncd(input)
        n, c, d = x.shape
        y, valid, w_y = _targets(input, target, weight, ctx.ignore_index)
        # where, not a product: an all-ignored 'mean' has grad_output / 0 = inf; its gradient is 0
        r = torch.where(valid, _rows_grad(grad_output, ctx.reduction, x.shape, w_y.sum()), 0)
        total_w = c if weight is None else weight.sum()
        scale = r * ((1 - eps) * w_y + (eps / c) * total_w)
        # Whole-tensor passes: on a shared machine many small multi-threaded ops cost more
        # in thread hand-offs than the cache saves. p = e^{(x - m) - log sum}, rounded as
        # ATen rounds e^{log_softmax}: e^{x - m} / sum is a pass shorter but not torch's digits.
        grad = torch.sub(x, m)  # the one N x C buffer
        grad.sub_(log_sum).exp_().mul_(scale)
        grad.scatter_add_(1, y, r * w_y * -(1 - eps))
        if eps and weight is None:
            grad.sub_(r * (eps / c))
        elif eps:
            grad.addcmul_(r, _class_view(weight), value=-eps / c)
        return grad.reshape(input.shape), None, None, None, None, None


class SoftCrossEntropyFunction(Function):
    r"""Cross-entropy of logits and class probabilities :math:`t`, smoothing :math:`\varepsilon`.

    With :math:`t' = (1-\varepsilon) t + \varepsilon / C`,
    :math:`\log p = \operatorname{log\_softmax}(x_n)` and class weights :math:`w` (default ones):

    .. math::
        l_n = -\sum_c w_c t'_{n,c} \log p_{n,c}, \qquad
        \frac{\partial l_n}{\partial x_{n,c}} = p_{n,c} \sum_k w_k t'_{n,k} - w_c t'_{n,c}

    .. math::
        \frac{\partial l_n}{\partial t_{n,c}} = -(1-\varepsilon) w_c \log p_{n,c}, \qquad
        \frac{\partial L}{\partial w_c} = -\sum_n g_n t'_{n,c} \log p_{n,c}

    ``mean`` divides by the number of positions :math:`N d_1 \cdots d_k`
    (not by the weights: torch's rule for probability targets). Saved: the
    logits, targets, weight and the two row statistics.
    """

    @staticmethod
    def forward(input, target, weight, reduction, label_smoothing):
        x, t = _as_ncd(input), _as_ncd(target)
        n, c, d = x.shape
        w = None if weight is None else _class_view(weight)
        dtype = torch.promote_types(torch.promote_types(input.dtype, target.dtype),
                                    input.dtype if weight is None else weight.dtype)
        m, log_sum = input.new_empty(n, 1, d), input.new_empty(n, 1, d)
        rows_loss = torch.empty(n, 1, d, dtype=dtype)
        for rows in _blocks(x):
            log_p = _block_log_p(x[rows], m[rows], log_sum[rows], fill_stats=True)
            terms = log_p * _smoothed(t[rows], label_smoothing, c, None)  # ATen: (log p * t') * w
            terms = terms if w is None else terms * w
            torch.sum(terms, 1, keepdim=True, out=rows_loss[rows]).neg_()
        # 'mean' divides by the number of positions (0 / 0 = nan for an empty batch, as in torch)
        loss = reduce(rows_loss, reduction, n * d)
        return (loss.reshape(_row_shape(input)) if reduction == "none" else loss), m, log_sum

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction, ctx.eps = inputs
        _, m, log_sum = output
        ctx.mark_non_differentiable(m, log_sum)
        ctx.save_for_backward(input, target, weight, m, log_sum)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, _grad_m, _grad_log_sum):
        input, target, weight, m, log_sum = ctx.saved_tensors
        eps = ctx.eps
        x, t = _as_ncd(input), _as_ncd(target)
        n, c, d = x.shape
        w = None if weight is None else _class_view(weight)
        r = _rows_grad(grad_output, ctx.reduction, x.shape, n * d)
        need_x, need_t, need_w = ctx.needs_input_grad[:3]
        grad = torch.empty(x.shape, dtype=x.dtype) if need_x else None
        grad_t = torch.empty(t.shape, dtype=target.dtype) if need_t else None
        grad_w = torch.zeros(c, dtype=weight.dtype) if need_w else None
        for rows in _blocks(x):
            r_b = r[rows] if r.dim() else r
            wt = _smoothed(t[rows], eps, c, w)  # w_c t'_c
            if need_x:
                gb = grad[rows]
                torch.sub(x[rows], m[rows], out=gb).sub_(log_sum[rows]).exp_()  # p, in place
                gb.mul_(wt.sum(1, keepdim=True)).sub_(wt).mul_(r_b)
            if need_t or need_w:
                log_p = _block_log_p(x[rows], m[rows], log_sum[rows])
                if need_t:
                    g_t = log_p * r_b * -(1 - eps)
                    grad_t[rows] = g_t if w is None else g_t * w
                if need_w:
                    grad_w -= (_smoothed(t[rows], eps, c, None) * log_p * r_b).sum((0, 2))
        return (None if grad is None else grad.reshape(input.shape),
                None if grad_t is None else grad_t.reshape(target.shape), grad_w, None, None)


def _block_log_p(xb: Tensor, m: Tensor, log_sum: Tensor, fill_stats: bool = False) -> Tensor:
    """:math:`\\log p = (x - m) - \\log\\sum e^{x - m}` for one block.

    ``fill_stats``: first compute ``m`` and ``log_sum`` (written in place)."""
    if fill_stats:
        torch.amax(xb, 1, keepdim=True, out=m)
        shifted = xb - m
        torch.sum(shifted.exp(), 1, keepdim=True, out=log_sum).log_()
        return shifted.sub_(log_sum)
    return (xb - m).sub_(log_sum)


def _smoothed(t: Tensor, eps: float, n_classes: int, w: Tensor | None) -> Tensor:
    """:math:`w_c t'_c` with :math:`t' = (1-\\varepsilon)t + \\varepsilon/C` (in ATen's order)."""
    if eps:
        t = t * (1 - eps) + eps / n_classes
    return t if w is None else t * w


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Negative log-likelihood loss, like :func:`torch.nn.functional.nll_loss`.

    .. math::
        l_n = -w_{y_n} x_{n, y_n} \cdot \mathbb{1}[y_n \ne \text{ignore\_index}]

    ``'mean'`` returns :math:`\sum_n l_n / \sum_n w_{y_n} \mathbb{1}[y_n \ne \text{ignore\_index}]`,
    ``'sum'`` returns :math:`\sum_n l_n`, ``'none'`` returns every :math:`l_n`.

    Args:
        input: log-probabilities :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_k)`.
        target: class indices (int64; uint8 also for 1-d and 2-d inputs).
        weight: per-class rescaling :math:`(C)`.
        ignore_index: a target value that contributes neither loss nor gradient.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        target :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots, d_k)`; output scalar,
        or the target's shape for ``'none'``.

    Examples:
        >>> nll_loss(torch.tensor([[-0.5, -1.0]]), torch.tensor([1]))
        tensor(1.)

    See :class:`NLLLossFunction` for the gradient.
    """
    reduction = _reduction.resolve(size_average, reduce, reduction)
    check_class_target("nll_loss", input, target, weight, ignore_index)
    require_floating("input", "nll_loss", input, complex_ok=False)
    return NLLLossFunction.apply(input, target, weight, reduction, ignore_index)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    r"""Cross-entropy between logits and targets, like :func:`torch.nn.functional.cross_entropy`.

    For class indices :math:`y_n` (:math:`\mathbb{1}_n = \mathbb{1}[y_n \ne \text{ignore\_index}]`):

    .. math::
        l_n = -w_{y_n} \log \frac{e^{x_{n,y_n}}}{\sum_c e^{x_{n,c}}} \cdot \mathbb{1}_n

    and for class probabilities :math:`t_{n,c}`:
    :math:`l_n = -\sum_c w_c t_{n,c} \log \operatorname{softmax}(x_n)_c`.
    With ``label_smoothing`` :math:`\varepsilon > 0` the target is mixed with the
    uniform distribution: :math:`(1-\varepsilon)` of the loss above plus
    :math:`\frac{\varepsilon}{C} \sum_c w_c (-\log p_c)` (class indices), or
    :math:`t' = (1-\varepsilon) t + \varepsilon / C` (probabilities).
    ``'mean'`` divides by :math:`\sum_n w_{y_n} \mathbb{1}_n` for class indices
    (nan when every target is ignored) and by the number of positions for
    probabilities; ``'sum'`` adds; ``'none'`` returns every :math:`l_n`.

    Args:
        input: logits :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_k)`.
        target: class indices, or probabilities of the input's shape (floating point).
        weight: per-class rescaling :math:`(C)`.
        ignore_index: a class index that contributes neither loss nor gradient
            (probability targets only accept a negative value).
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        label_smoothing: :math:`\varepsilon \le 1`; like torch, values :math:`\le 0` mean none.

    Shape:
        target :math:`()`, :math:`(N)`, :math:`(N, d_1, \dots, d_k)` (indices) or the
        input's shape (probabilities); output scalar, or the input's shape without
        the class dimension for ``'none'``.

    Examples:
        >>> cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
        tensor(0.1269)

    See :class:`CrossEntropyFunction` and :class:`SoftCrossEntropyFunction` for the gradients.
    """
    reduction = _reduction.resolve(size_average, reduce, reduction)
    shapes = f"input of shape {tuple(input.shape)}, target of shape {tuple(target.shape)}"
    eps = float(label_smoothing) if label_smoothing > 0.0 else 0.0  # torch: eps <= 0, nan: none
    if eps > 1.0:
        raise RuntimeError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, "
                           f"got {label_smoothing}")
    if input.shape == target.shape:  # same shape: class probabilities
        check_probability_target(input, target, weight, ignore_index, shapes)
        check_class_dim(input, shapes)
        return SoftCrossEntropyFunction.apply(input, target, weight, reduction, eps)[0]
    check_class_dim(input, shapes)
    check_class_target("cross_entropy", input, target, weight, ignore_index)
    if eps and reduction == "none" and input.dim() == 1 and target.dim() == 1:
        # torch 2.13 cannot add its () smoothing term into the (1,)-shaped nll here
        raise RuntimeError(f"cross_entropy: label_smoothing with reduction='none' needs a 0-d "
                           "target for a 1-d input (torch cannot broadcast the loss), "
                           f"got {shapes}")
    if eps and weight is not None and weight.dim() != 1:
        raise RuntimeError(f"cross_entropy: label_smoothing needs a 1-d weight of shape "
                           f"({input.shape[1]},), got weight of shape {tuple(weight.shape)}")
    return CrossEntropyFunction.apply(input, target, weight, reduction, ignore_index, eps)[0]
