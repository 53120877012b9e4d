r"""Soft margins: the two-class and the multi-label logistic losses.

``soft_margin_loss`` is the smooth version of a hinge on :math:`y x`
(:math:`y \in \{1, -1\}`); ``multilabel_soft_margin_loss`` is one logistic
loss per class, averaged over the classes. Both are computed the way torch's
kernels compute them, log-sigmoid (:mod:`lossutils._sigmoid`) included.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, once_differentiable, plain, transformable
from .._checks import broadcast_shape, dtype_name, refuse_grad, require_floating
from .._reduction import (
    NOT_VALID,
    check_reduction,
    legacy_or,
    reduce,
    reduce_backward,
    resolve,
    sum_to_shape,
)
from .._sigmoid import log_sigmoid, log_sigmoid_grad

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
            z = torch.mul(target, input).neg_().exp_()  # -(y x) is -y x exactly
            slope = torch.mul(target, z, out=torch.empty(z.shape, dtype=dtype, device=z.device))
            return slope.mul_(-scale).div_(z.add_(1))
        z = (-target * input).exp()
        return ((target * z).to(dtype) * -scale / (z + 1)).to(dtype)

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
    """

    @staticmethod
    def forward(input, target, weight, reduction):
        loss = -(target * log_sigmoid(input) + (1 - target) * log_sigmoid(-input))
        if weight is not None:
            loss = loss * weight
        class_dim = input.dim() - 1
        return reduce(loss.sum(class_dim) / input.size(class_dim), reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, reduction = inputs
        ctx.save_for_backward(input, target, weight)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        class_dim, n_classes = input.dim() - 1, input.size(-1)
        shape = broadcast_shape("multilabel_soft_margin_loss", input=input, target=target,
                                **({} if weight is None else {"weight": weight}))
        per_sample = shape[:class_dim] + shape[class_dim + 1:]
        ones = torch.ones(per_sample, dtype=grad_output.dtype, device=grad_output.device)
        g = reduce_backward(ones, ctx.reduction, grad_output)
        g = g.unsqueeze(class_dim) / n_classes
        w = 1 if weight is None else weight
        grad_input = grad_target = grad_weight = None
        if ctx.needs_input_grad[0]:
            d = -(target * log_sigmoid_grad(input) - (1 - target) * log_sigmoid_grad(-input))
            grad_input = sum_to_shape((d * w * g).expand(shape), input.shape)
        if ctx.needs_input_grad[1]:
            d = -(log_sigmoid(input) - log_sigmoid(-input))
            grad_target = sum_to_shape((d * w * g).expand(shape), target.shape)
        if ctx.needs_input_grad[2]:
            d = -(target * log_sigmoid(input) + (1 - target) * log_sigmoid(-input))
            grad_weight = sum_to_shape((d * g).expand(shape), weight.shape)
        return grad_input, grad_target, grad_weight, None


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
    return MultiLabelSoftMarginLossFunction.apply(input, target, weight, reduction)
