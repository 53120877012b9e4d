r"""Soft margins: the two-class and the multi-label logistic losses.

``soft_margin_loss`` is the smooth version of a hinge on :math:`y x`
(:math:`y \in \{1, -1\}`); ``multilabel_soft_margin_loss`` is one logistic
loss per class, averaged over the classes. Both are computed the way torch's
kernels compute them, log-sigmoid (:mod:`lossutils._sigmoid`) included.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, plain, transformable
from .._checks import broadcast_shape, dtype_name, refuse_grad, require_floating
from .._precision import rounded, upcast
from .._reduction import (
    NOT_VALID,
    check_reduction,
    legacy_or,
    reduce,
    reduction_grad,
    resolve,
    sum_to_shape,
)

__all__ = ["soft_margin_loss", "multilabel_soft_margin_loss"]


class _NoForwardMode(Function):
    """The identity on ``soft_margin_loss``'s gradient: differentiable in reverse mode
    (torch's ``soft_margin_loss_backward`` has a derivative), but with torch's refusal of
    forward mode (it has no forward derivative, so ``torch.func.hessian`` raises)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(grad):
        return grad.view_as(grad)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad

    @staticmethod
    def jvp(ctx, tangent):
        raise NotImplementedError(
            "Trying to use forward AD with soft_margin_loss_backward that does not support it "
            "because it has not been implemented yet: torch has no forward-mode derivative of "
            "soft_margin_loss's gradient (so no torch.func.hessian), and lossutils, a drop-in "
            "for it, refuses it too")


@transformable
class SoftMarginLossFunction(Function):
    r"""Two-class logistic loss on targets :math:`y \in \{1, -1\}`.

    .. math::
        l_n = \log(1 + e^{-y_n x_n}), \qquad
        \frac{\partial l_n}{\partial x_n} = \frac{-y_n z_n}{1 + z_n}, \qquad
        \frac{\partial^2 l_n}{\partial x_n^2} = \frac{y_n^2 z_n}{(1 + z_n)^2}, \qquad
        z_n = e^{-y_n x_n}

    computed, like torch's kernel, literally as ``log1p(exp(-y x))``: for
    :math:`-y x` beyond ``exp``'s range the loss is ``inf`` and its gradient
    ``inf / inf = nan``, exactly where torch's are. ``mean`` divides by
    :math:`N`, the number of elements of ``input``. The backward is torch's
    ``soft_margin_loss_backward`` op for op (each step rounded to ``input``'s dtype,
    so float16 and bfloat16 round alike) in differentiable ops: autograd's derivative
    of it is torch's double backward; :math:`\dot l_n` is the slope times :math:`\dot x_n`.
    ``target`` takes no gradient (torch refuses one). Like torch, no forward-mode
    derivative of the *gradient*: ``torch.func.hessian`` (forward over reverse) raises
    ``NotImplementedError``; double backward and ``jacrev(jacrev(...))`` work.
    """

    @staticmethod
    def forward(input, target, reduction):
        # torch writes into a tensor of input's dtype: (-x * y) is rounded to it first.
        if plain(input, target):  # as torch does: neg_out(loss, input).mul_(target)
            loss = torch.neg(input).mul_(target)
        else:
            loss = (-input * target).to(input.dtype)
        loss = loss.exp_().log1p_()
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.save_for_forward(input, target)
        ctx.reduction = reduction

    @staticmethod
    def _slope(input, target, scale, fast):
        """``scale`` times :math:`-y z / (1 + z)` as torch's backward forms it: ``target * z``
        into a tensor of input's dtype, times ``-scale``, divided by ``z + 1``."""
        dtype = input.dtype
        if fast:
            slope = torch.empty(input.shape, dtype=dtype, device=input.device)
            if input.numel() < 2 or target.shape != input.shape or not (
                    input.is_contiguous() and target.is_contiguous()):
                return SoftMarginLossFunction._slope_into(slope, input, target, scale)
            # Half the elements at a time: `z` of one half and the slope are N + N/2 floats,
            # under torch's peak (its backward's N floats and its forward's loss buffer, which
            # torch keeps alive under the 0-d loss; lossutils' loss is one float).
            half = input.numel() // 2
            for part in (slice(0, half), slice(half, None)):
                SoftMarginLossFunction._slope_into(slope.view(-1)[part], input.view(-1)[part],
                                                   target.view(-1)[part], scale)
            return slope
        z = (-target * input).exp()
        return ((target * z).to(dtype) * -scale / (z + 1)).to(dtype)

    @staticmethod
    def _slope_into(out, input, target, scale):
        """The fast :meth:`_slope`, written into ``out``: ``z`` in a fresh buffer, then
        ``target * z``, times ``-scale``, over ``z + 1``, elementwise as torch's kernel."""
        z = torch.mul(target, input).neg_().exp_()  # -(y x) is -y x exactly
        return torch.mul(target, z, out=out).mul_(-scale).div_(z.add_(1))

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        fast = fast_path(grad_output, input, target)
        scale = 1.0 / max(input.numel(), 1) if ctx.reduction == "mean" else 1.0
        slope = SoftMarginLossFunction._slope(input, target, scale, fast)
        if fast:
            return slope.mul_(grad_output), None, None
        return _NoForwardMode.apply((slope * grad_output).to(input.dtype)), None, None

    @staticmethod
    def jvp(ctx, input_tangent, *_):
        input, target = ctx.saved_tensors
        return reduce(SoftMarginLossFunction._slope(input, target, 1.0, False) * input_tangent,
                      ctx.reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    r"""Two-class logistic loss, :math:`l_n = \log(1 + e^{-y_n x_n})`,
    like :func:`torch.nn.functional.soft_margin_loss`. See :class:`SoftMarginLossFunction`.

    Examples:
        >>> soft_margin_loss(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0]))
        tensor(0.7201)
    """
    reduction = resolve(size_average, reduce, reduction)
    # torch writes the loss into a tensor shaped and typed like input: target
    # may broadcast *to* input, never widen it.
    if (target.shape != input.shape
            and broadcast_shape("soft_margin_loss", input=input, target=target) != input.shape):
        raise RuntimeError(f"soft_margin_loss: target of shape {tuple(target.shape)} must "
                           f"broadcast to input's shape {tuple(input.shape)}")
    if not input.is_floating_point():
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{dtype_name(input.dtype)}: soft_margin_loss needs a floating-point "
                           f"input, got {input.dtype}")
    refuse_grad("soft_margin_loss", "target", target)
    (input, target), _ = _autocast.cast("soft_margin_loss", input, target)
    return apply(SoftMarginLossFunction, input, target, reduction)


def _elementwise(x: Tensor, y: Tensor, in_place: bool) -> Tensor:
    r""":math:`\ell = -[y \log\sigma(x) + (1 - y)\log\sigma(-x)]
    = \max(x, 0) - y x + \log(1 + e^{-|x|})`, the form of torch's
    ``binary_cross_entropy_with_logits`` (no overflow, and no cancellation: for
    :math:`y = 1` the first two terms cancel exactly). ``in_place``: into fresh buffers,
    two allocations and seven passes. Otherwise differentiable, smooth at :math:`x = 0`:
    ``torch.where`` picks the :math:`x \ge 0` branch there for :math:`\max(x, 0)` and
    :math:`-|x|` alike, so autograd's derivative is :math:`\sigma(x) - y` (``clamp`` and
    ``abs`` would give it as :math:`1 - y` at 0)."""
    if in_place:
        loss = torch.clamp_min(x, 0).sub_(x * y if y.shape != x.shape else torch.mul(x, y))
        return loss.add_(x.abs().neg_().exp_().log1p_())
    return torch.where(x >= 0, x, 0) - y * x + torch.where(x >= 0, -x, x).exp().log1p()


@transformable
class MultiLabelSoftMarginLossFunction(Function):
    r"""One logistic loss per class, averaged over the :math:`C` classes.

    .. math::
        l_n = -\frac{1}{C}\sum_c w_c \big[y_{nc} \log\sigma(x_{nc})
            + (1 - y_{nc})\log\sigma(-x_{nc})\big]

    .. math::
        \frac{\partial l_n}{\partial x_{nc}}
            = \frac{w_c}{C}\big[(1 - y_{nc})\sigma(x_{nc}) - y_{nc}\sigma(-x_{nc})\big]
            = \frac{w_c}{C}(\sigma(x_{nc}) - y_{nc}),

    .. math::
        \frac{\partial l_n}{\partial y_{nc}}
            = -\frac{w_c}{C}\big[\log\sigma(x_{nc}) - \log\sigma(-x_{nc})\big]
            = -\frac{w_c x_{nc}}{C}, \qquad
        \frac{\partial l_n}{\partial w_c} = \frac{\ell_{nc}}{C}

    where :math:`\ell_{nc}` is the bracket before weighting. The classes are
    the last dim of ``input``; ``target`` and ``weight`` broadcast against it.
    ``mean`` divides by the number of :math:`l_n`.

    Computed in the simplified forms on the right (torch composes ``log_sigmoid`` twice:
    the same numbers to rounding, in fewer passes). The backward is written in
    differentiable ops, so autograd's derivative of it is the second derivative
    (:math:`\partial^2 l_n / \partial x_{nc}^2 = \frac{w_c}{C}\sigma(x_{nc})\sigma(-x_{nc})`,
    as torch's ``log_sigmoid`` double backward gives); ``jvp`` is the same slopes times
    the tangents. float16 and bfloat16 arguments are computed in float32 and the result
    rounded, as torch's ``log_sigmoid`` kernel and ``sum`` accumulate in float32.
    """

    @staticmethod
    def forward(input, target, weight, reduction):
        x, y, w = upcast(input), upcast(target), upcast(weight)
        loss = _elementwise(x, y, plain(input, target, weight) and x.dtype == y.dtype)
        if w is not None:
            loss = loss * w
        class_dim = input.dim() - 1
        per_sample = loss.sum(class_dim) / input.size(class_dim)
        dtypes = [t.dtype for t in (input, target, weight) if t is not None]
        return rounded(reduce(per_sample, reduction), *dtypes)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, ctx.reduction = inputs
        ctx.save_for_backward(input, target, weight)
        ctx.save_for_forward(input, target, weight)
        ctx.dtype = output.dtype

    @staticmethod
    def _slopes(x, y, need, in_place):
        r""":math:`\partial \ell / \partial x = \sigma(x) - y` and
        :math:`\partial \ell / \partial y = -x` (before weight and scale), where ``need``
        asks for them."""
        d_input = d_target = None
        if need[0]:
            sigma = torch.sigmoid(x)
            d_input = sigma.sub_(y) if in_place and sigma.shape == y.shape else sigma - y
        if need[1]:
            d_target = -x
        return d_input, d_target

    @staticmethod
    def _scale(grad_output, reduction, shape, class_dim):
        r""":math:`\partial L / \partial l_n` over :math:`C`, shaped to broadcast against the
        per-element terms of ``shape`` (the broadcast shape of the arguments)."""
        classes = shape[class_dim]
        samples = math.prod(shape) // classes if classes else 0
        scale = reduction_grad(upcast(grad_output), reduction, samples) / classes
        return scale.unsqueeze(class_dim) if reduction == "none" else scale

    @staticmethod
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        x, y, w = upcast(input), upcast(target), upcast(weight)
        fast = fast_path(grad_output, input, target, weight)
        shape = torch.broadcast_shapes(*(t.shape for t in (x, y, w) if t is not None))
        scale = MultiLabelSoftMarginLossFunction._scale(grad_output, ctx.reduction, shape,
                                                        input.dim() - 1)
        need = ctx.needs_input_grad
        slopes = MultiLabelSoftMarginLossFunction._slopes(x, y, need[:2], fast)
        if need[2]:
            slopes += (_elementwise(x, y, False),)
        grads = []
        for slope, arg in zip(slopes, (input, target, weight), strict=False):
            if slope is None:
                grads.append(None)
                continue
            factor = scale if w is None or arg is weight else w * scale
            if fast and slope.shape == shape:
                slope = slope.mul_(factor)
            else:
                slope = slope * factor
            grads.append(sum_to_shape(slope.expand(shape), arg.shape).to(arg.dtype))
        grads += [None] * (3 - len(grads))
        return *grads, None

    @staticmethod
    def jvp(ctx, input_tangent, target_tangent, weight_tangent, _):
        input, target, weight = ctx.saved_tensors
        x, y, w = upcast(input), upcast(target), upcast(weight)
        tangents = (input_tangent, target_tangent)
        slopes = MultiLabelSoftMarginLossFunction._slopes(
            x, y, [t is not None for t in tangents], False)
        terms = [s * upcast(t) for s, t in zip(slopes, tangents, strict=True) if s is not None]
        if terms and w is not None:
            terms = [sum(terms) * w]
        if weight_tangent is not None:
            terms.append(_elementwise(x, y, False) * upcast(weight_tangent))
        if not terms:
            return None
        class_dim = input.dim() - 1
        per_sample = sum(terms).sum(class_dim) / input.size(class_dim)
        return reduce(per_sample, ctx.reduction).to(ctx.dtype)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Per-class logistic loss averaged over classes, like
    :func:`torch.nn.functional.multilabel_soft_margin_loss`.

    See :class:`MultiLabelSoftMarginLossFunction`.

    Examples:
        >>> multilabel_soft_margin_loss(torch.tensor([[3.0, -3.0]]), torch.tensor([[1.0, 0.0]]))
        tensor(0.0486)
    """
    reduction = legacy_or(size_average, reduce, reduction)
    if input.dim() == 0:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions: "
                         "multilabel_soft_margin_loss needs input of shape (C) or (N, C), "
                         "got a 0-d tensor")
    broadcast_shape("multilabel_soft_margin_loss", input=input, target=target,
                    **({} if weight is None else {"weight": weight}))
    require_floating("input", "log_sigmoid_cpu", input)
    # torch checks the name only after computing: 'elementwise_mean' is no alias here.
    check_reduction(reduction, accept_deprecated=False, message=NOT_VALID)
    (input, target, weight), _ = _autocast.cast("multilabel_soft_margin_loss", input, target,
                                                weight)
    return apply(MultiLabelSoftMarginLossFunction, input, target, weight, reduction)
