"""torch's checks of the arguments of the regression losses (l1, mse, smooth_l1, huber).

Each raises the exception type torch raises, with torch's words first and then
the arguments' shapes, dtypes or values. Kept apart from
:mod:`lossutils.functional.regression`, which holds the math.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from .. import _autocast
from .._checks import dtype_name
from .._reduction import INVALID_MODE, check_reduction


def require_real_floating(op: str, kernel: str, dtype: torch.dtype) -> None:
    """torch's MSE/SmoothL1/Huber kernels exist for real floating dtypes only."""
    if not dtype.is_floating_point:
        raise NotImplementedError(
            f'"{kernel}" not implemented for {dtype_name(dtype)!r}: {op} needs floating-point '
            f"input and target, and they promote to {dtype}"
        )


def real_scalar(op: str, name: str, value) -> float:
    """torch parses ``beta``/``delta`` as a C++ double: numbers and 0-dim tensors only."""
    if isinstance(value, Tensor):
        if value.dim() == 0 and not value.is_complex():
            return value.item()
    elif isinstance(value, numbers.Real):
        return value
    shape = f" of shape {tuple(value.shape)}" if isinstance(value, Tensor) else ""
    raise TypeError(f"{op}(): argument '{name}' must be a real number (float), "
                    f"got {type(value).__name__}{shape}")


def check_weight_shape(weight: Tensor, shape: torch.Size, op: str) -> None:
    """torch compares ``weight`` with ``input``'s own size, before broadcasting against
    ``target``."""
    if weight.size() != shape:
        raise ValueError(
            f"Weights and input must have the same size: {op} got weight of shape "
            f"{tuple(weight.shape)} and input of shape {tuple(shape)}."
        )


def refuse_bool(op: str, input_dtype: torch.dtype, target_dtype: torch.dtype) -> None:
    """L1 subtracts first, and torch's ``-`` refuses a bool tensor: the refusal is
    torch's own, raised by its subtraction of two empty tensors of these dtypes (its
    words, and its type, which changed from RuntimeError in 2.13 to NotImplementedError
    in 2.14), with the arguments named after it. Where torch subtracts, so does L1."""
    try:
        torch.empty(0, dtype=input_dtype) - torch.empty(0, dtype=target_dtype)
    except (RuntimeError, NotImplementedError) as err:
        raise type(err)(f"{err} ({op} computes input - target, got input of dtype "
                        f"{input_dtype}, target of dtype {target_dtype})") from None


def autocast_args(op: str, input: Tensor, target: Tensor, weight: Tensor | None,
                   reduction: str) -> tuple[Tensor, Tensor, Tensor | None]:
    """The arguments as torch's autocast passes them to the op (its weighted branches are
    compositions: ``op[weighted]`` in :data:`lossutils._autocast.COMPOSITES`)."""
    name = op if weight is None else f"{op}[weighted]"
    (input, target, weight), _ = _autocast.cast(name, input, target, weight, reduction=reduction)
    return input, target, weight


def check_weighted_reduction(reduction: str) -> str:
    # torch's weighted branch compares the string itself: no 'elementwise_mean' alias there.
    return check_reduction(reduction, accept_deprecated=False, message=INVALID_MODE)


