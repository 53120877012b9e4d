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
    valid = y != ignore_index
    y = y.masked_fill(valid.logical_not(), 0)
    w_y = weight.take(y) if weight is not None else target.new_ones((), dtype=dtype)
    return y, valid, torch.where(valid, w_y, 0).to(dtype)


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


