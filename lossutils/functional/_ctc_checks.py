"""torch's checks of the arguments of ``ctc_loss``, and the label rows they lead to.

Each raises the exception type torch raises, with the sizes and values spelled
out. The length checks read the lengths once, as Python ints (the values beneath
any ``torch.func`` wrapper: every sample of a ``vmap`` at once). Kept apart from
:mod:`lossutils.functional.ctc` so that file holds the math.
"""

from __future__ import annotations

import itertools
import operator

import torch
from torch import Tensor

from .._autograd import has_values, unwrap
from .._checks import dtype_name


def lengths(name: str, value) -> Tensor:
    """Lengths as a 1-D int64 tensor, from a tensor of integers or a sequence of ints."""
    if isinstance(value, Tensor):
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise RuntimeError(f"{name} must be integral: got a tensor of dtype {value.dtype}")
        if value.dtype == torch.int64 and value.dim() == 1:  # as given: no op to dispatch
            return value
        return value.to(torch.int64).reshape(-1)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a tensor or a tuple/list of ints, "
                        f"got {type(value).__name__}")
    try:
        return torch.tensor([operator.index(v) for v in value], dtype=torch.int64)
    except TypeError:
        raise TypeError(f"{name} must hold ints, got {value!r}") from None


def values(t: Tensor) -> list[int] | None:
    """Every value of ``t`` (of every sample under a ``vmap``), or None without data."""
    if not has_values(t):
        return None
    t = unwrap(t)
    return (t if t.dim() == 1 else t.reshape(-1)).tolist()


def require_float(log_probs: Tensor) -> None:
    if log_probs.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError(
            f'"ctc_loss_cpu" not implemented for {dtype_name(log_probs.dtype)!r}: '
            f"log_probs must be float32 or float64, got {log_probs.dtype}")


def check(log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor,
          blank: int) -> tuple[list[int] | None, list[int] | None]:
    """torch's checks, in torch's order (all ``RuntimeError``); returns the values of
    ``input_lengths`` and ``target_lengths`` (None when they cannot be read)."""
    if log_probs.dim() != 3:
        raise RuntimeError("log_probs must be (T, C) or (T, N, C): got shape "
                           f"{tuple(log_probs.squeeze(1).shape)}")
    if log_probs.numel() == 0:
        raise RuntimeError(f"log_probs tensor must not be empty: got shape "
                           f"{tuple(log_probs.shape)}")
    if not 1 <= targets.dim() <= 2:
        raise RuntimeError(f"targets must be (N, S) or 1-D (concatenated): "
                           f"got {targets.dim()} dims")
    t, b, c = log_probs.shape
    if not 0 <= blank < c:
        raise RuntimeError(f"blank must be in label range [0, {c}): got blank={blank}")
    for name, given in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if given.numel() != b:
            raise RuntimeError(f"{name} must be of size batch_size {b}: "
                               f"got {given.numel()} lengths")
    frames, labels = values(input_lengths), values(target_lengths)
    if labels is None or frames is None:
        return frames, labels
    if min(labels, default=0) < 0:
        raise RuntimeError(f"target_lengths must be at least 0: got {_listed(target_lengths)}")
    if targets.dim() == 1 and targets.size(0) != sum(labels[:b]):
        raise RuntimeError(f"concatenated targets must have sum(target_lengths) = "
                           f"{sum(labels[:b])} entries: got size {targets.size(0)}")
    if targets.dim() == 2:
        if targets.size(0) != b:
            raise RuntimeError(f"padded targets must have batch_size {b} rows: "
                               f"got shape {tuple(targets.shape)}")
        if b and targets.size(1) < max(labels):
            raise RuntimeError(f"padded targets must have at least max(target_lengths) = "
                               f"{max(labels)} columns: got shape {tuple(targets.shape)}")
    if min(frames, default=0) < 0 or max(frames, default=0) > t:
        raise RuntimeError(f"input_lengths must be in [0, {t}] (the number of frames): "
                           f"got {_listed(input_lengths)}")
    return frames, labels


def _listed(t: Tensor) -> list:
    return unwrap(t).tolist()


def label_rows(targets: Tensor, target_lengths: Tensor, width: int) -> Tensor:
    """``(B, width)``: each sequence's labels, padded or concatenated targets alike (the
    entries past a sequence's length are whatever lies there: never read)."""
    if targets.dim() == 2:
        return targets[:, :width]
    columns = torch.arange(width, device=targets.device)
    at = (torch.cumsum(target_lengths, 0) - target_lengths).unsqueeze(1) + columns
    if not targets.numel():
        return at.new_zeros(at.shape)
    return targets[at.clamp(max=targets.numel() - 1)]


def check_labels(labels: Tensor, target_lengths: Tensor, blank: int, classes: int) -> None:
    """Every used label lies in ``[0, C)``. torch's CPU kernel reads out of bounds here
    without a word; a clear error is the only sane parity (``IndexError``)."""
    if not has_values(labels) or not labels.numel():
        return
    used = torch.arange(labels.size(-1), device=labels.device) < target_lengths.unsqueeze(-1)
    lo, hi = torch.aminmax(unwrap(torch.where(used, labels, blank)))
    if lo < 0 or hi >= classes:
        bad = unwrap(used & ((labels < 0) | (labels >= classes))).nonzero()[0].tolist()
        value = unwrap(labels)[tuple(bad)].item()
        raise IndexError(f"targets must hold class indices in [0, {classes}): sequence "
                         f"{bad[-2]}, label {bad[-1]} is {value}")


def label_lists(targets: Tensor, lengths: list[int], classes: int) -> list[list[int]]:
    """Each sequence's labels as Python ints (one read of ``targets``, padded or
    concatenated), every one checked to lie in ``[0, C)`` as :func:`check_labels` does."""
    values = targets.tolist()
    if targets.dim() == 2:
        labels = [row[:n] for row, n in zip(values, lengths, strict=True)]
    else:
        ends = list(itertools.accumulate(lengths))
        labels = [values[end - n:end] for end, n in zip(ends, lengths, strict=True)]
    for b, row in enumerate(labels):
        if row and (min(row) < 0 or max(row) >= classes):
            k = next(k for k, v in enumerate(row) if not 0 <= v < classes)
            raise IndexError(f"targets must hold class indices in [0, {classes}): sequence "
                             f"{b}, label {k} is {row[k]}")
    return labels
