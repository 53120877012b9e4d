r"""Multi-class hinges: ``multi_margin_loss`` (one right class) and ``multilabel_margin_loss``
(a list of right classes).

Both mirror torch's C++ kernels, which exist for float32 and float64 only,
take a ``(C)`` or ``(N, C)`` input with class-index targets, and test the
hinge :math:`z > 0` *strictly* (so a NaN score adds nothing to the loss).

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._checks import dtype_name, refuse_grad
from .._reduction import reduce, reduction_grad, resolve

__all__ = ["multi_margin_loss", "multilabel_margin_loss"]


def _require_float_kernel(op: str, kernel: str, input: Tensor) -> None:
    """The C++ margin kernels exist for float32 and float64 only (``NotImplementedError``)."""
    if input.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError(f'"{kernel}" not implemented for {dtype_name(input.dtype)!r}: '
                                  f"{op} needs a float32 or float64 input, got {input.dtype}")


def _require_class_indices(op: str, target: Tensor) -> None:
    if target.dtype != torch.int64:
        raise RuntimeError(f"expected scalar type Long but found {dtype_name(target.dtype)}: "
                           f"{op} needs target to hold class indices as int64, got {target.dtype}")


def _frames(op: str, input: Tensor) -> tuple[int, int]:
    """``(N, C)`` of a 0-d, ``(C)`` or ``(N, C)`` input with ``C > 0``: what the C++ kernels
    take."""
    if not (input.dim() == 0 or (input.dim() in (1, 2) and input.size(-1) != 0)):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, "
                           f"but got: {list(input.shape)} ({op}: input must be (C) or (N, C) "
                           f"with C > 0)")
    if input.dim() <= 1:
        return 1, input.numel()
    return input.size(0), input.size(1)


def _frame_grad(grad_output: Tensor, reduction: str, frames: int) -> Tensor:
    """The incoming gradient of each frame's loss, as a column ``(N, 1)`` (or ``(1, 1)``)."""
    if reduction == "none":
        grad_output = grad_output.reshape(-1)
    return reduction_grad(grad_output, reduction, frames).reshape(-1, 1)


class MultiMarginLossFunction(Function):
    r"""Multi-class hinge: every wrong class :math:`i` should score ``margin`` below the right
    one :math:`y`.

    .. math::
        l_n = \frac{1}{C}\sum_{i \ne y_n} w_{y_n} \max(0, z_{ni})^p, \qquad
        z_{ni} = \text{margin} - x_{n y_n} + x_{ni}

    with :math:`p \in \{1, 2\}` and :math:`w = 1` without ``weight``. Writing
    :math:`h_{ni} = w_{y_n} [z_{ni} > 0] \cdot (1 \text{ or } 2 z_{ni}) / C`:

    .. math::
        \frac{\partial l_n}{\partial x_{ni}} = h_{ni} \;(i \ne y_n), \qquad
        \frac{\partial l_n}{\partial x_{n y_n}} = -\sum_{i \ne y_n} h_{ni}

    The test is :math:`z > 0` strictly, as in torch's kernel (so a NaN
    score contributes 0). ``mean`` divides by :math:`N`; ``weight`` is not
    differentiable (torch has no derivative for it).
    """

    @staticmethod
    def forward(input, target, p, margin, weight, reduction):
        x, y, z, active = MultiMarginLossFunction._margins(input, target, margin)
        h = z if p == 1 else z * z
        if weight is not None:
            h = h * weight[y].unsqueeze(1)
        loss = torch.where(active, h, 0.0).sum(1) / x.size(1)
        if reduction == "none":
            return loss.reshape(target.shape)
        return reduce(loss, reduction)

    @staticmethod
    def _margins(input, target, margin):
        n = target.numel()
        x = input.reshape(n, input.size(-1) if input.dim() else 1)
        y = target.reshape(n)
        z = (margin - x.gather(1, y.unsqueeze(1))) + x
        wrong = torch.arange(x.size(1), device=x.device).unsqueeze(0) != y.unsqueeze(1)
        return x, y, z, (z > 0) & wrong

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, p, margin, weight, reduction = inputs
        ctx.save_for_backward(input, target, weight)
        ctx.p, ctx.margin, ctx.reduction = p, margin, reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        x, y, z, active = MultiMarginLossFunction._margins(input, target, ctx.margin)
        h = torch.ones_like(z) if ctx.p == 1 else 2 * z
        if weight is not None:
            h = h * weight[y].unsqueeze(1)
        h = torch.where(active, h, 0.0) / x.size(1)
        h = h.scatter(1, y.unsqueeze(1), -h.sum(1, keepdim=True))
        g = _frame_grad(grad_output, ctx.reduction, x.size(0))
        return (h * g).reshape(input.shape), None, None, None, None, None


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    r"""Multi-class hinge loss,
    :math:`\frac{1}{C}\sum_{i \ne y} w_y \max(0, \text{margin} - x_y + x_i)^p`,
    like :func:`torch.nn.functional.multi_margin_loss`. See :class:`MultiMarginLossFunction`.

    Examples:
        >>> multi_margin_loss(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([3]))
        tensor(0.3250)
    """
    reduction = resolve(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError(f"only p == 1 and p == 2 supported: multi_margin_loss got p={p!r}")
    if weight is not None and weight.dim() != 1:
        raise ValueError(f"weight must be one-dimensional: multi_margin_loss got weight of shape "
                         f"{tuple(weight.shape)}")
    _require_float_kernel("multi_margin_loss", "multi_margin_loss_cpu_kernel", input)
    n, c = _frames("multi_margin_loss", input)
    if target.dim() > 1 or target.numel() != n:
        raise RuntimeError(f"multi_margin_loss: target must be 1-D with one class index per "
                           f"sample: expected target of shape ({n},), got {tuple(target.shape)} "
                           f"for input of shape {tuple(input.shape)}")
    if weight is not None and weight.numel() != c:
        raise RuntimeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}: "
                           f"multi_margin_loss needs one weight per class")
    _require_class_indices("multi_margin_loss", target)
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {dtype_name(input.dtype)} but found "
                           f"{dtype_name(weight.dtype)}: multi_margin_loss needs weight "
                           f"({weight.dtype}) in input's dtype ({input.dtype})")
    if target.numel() and (target.min() < 0 or target.max() >= c):
        raise RuntimeError(f"target out of range: multi_margin_loss needs class indices in "
                           f"[0, {c}), got values from {target.min().item()} to "
                           f"{target.max().item()}")
    refuse_grad("multi_margin_loss", "weight", weight)
    return MultiMarginLossFunction.apply(input, target, p, margin, weight, reduction)


class MultiLabelMarginLossFunction(Function):
    r"""Multi-label hinge: every target class :math:`j` should outscore every non-target class
    :math:`i` by 1.

    ``target`` lists the target classes of each sample, padded with -1 (the
    first -1 ends the list). With :math:`T_n` that list and :math:`\bar T_n`
    the other classes,

    .. math::
        l_n = \frac{1}{C}\sum_{j \in T_n}\sum_{i \in \bar T_n} \max(0, z_{nji}), \qquad
        z_{nji} = 1 - x_{nj} + x_{ni}

    .. math::
        \frac{\partial l_n}{\partial x_{ni}} = \frac{1}{C}\sum_{j \in T_n} [z_{nji} > 0], \qquad
        \frac{\partial l_n}{\partial x_{nj}} = -\frac{1}{C}\sum_{i \in \bar T_n} [z_{nji} > 0]

    A class listed twice counts twice, as in torch's kernel. ``mean``
    divides by :math:`N`.
    """

    @staticmethod
    def forward(input, target, reduction):
        x, (z, active), count = MultiLabelMarginLossFunction._margins(input, target)
        loss = (count.unsqueeze(2) * torch.where(active, z, 0.0)).sum((1, 2)) / x.size(1)
        if reduction == "none":
            return loss if input.dim() == 2 else loss.reshape(())
        return reduce(loss, reduction)

    @staticmethod
    def _margins(input, target):
        """z[n, j, i] = 1 - x[n, j] + x[n, i] and where it counts; count[n, j] = times j is
        listed."""
        c = input.size(-1) if input.dim() else 1
        x = input.reshape(-1, c)
        y = target.reshape(-1, c)
        listed = (y < 0).cumsum(1) == 0  # entries before the first -1
        classes = torch.arange(c, device=x.device)
        one_hot = (y.clamp_min(0).unsqueeze(2) == classes) & listed.unsqueeze(2)
        count = one_hot.sum(1).to(x.dtype)  # [n, class]
        is_target = count > 0
        z = (1 - x.unsqueeze(2)) + x.unsqueeze(1)
        active = (z > 0) & ~is_target.unsqueeze(1)
        return x, (z, active), count

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        x, (z, active), count = MultiLabelMarginLossFunction._margins(input, target)
        hits = count.unsqueeze(2) * active.to(x.dtype)  # [n, j, i]
        d = (hits.sum(1) - hits.sum(2)) / x.size(1)
        g = _frame_grad(grad_output, ctx.reduction, x.size(0))
        return (d * g).reshape(input.shape), None, None


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    r"""Multi-label hinge loss,
    :math:`\frac{1}{C}\sum_{j \in T}\sum_{i \notin T}\max(0, 1 - x_j + x_i)`,
    like :func:`torch.nn.functional.multilabel_margin_loss`.

    See :class:`MultiLabelMarginLossFunction`.

    Examples:
        >>> x = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 1]]))
        tensor(0.8500)
    """
    reduction = resolve(size_average, reduce, reduction)
    _require_float_kernel("multilabel_margin_loss", "multilabel_margin_loss_forward_out_frame",
                          input)
    n, c = _frames("multilabel_margin_loss", input)
    # (N, C) input: target (N, C); (C) or 0-d input: any target of C entries in at most one dim.
    batched = input.dim() == 2
    want = (n, c) if batched else (c,)
    if (target.shape != want) if batched else (target.dim() > 1 or target.numel() != c):
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)} (multilabel_margin_loss needs target of shape "
                           f"{want}, class indices padded with -1)")
    _require_class_indices("multilabel_margin_loss", target)
    if target.numel() and (target.min() < -1 or target.max() >= c):
        raise RuntimeError(f"argument #2 'target' is out of range: multilabel_margin_loss needs "
                           f"class indices in [0, {c}) or -1 padding, got values from "
                           f"{target.min().item()} to {target.max().item()}")
    return MultiLabelMarginLossFunction.apply(input, target, reduction)
