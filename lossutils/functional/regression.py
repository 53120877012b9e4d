"""Regression losses: L1, MSE, Huber, SmoothL1.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .. import _reduction
from .._checks import broadcast_pair, require_floating, warn_size_mismatch
from .._reduction import reduce, reduce_backward

__all__ = ["mse_loss"]


def _weighted_reduce(loss: Tensor, weight: Tensor | None, reduction: str) -> Tensor:
    """``mean`` of a weighted loss divides by the sum of the weights, as torch does."""
    if weight is None:
        return reduce(loss, reduction)
    loss = loss * weight
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return reduce(loss, reduction)


class MSELossFunction(Function):
    r"""Mean squared error.

    .. math::
        l_n = w_n (x_n - y_n)^2, \qquad
        \frac{\partial l_n}{\partial x_n} = 2 w_n (x_n - y_n) = -\frac{\partial l_n}{\partial y_n},
        \qquad \frac{\partial l_n}{\partial w_n} = (x_n - y_n)^2

    with :math:`w_n = 1` when no ``weight`` is given. ``mean`` divides by
    :math:`N` without weights and by :math:`\sum_n w_n` with them; its
    gradient w.r.t. :math:`w_n` is then :math:`(d_n^2 - L) / \sum_m w_m`.
    """

    @staticmethod
    def forward(input, target, weight, reduction):
        return _weighted_reduce((input - target) ** 2, weight, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, reduction = inputs
        ctx.save_for_backward(input, target, weight, output)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, weight, output = ctx.saved_tensors
        diff = input - target
        grad_weight = None
        if weight is None:
            g = reduce_backward(2 * diff, ctx.reduction, grad_output)
        else:
            scale = grad_output / weight.sum() if ctx.reduction == "mean" else grad_output
            g = 2 * diff * weight * scale
            if ctx.needs_input_grad[2]:
                sq = diff**2
                grad_weight = (sq - output) * scale if ctx.reduction == "mean" else sq * scale
        return g, -g, grad_weight, None


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    r"""Mean squared error, :math:`l_n = w_n (x_n - y_n)^2`, like :func:`torch.nn.functional.mse_loss`.

    See :class:`MSELossFunction` for the gradient.
    """
    warn_size_mismatch(input, target)
    reduction = _reduction.resolve(size_average, reduce, reduction)
    input, target = broadcast_pair(input, target)
    require_floating("input", "mse_cpu", input)
    if weight is not None and weight.size() != input.size():
        raise ValueError(
            f"Weights and input must have the same size: weight has shape {tuple(weight.shape)}, "
            f"input has shape {tuple(input.shape)}."
        )
    return MSELossFunction.apply(input, target, weight, reduction)
