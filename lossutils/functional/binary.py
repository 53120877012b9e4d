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
from .._reduction import reduce
from .regression import _TORCH_DTYPE_NAMES

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]

# torch's floor under (1 - x) x in BCE's input gradient (ATen's EPSILON).
_EPSILON = 1e-12


def _log_sigmoid(x: Tensor) -> Tensor:
    r""":math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`: no overflow for any finite x."""
    return x.clamp(max=0) - torch.log1p(torch.exp(-x.abs()))


def _sigmoid(x: Tensor) -> Tensor:
    # exp(-x) overflows to inf for x < -709 (float64): 1 / inf = 0, the right limit.
    return 1 / (1 + torch.exp(-x))


def _mean_factor(reduction: str, numel: int) -> float:
    return 1 / numel if reduction == "mean" and numel else 1.0


class BinaryCrossEntropyFunction(Function):
    r"""Binary cross-entropy on probabilities :math:`x_n \in [0, 1]`.

    .. math::
        l_n = -w_n \big[y_n \max(\log x_n, -100) + (1 - y_n) \max(\log(1 - x_n), -100)\big]

    .. math::
        \frac{\partial l_n}{\partial x_n} = w_n \frac{x_n - y_n}{\max\big((1 - x_n) x_n, 10^{-12}\big)},
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
        scale = grad_output * _mean_factor(ctx.reduction, input.numel())
        if weight is not None:
            scale = scale * weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_input = (input - target) / ((1 - input) * input).clamp(min=_EPSILON) * scale
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
        log_sig = _log_sigmoid(input)
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
        scale = grad_output * _mean_factor(ctx.reduction, input.numel())
        if weight is not None:
            scale = scale * weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            if pos_weight is None:
                grad_input = (_sigmoid(input) - target) * scale
            else:
                pt = pos_weight * target
                grad_input = ((pt + 1 - target) * _sigmoid(input) - pt) * scale
        if ctx.needs_input_grad[1]:
            if pos_weight is None:
                grad_target = -input * scale
            else:
                grad_target = (_log_sigmoid(-input) - pos_weight * _log_sigmoid(input)) * scale
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


def _check_no_grad(name: str, tensor: Tensor | None, op: str) -> None:
    """torch's autograd refuses a ``weight``/``pos_weight`` that requires grad (when grad mode is on)."""
    if tensor is not None and tensor.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(
            f"The function '{op}' is not differentiable with respect to argument '{name}'. "
            f"This input cannot have requires_grad True: pass {name}.detach()"
        )


def _check_fits(name: str, tensor: Tensor | None, shape: torch.Size, op: str, *others: Tensor) -> None:
    """``tensor`` (broadcast with ``others``) must broadcast to ``shape``, the loss's shape, without growing it."""
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
        raise RuntimeError(f"all elements of {name} should be between 0 and 1, got {value} in {name}")


def _dtype_name(dtype: torch.dtype) -> str:
    return _TORCH_DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


# ----------------------------------------------------------------------------
# Functional wrappers (torch 2.13 signatures)
# ----------------------------------------------------------------------------


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    r"""Binary cross-entropy between probabilities ``input`` and ``target``, like
    :func:`torch.nn.functional.binary_cross_entropy`.

    :math:`l_n = -w_n [y_n \log x_n + (1 - y_n) \log(1 - x_n)]`, each log clamped
    at -100. ``input`` and ``target`` must have the same size and dtype and lie
    in :math:`[0, 1]`; ``weight`` broadcasts to their shape. See
    :class:`BinaryCrossEntropyFunction` for the gradients.
    """
    op = "binary_cross_entropy"
    reduction = _reduction.resolve(size_average, reduce, reduction)
    _check_same_size(input, target, op)
    if weight is not None:
        try:
            weight = weight.expand(torch.broadcast_shapes(target.size(), weight.size()))
        except RuntimeError:
            raise RuntimeError(
                f"{op}: weight of shape {tuple(weight.shape)} does not broadcast to the target's shape "
                f"{tuple(target.shape)}"
            ) from None
    _check_no_grad("weight", weight, op)
    if target.dtype != input.dtype:
        raise RuntimeError(
            f"Found dtype {_dtype_name(target.dtype)} but expected {_dtype_name(input.dtype)}: "
            f"{op} needs target of input's dtype ({input.dtype}), got {target.dtype}"
        )
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"{op}" not implemented for {_dtype_name(input.dtype)!r}: input must be a floating-point '
            f"tensor of probabilities, got dtype {input.dtype}"
        )
    _check_range("input", input)
    _check_range("target", target)
    _check_fits("weight", weight, input.shape, op)
    return BinaryCrossEntropyFunction.apply(input, target, weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    r"""Binary cross-entropy on logits, like :func:`torch.nn.functional.binary_cross_entropy_with_logits`.

    :math:`l_n = w_n [(1 - y_n) x_n - (1 + (p - 1) y_n) \log\sigma(x_n)]`, stable for
    any finite logit. ``target`` must have ``input``'s size (any real values are
    accepted); ``weight`` and ``pos_weight`` broadcast to it (``pos_weight`` of
    shape ``(C,)`` weighs the positives of class ``c`` along the last dim).
    See :class:`BinaryCrossEntropyWithLogitsFunction` for the gradients.
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction.resolve(size_average, reduce, reduction)
    _check_same_size(input, target, op)
    _check_no_grad("weight", weight, op)
    _check_no_grad("pos_weight", pos_weight, op)
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"log_sigmoid_cpu" not implemented for {_dtype_name(input.dtype)!r}: {op} needs '
            f"floating-point logits, got input of dtype {input.dtype}"
        )
    if not target.is_floating_point():
        raise RuntimeError(
            f"result type {_dtype_name(torch.promote_types(input.dtype, target.dtype))} can't be cast to the "
            f"desired output type {_dtype_name(target.dtype)}: {op} computes in target's dtype, "
            f"so target must be floating-point, got {target.dtype}"
        )
    _check_fits("pos_weight", pos_weight, input.shape, op, target)
    _check_fits("weight", weight, input.shape, op)
    return BinaryCrossEntropyWithLogitsFunction.apply(input, target, weight, pos_weight, reduction)
