"""Input checks shared by several losses, with torch's messages (and more context)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def warn_size_mismatch(input: Tensor, target: Tensor, stacklevel: int = 3) -> None:
    """torch's warning when ``target`` broadcasts against ``input`` (regression losses)."""
    if target.size() != input.size():
        warnings.warn(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=stacklevel,
        )


def require_floating(name: str, op: str, tensor: Tensor, complex_ok: bool = True) -> None:
    """Reject integer/bool tensors (and complex ones, unless ``complex_ok``) the way
    torch's CPU kernels do (``NotImplementedError``)."""
    if not (tensor.is_floating_point() or (complex_ok and tensor.is_complex())):
        raise NotImplementedError(
            f'"{op}" not implemented for {str(tensor.dtype).removeprefix("torch.")!r}: '
            f"{name} must be a floating-point tensor, got dtype {tensor.dtype}"
        )


def broadcast_shape(op: str | None, **tensors: Tensor | torch.Size) -> torch.Size:
    """The common shape of the tensors (or shapes), or torch's ``RuntimeError``
    naming each argument's shape (prefixed with ``op`` when given)."""
    shapes = {name: torch.Size(getattr(t, "shape", t)) for name, t in tensors.items()}
    try:
        return torch.broadcast_shapes(*shapes.values())
    except RuntimeError as err:
        given = ", ".join(f"{name} of shape {tuple(shape)}" for name, shape in shapes.items())
        prefix = f"{op}: " if op else ""
        raise RuntimeError(f"{prefix}{given} cannot be broadcast together: {err}") from None


def broadcast_pair(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Broadcast and promote like torch's elementwise losses, naming the arguments on failure."""
    shape = broadcast_shape(None, input=input, target=target)
    dtype = torch.promote_types(input.dtype, target.dtype)
    return input.expand(shape).to(dtype), target.expand(shape).to(dtype)
