"""Negative log-likelihood and cross-entropy, for class indices and class probabilities.

Defined in :doc:`/chapters/03_1_backward`, its options in :doc:`/chapters/03_3_in_practice`
and its memory budget in :doc:`/chapters/07_llm_scale`.

Every input is looked at as a 3-d tensor ``(N, C, D)``: a 1-d input ``(C,)`` is
``(1, C, 1)``, ``(N, C)`` is ``(N, C, 1)`` and ``(N, C, d1, ..., dk)`` is
``(N, C, d1 * ... * dk)``, so one code path serves torch's three input layouts;
the class dimension is always 1 (:mod:`~lossutils.functional._cross_entropy_layout`).

The cross-entropy Functions are memory-lean: in the usual forward and
backward they never hold an ``N x C`` tensor of log-probabilities
(:mod:`~lossutils.functional._cross_entropy_passes`): forward keeps two
numbers per row, the maximum :math:`m` and :math:`\\log\\sum_c e^{x_c - m}`
(together the log-sum-exp; kept apart because :math:`m + \\log\\sum` rounds away
digits when :math:`m \\approx 10^4` in float32, see pytorch issue 11752), and
backward builds the gradient in its own buffer. When the backward is itself
recorded (``create_graph=True``: second derivatives) or runs under a
``torch.func`` transform or ``torch.compile``, it is the same formula in
differentiable ops, with :math:`\\log p` recomputed from the logits
(:func:`~lossutils.functional.softmax.log_probabilities`): the saved :math:`m` and
:math:`\\log\\sum` are constants to autograd and would drop the terms of the second
derivative that flow through them.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast, _reduction
from .._autograd import apply, fast_path, plain, transformable
from .._checks import require_floating
from .._exp import exp_
from .._precision import opmath, rounded, upcast
from .._reduction import reduce, scalar_quotient
from . import _cross_entropy_passes as passes
from ._cross_entropy_checks import (
    Shapes,
    check_class_dim,
    check_class_shapes,
    check_class_values,
    check_probability_target,
    unchecked_targets,
)
from ._cross_entropy_layout import (
    _ONE_HOT_DTYPES,
    _as_ncd,
    _blocks,
    _class_index_reduce,
    _class_index_slope,
    _class_view,
    _ncd_shape,
    _one_hot_grad,
    _row_shape,
    _rows_grad,
    _targets,
    _unmasked,
)
from .softmax import log_probabilities

__all__ = ["nll_loss", "cross_entropy"]


@transformable
class NLLLossFunction(Function):
    r"""Negative log-likelihood of class indices.

    .. math::
        l_n = -w_{y_n} x_{n, y_n} \mathbb{1}_n, \qquad
        \frac{\partial l_n}{\partial x_{n,c}} = -w_{y_n} \mathbb{1}[c = y_n] \mathbb{1}_n, \qquad
        \mathbb{1}_n = \mathbb{1}[y_n \ne \text{ignore\_index}]

    ``mean`` divides by :math:`\sum_n w_{y_n}` over the non-ignored positions
    (nan when there are none, like torch). Only the targets are saved. The loss
    is linear in :math:`x`: its second derivative is zero, the gradient is linear
    in the incoming gradient, and the forward-mode derivative is the loss of the
    tangent.
    """

    @staticmethod
    def forward(input, target, weight, reduction, ignore_index):
        if ignore_index is None and weight is None and target.dtype == torch.long \
                and input.dtype in _ONE_HOT_DTYPES and plain(input, target):
            # nothing ignored nor weighted: -x_{n,y_n}, the same numbers without the masks
            n, _, d = _ncd_shape(input.shape)
            picked = input.gather(1, target.unsqueeze(1)) if input.dim() == 2 \
                else _as_ncd(input).gather(1, target.reshape(n, 1, d))
            if reduction == "none":
                return picked.neg_().reshape(_row_shape(input))
            # a sum of negated terms is the negated sum, to the last bit (and on the CPU a
            # mean is its sum divided by the count: that quotient, as a number, is made a
            # tensor once, one kernel fewer than mean's)
            if reduction == "sum" or not picked.is_cpu or not picked.numel():
                total = picked.sum()
                return total.neg_() if reduction == "sum" else total / -(n * d)
            mean = scalar_quotient(-picked.sum().item(), n * d, input.dtype)
            return torch.full((), mean, dtype=input.dtype)
        dtype = opmath(input.dtype)
        y, valid, w_y = _targets(input.shape, target, upcast(weight), ignore_index, dtype)
        picked = upcast(_as_ncd(input)).gather(1, y)
        nll = torch.where(valid, -picked * w_y, 0)
        loss = _class_index_reduce(nll, None, w_y, reduction, 0.0, 0, _row_shape(input))
        return rounded(loss, input.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction, ctx.ignore_index = inputs
        ctx.input_shape, ctx.dtype = input.shape, input.dtype
        ctx.save_for_backward(target, weight)
        ctx.save_for_forward(target, weight)

    @staticmethod
    def backward(ctx, grad_output):
        target, weight = ctx.saved_tensors
        if weight is None and ctx.reduction != "none" and ctx.dtype in _ONE_HOT_DTYPES \
                and fast_path(grad_output, target):
            grad = _one_hot_grad(ctx, target, grad_output)
            if grad is not None:
                return grad, None, None, None, None
        grad_output = upcast(grad_output)
        zeros = grad_output.new_zeros(_ncd_shape(ctx.input_shape))
        y, valid, w_y = _targets(ctx.input_shape, target, upcast(weight), ctx.ignore_index,
                                 grad_output.dtype)
        total = w_y.sum() if ctx.reduction == "mean" else None
        r = torch.where(valid, _rows_grad(grad_output, ctx.reduction, zeros.shape, total), 0)
        # -r w_y at each target; out of place where autograd records it (differentiable in r)
        grad = zeros.scatter_(1, y, -(r * w_y)) if fast_path(grad_output) \
            else zeros.scatter(1, y, -(r * w_y))
        return grad.reshape(ctx.input_shape).to(ctx.dtype), None, None, None, None

    @staticmethod
    def jvp(ctx, input_tangent, *_):
        if input_tangent is None:  # only the input is differentiable
            return None
        target, weight = ctx.saved_tensors
        return NLLLossFunction.forward(input_tangent, target, weight, ctx.reduction,
                                       ctx.ignore_index)


@transformable
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
    :math:`\log\sum_c e^{x_c - m}`); the fast backward rebuilds :math:`p` in the
    gradient buffer itself. The differentiable backward (second derivatives,
    transforms) recomputes :math:`\log p` from the logits, and so does ``jvp``:
    :math:`\dot l_n = \sum_c \partial l_n / \partial x_{n,c}\, \dot x_{n,c}`.
    """

    @staticmethod
    def forward(input, target, weight, reduction, ignore_index, label_smoothing):
        x, w = _as_ncd(input), _class_view(upcast(weight))
        n, c, d = x.shape
        dtype = opmath(input.dtype)  # row statistics in float32 for float16/bfloat16 logits
        if _unmasked(ignore_index, weight, label_smoothing, target):  # w_y = 1, all counted
            y, valid, w_y = target.reshape(n, 1, d), None, None
        else:
            y, valid, w_y = _targets(input.shape, target, upcast(weight), ignore_index, dtype)
        blocks = _blocks(x) if plain(input, target, weight) else None
        if blocks is not None and len(blocks) > 1:  # blocks of rows through one scratch buffer
            m, log_sum, picked = (x.new_empty(n, 1, d, dtype=dtype) for _ in range(3))
            dot = x.new_empty(n, 1, d, dtype=dtype) if label_smoothing else None
            scratch = None
            for rows in blocks:
                xb = x[rows]
                if scratch is None or scratch.shape != xb.shape:
                    scratch = xb.new_empty(xb.shape, dtype=dtype)
                if dtype == x.dtype:
                    torch.amax(xb, 1, keepdim=True, out=m[rows])
                else:  # float16/bfloat16: amax's out= must have xb's dtype
                    m[rows] = xb.amax(1, keepdim=True)
                torch.sub(xb, m[rows], out=scratch)  # x - m <= 0: exp cannot overflow
                torch.gather(scratch, 1, y[rows], out=picked[rows])
                if dot is not None:  # sum_c w_c (x_c - m), before scratch is exponentiated
                    torch.sum(scratch if w is None else scratch * w, 1, keepdim=True,
                              out=dot[rows])
                torch.sum(exp_(scratch), 1, keepdim=True, out=log_sum[rows]).log_()
        else:  # the same statistics in whole-tensor ops (what torch.func and compile trace)
            x = upcast(x)
            m = x.amax(1, keepdim=True)
            shifted = x - m
            picked = shifted.gather(1, y)
            dot = (shifted if w is None else shifted * w).sum(1, keepdim=True) \
                if label_smoothing else None
            # one block of plain tensors: exponentiated in place, the buffer is ours
            e = shifted.exp() if blocks is None else exp_(shifted)
            log_sum = e.sum(1, keepdim=True).log()
        # -log p_y = log_sum - (x_y - m): ATen's order, so the digits survive large logits
        if valid is None:  # the same numbers without the mask and the unit weights
            nll = log_sum - picked
            if reduction == "none":
                return rounded(nll.reshape(_row_shape(input)), input.dtype), m, log_sum
            # (the CPU's mean is its sum divided by the count, to the last bit: one op fewer)
            loss = nll.sum() if reduction == "sum" else nll.mean() if nll.is_cpu \
                else nll.sum() / (n * d)
            return rounded(loss, input.dtype), m, log_sum
        nll = torch.where(valid, (log_sum - picked) * w_y, 0)
        smooth = None
        if dot is not None:
            total_w = c if weight is None else upcast(weight).sum()
            smooth = torch.where(valid, total_w * log_sum - dot, 0)
        loss = _class_index_reduce(nll, smooth, w_y, reduction, label_smoothing, c,
                                   _row_shape(input))
        return rounded(loss, input.dtype), m, log_sum

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction, ctx.ignore_index, ctx.eps = inputs
        _, m, log_sum = output
        ctx.mark_non_differentiable(m, log_sum)
        ctx.set_materialize_grads(False)  # no zero gradients made for m and log_sum
        ctx.save_for_backward(input, target, weight, m, log_sum)
        ctx.save_for_forward(input, target, weight)

    @staticmethod
    def backward(ctx, grad_output, _grad_m, _grad_log_sum):
        if grad_output is None:  # the loss was not used (m and log_sum have no gradient)
            return None, None, None, None, None, None
        input, target, weight, m, log_sum = ctx.saved_tensors
        x, eps, grad_output = _as_ncd(input), ctx.eps, upcast(grad_output)
        if _unmasked(ctx.ignore_index, weight, eps, target) and fast_path(grad_output, input):
            # w_y = 1 and nothing ignored: r * w_y is r, the same numbers as below
            n, _, d = x.shape
            y = target.reshape(n, 1, d)
            grad = torch.sub(x, m)
            if ctx.reduction != "none" and grad_output.is_cpu and n * d:
                # r as a number, rounded once to grad's dtype where it is used: the same
                # number as the division in that dtype, without the scalar tensors
                r = grad_output.item() / (n * d if ctx.reduction == "mean" else 1)
                exp_(grad.sub_(log_sum)).mul_(r)
                grad.scatter_(1, y, -r, reduce="add")
            else:
                r = _rows_grad(grad_output, ctx.reduction, x.shape, n * d)
                exp_(grad.sub_(log_sum)).mul_(r)
                grad.scatter_add_(1, y, (-r).expand(n, 1, d))
            return grad.reshape(input.shape).to(input.dtype), None, None, None, None, None
        w, c = _class_view(upcast(weight)), x.shape[1]
        y, valid, w_y = _targets(input.shape, target, upcast(weight), ctx.ignore_index,
                                 grad_output.dtype)
        # where, not a product: an all-ignored 'mean' has grad_output / 0 = inf; its gradient is 0
        total = w_y.sum() if ctx.reduction == "mean" else None
        r = torch.where(valid, _rows_grad(grad_output, ctx.reduction, x.shape, total), 0)
        if not fast_path(grad_output, input):  # recorded, or transformed: differentiable ops
            grad = _class_index_slope(log_probabilities(upcast(x), 1), y, r, w_y, w, eps)
            return grad.reshape(input.shape), None, None, None, None, None
        if eps:
            total_w = c if weight is None else w.sum()
            scale = r * ((1 - eps) * w_y + (eps / c) * total_w)
        else:
            scale = r * w_y
        # Whole-tensor passes: on a shared machine many small multi-threaded ops cost more
        # in thread hand-offs than the cache saves. p = e^{(x - m) - log sum}, formed as ATen
        # forms e^{log_softmax}: e^{x - m} / sum is a pass shorter but not torch's digits.
        grad = torch.sub(x, m)  # the one N x C buffer (float32 for float16/bfloat16 logits)
        exp_(grad.sub_(log_sum)).mul_(scale)
        grad.scatter_add_(1, y, r * w_y * -(1 - eps))
        if eps and weight is None:
            grad.sub_(r * (eps / c))
        elif eps:
            grad.addcmul_(r, w, value=-eps / c)
        return grad.reshape(input.shape).to(input.dtype), None, None, None, None, None

    @staticmethod
    def jvp(ctx, input_tangent, *_):
        if input_tangent is None:  # only the input is differentiable
            return None, None, None
        input, target, weight = ctx.saved_tensors
        x, w = upcast(_as_ncd(input)), _class_view(upcast(weight))
        y, valid, w_y = _targets(input.shape, target, upcast(weight), ctx.ignore_index, x.dtype)
        slope = _class_index_slope(log_probabilities(x, 1), y, valid.to(x.dtype), w_y, w, ctx.eps)
        rows = torch.where(valid, (slope * upcast(_as_ncd(input_tangent))).sum(1, keepdim=True), 0)
        total = w_y.sum() if ctx.reduction == "mean" else None
        loss = reduce(rows, ctx.reduction, total)
        loss = loss.reshape(_row_shape(input)) if ctx.reduction == "none" else loss
        return rounded(loss, input.dtype), None, None


@transformable
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
    logits, targets, weight and the two row statistics. The sums over classes
    run in float32 for float16/bfloat16 arguments (a bfloat16 target's row sum
    :math:`\sum_k w_k t'_{n,k}` keeps its digits).
    """

    @staticmethod
    def forward(input, target, weight, reduction, label_smoothing):
        x, t, w = _as_ncd(input), _as_ncd(target), _class_view(upcast(weight))
        n, c, d = x.shape
        dtype = opmath(input.dtype, target.dtype, *([] if weight is None else [weight.dtype]))
        if plain(input, target, weight):
            m, log_sum, rows_loss = passes.probability_forward(x, t, w, label_smoothing, dtype)
        else:
            x = upcast(x)
            m = x.amax(1, keepdim=True)
            log_sum = (x - m).exp().sum(1, keepdim=True).log()
            terms = ((x - m) - log_sum) * passes.smoothed(t, label_smoothing, c, dtype)
            rows_loss = -(terms if w is None else terms * w).sum(1, keepdim=True)
        # 'mean' divides by the number of positions (0 / 0 = nan for an empty batch, as in torch)
        loss = reduce(rows_loss, reduction, n * d)
        loss = loss.reshape(_row_shape(input)) if reduction == "none" else loss
        dtypes = [input.dtype, target.dtype] + ([] if weight is None else [weight.dtype])
        return rounded(loss, *dtypes), m, log_sum

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction, ctx.eps = inputs
        _, m, log_sum = output
        ctx.mark_non_differentiable(m, log_sum)
        ctx.set_materialize_grads(False)  # no zero gradients made for m and log_sum
        ctx.save_for_backward(input, target, weight, m, log_sum)
        ctx.save_for_forward(input, target, weight)

    @staticmethod
    def backward(ctx, grad_output, _grad_m, _grad_log_sum):
        if grad_output is None:  # the loss was not used (m and log_sum have no gradient)
            return None, None, None, None, None
        input, target, weight, m, log_sum = ctx.saved_tensors
        eps, needs = ctx.eps, ctx.needs_input_grad[:3]
        x, t, w = _as_ncd(input), _as_ncd(target), _class_view(upcast(weight))
        n, c, d = x.shape
        dtype = opmath(input.dtype, target.dtype, *([] if weight is None else [weight.dtype]))
        r = _rows_grad(upcast(grad_output, dtype), ctx.reduction, x.shape, n * d)
        if fast_path(grad_output, input, target):
            grads = passes.probability_backward(x, t, w, m, log_sum, r, eps, dtype, needs)
        else:
            log_p = log_probabilities(upcast(x, dtype), 1)
            t_s = passes.smoothed(t, eps, c, dtype)  # t'
            wt = t_s if w is None else t_s * w
            g_t = -(log_p * r if w is None else log_p * r * w)
            grads = (r * (log_p.exp() * wt.sum(1, keepdim=True) - wt) if needs[0] else None,
                     passes.target_grad(g_t, eps, target.dtype) if needs[1] else None,
                     -(t_s * log_p * r).sum((0, 2)) if needs[2] else None)
        return (*(None if g is None else g.reshape(a.shape).to(a.dtype)
                  for g, a in zip(grads, (input, target, weight), strict=True)), None, None)

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, weight_tangent, *_):
        input, target, weight = ctx.saved_tensors
        eps, c = ctx.eps, _as_ncd(input).shape[1]
        dtype = opmath(input.dtype, target.dtype, *([] if weight is None else [weight.dtype]))
        x, w = upcast(_as_ncd(input), dtype), _class_view(upcast(weight, dtype))
        log_p = log_probabilities(x, 1)
        t_s = passes.smoothed(_as_ncd(target), eps, c, dtype)  # t'
        wt = t_s if w is None else t_s * w
        terms = torch.zeros_like(log_p)
        if input_tangent is not None:  # (p Q - w t') . dx
            terms = terms + (log_p.exp() * wt.sum(1, keepdim=True) - wt) \
                * upcast(_as_ncd(input_tangent), dtype)
        if target_tangent is not None:  # -(1 - eps) w log p . dt
            g_t = log_p * -(1 - eps) * (1 if w is None else w)
            terms = terms + g_t * upcast(_as_ncd(target_tangent), dtype)
        if weight_tangent is not None:  # -t' log p . dw
            terms = terms - t_s * log_p * _class_view(upcast(weight_tangent, dtype))
        n, _, d = log_p.shape
        loss = reduce(terms.sum(1, keepdim=True), ctx.reduction, n * d)
        loss = loss.reshape(_row_shape(input)) if ctx.reduction == "none" else loss
        dtypes = [input.dtype, target.dtype] + ([] if weight is None else [weight.dtype])
        return rounded(loss, *dtypes), None, None


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
    (input, target, weight), _ = _autocast.cast("nll_loss", input, target, weight)
    shapes = Shapes(input, target)
    c = check_class_shapes("nll_loss", input, target, weight, shapes)
    if weight is None and input.dtype in _ONE_HOT_DTYPES \
            and unchecked_targets(input, target, ignore_index, c, 0):  # (gathers N values)
        try:  # a target out of range or ignored makes the forward's gather raise
            return apply(NLLLossFunction, input, target, None, reduction, None)
        except RuntimeError:
            pass  # the values' check says which
    maybe_ignored = check_class_values("nll_loss", target, c, ignore_index, shapes)
    require_floating("input", "nll_loss", input, complex_ok=False)
    # None tells the Function that no target is ignored (its fast paths skip the mask)
    return apply(NLLLossFunction, input, target, weight, reduction,
                 ignore_index if maybe_ignored else None)


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
    (input, target, weight), _ = _autocast.cast("cross_entropy_loss", input, target, weight)
    shapes = Shapes(input, target)
    eps = float(label_smoothing) if label_smoothing > 0.0 else 0.0  # torch: eps <= 0, nan: none
    if eps > 1.0:
        raise RuntimeError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, "
                           f"got {label_smoothing}")
    if input.shape == target.shape:  # same shape: class probabilities
        check_probability_target(input, target, weight, ignore_index, shapes)
        check_class_dim(input, shapes)
        return apply(SoftCrossEntropyFunction, input, target, weight, reduction, eps)[0]
    check_class_dim(input, shapes)
    c = check_class_shapes("cross_entropy", input, target, weight, shapes)
    if not eps and weight is None \
            and unchecked_targets(input, target, ignore_index, c, input.numel()):
        try:  # a target out of range or ignored makes the forward's gather raise
            return apply(CrossEntropyFunction, input, target, None, reduction, None, 0.0)[0]
        except RuntimeError:
            pass  # the values' check says which
    maybe_ignored = check_class_values("cross_entropy", target, c, ignore_index, shapes)
    if eps and reduction == "none" and input.dim() == 1 and target.dim() == 1:
        # torch 2.13 cannot add its () smoothing term into the (1,)-shaped nll here
        raise RuntimeError(f"cross_entropy: label_smoothing with reduction='none' needs a 0-d "
                           "target for a 1-d input (torch cannot broadcast the loss), "
                           f"got {shapes}")
    if eps and weight is not None and weight.dim() != 1:
        raise RuntimeError(f"cross_entropy: label_smoothing needs a 1-d weight of shape "
                           f"({input.shape[1]},), got weight of shape {tuple(weight.shape)}")
    # None tells the Function that no target is ignored (its fast paths skip the mask)
    return apply(CrossEntropyFunction, input, target, weight, reduction,
                 ignore_index if maybe_ignored else None, eps)[0]
