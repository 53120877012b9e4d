"""Probabilistic losses: the KL divergence and the Poisson and Gaussian negative log-likelihoods.

Defined in :doc:`/chapters/05_kl_divergence` (``kl_div``) and
:doc:`/chapters/04_2_likelihoods_and_sequences` (``poisson_nll_loss``, ``gaussian_nll_loss``).

torch builds all three from elementwise ops and lets autograd differentiate
them, so their gradients w.r.t. *every* tensor argument (the target and the
variance included) are the chain rule through those ops, nan and all. The
backwards below write that chain rule out, term by term, in the same order.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._checks import broadcast_shape
from .._reduction import (
    NOT_VALID,
    check_reduction,
    legacy_or,
    reduce,
    reduction_grad,
    sum_to_shape,
)

__all__ = ["kl_div", "poisson_nll_loss", "gaussian_nll_loss"]

KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release."
)


def _grad_of_reduce(grad_output: Tensor, shape: torch.Size, reduction: str) -> Tensor:
    """d reduce(l) / d l_n times ``grad_output``, as a tensor of the losses' ``shape``."""
    return reduction_grad(grad_output, reduction, math.prod(shape)).expand(shape)


def _xlogx(t: Tensor) -> Tensor:
    """:math:`t \\log t` with the convention :math:`0 \\log 0 = 0` (torch's ``xlogy(t, t)``)."""
    return torch.where(t == 0, torch.zeros_like(t), t * torch.log(t))


class KLDivFunction(Function):
    r"""Pointwise KL divergence, input :math:`x` a log-probability, target :math:`y`.

    .. math::
        l_n = y_n (\log y_n - x_n) \quad (0 \text{ where } y_n = 0), \qquad
        \frac{\partial l_n}{\partial x_n} = -y_n, \qquad
        \frac{\partial l_n}{\partial y_n} = \log y_n + 1 - x_n

    and with ``log_target`` (:math:`y` given as :math:`\log p`):

    .. math::
        l_n = e^{y_n} (y_n - x_n), \qquad
        \frac{\partial l_n}{\partial x_n} = -e^{y_n}, \qquad
        \frac{\partial l_n}{\partial y_n} = e^{y_n} (y_n - x_n) + e^{y_n}

    torch differentiates :math:`\operatorname{xlogy}(y, y)` as
    :math:`\operatorname{xlogy}(g, y)` (masked to 0 where :math:`y = 0`) plus
    :math:`g\,y / y`: at :math:`y = 0` the second term is :math:`0/0`, so
    the gradient w.r.t. the target is nan there even though the loss is 0.
    ``divisor`` is the batch size for ``'batchmean'`` (else 1).
    """

    @staticmethod
    def forward(input, target, reduction, log_target, divisor):
        if log_target:
            loss = torch.exp(target) * (target - input)
        else:
            loss = _xlogx(target) - target * input
        out = reduce(loss, reduction)
        return out / divisor if divisor != 1 else out

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, reduction, log_target, divisor = inputs
        ctx.save_for_backward(input, target)
        ctx.options = reduction, log_target, divisor

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        reduction, log_target, divisor = ctx.options
        shape = torch.broadcast_shapes(input.shape, target.shape)
        g = _grad_of_reduce(grad_output / divisor if divisor != 1 else grad_output, shape,
                            reduction)
        grad_input = grad_target = None
        if log_target:
            p = torch.exp(target)
            if ctx.needs_input_grad[0]:
                grad_input = -(g * p)
            if ctx.needs_input_grad[1]:
                grad_target = g * (target - input) * p + g * p
        else:
            if ctx.needs_input_grad[0]:
                grad_input = -g * target
            if ctx.needs_input_grad[1]:
                masked = (g == 0) | (target == 0)
                first = torch.where(masked, torch.zeros_like(g), g * torch.log(target))
                grad_target = first + g * target / target - g * input
        if grad_input is not None:
            grad_input = sum_to_shape(grad_input, input.shape)
        if grad_target is not None:
            grad_target = sum_to_shape(grad_target, target.shape)
        return grad_input, grad_target, None, None, None


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    r"""Kullback-Leibler divergence :math:`l_n = y_n (\log y_n - x_n)`, like
    :func:`torch.nn.functional.kl_div`.

    ``input`` holds log-probabilities; ``target`` probabilities (or
    log-probabilities with ``log_target=True``). ``'batchmean'`` divides the
    sum by ``input.size(0)`` (by nothing for a 0-dim input), the true KL
    divergence per sample; ``'mean'`` divides by the number of elements and
    warns, as torch does. See :class:`KLDivFunction` for the gradients.

    Examples:
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> kl_div(torch.tensor([[0.25, 0.75]]).log(), p, reduction="batchmean")
        tensor(0.1438)
    """
    if size_average is not None or reduce is not None:
        # torch resolves the legacy flags and still divides by the batch size
        # when reduction='batchmean' was passed too: mirrored, odd as it is.
        resolved = legacy_or(size_average, reduce, reduction)
    else:
        if reduction == "mean":
            warnings.warn(KL_MEAN_WARNING, stacklevel=2)
        resolved = check_reduction(reduction, choices=("none", "batchmean", "sum", "mean"))
        # 'batchmean' is the sum, divided by the batch size below
        resolved = "sum" if resolved == "batchmean" else resolved
    if input.is_complex() or target.is_complex():
        raise RuntimeError(
            "kl_div: Complex inputs not supported: input and target must be real floating-point "
            f"tensors, got input dtype {input.dtype} and target dtype {target.dtype}"
        )
    if not (input.is_floating_point() and target.is_floating_point()):
        raise RuntimeError(
            "kl_div: Integral inputs not supported: input and target must be floating-point "
            f"tensors, got input dtype {input.dtype} and target dtype {target.dtype}"
        )
    broadcast_shape("kl_div", input=input, target=target)
    divisor = input.size(0) if reduction == "batchmean" and input.dim() != 0 else 1
    return KLDivFunction.apply(input, target, resolved, log_target, divisor)


class PoissonNLLLossFunction(Function):
    r"""Negative log-likelihood of a Poisson target.

    With ``log_input`` (:math:`x = \log \lambda`):

    .. math::
        l_n = e^{x_n} - y_n x_n, \qquad
        \frac{\partial l_n}{\partial x_n} = e^{x_n} - y_n, \qquad
        \frac{\partial l_n}{\partial y_n} = -x_n

    and without it (:math:`x = \lambda`):

    .. math::
        l_n = x_n - y_n \log(x_n + \epsilon), \qquad
        \frac{\partial l_n}{\partial x_n} = 1 - \frac{y_n}{x_n + \epsilon}, \qquad
        \frac{\partial l_n}{\partial y_n} = -\log(x_n + \epsilon)

    ``full`` adds Stirling's approximation of :math:`\log y_n!`, only where
    :math:`y_n > 1`: :math:`s_n = y_n \log y_n - y_n + \frac12 \log(2\pi y_n)`,
    :math:`\partial s_n / \partial y_n = \log y_n + \frac{1}{2 y_n}`. torch
    masks :math:`s_n` *after* computing it, so the zero incoming gradient
    still meets :math:`\log y_n`: where :math:`y_n \le 0` the target's
    gradient is :math:`0 \cdot (-\infty)` = nan, mirrored here.
    """

    @staticmethod
    def forward(input, target, log_input, full, eps, reduction):
        if log_input:
            loss = torch.exp(input) - target * input
        else:
            loss = input - target * torch.log(input + eps)
        if full:
            stirling = target * torch.log(target) - target + 0.5 * torch.log(2 * math.pi * target)
            loss = loss + stirling.masked_fill(target <= 1, 0)
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, log_input, full, eps, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.options = log_input, full, eps, reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        log_input, full, eps, reduction = ctx.options
        shape = torch.broadcast_shapes(input.shape, target.shape)
        g = _grad_of_reduce(grad_output, shape, reduction)
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            if log_input:
                grad_input = g * torch.exp(input) - g * target
            else:
                grad_input = g - g * target / (input + eps)
            grad_input = sum_to_shape(grad_input, input.shape)
        if ctx.needs_input_grad[1]:
            grad_target = -g * input if log_input else -g * torch.log(input + eps)
            if full:
                gs = g.masked_fill(target <= 1, 0)
                stirling = gs * torch.log(target) + gs * target / target - gs + 0.5 * gs / target
                grad_target = grad_target + stirling
            grad_target = sum_to_shape(grad_target, target.shape)
        return grad_input, grad_target, None, None, None, None


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    r"""Poisson negative log-likelihood, like :func:`torch.nn.functional.poisson_nll_loss`.

    :math:`l_n = e^{x_n} - y_n x_n` (``log_input=True``) or
    :math:`x_n - y_n \log(x_n + \epsilon)`, plus Stirling's term where
    :math:`y_n > 1` with ``full=True``. See :class:`PoissonNLLLossFunction`.

    Examples:
        >>> poisson_nll_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]))
        tensor(0.8591)
    """
    reduction = legacy_or(size_average, reduce, reduction)
    # torch checks this one itself, before get_enum: 'elementwise_mean' is rejected here.
    check_reduction(reduction, accept_deprecated=False)
    broadcast_shape("poisson_nll_loss", input=input, target=target)
    return PoissonNLLLossFunction.apply(input, target, log_input, full, eps, reduction)


class GaussianNLLLossFunction(Function):
    r"""Negative log-likelihood of a Gaussian target with predicted mean :math:`x` and variance
    :math:`v`.

    .. math::
        l_n = \frac12 \left(\log v_n + \frac{(x_n - y_n)^2}{v_n}\right)
              \;\left[+ \tfrac12 \log 2\pi \text{ if full}\right],

        \frac{\partial l_n}{\partial x_n} = \frac{x_n - y_n}{v_n}
            = -\frac{\partial l_n}{\partial y_n},
        \qquad
        \frac{\partial l_n}{\partial v_n}
            = \frac12 \left(\frac{1}{v_n} - \frac{(x_n - y_n)^2}{v_n^2}\right)

    where :math:`v_n = \max(\text{var}_n, \epsilon)`. torch clamps a clone of
    ``var`` in place under ``no_grad``, so the clamp is invisible to autograd:
    the gradient w.r.t. ``var`` is the formula above evaluated at the clamped
    value, passed straight through (not zeroed) where ``var < eps``.
    """

    @staticmethod
    def forward(input, target, var, full, eps, reduction):
        var = _clamped(var, eps)
        loss = 0.5 * (torch.log(var) + (input - target) ** 2 / var)
        if full:
            loss = loss + 0.5 * math.log(2 * math.pi)
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, var, full, eps, reduction = inputs
        ctx.save_for_backward(input, target, var)
        ctx.options = eps, reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, var = ctx.saved_tensors
        eps, reduction = ctx.options
        v = _clamped(var, eps)
        diff = input - target
        g = _grad_of_reduce(grad_output, torch.broadcast_shapes(diff.shape, v.shape), reduction)
        grad_diff = g * diff / v
        grads = [None, None, None]
        if ctx.needs_input_grad[0]:
            grads[0] = sum_to_shape(grad_diff, input.shape)
        if ctx.needs_input_grad[1]:
            grads[1] = sum_to_shape(-grad_diff, target.shape)
        if ctx.needs_input_grad[2]:
            grads[2] = sum_to_shape(0.5 * g * (1 / v - diff**2 / (v * v)), var.shape)
        return *grads, None, None, None


def _clamped(var: Tensor, eps: float) -> Tensor:
    """``var`` clamped below at ``eps`` the way torch does it: a clone, clamped in place."""
    var = var.clone()
    try:
        var.clamp_(min=eps)
    except RuntimeError as err:
        raise RuntimeError(f"var of dtype {var.dtype} cannot be clamped in place at eps={eps}: "
                           f"{err}") from None
    return var


def _check_var_shape(input: Tensor, var: Tensor) -> Tensor:
    """torch's accepted ``var`` shapes; returns ``var`` ready to broadcast against ``input``.

    Same shape as ``input`` (heteroscedastic); ``input``'s shape without its
    last dim (unsqueezed to end in 1); or ``input``'s number of dims with the
    mismatched sides of ``var`` summing to 1 -- one side of size 1 (homoscedastic
    along that dim).
    """
    if var.size() == input.size():
        return var
    if input.size()[:-1] == var.size():
        return torch.unsqueeze(var, -1)
    if input.dim() == var.dim() and sum(
            v for i, v in zip(input.size(), var.size(), strict=True) if i != v) == 1:
        return var
    raise ValueError(
        f"var is of incorrect size: var has shape {tuple(var.shape)}, input has shape "
        f"{tuple(input.shape)}; expected input's shape, input's shape without its last dim, or "
        "input's shape with one dim of size 1"
    )


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    r"""Gaussian negative log-likelihood, like :func:`torch.nn.functional.gaussian_nll_loss`.

    :math:`l_n = \frac12(\log \max(v_n, \epsilon) + (x_n - y_n)^2 / \max(v_n, \epsilon))`,
    plus :math:`\frac12 \log 2\pi` with ``full=True``. ``var`` is a tensor
    (see :func:`_check_var_shape` for the shapes torch accepts) or a Python
    float. See :class:`GaussianNLLLossFunction` for the gradients.

    Examples:
        >>> mean, var = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
        >>> gaussian_nll_loss(mean, torch.tensor([1.0, 1.0]), var)
        tensor(0.4233)
    """
    # Same order of checks as torch: sign, then shape, then reduction.
    if isinstance(var, float):
        if var < 0:
            raise ValueError(f"var has negative entry/entries: var must be non-negative, got {var}")
        var = var * torch.ones_like(input)
    elif not isinstance(var, Tensor):
        raise TypeError(f"var must be a Tensor or a float, got {type(var).__name__} ({var!r})")
    elif torch.any(var < 0):
        raise ValueError(
            "var has negative entry/entries: var must be non-negative, got minimum "
            f"{var.min().item()}"
        )
    var = _check_var_shape(input, var)
    check_reduction(reduction, accept_deprecated=False, message=NOT_VALID)
    return GaussianNLLLossFunction.apply(input, target, var, full, eps, reduction)
