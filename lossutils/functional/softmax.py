"""The softmax family: ``softmax`` and ``log_softmax``, and the row statistics they share.

Defined in :doc:`/chapters/03_cross_entropy`.

Both subtract the maximum along ``dim`` before exponentiating, so no
``exp`` ever overflows: :math:`\\operatorname{lse}(x) = m + \\log \\sum_j e^{x_j - m}`
with :math:`m = \\max_j x_j`. The log-softmax is formed as
:math:`(x_i - m) - \\log \\sum_j e^{x_j - m}` in that order (never as
:math:`x_i - \\operatorname{lse}`): with logits near :math:`10^4` the sum
:math:`m + \\log\\sum` would round away the small part in float32.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._checks import dtype_name

__all__ = ["softmax", "log_softmax"]


def shifted_log_sum_exp(x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    r"""The two halves of the log-sum-exp along ``dim`` (kept, size 1):
    :math:`m = \max x` and :math:`\log\sum e^{x - m}`."""
    m = x.amax(dim, keepdim=True)
    return m, (x - m).exp_().sum(dim, keepdim=True).log_()


def _implicit_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's legacy choice when ``dim`` is omitted: 0 for 0-, 1- and 3-d inputs, else 1.

    With torch's deprecation warning, at ``stacklevel`` frames up."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _prepare(name: str, input: Tensor, dim, stacklevel: int, dtype) -> tuple[Tensor, int]:
    """Resolve ``dim`` (torch's warning when it is implicit), check it, apply ``dtype``."""
    if dim is None:
        dim = _implicit_dim(name, input.dim(), stacklevel + 1)
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{name}(): argument 'dim' must be int, not {type(dim).__name__}")
    lo, hi = -max(input.dim(), 1), max(input.dim(), 1) - 1
    if not lo <= dim <= hi:
        raise IndexError(
            f"{name}(): dim {dim} is out of range for input of shape {tuple(input.shape)} "
            f"(expected to be in range of [{lo}, {hi}])"
        )
    if dtype is not None:
        # torch casts before computing; autograd carries the gradient back through the cast.
        input = input.to(dtype)
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"{name}" not implemented for {dtype_name(input.dtype)!r}: '
            f"input must be a floating-point tensor (or pass dtype=), got dtype {input.dtype}"
        )
    return input, dim


class SoftmaxFunction(Function):
    r"""Softmax along ``dim``.

    .. math::
        y_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad
        \frac{\partial L}{\partial x_i} = y_i \Big(g_i - \sum_j g_j y_j\Big)

    where :math:`g = \partial L / \partial y` and :math:`m = \max_j x_j` (the
    shift cancels; it only keeps ``exp`` finite). Only the output is saved.
    """

    @staticmethod
    def forward(input, dim):
        if input.numel() == 0:
            return input.clone()
        e = input - input.amax(dim, keepdim=True)
        e.exp_()
        return e.div_(e.sum(dim, keepdim=True))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.dim = inputs[1]
        ctx.save_for_backward(output)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return y * (grad_output - (grad_output * y).sum(ctx.dim, keepdim=True)), None


class LogSoftmaxFunction(Function):
    r"""Log-softmax along ``dim``.

    .. math::
        y_i = (x_i - m) - \log \sum_j e^{x_j - m}, \qquad
        \frac{\partial L}{\partial x_i} = g_i - e^{y_i} \sum_j g_j

    where :math:`g = \partial L / \partial y`: each output depends on every
    input through the normaliser, whose derivative is the softmax :math:`e^{y}`.
    Only the output is saved.
    """

    @staticmethod
    def forward(input, dim):
        if input.numel() == 0:
            return input.clone()
        m, log_sum = shifted_log_sum_exp(input, dim)
        return (input - m).sub_(log_sum)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.dim = inputs[1]
        ctx.save_for_backward(output)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output - y.exp() * grad_output.sum(ctx.dim, keepdim=True), None


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: torch.dtype | None = None) -> Tensor:
    r"""Softmax along ``dim``, like :func:`torch.nn.functional.softmax`.

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}

    Args:
        input: the logits.
        dim: the dimension that sums to one. ``None`` is deprecated: torch then
            picks 0 for 0-, 1- and 3-d inputs and 1 otherwise, and warns.
        dtype: if given, ``input`` is cast to it first (e.g. to avoid overflow in float16).

    Shape:
        output has the shape of ``input``.

    Examples:
        >>> softmax(torch.tensor([1.0, 2.0, 3.0]), dim=0)
        tensor([0.0900, 0.2447, 0.6652])

    See :class:`SoftmaxFunction` for the gradient.
    """
    input, dim = _prepare("softmax", input, dim, _stacklevel, dtype)
    return SoftmaxFunction.apply(input, dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: torch.dtype | None = None) -> Tensor:
    r"""Log-softmax along ``dim``, like :func:`torch.nn.functional.log_softmax`.

    .. math:: \operatorname{log\_softmax}(x)_i = x_i - \log \sum_j e^{x_j}

    Args:
        input: the logits.
        dim: the dimension to normalise over (``None``: torch's deprecated implicit choice).
        dtype: if given, ``input`` is cast to it first.

    Shape:
        output has the shape of ``input``.

    Examples:
        >>> log_softmax(torch.tensor([1.0, 2.0, 3.0]), dim=0)
        tensor([-2.4076, -1.4076, -0.4076])

    See :class:`LogSoftmaxFunction` for the gradient.
    """
    input, dim = _prepare("log_softmax", input, dim, _stacklevel, dtype)
    return LogSoftmaxFunction.apply(input, dim)

