"""Reductions: the one place that validates ``reduction`` and maps the legacy flags.

Mirrors ``torch/nn/_reduction.py``: every loss resolves its reduction here, so
the rules (and torch's messages and warnings) live in exactly one place.
The backward helper is the other half: whatever ``reduce`` does to the
elementwise losses, ``reduce_backward`` undoes on their gradient.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str, accept_deprecated: bool = True) -> str:
    """Return ``reduction`` if torch accepts it, else raise torch's ``ValueError``.

    ``'elementwise_mean'`` is torch's deprecated spelling of ``'mean'``: accepted
    with its warning, like ``torch.nn._reduction.get_enum`` -- except by the
    losses that check ``reduction`` themselves (``accept_deprecated=False``).
    """
    if reduction == "elementwise_mean" and accept_deprecated:
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
            stacklevel=3,
        )
        return "mean"
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{reduction} is not a valid value for reduction "
            f"(expected one of {', '.join(map(repr, REDUCTIONS))})"
        )
    return reduction


def legacy_get_string(size_average: bool | None, reduce: bool | None, emit_warning: bool = True) -> str:
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
            f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
            stacklevel=3,
        )
    return ret


def resolve(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """What every ``F.*_loss`` does first: legacy flags, when given, override ``reduction``."""
    if size_average is not None or reduce is not None:
        return legacy_get_string(size_average, reduce)
    return check_reduction(reduction)


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` to the unreduced losses ``l_n``: ``none`` | ``mean`` | ``sum``."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def reduce_backward(grad_loss: Tensor, reduction: str, grad_output: Tensor) -> Tensor:
    r"""Chain ``grad_output`` through :func:`reduce`.

    ``grad_loss`` is :math:`\partial l_n / \partial x_n` for every element. For
    ``none`` the incoming gradient has the shape of ``l``; for ``sum`` it is a
    scalar copied to every element; for ``mean`` that scalar is divided by the
    number of elements :math:`N`.
    """
    if reduction == "mean":
        return grad_loss * (grad_output / max(grad_loss.numel(), 1))
    return grad_loss * grad_output


def sum_to_shape(grad: Tensor, shape: torch.Size) -> Tensor:
    """Undo broadcasting: sum ``grad`` down to ``shape`` (the adjoint of ``expand``)."""
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1]
    return grad.sum(dim=dims, keepdim=True).reshape(shape) if dims else grad.reshape(shape)
