"""Input checks shared by several losses, with torch's messages (and more context).

One helper per job: the name torch's messages give a dtype, the refusal of an
argument torch cannot differentiate, the floating-point check of its CPU
kernels, and the broadcasting rules of the elementwise losses. A loss file
never spells any of these itself.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

# The names of c10's ScalarType, which torch's C++ messages print
# ("not implemented for 'Long'", "expected scalar type Float but found Double").
_SCALAR_TYPE_NAMES = {
    torch.float16: "Half", torch.bfloat16: "BFloat16", torch.float32: "Float",
    torch.float64: "Double", torch.bool: "Bool", torch.uint8: "Byte", torch.int8: "Char",
    torch.int16: "Short", torch.int32: "Int", torch.int64: "Long",
    torch.complex32: "ComplexHalf", torch.complex64: "ComplexFloat",
    torch.complex128: "ComplexDouble", torch.uint16: "UInt16", torch.uint32: "UInt32",
    torch.uint64: "UInt64",
}
# The C++ element types that matrix products name in their dtype errors
# ("expected m1 and m2 to have the same dtype, but got: float != double").
_CPP_TYPE_NAMES = {
    torch.float16: "c10::Half", torch.bfloat16: "c10::BFloat16", torch.float32: "float",
    torch.float64: "double",
}


def dtype_name(dtype: torch.dtype, cpp: bool = False) -> str:
    """The name torch's own error messages give ``dtype``.

    Most kernels print c10's scalar type: ``Float``, ``Double``, ``Half``,
    ``BFloat16``, ``Long``, ``Int``, ``Bool``, ``ComplexFloat``, ...; matrix
    products print the C++ element type instead (``cpp=True``: ``float``,
    ``double``, ``c10::Half``, ...).

    >>> dtype_name(torch.int64), dtype_name(torch.float64, cpp=True)
    ('Long', 'double')
    """
    if cpp and dtype in _CPP_TYPE_NAMES:
        return _CPP_TYPE_NAMES[dtype]
    return _SCALAR_TYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def refuse_grad(op: str, name: str, tensor: Tensor | None) -> None:
    """torch's refusal of an argument it has no derivative for, when that argument
    requires grad (and grad mode is on): a ``RuntimeError`` naming ``op`` and ``name``."""
    if tensor is not None and tensor.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(
            f"The function '{op}' is not differentiable with respect to argument '{name}'. "
            f"This input cannot have requires_grad True (pass {name}.detach())."
        )


def warn_size_mismatch(input: Tensor, target: Tensor, stacklevel: int = 3) -> None:
    """torch's warning when ``target`` broadcasts against ``input`` (regression losses)."""
    if target.size() != input.size():
        warnings.warn(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            stacklevel=stacklevel,
        )


def require_floating(name: str, op: str, tensor: Tensor, complex_ok: bool = True) -> None:
    """Reject integer/bool tensors (and complex ones, unless ``complex_ok``) the way
    torch's CPU kernels do (``NotImplementedError``)."""
    if not (tensor.is_floating_point() or (complex_ok and tensor.is_complex())):
        raise NotImplementedError(
            f'"{op}" not implemented for {dtype_name(tensor.dtype)!r}: '
            f"{name} must be a floating-point tensor, got dtype {tensor.dtype}"
        )


def broadcast_shape(op: str | None, **tensors: Tensor | torch.Size) -> torch.Size:
    """The common shape of the tensors (or shapes), or torch's ``RuntimeError``
    naming each argument's shape (prefixed with ``op`` when given)."""
    shapes = {name: torch.Size(getattr(t, "shape", t)) for name, t in tensors.items()}
    first, *rest = shapes.values()
    if all(shape == first for shape in rest):  # the usual case, without torch's Python rules
        return first
    try:
        return torch.broadcast_shapes(*shapes.values())
    except RuntimeError as err:
        given = ", ".join(f"{name} of shape {tuple(shape)}" for name, shape in shapes.items())
        prefix = f"{op}: " if op else ""
        raise RuntimeError(f"{prefix}{given} cannot be broadcast together: {err}") from None


def broadcast_pair(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Broadcast and promote like torch's elementwise losses, naming the arguments on failure."""
    if input.shape == target.shape and input.dtype == target.dtype:
        return input, target  # nothing to broadcast or promote
    shape = broadcast_shape(None, input=input, target=target)
    dtype = torch.promote_types(input.dtype, target.dtype)
    return input.expand(shape).to(dtype), target.expand(shape).to(dtype)


def shapes_of(**tensors: Tensor) -> str:
    """``"input1 of shape (3,), target of shape (3, 1)"``: the arguments named in a message."""
    return ", ".join(f"{name} of shape {tuple(t.shape)}" for name, t in tensors.items())
