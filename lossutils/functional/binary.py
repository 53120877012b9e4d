"""Binary cross-entropy, on probabilities and on logits.

``binary_cross_entropy`` takes probabilities and clamps each log at -100, as
torch does, so a probability of exactly 0 or 1 costs 100, not infinity.
``binary_cross_entropy_with_logits`` takes logits and never forms
:math:`\\sigma(x)` before the log: :math:`\\log\\sigma(x) = \\min(x, 0) - \\log(1 + e^{-|x|})`
stays finite for every finite :math:`x`.

Neither differentiates ``weight`` or ``pos_weight``: torch refuses them when
they require grad, and so does this module. Both differentiate ``target``.

Each Function computes in two forms that give the same numbers. The usual
forward and ``loss.backward()`` (plain tensors, grad mode off in backward)
build every elementwise term in place, in at most two fresh buffers, with
torch's order of operations; anything else (``create_graph=True``, a
``torch.func`` transform, ``torch.compile``) runs the same formulas in
differentiable out-of-place ops, so autograd records the backward and second
derivatives are the derivatives of the hand-written first ones. float16 and
bfloat16 arguments are computed in float32 and rounded once.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast, _reduction
from .._autograd import apply, fast_path, plain, transformable
from .._checks import refuse_grad
from .._precision import rounded, upcast
from .._reduction import reduce, reduction_grad
from .._sigmoid import log_sigmoid
from . import _binary_checks as checks

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]

# torch's floor under (1 - x) x in BCE's input gradient (ATen's EPSILON), and under each log.
_EPSILON = 1e-12
_LOG_FLOOR = -100.0


def _scaled(grad: Tensor, scale: Tensor, weight: Tensor | None, in_place: bool) -> Tensor:
    """``grad * scale * weight`` (the incoming gradient through the reduction, then the
    elementwise weight), in place on a fresh ``grad`` when nothing records it and the
    product keeps ``grad``'s dtype (else out of place, promoted, as torch's is)."""
    dtype = grad.dtype
    if in_place and all(torch.promote_types(dtype, t.dtype) == dtype
                        for t in (scale, weight) if t is not None):
        grad.mul_(scale)
        return grad if weight is None else grad.mul_(weight)
    grad = grad * scale
    return grad if weight is None else grad * weight


def _bce_terms_in_place(x: Tensor, y: Tensor) -> Tensor:
    r"""ATen's kernel, term by term in two fresh buffers (one returned):
    :math:`(y - 1) \max(\log(1 - x), -100) - y \max(\log x, -100)`."""
    log_1mx = torch.neg(x).log1p_().clamp_(min=_LOG_FLOOR)
    loss = torch.sub(y, 1).mul_(log_1mx)
    return loss.addcmul_(y, torch.log(x, out=log_1mx).clamp_(min=_LOG_FLOOR), value=-1)


def _bce_input_slope_in_place(x: Tensor, y: Tensor) -> Tensor:
    r""":math:`(x - y) / \max((1 - x) x, 10^{-12})` in one fresh buffer, the floor built for
    half the rows at a time: torch's kernel holds one gradient-sized buffer, and two would be
    more than its peak memory."""
    slope = torch.sub(x, y)
    if x.dim() and x.shape[0] == 1 and x.is_contiguous():
        slope, x = slope.view(-1), x.view(-1)  # a single row: halve its elements instead
    if not x.dim() or x.shape[0] == 1:
        return slope.div_(torch.rsub(x, 1).mul_(x).clamp_(min=_EPSILON)).view_as(y)
    half = (x.shape[0] + 1) // 2
    for part in (slice(None, half), slice(half, None)):
        x_part = x[part]
        slope[part].div_(torch.rsub(x_part, 1).mul_(x_part).clamp_(min=_EPSILON))
    return slope.view_as(y)


def _bce_slopes(x: Tensor, y: Tensor, need: tuple[bool, bool], in_place: bool):
    r""":math:`\partial l_n / \partial x_n` and :math:`\partial l_n / \partial y_n` without the
    weight: :math:`(x - y) / \max((1 - x) x, 10^{-12})` and :math:`-\operatorname{logit}(x)`."""
    slope_x = slope_y = None
    if need[0] and in_place:
        slope_x = _bce_input_slope_in_place(x, y)
    elif need[0]:
        slope_x = (x - y) / ((1 - x) * x).clamp(min=_EPSILON)
    if need[1]:
        slope_y = torch.logit(x).neg_() if in_place else -torch.logit(x)
    return slope_x, slope_y


@transformable
class BinaryCrossEntropyFunction(Function):
    r"""Binary cross-entropy on probabilities :math:`x_n \in [0, 1]`.

    .. math::
        l_n = -w_n \big[y_n \max(\log x_n, -100) + (1 - y_n) \max(\log(1 - x_n), -100)\big]

    .. math::
        \frac{\partial l_n}{\partial x_n}
            = w_n \frac{x_n - y_n}{\max\big((1 - x_n) x_n, 10^{-12}\big)},
        \qquad
        \frac{\partial l_n}{\partial y_n} = -w_n \log\frac{x_n}{1 - x_n}

    The clamp at -100 keeps the loss finite at :math:`x_n \in \{0, 1\}`; the
    :math:`10^{-12}` floor does the same for the input gradient (which then
    reaches :math:`\pm 10^{12}`). The target gradient is the unclamped logit,
    :math:`\pm\infty` at the ends, exactly as torch's. ``weight`` is not
    differentiated. The second derivatives are those of the two formulas above:
    :math:`\partial^2 l_n / \partial x_n^2 = w_n (x_n^2 - 2 x_n y_n + y_n) / ((1 - x_n) x_n)^2`,
    :math:`\partial^2 l_n / \partial x_n \partial y_n = -w_n / ((1 - x_n) x_n)`, as torch's
    (which puts its :math:`10^{-12}` elsewhere: the two differ only within
    :math:`10^{-12}` of 0 and 1).
    """

    @staticmethod
    def forward(input, target, weight, reduction):
        x, y, w = upcast(input), upcast(target), upcast(weight)  # float32 for halves
        if plain(input, target, weight):
            loss = _bce_terms_in_place(x, y)
            if w is not None:
                loss.mul_(w)  # in place, as torch: the loss keeps its dtype
        else:
            log_x = torch.log(x).clamp(min=_LOG_FLOOR)
            loss = (y - 1) * torch.log1p(-x).clamp(min=_LOG_FLOOR) - y * log_x
            if w is not None:
                loss = (loss * w).to(loss.dtype)
        return rounded(reduce(loss, reduction), input.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction = inputs
        ctx.save_for_backward(input, target, weight)
        ctx.save_for_forward(input, target, weight)

    @staticmethod
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        x, y, w = upcast(input), upcast(target), upcast(weight)
        fast = fast_path(grad_output, input, target, weight)
        scale = reduction_grad(upcast(grad_output), ctx.reduction, x.numel())
        slopes = _bce_slopes(x, y, ctx.needs_input_grad[:2], fast)
        grad_input, grad_target = (None if s is None else _scaled(s, scale, w, fast)
                                   for s in slopes)
        return grad_input, grad_target, None, None

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, *_):
        input, target, weight = ctx.saved_tensors
        tangents = (input_tangent, target_tangent)
        need = tuple(t is not None for t in tangents)
        if not any(need):
            return None
        x, y, w = upcast(input), upcast(target), upcast(weight)
        terms = sum(s * upcast(t) for s, t in zip(_bce_slopes(x, y, need, False), tangents,
                                                   strict=True) if s is not None)
        terms = terms if w is None else terms * w
        return reduce(terms, ctx.reduction).to(input.dtype)


def _logits_terms_in_place(x: Tensor, y: Tensor, pos_weight: Tensor | None) -> Tensor:
    r"""ATen's order in two fresh buffers (one returned): :math:`\log\sigma(x) = \min(x, 0)
    - \log(1 + e^{-|x|})`, then :math:`(1 - y) x - (1 + (p - 1) y) \log\sigma(x)`."""
    log1p_exp = torch.abs(x).neg_().exp_().log1p_()
    log_sig = torch.clamp(x, max=0).sub_(log1p_exp)
    if pos_weight is not None:
        log_sig.mul_((pos_weight - 1).mul(y).add_(1))
    return torch.neg(y, out=log1p_exp).add_(1).mul_(x).sub_(log_sig)


def _logits_slopes(x: Tensor, y: Tensor, pos_weight: Tensor | None, need: tuple[bool, bool],
                   in_place: bool):
    r""":math:`\partial l_n / \partial x_n` and :math:`\partial l_n / \partial y_n` without the
    weight, as ATen's backward computes them: :math:`\sigma(x) - y`, or with ``pos_weight``
    :math:`p`, :math:`(p y + 1 - y)\sigma(x) - p y`; and :math:`-x`, or
    :math:`\log\sigma(-x) - p \log\sigma(x)`."""
    slope_x = slope_y = None
    if need[0] and pos_weight is None:
        slope_x = torch.sigmoid(x).sub_(y) if in_place else torch.sigmoid(x) - y
    elif need[0]:
        positive = pos_weight * y
        if in_place:
            slope_x = (positive + 1).sub_(y).mul_(torch.sigmoid(x)).sub_(positive)
        else:
            slope_x = (positive + 1 - y) * torch.sigmoid(x) - positive
    if need[1]:
        slope_y = -x if pos_weight is None else log_sigmoid(-x) - pos_weight * log_sigmoid(x)
    return slope_x, slope_y


@transformable
class BinaryCrossEntropyWithLogitsFunction(Function):
    r"""Binary cross-entropy on logits :math:`x_n`, with ``pos_weight`` :math:`p`.

    .. math::
        l_n = w_n \big[(1 - y_n)\, x_n - (1 + (p - 1)\, y_n) \log\sigma(x_n)\big]

    (for :math:`p = 1`: :math:`\max(x_n, 0) - x_n y_n + \log(1 + e^{-|x_n|})`), and

    .. math::
        \frac{\partial l_n}{\partial x_n} = w_n \big[(p y_n + 1 - y_n)\, \sigma(x_n) - p y_n\big],
        \qquad
        \frac{\partial l_n}{\partial y_n} = w_n \big[\log\sigma(-x_n) - p \log\sigma(x_n)\big]

    which is :math:`w_n(\sigma(x_n) - y_n)` and :math:`-w_n x_n` without ``pos_weight``.
    Their derivatives are the second derivatives:
    :math:`\partial^2 l_n / \partial x_n^2 = w_n (p y_n + 1 - y_n) \sigma(x_n) \sigma(-x_n)`,
    :math:`\partial^2 l_n / \partial x_n \partial y_n = w_n [(p - 1) \sigma(x_n) - p]`.
    The loss takes ``target``'s dtype, as torch's in-place arithmetic does.
    ``weight`` and ``pos_weight`` are not differentiated.
    """

    @staticmethod
    def forward(input, target, weight, pos_weight, reduction):
        x, y, w, p = upcast(input), upcast(target), upcast(weight), upcast(pos_weight)
        if plain(input, target, weight, pos_weight) and x.dtype == y.dtype:
            loss = _logits_terms_in_place(x, y, p)
            if w is not None:
                loss.mul_(w)
        else:
            # torch builds the loss in place on (1 - target), so every step rounds to target's
            # dtype, and the pos_weight factor to input's: the casts mirror that for mixed dtypes
            log_sig = log_sigmoid(x)
            if p is not None:
                log_sig = (log_sig * ((p - 1) * y + 1)).to(x.dtype)
            loss = ((1 - y) * x).to(y.dtype)
            loss = (loss - log_sig).to(y.dtype)
            if w is not None:
                loss = (loss * w).to(y.dtype)
        return rounded(reduce(loss, reduction), target.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, pos_weight, ctx.reduction = inputs
        ctx.save_for_backward(input, target, weight, pos_weight)
        ctx.save_for_forward(input, target, weight, pos_weight)
        ctx.dtype = output.dtype

    @staticmethod
    def backward(ctx, grad_output):
        saved = ctx.saved_tensors
        x, y, w, p = (upcast(t) for t in saved)
        fast = fast_path(grad_output, *saved)
        scale = reduction_grad(upcast(grad_output), ctx.reduction, x.numel())
        slopes = _logits_slopes(x, y, p, ctx.needs_input_grad[:2], fast)
        grad_input, grad_target = (None if s is None else _scaled(s, scale, w, fast)
                                   for s in slopes)
        return grad_input, grad_target, None, None, None

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, *_):
        tangents = (input_tangent, target_tangent)
        need = tuple(t is not None for t in tangents)
        if not any(need):
            return None
        x, y, w, p = (upcast(t) for t in ctx.saved_tensors)
        terms = sum(s * upcast(t) for s, t in zip(_logits_slopes(x, y, p, need, False), tangents,
                                                   strict=True) if s is not None)
        terms = terms if w is None else terms * w
        return reduce(terms, ctx.reduction).to(ctx.dtype)


# ----------------------------------------------------------------------------
# Functional wrappers (torch 2.13 signatures)
# ----------------------------------------------------------------------------


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Binary cross-entropy between probabilities ``input`` and ``target``, like
    :func:`torch.nn.functional.binary_cross_entropy`.

    :math:`l_n = -w_n [y_n \log x_n + (1 - y_n) \log(1 - x_n)]`, each log clamped
    at -100. ``input`` and ``target`` must have the same size and dtype and lie
    in :math:`[0, 1]`; ``weight`` broadcasts to their shape. See
    :class:`BinaryCrossEntropyFunction` for the gradients.

    Under CUDA autocast it raises, as torch does (torch bans it there: use
    :func:`binary_cross_entropy_with_logits`); under CPU autocast it computes in float32.

    Examples:
        >>> binary_cross_entropy(torch.tensor([0.8, 0.0]), torch.tensor([1.0, 0.0]))
        tensor(0.1116)
    """
    op = "binary_cross_entropy"
    reduction = _reduction.resolve(size_average, reduce, reduction)
    checks.check_same_size(input, target, op)
    weight = checks.expand_weight(weight, target, op)
    (input, target, weight), _ = _autocast.cast(op, input, target, weight)
    refuse_grad(op, "weight", weight)
    checks.check_probability_dtypes(input, target, op)
    checks.check_probabilities(input=input, target=target)
    checks.check_fits("weight", weight, input.shape, op)
    return apply(BinaryCrossEntropyFunction, input, target, weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    r"""Binary cross-entropy on logits, like
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`.

    :math:`l_n = w_n [(1 - y_n) x_n - (1 + (p - 1) y_n) \log\sigma(x_n)]`, stable for
    any finite logit. ``target`` must have ``input``'s size (any real values are
    accepted); ``weight`` and ``pos_weight`` broadcast to it (``pos_weight`` of
    shape ``(C,)`` weighs the positives of class ``c`` along the last dim).
    See :class:`BinaryCrossEntropyWithLogitsFunction` for the gradients.

    Examples:
        >>> binary_cross_entropy_with_logits(torch.tensor([1000.0, -2.0]), torch.tensor([1.0, 0.0]))
        tensor(0.0635)
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction.resolve(size_average, reduce, reduction)
    checks.check_same_size(input, target, op)
    (input, target, weight, pos_weight), _ = _autocast.cast(op, input, target, weight,
                                                            pos_weight)
    refuse_grad(op, "weight", weight)
    refuse_grad(op, "pos_weight", pos_weight)
    checks.check_logit_dtypes(input, target, op)
    checks.check_fits("pos_weight", pos_weight, input.shape, op, target)
    checks.check_fits("weight", weight, input.shape, op)
    return apply(BinaryCrossEntropyWithLogitsFunction, input, target, weight, pos_weight,
                 reduction)
