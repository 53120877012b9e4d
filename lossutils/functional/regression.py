"""Regression losses: L1 and MSE here, and what they share with SmoothL1 and Huber
(:mod:`lossutils.functional.robust`).

Each is an elementwise function of the residual :math:`d_n = x_n - y_n`,
optionally weighted, then reduced. Every Function of the four saves the same
things and shares one backward skeleton (:func:`_residual_backward`): only
the elementwise loss and its slope differ, and each Function states both.
The four elementwise losses and their slopes are all here, side by side.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import apply, fast_path, plain, transformable
from .._checks import broadcast_pair, warn_size_mismatch
from .._precision import rounded, upcast
from .._reduction import (
    check_reduction,
    legacy_or,
    reduce,
    reduce_backward,
    reduction_grad,
    sum_to_shape,
)
from . import _regression_passes as passes
from ._regression_checks import (
    autocast_args,
    check_weight_shape,
    check_weighted_reduction,
    refuse_bool,
    require_real_floating,
)

__all__ = ["l1_loss", "mse_loss"]


# ----------------------------------------------------------------------------
# Shared pieces: weighting, reduction, the backward and jvp skeletons
# ----------------------------------------------------------------------------


def _weighted_reduce(loss: Tensor, weight: Tensor | None, reduction: str,
                     mean_by_weight: bool) -> Tensor:
    """Weight the elementwise losses, then reduce them.

    torch 2.13's weighted ``mean`` divides by :math:`\\sum_n w_n` for L1 and
    MSE but by the number of elements :math:`N` for Huber
    (``mean_by_weight=False``): two conventions, mirrored as they are.
    """
    if weight is None:
        return reduce(loss, reduction)
    return reduce(loss * weight, reduction, weight.sum() if mean_by_weight else None)


def _residual_forward(loss_fn):
    """Decorator of a ``forward(input, target, weight, reduction, *params)`` computing
    :math:`\\mathrm{reduce}(w_n\\,\\ell(x_n - y_n))`, with ``loss_fn`` its :math:`\\ell`.

    float16/bfloat16 tensors are computed in float32 (torch's kernels compute elementwise
    there and its reductions accumulate there), the loss rounded once. Plain unweighted
    float32/float64 tensors take the fast path (:func:`~lossutils.functional.
    _regression_passes.reduced_residual`): :math:`\\ell` in place on the residual, chunk by
    chunk, never more temporaries than the input has elements -- the same operations.
    Where the slope is the clipped residual and a gradient will be asked for, the forward
    keeps it for the backward (:func:`~lossutils.functional._regression_passes.clipped_forward`),
    on the output until ``setup_context`` (:func:`_save`) takes it."""
    loss_, buffers, fewest = _IN_PLACE_LOSS[loss_fn]
    clip = _CLIP_BOUND.get(loss_fn, lambda *params: None)

    def decorator(forward):
        @functools.wraps(forward)
        def wrapper(input, target, weight, reduction, *params):
            if weight is None and input.dtype in passes.FAST_DTYPES and plain(input, target):
                bound = clip(*params)
                if bound is not None and passes.keeps_slope(input, target, reduction):
                    out, slope = passes.clipped_forward(input, target, reduction, bound)
                    setattr(out, passes.SLOPE_ATTR, slope)
                    return out
                return passes.reduced_residual(loss_, buffers, fewest, input, target, reduction,
                                               params)
            out = forward(upcast(input), upcast(target), upcast(weight), reduction, *params)
            return rounded(out, input.dtype, *([] if weight is None else [weight.dtype]))

        return staticmethod(wrapper)

    return decorator


def _save(ctx, inputs, output) -> None:
    input, target, weight, reduction, *params = inputs
    ctx.save_for_backward(input, target, weight, output)
    ctx.save_for_forward(input, target, weight, output)
    ctx.reduction = reduction
    ctx.params = params
    # the slopes the fast forward kept (passes.clipped_forward), taken off the output
    ctx.kept_slope = vars(output).pop(passes.SLOPE_ATTR, None)


def _residual_backward(ctx, grad_output: Tensor, loss_fn, slope_fn, mean_by_weight: bool = True):
    r"""Gradients of :math:`L = \mathrm{reduce}(w_n\, \ell(d_n))`, :math:`d_n = x_n - y_n`.

    With :math:`s_n = \ell'(d_n)` (``slope_fn``) and :math:`c` the reduction's
    factor (``1`` for ``sum``, :math:`1/N` or :math:`1/\sum_m w_m` for ``mean``):

    .. math::
        \frac{\partial L}{\partial x_n} = c\, w_n s_n = -\frac{\partial L}{\partial y_n},
        \qquad
        \frac{\partial L}{\partial w_k} = c \Big(\sum_{n \to k} \ell(d_n)
            - [\text{mean by } \textstyle\sum w]\, L\Big)

    where :math:`n \to k` runs over the broadcast copies of :math:`w_k`; the
    :math:`-L` term appears only when ``mean`` divides by :math:`\sum_m w_m`,
    because that denominator depends on :math:`w_k` too.

    Written in differentiable ops (out of place), so that under ``create_graph=True``
    autograd records it: the second derivative is this formula's derivative, through
    ``input``, ``target``, ``weight``, the saved output :math:`L` and ``grad_output``.
    The slopes are piecewise smooth: their derivative is torch's almost everywhere.
    """
    input, target, weight, output = ctx.saved_tensors
    kept, ctx.kept_slope = ctx.kept_slope, None  # used once: a second backward recomputes
    if weight is None and fast_path(grad_output, input, target):  # the usual loss.backward():
        # the same numbers in one buffer (an in-place slope, or the forward's kept one, then
        # the reduction's factor)
        g, minus_g = passes.residual_grad(input, target, grad_output, ctx.reduction,
                                          _IN_PLACE[slope_fn], ctx.params,
                                          ctx.needs_input_grad[1], kept)
        return (g, minus_g, None, None, *(None for _ in ctx.params))
    input, target, weight, output = (upcast(t) for t in (input, target, weight, output))
    grad_output = upcast(grad_output)  # float32 for halves (autograd rounds the gradients)
    diff = input - target
    slope = slope_fn(diff, *ctx.params)
    no_params = (None for _ in ctx.params)
    if weight is None:
        g = reduce_backward(slope, ctx.reduction, grad_output)
        return (g, -g, None, None, *no_params)
    total = weight.sum() if mean_by_weight else None
    scale = reduction_grad(grad_output, ctx.reduction, diff.numel(), total)
    g = slope * weight * scale
    grad_weight = None
    if ctx.needs_input_grad[2]:
        grad_weight = sum_to_shape(loss_fn(diff, *ctx.params) * scale, weight.shape)
        if ctx.reduction == "mean" and mean_by_weight:
            grad_weight = grad_weight - output * scale
    return (g, -g, grad_weight, None, *no_params)


def _residual_jvp(ctx, tangents, loss_fn, slope_fn, mean_by_weight: bool = True):
    r"""Forward mode: the tangent of :math:`L` for tangents :math:`\dot x, \dot y, \dot w`:
    the reduction of :math:`w_n s_n (\dot x_n - \dot y_n) + \dot w_n \ell(d_n)`, and for a
    ``mean`` over :math:`\sum_m w_m`, :math:`(\sum_n \dots - L \sum_m \dot w_m) / \sum_m w_m`.
    A tangent that is ``None`` is zero."""
    input, target, weight, output = ctx.saved_tensors
    t_x, t_y, t_w = tangents[:3]
    diff = upcast(input) - upcast(target)
    lin = torch.zeros_like(diff)
    if t_x is not None:
        lin = lin + upcast(t_x)
    if t_y is not None:
        lin = lin - upcast(t_y)
    lin = slope_fn(diff, *ctx.params) * lin
    if weight is None:
        return rounded(reduce(lin, ctx.reduction), output.dtype)
    w = upcast(weight)
    terms = lin * w if t_w is None else lin * w + loss_fn(diff, *ctx.params) * upcast(t_w)
    if ctx.reduction == "mean" and mean_by_weight:
        out = terms.sum() if t_w is None else terms.sum() - upcast(output) * upcast(t_w).sum()
        return rounded(out / w.sum(), output.dtype)
    return rounded(reduce(terms, ctx.reduction), output.dtype)


# ----------------------------------------------------------------------------
# The elementwise losses and their slopes
# ----------------------------------------------------------------------------


def _l1(d: Tensor) -> Tensor:
    return d.abs()


def _l1_slope(d: Tensor) -> Tensor:
    # sgn is sign for real d and d/|d| for complex d; 0 at d = 0, like torch's abs backward.
    return d.sgn()


def _squared(d: Tensor) -> Tensor:
    return d * d


def _squared_slope(d: Tensor) -> Tensor:
    return 2 * d


def _smooth_l1(d: Tensor, beta: float) -> Tensor:
    if beta == 1.0:  # torch's two pieces are then Huber's with delta = 1, bit for bit
        return _huber(d, 1.0)
    # The larger of the two pieces, each as torch computes it: the parabola lies above the
    # line below beta (by 0.5 (z - beta)^2 / beta), and clipped at beta it is 0.5 beta, below
    # the line above beta. No torch.where: 20 times an add on the CPU, and not needed. (Huber's
    # product over beta would round the line twice, and underflow for a tiny beta.)
    z = d.abs()
    c = z.clamp(max=beta)
    return torch.maximum(0.5 * c * c / beta, z - 0.5 * beta)


def _smooth_l1_slope(d: Tensor, beta: float) -> Tensor:
    # d / beta inside the band, sign(d) outside: the two agree at |d| = beta, so a clamp is exact.
    return (d / beta).clamp(-1, 1)


def _huber(d: Tensor, delta: float) -> Tensor:
    # Both of torch's pieces in one product, with c = d clipped to [-delta, delta] (the slope):
    # inside, c = d and d - c/2 = d/2, so c (d - c/2) is 0.5 d^2; outside, c = delta sign(d)
    # and the product is delta (|d| - delta/2). Each rounds as torch's kernel rounds it
    # (c/2 and d - d/2 are exact), and no torch.where (20 times an add on the CPU) is needed.
    c = d.clamp(-delta, delta)
    return c * (d - 0.5 * c)


def _huber_slope(d: Tensor, delta: float) -> Tensor:
    # d inside the band, delta * sign(d) outside: the slope is clipped to [-delta, delta].
    return d.clamp(-delta, delta)


# The elementwise losses in place for the fast forward, with how many buffers each needs (the
# residual included) and the fewest chunks it takes (2 where torch's forward holds no
# input-sized tensor: see passes.reduced_residual), and the slopes in place for the fast
# backward: on a fresh buffer, the same operations as the functions above (0.5 z^2 as
# z^2 0.5: a halving is exact).
_IN_PLACE_LOSS = {
    _l1: (passes.abs_, 1, 1),
    _squared: (passes.square_, 1, 1),
    _smooth_l1: (passes.smooth_l1_, 2, 1),
    _huber: (passes.huber_, 2, 2),
}
# Where the slope is the residual clipped to [-b, b] (Huber's, and SmoothL1's with beta = 1),
# b from the parameters: the fast forward can keep it for the backward.
_CLIP_BOUND = {
    _huber: lambda delta, out_dtype=None: delta,
    _smooth_l1: lambda beta: 1.0 if beta == 1.0 else None,
}
_IN_PLACE = {
    _l1_slope: Tensor.sgn_,
    _squared_slope: lambda d: d.mul_(2),
    _smooth_l1_slope: lambda d, beta: (d if beta == 1.0 else d.div_(beta)).clamp_(-1, 1),
    _huber_slope: lambda d, delta: d.clamp_(-delta, delta),
}


@transformable
class L1LossFunction(Function):
    r"""Mean absolute error.

    .. math::
        l_n = w_n |x_n - y_n|, \qquad
        \frac{\partial l_n}{\partial x_n} = w_n \operatorname{sgn}(x_n - y_n)
            = -\frac{\partial l_n}{\partial y_n},
        \qquad \frac{\partial l_n}{\partial w_n} = |x_n - y_n|

    with :math:`\operatorname{sgn}(0) = 0` and :math:`w_n = 1` without ``weight``.
    ``mean`` divides by :math:`N`, or by :math:`\sum_n w_n` with weights.
    """

    @_residual_forward(_l1)
    def forward(input, target, weight, reduction):
        return _weighted_reduce(_l1(input - target), weight, reduction, mean_by_weight=True)

    setup_context = staticmethod(_save)

    @staticmethod
    def backward(ctx, grad_output):
        return _residual_backward(ctx, grad_output, _l1, _l1_slope)

    @staticmethod
    def jvp(ctx, *tangents):
        return _residual_jvp(ctx, tangents, _l1, _l1_slope)


@transformable
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

    @_residual_forward(_squared)
    def forward(input, target, weight, reduction):
        return _weighted_reduce(_squared(input - target), weight, reduction, mean_by_weight=True)

    setup_context = staticmethod(_save)

    @staticmethod
    def backward(ctx, grad_output):
        return _residual_backward(ctx, grad_output, _squared, _squared_slope)

    @staticmethod
    def jvp(ctx, *tangents):
        return _residual_jvp(ctx, tangents, _squared, _squared_slope)


# ----------------------------------------------------------------------------
# Functional wrappers (torch 2.13 signatures)
# ----------------------------------------------------------------------------


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    r"""Mean absolute error, :math:`l_n = w_n |x_n - y_n|`, like
    :func:`torch.nn.functional.l1_loss`.

    Works for integer (``'none'``/``'sum'``), floating and complex tensors, like
    torch. See :class:`L1LossFunction` for the gradient.

    Examples:
        >>> l1_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]))
        tensor(1.5000)
    """
    warn_size_mismatch(input, target)
    reduction = legacy_or(size_average, reduce, reduction)
    shape, dtypes = input.shape, (input.dtype, target.dtype)
    input, target, weight = autocast_args("l1_loss", input, target, weight, reduction)
    input, target = broadcast_pair(input, target)
    if weight is not None:
        check_weight_shape(weight, shape, "l1_loss")
    return _l1_branch(input, target, weight, reduction, "l1_loss", dtypes)


def _l1_branch(input, target, weight, reduction, op, dtypes):
    """The L1 branch shared with ``smooth_l1_loss(beta=0)``; ``dtypes`` are the arguments'
    own, before promotion (torch's subtraction refuses a bool among them)."""
    if weight is not None:
        if torch.bool in dtypes:  # the weighted branch subtracts before it checks reduction
            refuse_bool(op, *dtypes)
        check_weighted_reduction(reduction)
    else:
        reduction = check_reduction(reduction)
        if torch.bool in dtypes:
            refuse_bool(op, *dtypes)
        if reduction == "mean" and not (input.is_floating_point() or input.is_complex()):
            raise RuntimeError(
                f"mean(): could not infer output dtype. {op} with reduction='mean' needs "
                f"floating-point or complex input/target, got {input.dtype}"
            )
    return apply(L1LossFunction, input, target, weight, reduction)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    r"""Mean squared error, :math:`l_n = w_n (x_n - y_n)^2`, like
    :func:`torch.nn.functional.mse_loss`.

    See :class:`MSELossFunction` for the gradient.

    Examples:
        >>> mse_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]))
        tensor(2.5000)
    """
    warn_size_mismatch(input, target)
    reduction = legacy_or(size_average, reduce, reduction)
    shape = input.shape
    input, target, weight = autocast_args("mse_loss", input, target, weight, reduction)
    input, target = broadcast_pair(input, target)
    if weight is not None:
        # torch's weighted branch is plain tensor arithmetic: any dtype pow() and mul() accept.
        check_weight_shape(weight, shape, "mse_loss")
        check_weighted_reduction(reduction)
    else:
        reduction = check_reduction(reduction)
        require_real_floating("mse_loss", "mse_cpu", input.dtype)
    return apply(MSELossFunction, input, target, weight, reduction)
