"""Probabilistic losses: the KL divergence and the Poisson and Gaussian negative log-likelihoods.

Defined in :doc:`/chapters/05_kl_divergence` (``kl_div``) and
:doc:`/chapters/04_2_likelihoods_and_sequences` (``poisson_nll_loss``, ``gaussian_nll_loss``).

torch builds all three from elementwise ops and lets autograd differentiate
them, so their gradients w.r.t. *every* tensor argument (the target and the
variance included) are the chain rule through those ops, nan and all. The
backwards below write that chain rule out, term by term, in the same order,
in differentiable ops: under ``create_graph=True`` autograd records them, so
second derivatives are the derivatives of these hand-written first ones, as
torch's are of its. The usual forward and ``loss.backward()`` (plain tensors,
grad mode off in backward) compute the same numbers in place, in fresh
buffers. float16 and bfloat16 arguments are computed in float32 (torch's
float16 ``gaussian_nll_loss`` overflows :math:`(x - y)^2` past 256) and the
loss is rounded once.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, plain, transformable
from .._precision import rounded, upcast
from .._reduction import NOT_VALID, check_reduction, legacy_or, reduce, reduction_grad, sum_to_shape
from . import _probabilistic_checks as checks

__all__ = ["kl_div", "poisson_nll_loss", "gaussian_nll_loss"]

KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release."
)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _scale(grad_output: Tensor, shape: torch.Size, reduction: str, divisor: int = 1) -> Tensor:
    """:math:`\\partial L / \\partial l_n` times the incoming gradient: one number for ``'sum'``
    and ``'mean'`` (and ``'batchmean'``, divided by ``divisor``), the incoming gradient itself
    for ``'none'``."""
    r = reduction_grad(upcast(grad_output), reduction, math.prod(shape))
    return r / divisor if divisor != 1 else r


def _to_shape(grad: Tensor | None, shape: torch.Size, full: torch.Size) -> Tensor | None:
    """A gradient computed over (part of) the losses' shape ``full``, summed back to the
    shape of the argument it belongs to."""
    if grad is None:
        return None
    return sum_to_shape(grad if grad.shape == full else grad.expand(full), shape)


def _common_shape(*shapes: torch.Size) -> torch.Size:
    """The arguments' shapes broadcast together (already checked by the public function):
    the first one when all are equal, the usual case, without ``torch.broadcast_shapes``'
    Python walk (microseconds a call, more than a tiny loss's arithmetic)."""
    first = shapes[0]
    return first if all(s == first for s in shapes) else torch.broadcast_shapes(*shapes)


def _smallest_positive(dtype: torch.dtype) -> float:
    """The smallest positive (subnormal) number of ``dtype``: below every positive value."""
    info = torch.finfo(dtype)
    return info.smallest_normal * info.eps


@transformable
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
    ``divisor`` is the batch size for ``'batchmean'`` (else 1). The loss is
    linear in :math:`x`; its second derivatives are :math:`\partial^2 l_n /
    \partial x_n \partial y_n = -1` and :math:`\partial^2 l_n / \partial y_n^2 = 1 / y_n`
    (:math:`-e^{y_n}` and :math:`e^{y_n}(y_n - x_n + 2)` with ``log_target``).
    """

    @staticmethod
    def forward(input, target, reduction, log_target, divisor):
        x, y = upcast(input), upcast(target)
        if plain(input, target) and x.dtype == y.dtype:
            loss = _kl_terms_in_place(x, y, log_target)
        elif log_target:
            loss = torch.exp(y) * (y - x)
        else:
            loss = torch.xlogy(y, y) - y * x
        out = reduce(loss, reduction)
        return rounded(out / divisor if divisor != 1 else out, input.dtype, target.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, reduction, log_target, divisor = inputs
        ctx.save_for_backward(input, target)
        ctx.save_for_forward(input, target)
        ctx.options = reduction, log_target, divisor
        ctx.shape = _common_shape(input.shape, target.shape)

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        reduction, log_target, divisor = ctx.options
        x, y, need = upcast(input), upcast(target), ctx.needs_input_grad
        r = _scale(grad_output, ctx.shape, reduction, divisor)
        fast = fast_path(grad_output, input, target)
        grad_input = grad_target = None
        p = torch.exp(y) if log_target else y  # what the input's gradient is minus
        if need[0]:
            grad_input = torch.mul(p, r).neg_() if fast else -(r * p)
        if need[1] and log_target:
            grad_target = r * (y - x) * p + r * p
        elif need[1]:  # xlogy(y, y) differentiated as torch does, then the product's -r x
            grad_target = torch.xlogy(r, y).masked_fill(y == 0, 0) + r * y / y - r * x
        return (_to_shape(grad_input, input.shape, ctx.shape),
                _to_shape(grad_target, target.shape, ctx.shape), None, None, None)

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, *_):
        input, target = ctx.saved_tensors
        reduction, log_target, divisor = ctx.options
        x, y = upcast(input), upcast(target)
        t_x, t_y = upcast(input_tangent), upcast(target_tangent)
        p = torch.exp(y) if log_target else y
        terms = x.new_zeros(ctx.shape, dtype=torch.promote_types(x.dtype, y.dtype))
        if t_x is not None:
            terms = terms - p * t_x
        if t_y is not None and log_target:
            terms = terms + (t_y * p) * (y - x) + t_y * p
        elif t_y is not None:  # torch's forward-mode xlogy, then the product's -t_y x
            terms = terms + torch.xlogy(t_y, y).masked_fill(y == 0, 0) + t_y * y / y - t_y * x
        out = reduce(terms, reduction)
        return rounded(out / divisor if divisor != 1 else out, input.dtype, target.dtype)


def _kl_terms_in_place(x: Tensor, y: Tensor, log_target: bool) -> Tensor:
    r"""The pointwise KL divergence in one fresh buffer of the losses' shape:
    :math:`e^y (y - x)`, or :math:`y \log y - y x` with :math:`0 \log 0 = 0`. When no
    :math:`y` is negative or NaN (where torch's :math:`\operatorname{xlogy}` is NaN too), the
    log's argument is floored at the smallest positive number, which changes no positive
    :math:`y` and makes :math:`0 \log 0 = 0 \cdot \log(\text{tiny}) = 0`: three vectorised
    passes where ``xlogy`` is one slow scalar one."""
    if log_target:
        return torch.sub(y, x).mul_(torch.exp(y))
    if y.numel() == 0 or not y.min() >= 0:
        return torch.xlogy(y, y) - y * x
    shape = _common_shape(x.shape, y.shape)
    log_y = y.expand(shape).clamp(min=_smallest_positive(y.dtype)).log_()
    return log_y.mul_(y).addcmul_(y, x, value=-1)


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
    (input, target), _ = _autocast.cast("kl_div", input, target)
    checks.check_kl_dtypes(input, target)
    checks.loss_shape("kl_div", input=input, target=target)
    divisor = input.size(0) if reduction == "batchmean" and input.dim() != 0 else 1
    return apply(KLDivFunction, input, target, resolved, log_target, divisor)


def _stirling(y: Tensor) -> Tensor:
    r"""Stirling's :math:`y \log y - y + \frac12 \log(2\pi y)`, zero where :math:`y \le 1`."""
    return (y * torch.log(y) - y + 0.5 * torch.log(2 * math.pi * y)).masked_fill(y <= 1, 0)


@transformable
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
    gradient is :math:`0 \cdot (-\infty)` = nan, mirrored here. The second
    derivatives are those of these formulas (:math:`e^{x_n}`, or
    :math:`y_n / (x_n + \epsilon)^2`, in :math:`x_n`; :math:`-1` or
    :math:`-1 / (x_n + \epsilon)` across :math:`x_n, y_n`).
    """

    @staticmethod
    def forward(input, target, log_input, full, eps, reduction):
        x, y = upcast(input), upcast(target)
        shape = _common_shape(x.shape, y.shape)
        if plain(input, target) and x.shape == shape and x.dtype == y.dtype:
            # torch's e^x - y x, or x - y log(x + eps), in one fresh buffer
            loss = torch.exp(x).addcmul_(y, x, value=-1) if log_input \
                else torch.add(x, eps).log_().mul_(y).neg_().add_(x)
        else:
            loss = torch.exp(x) - y * x if log_input else x - y * torch.log(x + eps)
        if full:
            loss = loss + _stirling(y)
        return rounded(reduce(loss, reduction), input.dtype, target.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, log_input, full, eps, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.save_for_forward(input, target)
        ctx.options = log_input, full, eps, reduction
        ctx.shape = _common_shape(input.shape, target.shape)

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        log_input, full, eps, reduction = ctx.options
        x, y, need = upcast(input), upcast(target), ctx.needs_input_grad
        g = _scale(grad_output, ctx.shape, reduction)
        grad_input = grad_target = None
        if need[0] and log_input and fast_path(grad_output, input, target) \
                and x.shape == ctx.shape:
            grad_input = torch.exp(x).mul_(g).addcmul_(y, g, value=-1)
        elif need[0] and log_input:
            grad_input = g * torch.exp(x) - g * y
        elif need[0]:
            grad_input = g - g * y / (x + eps)
        if need[1]:
            grad_target = -g * x if log_input else -g * torch.log(x + eps)
            if full:  # the masked Stirling term, differentiated op by op as torch does
                g_s = (g if g.shape == ctx.shape else g.expand(ctx.shape)).masked_fill(y <= 1, 0)
                grad_target = (grad_target + g_s * torch.log(y) + g_s * y / y - g_s
                               + (0.5 * g_s) / (2 * math.pi * y) * (2 * math.pi))
        return (_to_shape(grad_input, input.shape, ctx.shape),
                _to_shape(grad_target, target.shape, ctx.shape), None, None, None, None)

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, *_):
        input, target = ctx.saved_tensors
        log_input, full, eps, reduction = ctx.options
        x, y = upcast(input), upcast(target)
        t_x, t_y = upcast(input_tangent), upcast(target_tangent)
        terms = x.new_zeros(ctx.shape, dtype=torch.promote_types(x.dtype, y.dtype))
        if t_x is not None:
            terms = terms + (t_x * torch.exp(x) - y * t_x if log_input
                             else t_x - y * (t_x / (x + eps)))
        if t_y is not None:
            terms = terms - t_y * (x if log_input else torch.log(x + eps))
            if full:
                stirling = t_y * torch.log(y) + y * (t_y / y) - t_y \
                    + 0.5 * ((2 * math.pi * t_y) / (2 * math.pi * y))
                terms = terms + stirling.masked_fill(y <= 1, 0)
        return rounded(reduce(terms, reduction), input.dtype, target.dtype)


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
    (input, target), _ = _autocast.cast("poisson_nll_loss", input, target)
    checks.loss_shape("poisson_nll_loss", input=input, target=target)
    return apply(PoissonNLLLossFunction, input, target, log_input, full, eps, reduction)


@transformable
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
            = \frac12 \left(\frac{1}{v_n} - \frac{(x_n - y_n)^2 / v_n}{v_n}\right)

    where :math:`v_n = \max(\text{var}_n, \epsilon)`. torch clamps a clone of
    ``var`` in place under ``no_grad``, so the clamp is invisible to autograd:
    the gradient w.r.t. ``var`` is the formula above evaluated at the clamped
    value, passed straight through (not zeroed) where ``var < eps``. The
    variance term divides twice by :math:`v_n`, as torch does, never by
    :math:`v_n^2` (which overflows float16 past :math:`v_n = 256`).
    """

    @staticmethod
    def forward(input, target, var, full, eps, reduction):
        x, y, v = upcast(input), upcast(target), upcast(var)
        v = torch.clamp(v, min=eps)  # torch clamps a clone of var in place, under no_grad
        if plain(input, target, var) and x.dtype == y.dtype == v.dtype:
            diff = torch.sub(x, y)  # the one loss-sized buffer: 0.5 (log v + d^2 / v)
            loss = diff.mul_(diff).div_(v).add_(torch.log(v)).mul_(0.5)
            loss = loss.add_(_HALF_LOG_2PI) if full else loss
        else:
            loss = 0.5 * (torch.log(v) + (x - y) ** 2 / v)
            loss = loss + _HALF_LOG_2PI if full else loss
        return rounded(reduce(loss, reduction), input.dtype, target.dtype, var.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, var, full, eps, reduction = inputs
        ctx.save_for_backward(input, target, var)
        ctx.save_for_forward(input, target, var)
        ctx.options = eps, reduction
        ctx.shape = _common_shape(input.shape, target.shape, var.shape)

    @staticmethod
    def backward(ctx, grad_output):
        input, target, var = ctx.saved_tensors
        eps, reduction = ctx.options
        x, y, v = upcast(input), upcast(target), torch.clamp(upcast(var), min=eps)
        half = 0.5 * _scale(grad_output, ctx.shape, reduction)  # through 0.5 (...)
        fast = fast_path(grad_output, input, target, var) and x.dtype == y.dtype == v.dtype
        by_var = half / v  # the log's gradient, and the quotient's w.r.t. its numerator
        diff = torch.sub(x, y)
        grad_diff = torch.mul(diff, 2).mul_(by_var) if fast else by_var * (2 * diff)
        grads = [None, None, None]
        if ctx.needs_input_grad[0]:
            grads[0] = _to_shape(grad_diff, input.shape, ctx.shape)
        if ctx.needs_input_grad[1]:
            grads[1] = _to_shape(-grad_diff, target.shape, ctx.shape)
        if ctx.needs_input_grad[2]:  # the quotient's gradient w.r.t. v: -g ((d^2 / v) / v)
            if fast and by_var.shape == ctx.shape:
                grad_var = by_var.sub_(diff.mul_(diff).div_(v).div_(v).mul_(half))
            else:
                grad_var = by_var + (-half) * ((diff**2 / v) / v)
            grads[2] = _to_shape(grad_var, var.shape, ctx.shape)
        return *grads, None, None, None

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, var_tangent, *_):
        input, target, var = ctx.saved_tensors
        eps, reduction = ctx.options
        x, y, v = upcast(input), upcast(target), torch.clamp(upcast(var), min=eps)
        diff = x - y
        t_diff = torch.zeros_like(diff)
        if input_tangent is not None:
            t_diff = t_diff + upcast(input_tangent)
        if target_tangent is not None:
            t_diff = t_diff - upcast(target_tangent)
        t_square = t_diff * (2 * diff)  # torch's forward-mode pow, then the quotient's
        if var_tangent is None:
            terms = 0.5 * (t_square / v)
        else:
            t_v = upcast(var_tangent)
            terms = 0.5 * (t_v / v + (t_square - t_v * (diff**2 / v)) / v)
        return rounded(reduce(terms, reduction), input.dtype, target.dtype, var.dtype)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    r"""Gaussian negative log-likelihood, like :func:`torch.nn.functional.gaussian_nll_loss`.

    :math:`l_n = \frac12(\log \max(v_n, \epsilon) + (x_n - y_n)^2 / \max(v_n, \epsilon))`,
    plus :math:`\frac12 \log 2\pi` with ``full=True``. ``var`` is a tensor of ``input``'s
    shape, of that shape without its last dim, or with one dim of size 1; or a Python float.
    See :class:`GaussianNLLLossFunction` for the gradients.

    Like torch's, it tests the sign of a ``var`` tensor in Python: under ``torch.func.vmap``
    over a batched ``var`` tensor it raises (data-dependent control flow), as torch does.

    Examples:
        >>> mean, var = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
        >>> gaussian_nll_loss(mean, torch.tensor([1.0, 1.0]), var)
        tensor(0.4233)
    """
    # Same order of checks as torch: sign, then shape, then reduction.
    var = checks.check_var(input, var)
    check_reduction(reduction, accept_deprecated=False, message=NOT_VALID)
    checks.check_clampable(var, eps)
    (input, target, var), _ = _autocast.cast("gaussian_nll_loss", input, target, var)
    return apply(GaussianNLLLossFunction, input, target, var, full, eps, reduction)
