"""The softmax family: ``softmax`` and ``log_softmax``, and the row statistics they share.

Defined in :doc:`/chapters/03_cross_entropy` (forward) and
:doc:`/chapters/03_1_backward` (backward).

Both subtract the maximum along ``dim`` before exponentiating, so no
``exp`` ever overflows: :math:`\\operatorname{lse}(x) = m + \\log \\sum_j e^{x_j - m}`
with :math:`m = \\max_j x_j`. The log-softmax is formed as
:math:`(x_i - m) - \\log \\sum_j e^{x_j - m}` in that order (never as
:math:`x_i - \\operatorname{lse}`): with logits near :math:`10^4` the sum
:math:`m + \\log\\sum` would round away the small part in float32.
"""

from __future__ import annotations

import operator
import warnings

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, transformable
from .._checks import dtype_name
from .._exp import exp, exp_, exp_into
from .._precision import opmath, upcast
from .._staging import blocks, stageable, tail

__all__ = ["softmax", "log_softmax"]


def shifted_log_sum_exp(x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    r"""The two halves of the log-sum-exp along ``dim`` (kept, size 1):
    :math:`m = \max x` and :math:`\log\sum e^{x - m}`. For the fast paths: the sum is
    formed in place in a fresh tensor, so nothing records it."""
    m = x.amax(dim, keepdim=True)
    return m, exp_(x - m).sum(dim, keepdim=True).log_()


def log_probabilities(x: Tensor, dim: int) -> Tensor:
    r""":math:`(x - m) - \log\sum e^{x - m}` in differentiable ops, for backward formulas
    that must themselves be differentiated (and for ``torch.func`` transforms).

    :math:`m` is detached: the log-sum-exp does not depend on it (its derivative in
    :math:`m` is :math:`1 - \sum_j p_j = 0`), so autograd's derivative of this
    expression is the exact one, :math:`\partial/\partial x_i = e_i - p`, at every order."""
    shifted = x - x.amax(dim, keepdim=True).detach()
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


def _implicit_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's legacy choice when ``dim`` is omitted: 0 for 0-, 1- and 3-d inputs, else 1.

    With torch's deprecation warning, at ``stacklevel`` frames up."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _as_int(name: str, dim) -> int:
    """``dim`` as torch's argument parser reads an int: Python and NumPy integers and
    0-d integer tensors (through ``__index__``); never a bool, a float or a 1-d tensor."""
    is_bool = isinstance(dim, bool) or type(dim).__name__ == "bool" or (
        isinstance(dim, Tensor) and dim.dtype == torch.bool)
    if not is_bool and not (isinstance(dim, Tensor) and dim.dim() != 0):
        try:
            return operator.index(dim)
        except TypeError:
            pass
    kind = type(dim)
    kind = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    raise TypeError(f"{name}(): argument 'dim' must be int, not {kind.replace('torch.', '')}")


def _prepare(name: str, input: Tensor, dim, stacklevel: int, dtype) -> tuple[Tensor, int]:
    """Resolve ``dim`` (torch's warning when it is implicit), check it, apply autocast's
    policy and ``dtype``."""
    dim = _implicit_dim(name, input.dim(), stacklevel + 1) if dim is None else _as_int(name, dim)
    lo, hi = -max(input.dim(), 1), max(input.dim(), 1) - 1
    if not lo <= dim <= hi:
        raise IndexError(
            f"{name}(): dim {dim} is out of range for input of shape {tuple(input.shape)} "
            f"(expected to be in range of [{lo}, {hi}])"
        )
    # CUDA autocast gives softmax and log_softmax dtype=float32 (fp32_set_opt_dtype); CPU
    # autocast leaves them alone.
    _, dtype = _autocast.cast(name, input, dtype=dtype)
    if dtype is not None:
        # torch casts before computing; autograd carries the gradient back through the cast.
        input = input.to(dtype)
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"{name}" not implemented for {dtype_name(input.dtype)!r}: '
            f"input must be a floating-point tensor (or pass dtype=), got dtype {input.dtype}"
        )
    return input, dim


def _softmax_vjp(y: Tensor, g: Tensor, dim: int) -> Tensor:
    """:math:`y (g - \\sum_j g_j y_j)` in float32 for float16/bfloat16 (the Jacobian is
    symmetric: the same for a cotangent and a tangent). When nothing records it, the
    same numbers in one buffer: :math:`g y`, then :math:`g - \\sum`, then times :math:`y`,
    the row sums staged in that buffer where the layout allows (:func:`_rows`)."""
    fast = fast_path(y, g)
    y, g = upcast(y), upcast(g, opmath(y.dtype))
    if not fast:
        return y * (g - (g * y).sum(dim, keepdim=True))
    rows = _rows(y, g, dim)
    if rows is None:
        out = g * y
        return torch.sub(g, out.sum(dim, keepdim=True), out=out).mul_(y)
    y2, g2 = rows
    out = torch.empty_like(g2)
    # The row sums go into the last rows of `out` (lossutils._staging), torch's memory: first
    # those of the first rows, their products written where their results will go, then
    # those of the last rows, their products written over the first rows' (summed by then).
    sums, last = tail(out), -(-out.size(0) // out.size(1))  # the `last` rows hold the sums
    first = out.size(0) - last
    torch.sum(torch.mul(g2[:first], y2[:first], out=out[:first]), 1, True, out=sums[:first])
    torch.sum(torch.mul(g2[first:], y2[first:], out=out[:last]), 1, True, out=sums[first:])
    for block, s in blocks(out):
        torch.sub(g2[block], s, out=out[block]).mul_(y2[block])
    return out if out.shape == y.shape else out.view(y.shape)


def _rows(y: Tensor, g: Tensor, dim: int) -> tuple[Tensor, Tensor] | None:
    """``y`` and ``g`` as ``(rows, C)`` views when ``dim`` is the last dim of contiguous
    tensors whose gradient can stage its row sums (``lossutils._staging``), with at least
    as many rows before the last ``ceil(rows / C)`` as in them (the softmax writes the
    products of those into these): then the fast backward takes no more memory than
    torch's fused kernel. ``None`` otherwise."""
    if not y.dim() or not y.numel() or dim % y.dim() != y.dim() - 1:
        return None
    if not (y.is_contiguous() and g.is_contiguous()):
        return None
    y2, g2 = (y, g) if y.dim() == 2 else (y.view(-1, y.size(-1)), g.view(-1, g.size(-1)))
    m, c = y2.shape
    return (y2, g2) if stageable(y2) and m >= 2 * -(-m // c) else None


@transformable
class SoftmaxFunction(Function):
    r"""Softmax along ``dim``.

    .. math::
        y_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \qquad
        \frac{\partial L}{\partial x_i} = y_i \Big(g_i - \sum_j g_j y_j\Big)

    where :math:`g = \partial L / \partial y` and :math:`m = \max_j x_j` (the
    shift cancels; it only keeps ``exp`` finite). Only the output is saved. The
    Jacobian :math:`\operatorname{diag}(y) - y y^\top` is symmetric, so the
    forward-mode derivative (``jvp``) is the same formula applied to the tangent.
    float16 and bfloat16 compute in float32 (row sums of 70,000 ones stay finite)
    and round once, as torch's kernels do.
    """

    @staticmethod
    def forward(input, dim):
        if input.numel() == 0:
            return input.clone()
        dtype, input = input.dtype, upcast(input)  # float16/bfloat16: computed in float32
        e = exp_(input - input.amax(dim, keepdim=True))  # a fresh tensor: in place from here on
        return e.div_(e.sum(dim, keepdim=True)).to(dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.dim = inputs[1]
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return _softmax_vjp(y, grad_output, ctx.dim), None

    @staticmethod
    def jvp(ctx, input_tangent, _):
        (y,) = ctx.saved_tensors
        return _softmax_vjp(y, input_tangent, ctx.dim).to(y.dtype)


def _log_softmax_vjp_in_place(y: Tensor, g: Tensor, dim: int) -> Tensor:
    """:math:`g - e^y \\sum_j g_j` in one buffer, no more memory than torch's kernel: the row
    sums staged in the buffer's last rows (``lossutils._staging``) where the layout allows."""
    rows = _rows(y, g, dim)
    if rows is None:
        p = exp(y).mul_(g.sum(dim, keepdim=True))
        return torch.sub(g, p, out=p)
    y2, g2 = rows
    out = torch.empty_like(g2)
    torch.sum(g2, 1, True, out=tail(out))  # (lossutils._staging)
    for block, s in blocks(out):
        p = exp_into(y2[block], out[block], y2).mul_(s)
        torch.sub(g2[block], p, out=p)
    return out if out.shape == y.shape else out.view(y.shape)


@transformable
class LogSoftmaxFunction(Function):
    r"""Log-softmax along ``dim``.

    .. math::
        y_i = (x_i - m) - \log \sum_j e^{x_j - m}, \qquad
        \frac{\partial L}{\partial x_i} = g_i - e^{y_i} \sum_j g_j, \qquad
        \dot y_i = \dot x_i - \sum_j e^{y_j} \dot x_j

    where :math:`g = \partial L / \partial y` and :math:`\dot x` a tangent: each
    output depends on every input through the normaliser, whose derivative is the
    softmax :math:`e^{y}`. Only the output is saved. float16 and bfloat16 compute
    in float32 and round once.
    """

    @staticmethod
    def forward(input, dim):
        if input.numel() == 0:
            return input.clone()
        dtype, input = input.dtype, upcast(input)  # float16/bfloat16: computed in float32
        m, log_sum = shifted_log_sum_exp(input, dim)
        return (input - m).sub_(log_sum).to(dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.dim = inputs[1]
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        fast = fast_path(y, grad_output)
        y, grad_output = upcast(y), upcast(grad_output, opmath(y.dtype))
        if fast:  # the same numbers in one buffer: e^y, times the sum, subtracted from g
            return _log_softmax_vjp_in_place(y, grad_output, ctx.dim), None
        # (in float32 for float16/bfloat16; autograd rounds it to the input's dtype)
        return grad_output - y.exp() * grad_output.sum(ctx.dim, keepdim=True), None

    @staticmethod
    def jvp(ctx, input_tangent, _):
        (y,) = ctx.saved_tensors
        p, t = upcast(y).exp(), upcast(input_tangent, opmath(y.dtype))
        return (t - (p * t).sum(ctx.dim, keepdim=True)).to(y.dtype)


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
    return apply(SoftmaxFunction, input, dim)


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
    return apply(LogSoftmaxFunction, input, dim)

