"""How :mod:`lossutils.functional.cross_entropy` lays out its tensors and walks them.

Every input is looked at as a 3-d tensor ``(N, C, D)``: a 1-d input ``(C,)`` is
``(1, C, 1)``, ``(N, C)`` is ``(N, C, 1)`` and ``(N, C, d1, ..., dk)`` is
``(N, C, d1 * ... * dk)``, so one code path serves torch's three input layouts;
the class dimension is always 1. Class-index targets become, per position, the
class, whether it counts and its weight; the reductions and their gradients are
taken per position; the memory-lean passes walk blocks of whole rows.

Defined in :doc:`/chapters/03_1_backward`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._reduction import reduce, reduction_grad

# Elements per block of rows that forward pushes through its scratch buffer.
# With one thread, blocks that fit a core's L2 cache make each pass after the
# first nearly free. With several threads every op is a fork and a join, and
# on a busy machine a join waits for a descheduled thread: there, few big
# blocks win (measured with benchmarks/cross_entropy_memory.py). 64 MiB of
# float32 at most, small next to an N x C tensor at LLM sizes.
BLOCK_ELEMENTS_ONE_THREAD = 1 << 18
BLOCK_ELEMENTS = 1 << 24


def _blocks(x3: Tensor) -> list[slice]:
    """Slices of whole rows (dim 0) of ``x3``, each about one block of elements."""
    if x3.numel() <= BLOCK_ELEMENTS_ONE_THREAD:  # one block with any number of threads
        return [slice(None)]
    size = BLOCK_ELEMENTS_ONE_THREAD if torch.get_num_threads() == 1 else BLOCK_ELEMENTS
    step = max(1, size // max(x3.shape[1] * x3.shape[2], 1))
    return [slice(i, i + step) for i in range(0, x3.shape[0], step)]


def _as_ncd(x: Tensor) -> Tensor:
    """``(C,)`` -> ``(1, C, 1)``; ``(N, C)`` -> ``(N, C, 1)``; ``(N, C, d...)`` -> ``(N, C, D)``."""
    if x.dim() == 1:
        return x.reshape(1, x.shape[0], 1)
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def _ncd_shape(shape: torch.Size) -> tuple[int, int, int]:
    """The ``(N, C, D)`` shape :func:`_as_ncd` gives a tensor of ``shape``."""
    return (1, shape[0], 1) if len(shape) == 1 else (shape[0], shape[1], math.prod(shape[2:]))


def _row_shape(input: Tensor) -> tuple:
    """Shape of the unreduced loss: the input without its class dimension."""
    return () if input.dim() == 1 else (input.shape[0], *input.shape[2:])


def _class_view(weight: Tensor | None) -> Tensor | None:
    return None if weight is None else weight.reshape(1, -1, 1)


def _targets(shape: torch.Size, target: Tensor, weight: Tensor | None, ignore_index: int,
             dtype: torch.dtype):
    """Per position: the class (0 where ignored) as ``(N, 1, D)``, the mask of counted
    positions and their weights :math:`w_{y_n}` (0 where ignored, in ``dtype``)."""
    n, _, d = _ncd_shape(shape)
    y = target.reshape(n, 1, d).long()
    # ignore_index None: no target is ignored (every one lies in [0, C), none is -1)
    valid = y != (-1 if ignore_index is None else ignore_index)
    y = torch.where(valid, y, 0)  # class 0 where ignored: an index gather and scatter accept
    if weight is None:
        return y, valid, valid.to(dtype)
    # where, not a product: an ignored position's weight is 0 even if w_0 is inf or nan
    return y, valid, torch.where(valid, weight.take(y), 0).to(dtype)


def _rows_grad(grad_output: Tensor, reduction: str, shape: tuple, total) -> Tensor:
    """The incoming gradient per position, ``(N, 1, D)``, or a scalar (``mean``: over ``total``)."""
    if reduction == "none":
        grad_output = grad_output.reshape(shape[0], 1, shape[2])
    return reduction_grad(grad_output, reduction, shape[0] * shape[2], total)


def _class_index_reduce(nll: Tensor, smooth: Tensor | None, w_y: Tensor, reduction: str,
                        eps: float, n_classes: int, row_shape: tuple) -> Tensor:
    """Combine and reduce as ATen does: :math:`(1-\\varepsilon)\\,\\mathrm{nll}
    + \\frac{\\varepsilon}{C}\\,\\mathrm{smooth}`, each term divided by
    :math:`\\sum_n w_{y_n}` (over the counted targets) for ``mean``."""
    total = w_y.sum() if reduction == "mean" else None
    loss = reduce(nll, reduction, total)
    if smooth is not None:
        loss = (1 - eps) * loss + reduce(smooth, reduction, total) * (eps / n_classes)
    return loss.reshape(row_shape) if reduction == "none" else loss


_ONE_HOT_DTYPES = (torch.float32, torch.float64)


def _unmasked(ignore_index: int | None, weight: Tensor | None, eps: float,
              target: Tensor) -> bool:
    """Cross-entropy without masks or weights: no target ignored (``ignore_index`` None,
    as :func:`cross_entropy` passes it when its checks show so), no weight, no smoothing."""
    return ignore_index is None and weight is None and not eps and target.dtype == torch.long


def _one_hot_grad(ctx, target: Tensor, grad_output: Tensor) -> Tensor | None:
    r""":class:`NLLLossFunction`'s gradient for ``'sum'`` and ``'mean'`` without weights
    when no target is ignored, in the gradient's buffer alone as torch's kernel: zeros, and
    :math:`-g` (``'mean'``: :math:`-g / N`) scattered to each target. ``None`` (the general
    path) when a target may equal ``ignore_index`` or is not int64."""
    if target.dtype != torch.long or target.numel() == 0:
        return None
    if ctx.ignore_index is not None:  # (None: nll_loss's checks found no target ignored)
        low, high = target.aminmax()  # no target is ignore_index outside [low, high]
        if low.item() <= ctx.ignore_index <= high.item():
            return None
    n, c, d = _ncd_shape(ctx.input_shape)
    if grad_output.is_cpu:
        # -g / N as a number: rounded once to the gradient's dtype by scatter_, the same
        # number as the division in that dtype (double then float32 rounds correctly)
        scale = -grad_output.item()
        scale = scale / (n * d) if ctx.reduction == "mean" else scale
    else:  # a tensor: no synchronisation with the device
        # -g / N (the same number as -(g / N)): one scalar, made before the gradient's
        # buffer, so that no other temporary is alive with it
        scale = grad_output / -(n * d) if ctx.reduction == "mean" else -grad_output
        scale = scale.to(ctx.dtype).expand(n, 1, d)
    if len(ctx.input_shape) == 2:  # (N, C): no view in and out of the 3-d layout
        grad = torch.zeros(ctx.input_shape, dtype=ctx.dtype, device=grad_output.device)
        return grad.scatter_(1, target.unsqueeze(1), scale)
    grad = torch.zeros((n, c, d), dtype=ctx.dtype, device=grad_output.device)
    return grad.scatter_(1, target.reshape(n, 1, d), scale).reshape(ctx.input_shape)


def _class_index_slope(log_p: Tensor, y: Tensor, r: Tensor, w_y: Tensor, w: Tensor | None,
                       eps: float) -> Tensor:
    r""":math:`r_n \partial l_n / \partial x_{n,c}` of :class:`CrossEntropyFunction` from
    :math:`\log p`, in differentiable ops: :math:`r_n\big(((1-\varepsilon) w_{y_n}
    + \frac{\varepsilon}{C} S) p_c - (1-\varepsilon) w_{y_n} \mathbb{1}[c = y_n]
    - \frac{\varepsilon}{C} w_c\big)`, with :math:`r_n = 0` on ignored positions."""
    c = log_p.shape[1]
    total_w = c if w is None else w.sum()
    scale = r * ((1 - eps) * w_y + (eps / c) * total_w)
    grad = log_p.exp() * scale - torch.zeros_like(log_p).scatter(1, y, r * w_y * (1 - eps))
    if eps:
        grad = grad - r * (eps / c) * (1 if w is None else w)
    return grad
