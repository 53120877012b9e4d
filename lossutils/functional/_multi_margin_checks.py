"""torch's checks of the arguments of ``multi_margin_loss`` and ``multilabel_margin_loss``.

Each raises the exception type torch raises, with torch's words first and then
the shapes, dtypes or values involved. Kept apart from
:mod:`lossutils.functional.multi_margin` so that file holds the math.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._autograd import compiling, has_values, unwrap
from .._checks import dtype_name


def require_float_kernel(op: str, kernel: str, input: Tensor) -> None:
    """The C++ margin kernels exist for float32 and float64 only (``NotImplementedError``)."""
    if input.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError(f'"{kernel}" not implemented for {dtype_name(input.dtype)!r}: '
                                  f"{op} needs a float32 or float64 input, got {input.dtype}")


def require_class_indices(op: str, target: Tensor) -> None:
    if target.dtype != torch.int64:
        raise RuntimeError(f"expected scalar type Long but found {dtype_name(target.dtype)}: "
                           f"{op} needs target to hold class indices as int64, got {target.dtype}")


def frames(op: str, input: Tensor) -> tuple[int, int]:
    """``(N, C)`` of a 0-d, ``(C)`` or ``(N, C)`` input with ``C > 0``: what the C++ kernels
    take."""
    if not (input.dim() == 0 or (input.dim() in (1, 2) and input.size(-1) != 0)):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, "
                           f"but got: {list(input.shape)} ({op}: input must be (C) or (N, C) "
                           f"with C > 0)")
    if input.dim() <= 1:
        return 1, input.numel()
    return input.size(0), input.size(1)


def check_class_range(op: str, target: Tensor, low: int, c: int, message: str) -> None:
    """Every entry of ``target`` lies in ``[low, c)``: a data-dependent check, made once on
    the values beneath any ``torch.func`` wrapper (every sample of a ``vmap`` at once), an
    assertion in the graph while ``torch.compile`` traces, skipped for a tensor without
    data. ``message`` is torch's words; the range and the values found follow them."""
    if compiling():
        torch._assert_async(((target >= low) & (target < c)).all(),
                            f"{message}: {op} needs class indices in [{low}, {c})")
        return
    if not has_values(target) or not target.numel():
        return
    lo, hi = torch.aminmax(unwrap(target))  # one pass, one synchronisation
    require_range(op, int(lo), int(hi), low, c, message)


def require_range(op: str, lo: int, hi: int, low: int, c: int, message: str) -> None:
    """:func:`check_class_range` once the extremes ``lo`` and ``hi`` are known."""
    if lo < low or hi >= c:
        padding = " or -1 padding" if low < 0 else ""
        raise RuntimeError(f"{message}: {op} needs class indices in [0, {c}){padding}, got "
                           f"values from {lo} to {hi}")
