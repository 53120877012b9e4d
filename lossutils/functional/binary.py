"""Binary cross-entropy, on probabilities and on logits.

``binary_cross_entropy`` takes probabilities and clamps each log at -100, as
torch does, so a probability of exactly 0 or 1 costs 100, not infinity.
``binary_cross_entropy_with_logits`` takes logits and never forms
:math:`\\sigma(x)` before the log: :math:`\\log\\sigma(x) = \\min(x, 0) - \\log(1 + e^{-|x|})`
stays finite for every finite :math:`x`.

Neither differentiates ``weight`` or ``pos_weight``: torch refuses them when
they require grad, and so does this module. Both differentiate ``target``.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _reduction
from .._autograd import once_differentiable
from .._checks import dtype_name, refuse_grad
from .._reduction import reduce, reduction_grad
from .._sigmoid import log_sigmoid, sigmoid

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]

# torch's floor under (1 - x) x in BCE's input gradient (ATen's EPSILON).
_EPSILON = 1e-12


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
    differentiated.
    """

    @staticmethod
    def forward(input, target, weight, reduction):
        log_x = torch.log(input).clamp(min=-100)
        log_1mx = torch.log1p(-input).clamp(min=-100)
        loss = (target - 1) * log_1mx - target * log_x
        if weight is not None:
            loss = (loss * weight).to(input.dtype)  # torch multiplies in place: input's dtype stays
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, reduction = inputs
        ctx.save_for_backward(input, target, weight)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        scale = reduction_grad(grad_output, ctx.reduction, input.numel())
        if weight is not None:
            scale = scale * weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            floor = ((1 - input) * input).clamp(min=_EPSILON)
            grad_input = (input - target) / floor * scale
        if ctx.needs_input_grad[1]:
            grad_target = -torch.log(input / (1 - input)) * scale
        return grad_input, grad_target, None, None


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
    The loss takes ``target``'s dtype, as torch's in-place arithmetic does.
    ``weight`` and ``pos_weight`` are not differentiated.
    """

    @staticmethod
    def forward(input, target, weight, pos_weight, reduction):
        # torch builds the loss in place on (1 - target), so every step rounds to target's
        # dtype, and the pos_weight factor to input's: the casts mirror that for mixed dtypes.
        log_sig = log_sigmoid(input)
        if pos_weight is not None:
            log_sig = (log_sig * ((pos_weight - 1) * target + 1)).to(input.dtype)
        loss = ((1 - target) * input).to(target.dtype)
        loss = (loss - log_sig).to(target.dtype)
        if weight is not None:
            loss = (loss * weight).to(target.dtype)
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, pos_weight, reduction = inputs
        ctx.save_for_backward(input, target, weight, pos_weight)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, weight, pos_weight = ctx.saved_tensors
        scale = reduction_grad(grad_output, ctx.reduction, input.numel())
        if weight is not None:
            scale = scale * weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            if pos_weight is None:
                grad_input = (sigmoid(input) - target) * scale
            else:
                positive = pos_weight * target
                grad_input = ((positive + 1 - target) * sigmoid(input) - positive) * scale
        if ctx.needs_input_grad[1]:
            if pos_weight is None:
                grad_target = -input * scale
            else:
                log_odds_term = log_sigmoid(-input) - pos_weight * log_sigmoid(input)
                grad_target = log_odds_term * scale
        return grad_input, grad_target, None, None, None


# ----------------------------------------------------------------------------
# Argument checks (torch's exception types, with the shapes and values named)
# ----------------------------------------------------------------------------


def _check_same_size(input: Tensor, target: Tensor, op: str) -> None:
    if target.size() != input.size():
        raise ValueError(
            f"{op}: target and input must have the same size (torch no longer broadcasts them), "
            f"got target of shape {tuple(target.shape)} and input of shape {tuple(input.shape)}"
        )


def _check_fits(name: str, tensor: Tensor | None, shape: torch.Size, op: str,
                *others: Tensor) -> None:
    """``tensor`` (broadcast with ``others``) must broadcast to ``shape``, the loss's shape,
    without growing it."""
    if tensor is None:
        return
    try:
        full = torch.broadcast_shapes(tensor.shape, *(o.shape for o in others), shape)
    except RuntimeError:
        full = None
    if full != shape:
        raise RuntimeError(
            f"{op}: {name} of shape {tuple(tensor.shape)} does not broadcast to the input's shape "
            f"{tuple(shape)}"
        )


def _check_range(name: str, tensor: Tensor) -> None:
    # NaN fails both comparisons, so it is rejected too, as in torch's kernel.
    bad = ~((tensor >= 0) & (tensor <= 1))
    if bad.any():
        value = tensor[bad].flatten()[0].item()
        raise RuntimeError(f"all elements of {name} should be between 0 and 1, "
                           f"got {value} in {name}")


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

    Examples:
        >>> binary_cross_entropy(torch.tensor([0.8, 0.0]), torch.tensor([1.0, 0.0]))
        tensor(0.1116)
    """
    op = "binary_cross_entropy"
    reduction = _reduction.resolve(size_average, reduce, reduction)
    _check_same_size(input, target, op)
    if weight is not None:
        try:
            weight = weight.expand(torch.broadcast_shapes(target.size(), weight.size()))
        except RuntimeError:
            raise RuntimeError(
                f"{op}: weight of shape {tuple(weight.shape)} does not broadcast to the "
                f"target's shape {tuple(target.shape)}"
            ) from None
    refuse_grad(op, "weight", weight)
    if target.dtype != input.dtype:
        raise RuntimeError(
            f"Found dtype {dtype_name(target.dtype)} but expected {dtype_name(input.dtype)}: "
            f"{op} needs target of input's dtype ({input.dtype}), got {target.dtype}"
        )
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"{op}" not implemented for {dtype_name(input.dtype)!r}: input must be a '
            f"floating-point tensor of probabilities, got dtype {input.dtype}"
        )
    _check_range("input", input)
    _check_range("target", target)
    _check_fits("weight", weight, input.shape, op)
    return BinaryCrossEntropyFunction.apply(input, target, weight, reduction)


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
    _check_same_size(input, target, op)
    refuse_grad(op, "weight", weight)
    refuse_grad(op, "pos_weight", pos_weight)
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"log_sigmoid_cpu" not implemented for {dtype_name(input.dtype)!r}: {op} needs '
            f"floating-point logits, got input of dtype {input.dtype}"
        )
    if not target.is_floating_point():
        raise RuntimeError(
            f"result type {dtype_name(torch.promote_types(input.dtype, target.dtype))} can't be "
            f"cast to the desired output type {dtype_name(target.dtype)}: {op} computes in "
            f"target's dtype, so target must be floating-point, got {target.dtype}"
        )
    _check_fits("pos_weight", pos_weight, input.shape, op, target)
    _check_fits("weight", weight, input.shape, op)
    return BinaryCrossEntropyWithLogitsFunction.apply(input, target, weight, pos_weight, reduction)
