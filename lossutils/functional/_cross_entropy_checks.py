"""torch's checks of the arguments of ``cross_entropy`` and ``nll_loss``, in ATen's order.

Each raises the exception type torch raises, with torch's words first and
then the shapes and dtypes of the arguments. Kept apart from
:mod:`lossutils.functional.cross_entropy` so that file holds the math alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._autograd import compiling, has_values, unwrap
from .._checks import dtype_name, refuse_grad, require_floating


def _weight_error(op: str, c: int, weight: Tensor, shapes: str) -> RuntimeError:
    return RuntimeError(f"{op}: weight tensor should be defined either for all {c} classes or no "
                        f"classes but got weight of shape {tuple(weight.shape)} for {shapes}")


def check_class_target(op: str, input: Tensor, target: Tensor, weight: Tensor | None,
                       ignore_index: int) -> None:
    """ATen's ``nll_loss_nd`` checks, in its order, raising the types torch raises."""
    shapes = f"input of shape {tuple(input.shape)}, target of shape {tuple(target.shape)}"
    if input.dim() < 1:
        raise ValueError(f"{op}: input must have 1 or more dimensions (got 0): {shapes}")
    if input.dim() != 1 and input.shape[0] != (target.shape[0] if target.dim() else 0):
        batch = target.shape[0] if target.dim() else "none, target is 0-d"
        raise ValueError(f"{op}: expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({batch}): {shapes}")
    # nll_loss_nd calls nll_loss (1-d, 2-d input) or nll_loss2d, whose autograd kernel
    # refuses a weight that requires grad before the kernel checks anything else
    refuse_grad(f"nll_loss{'2d' if input.dim() > 2 else ''}_forward", "weight", weight)
    c = input.shape[1] if input.dim() > 1 else input.shape[0]
    if input.dim() <= 2:
        if target.dim() > 1:
            raise RuntimeError(f"{op}: 0D or 1D target tensor expected, multi-target not "
                               f"supported: {shapes}")
        if input.dim() == 1 and target.dim() == 1 and target.shape[0] != 1:
            raise ValueError(f"{op}: for 1D input, 1D target must have size 1, but got {shapes}")
        if weight is not None and (weight.dim() != 1 or weight.numel() != c):
            raise _weight_error(op, c, weight, shapes)
        if target.dtype not in (torch.int64, torch.uint8):
            raise RuntimeError(
                f"{op}: expected target dtype to be Long or Byte, but got "
                f"{dtype_name(target.dtype)}: class indices must be torch.int64 or torch.uint8, "
                f"got target of dtype {target.dtype} ({shapes})")
    else:
        expected = (input.shape[0], *input.shape[2:])
        if input.dim() == 4 and target.dim() != 3:
            raise RuntimeError(f"{op}: only batches of spatial targets supported (3D tensors) but "
                               f"got targets of dimension {target.dim()}: {shapes}")
        if tuple(target.shape) != expected:
            raise RuntimeError(f"{op}: expected target size {list(expected)}, got "
                               f"{list(target.shape)}: {shapes}")
        if weight is not None and weight.numel() != c:  # ATen's 2d kernel counts elements only
            raise _weight_error(op, c, weight, shapes)
        if target.dtype != torch.int64:  # ATen's nll_loss2d takes no uint8 targets
            raise RuntimeError(
                f"{op}: expected scalar type Long but found {dtype_name(target.dtype)}: class "
                f"indices of a K-dimensional loss must be torch.int64, got target of dtype "
                f"{target.dtype} ({shapes})")
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(f"{op}: expected scalar type {dtype_name(input.dtype)} but found "
                           f"{dtype_name(weight.dtype)}: weight must have the input's dtype "
                           f"({input.dtype}), got {weight.dtype}")
    _check_class_range(op, target, c, ignore_index, shapes)


def _check_class_range(op: str, target: Tensor, c: int, ignore_index: int, shapes: str) -> None:
    """Every counted class index lies in ``[0, C)``: a data-dependent check.

    Under ``torch.func`` transforms it reads the values beneath the wrappers (every
    sample of a vmap at once); while ``torch.compile`` traces, it becomes an assertion in
    the graph (``torch._assert_async``: no graph break, a ``RuntimeError`` when it runs);
    a tensor without data (meta, fake) is not checked."""
    def out_of_range(t: Tensor) -> Tensor:
        t = t.long()
        return ((t < 0) | (t >= c)) & (t != ignore_index)

    if compiling():
        # torch._assert_async is the op torch.compile itself emits for such checks
        torch._assert_async(out_of_range(target).any().logical_not(),
                            f"{op}: a class index is out of bounds [0, {c - 1}] ({shapes})")
        return
    if not has_values(target):
        return
    values = unwrap(target)
    bad = values[out_of_range(values)]
    if bad.numel():
        raise IndexError(f"{op}: Target {int(bad[0])} is out of bounds: class indices must lie in "
                         f"[0, {c - 1}] or equal ignore_index={ignore_index} ({shapes})")


def check_probability_target(input: Tensor, target: Tensor, weight: Tensor | None,
                             ignore_index: int, shapes: str) -> None:
    """ATen's checks for a target of the input's shape (class probabilities)."""
    if not target.is_floating_point():
        raise RuntimeError(f"cross_entropy: Expected floating point type for target with class "
                           f"probabilities, got {dtype_name(target.dtype)}: a target of the "
                           f"input's shape holds probabilities, got dtype {target.dtype} "
                           f"({shapes})")
    if ignore_index >= 0:
        raise RuntimeError(f"cross_entropy: ignore_index={ignore_index} is not supported for "
                           f"floating-point (probability) targets ({shapes})")
    c = input.shape[0] if input.dim() == 1 else (input.shape[1] if input.dim() else 1)
    if weight is not None and (weight.dim() != 1 or weight.numel() != c):
        raise _weight_error("cross_entropy", c, weight, shapes)


def check_class_dim(input: Tensor, shapes: str) -> None:
    """The log-softmax over the class dimension (0 for a 1-d input, else 1) needs it to exist."""
    if input.dim() == 0:
        raise IndexError(f"cross_entropy: input has no class dimension (0-d input; expected (C), "
                         f"(N, C) or (N, C, d1, ...)): {shapes}")
    require_floating("input", "cross_entropy", input, complex_ok=False)
