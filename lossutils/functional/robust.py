"""The robust regression losses: SmoothL1 and Huber, quadratic near zero, linear beyond.

Both are elementwise functions of the residual :math:`d_n = x_n - y_n`, built on
the skeleton they share with L1 and MSE (:mod:`lossutils.functional.regression`:
the elementwise losses ``_smooth_l1`` and ``_huber``, their slopes, the saved
tensors, the backward and the forward-mode derivative). ``smooth_l1_loss`` with
``beta = 0`` is L1, and goes through L1's branch, as in torch.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

from torch import Tensor
from torch.autograd import Function

from .._autograd import apply, transformable
from .._checks import broadcast_pair, dtype_name, warn_size_mismatch
from .._reduction import check_reduction, legacy_or
from ._regression_checks import (
    autocast_args,
    check_weight_shape,
    check_weighted_reduction,
    real_scalar,
    require_real_floating,
)
from .regression import (
    _huber,
    _huber_slope,
    _l1_branch,
    _residual_backward,
    _residual_forward,
    _residual_jvp,
    _save,
    _smooth_l1,
    _smooth_l1_slope,
    _weighted_reduce,
)

__all__ = ["smooth_l1_loss", "huber_loss"]


@transformable
class SmoothL1LossFunction(Function):
    r"""Smooth L1: quadratic for :math:`|d_n| < \beta`, linear (slope 1) outside.

    .. math::
        l_n = \begin{cases} 0.5\, d_n^2 / \beta & |d_n| < \beta \\
            |d_n| - 0.5\, \beta & \text{otherwise}\end{cases},
        \qquad
        \frac{\partial l_n}{\partial x_n} = \operatorname{clip}(d_n / \beta, -1, 1)
            = -\frac{\partial l_n}{\partial y_n}

    with :math:`d_n = x_n - y_n` and :math:`\beta > 0` (``beta = 0`` is L1, handled by
    :class:`~lossutils.functional.regression.L1LossFunction`, since :math:`d/\beta` is then
    0/0).
    """

    @_residual_forward(_smooth_l1)
    def forward(input, target, weight, reduction, beta):
        loss = _smooth_l1(input - target, beta)
        return _weighted_reduce(loss, weight, reduction, mean_by_weight=True)

    setup_context = staticmethod(_save)

    @staticmethod
    def backward(ctx, grad_output):
        return _residual_backward(ctx, grad_output, _smooth_l1, _smooth_l1_slope)

    @staticmethod
    def jvp(ctx, *tangents):
        return _residual_jvp(ctx, tangents, _smooth_l1, _smooth_l1_slope)


@transformable
class HuberLossFunction(Function):
    r"""Huber: quadratic for :math:`|d_n| < \delta`, linear with slope :math:`\delta` outside.

    .. math::
        l_n = w_n \begin{cases} 0.5\, d_n^2 & |d_n| < \delta \\
            \delta\, (|d_n| - 0.5\, \delta) & \text{otherwise}\end{cases},
        \qquad
        \frac{\partial l_n}{\partial x_n} = w_n \operatorname{clip}(d_n, -\delta, \delta)
            = -\frac{\partial l_n}{\partial y_n}

    and :math:`\partial l_n / \partial w_n` is the unweighted Huber term. Unlike
    L1 and MSE, a weighted ``mean`` divides by :math:`N`, not by :math:`\sum_n w_n`.
    The elementwise loss has ``input``'s dtype (torch's ``huber_loss`` does not
    promote its output), so ``out_dtype`` is applied before weighting.
    """

    @_residual_forward(_huber)
    def forward(input, target, weight, reduction, delta, out_dtype):
        loss = _huber(input - target, delta).to(out_dtype)  # rounded as torch's kernel rounds it
        return _weighted_reduce(loss, weight, reduction, mean_by_weight=False)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _save(ctx, inputs[:-1], output)  # out_dtype is no parameter of the loss

    @staticmethod
    def backward(ctx, grad_output):
        grads = _residual_backward(ctx, grad_output, _huber, _huber_slope, mean_by_weight=False)
        return (*grads, None)  # out_dtype

    @staticmethod
    def jvp(ctx, *tangents):
        return _residual_jvp(ctx, tangents, _huber, _huber_slope, mean_by_weight=False)


# ----------------------------------------------------------------------------
# Functional wrappers (torch 2.13 signatures)
# ----------------------------------------------------------------------------


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    r"""Smooth L1 loss, like :func:`torch.nn.functional.smooth_l1_loss`.

    :math:`l_n = 0.5\, d_n^2/\beta` if :math:`|d_n| < \beta`, else :math:`|d_n| - 0.5\beta`.
    ``beta = 0`` is exactly :func:`l1_loss`; a negative (or NaN) ``beta`` is rejected.
    See :class:`SmoothL1LossFunction` for the gradient.

    Examples:
        >>> smooth_l1_loss(torch.tensor([0.5, 3.0]), torch.zeros(2), reduction="none")
        tensor([0.1250, 2.5000])
    """
    warn_size_mismatch(input, target)
    reduction = legacy_or(size_average, reduce, reduction)
    dtypes = (input.dtype, target.dtype)
    input, target, _ = autocast_args("l1_loss" if beta == 0.0 else "smooth_l1_loss", input,
                                      target, None, reduction)
    input, target = broadcast_pair(input, target)
    if beta == 0.0:
        return _l1_branch(input, target, None, reduction, "smooth_l1_loss", dtypes)
    reduction = check_reduction(reduction)
    beta = real_scalar("smooth_l1_loss", "beta", beta)
    if not beta >= 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta: "
                           f"got beta={beta}")
    require_real_floating("smooth_l1_loss", "smooth_l1_cpu", input.dtype)
    return apply(SmoothL1LossFunction, input, target, None, reduction, float(beta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    r"""Huber loss, like :func:`torch.nn.functional.huber_loss`.

    :math:`l_n = w_n \cdot 0.5\, d_n^2` if :math:`|d_n| < \delta`, else
    :math:`w_n\, \delta (|d_n| - 0.5\delta)`; ``delta`` must be positive. The
    output keeps ``input``'s dtype. See :class:`HuberLossFunction` for the gradient.

    Examples:
        >>> huber_loss(torch.tensor([0.5, 3.0]), torch.zeros(2), reduction="none", delta=2.0)
        tensor([0.1250, 4.0000])
    """
    warn_size_mismatch(input, target)
    input, target, weight = autocast_args("huber_loss", input, target, weight, reduction)
    shape, out_dtype = input.shape, input.dtype
    input, target = broadcast_pair(input, target)
    if weight is not None:
        check_weight_shape(weight, shape, "huber_loss")
    else:
        reduction = check_reduction(reduction)
    delta = real_scalar("huber_loss", "delta", delta)
    if not delta > 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta: "
                           f"got delta={delta}")
    require_real_floating("huber_loss", "huber_cpu", input.dtype)
    if not out_dtype.is_floating_point:
        raise RuntimeError(
            f"result type {dtype_name(input.dtype)} can't be cast to the desired output type "
            f"{dtype_name(out_dtype)}: huber_loss returns input's dtype ({out_dtype}), so input "
            "must be floating-point"
        )
    if weight is not None:
        check_weighted_reduction(reduction)
    return apply(HuberLossFunction, input, target, weight, reduction, float(delta), out_dtype)
