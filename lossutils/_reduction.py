"""Reductions: the one place that validates ``reduction``, maps the legacy flags,
reduces the elementwise losses and chains a gradient back through that reduction.

Mirrors ``torch/nn/_reduction.py``: every loss resolves and applies its
reduction here, so the rules (and torch's messages and warnings) live in
exactly one place. Whatever :func:`reduce` does to the elementwise losses
:math:`l_n`, :func:`reduction_grad` and :func:`reduce_backward` undo on their
gradient.
"""

from __future__ import annotations

import math
import struct
import warnings

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")

# torch words its refusal of a reduction three ways, depending on who checks it:
# ``torch.nn._reduction.get_enum`` (most losses), two losses that test the string
# themselves, and the weighted branch of l1/mse/huber. Each message keeps torch's
# words and adds what was expected.
GET_ENUM = "{reduction} is not a valid value for reduction (expected one of {choices})"
NOT_VALID = "{reduction} is not valid: reduction must be one of {choices}"
INVALID_MODE = ("Invalid reduction mode: {reduction}. Expected one of {choices} (with a weight, "
                "the deprecated 'elementwise_mean' is not accepted either).")


def check_reduction(reduction: str, accept_deprecated: bool = True, message: str = GET_ENUM,
                    choices: tuple[str, ...] = REDUCTIONS) -> str:
    """Return ``reduction`` if torch accepts it, else raise torch's ``ValueError``.

    ``'elementwise_mean'`` is torch's deprecated spelling of ``'mean'``: accepted
    with its warning, like ``torch.nn._reduction.get_enum`` -- except by the
    losses that check ``reduction`` themselves (``accept_deprecated=False``).
    ``message`` is the wording of the loss's own check (:data:`GET_ENUM`,
    :data:`NOT_VALID` or :data:`INVALID_MODE`); ``choices`` what it accepts.

    >>> check_reduction("avg")
    Traceback (most recent call last):
    ...
    ValueError: avg is not a valid value for reduction (expected one of 'none', 'mean', 'sum')
    """
    if reduction == "elementwise_mean" and accept_deprecated:
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
            stacklevel=3,
        )
        return "mean"
    if reduction not in choices:
        raise ValueError(message.format(reduction=reduction, choices=", ".join(map(repr, choices))))
    return reduction


def legacy_get_string(size_average: bool | None, reduce: bool | None,
                      emit_warning: bool = True) -> str:
    """Map the legacy ``size_average`` / ``reduce`` pair to a reduction string.

    ============  ======  ===========
    size_average  reduce  reduction
    ============  ======  ===========
    True / None   True    ``'mean'``
    False         True    ``'sum'``
    any           False   ``'none'``
    ============  ======  ===========

    (``None`` counts as ``True``.) Like torch, it warns that the flags are deprecated.
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    if emit_warning:
        warnings.warn(
            f"size_average and reduce args will be deprecated, please use reduction='{ret}' "
            "instead.",
            stacklevel=3,
        )
    return ret


def legacy_or(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """The legacy flags' reduction when either is given, else ``reduction`` *unchecked*:
    for the losses that validate the string later than torch's other checks."""
    if size_average is not None or reduce is not None:
        return legacy_get_string(size_average, reduce)
    return reduction


def resolve(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """What most ``F.*_loss`` do first: legacy flags, when given, override ``reduction``;
    otherwise ``reduction`` is checked (``'elementwise_mean'`` accepted, with its warning)."""
    if size_average is not None or reduce is not None:
        return legacy_get_string(size_average, reduce)
    return check_reduction(reduction)


def reduce(loss: Tensor, reduction: str, total: Tensor | float | None = None) -> Tensor:
    """Apply ``reduction`` to the unreduced losses :math:`l_n`: ``'none'`` returns them,
    ``'sum'`` adds them, ``'mean'`` divides that sum by ``total`` (default: their number,
    so an empty ``'mean'`` is nan, as in torch).

    >>> reduce(torch.tensor([1.0, 2.0, 6.0]), "mean"), reduce(torch.tensor([1.0, 2.0]), "mean", 4)
    (tensor(3.), tensor(0.7500))
    """
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean() if total is None else loss.sum() / total


def reduction_grad(grad_output: Tensor, reduction: str, count: int,
                   total: Tensor | float | None = None) -> Tensor:
    r""":math:`\partial L / \partial l_n` times the incoming gradient, for :func:`reduce`.

    ``'none'``: the incoming gradient itself (one per :math:`l_n`); ``'sum'``: the
    incoming scalar, shared by every :math:`l_n`; ``'mean'``: that scalar divided by
    ``total`` (default: ``count``, the number of :math:`l_n`, at least 1).
    """
    if reduction == "mean":
        return grad_output / (max(count, 1) if total is None else total)
    return grad_output


def scalar_quotient(value: float, count: int, dtype: torch.dtype) -> float:
    """``value / count`` as a Python number, bit for bit what torch's CPU kernels give for a
    ``dtype`` (float32 or float64) scalar divided by the integer ``count`` (a mean's last
    step, :func:`reduction_grad`'s ``'mean'``), without making a tensor. In float32 that is
    the quotient of two float32 numbers: their float64 quotient rounds to it exactly (53
    bits are more than 2 x 24 + 2), so only ``count`` and the result are rounded here."""
    if dtype == torch.float32:
        return _float32(value / _float32(float(count)))
    return value / count


def scalar_product(value: float, factor: float, dtype: torch.dtype) -> float:
    """``value * factor`` as a Python number, bit for bit what torch's CPU kernels give for a
    ``dtype`` (float32 or float64) scalar times the Python number ``factor`` (rounded to
    ``dtype`` first), without making a tensor. In float32 the float64 product of two
    float32 numbers is exact (2 x 24 bits), so only the factor and the result are rounded."""
    if dtype == torch.float32:
        return _float32(value * _float32(factor))
    return value * factor


def _float32(value: float) -> float:
    """``value`` rounded to the nearest float32 (to infinity past the largest, as a
    float32 operation overflows; ``struct`` itself refuses such a value)."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def reduce_backward(grad_loss: Tensor, reduction: str, grad_output: Tensor,
                    total: Tensor | float | None = None) -> Tensor:
    r"""Chain ``grad_output`` through :func:`reduce`.

    ``grad_loss`` is :math:`\partial l_n / \partial x_n` for every element: the
    result is ``grad_loss`` times :func:`reduction_grad`. For ``none`` the incoming
    gradient has the shape of ``l``; for ``sum`` it is a scalar copied to every
    element; for ``mean`` that scalar is divided by the number of elements
    :math:`N` (or by ``total``).
    """
    return grad_loss * reduction_grad(grad_output, reduction, grad_loss.numel(), total)


def sum_to_shape(grad: Tensor, shape: torch.Size) -> Tensor:
    """Undo broadcasting: sum ``grad`` down to ``shape`` (the adjoint of ``expand``)."""
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, n in enumerate(shape)
                                if n == 1 and grad.shape[lead + i] != 1]
    return grad.sum(dim=dims, keepdim=True).reshape(shape) if dims else grad.reshape(shape)
