"""torch's checks of the arguments of the probabilistic losses, in torch's order.

Each raises the exception type torch raises, with torch's words first and then
the shapes, dtypes or values at fault. Kept apart from
:mod:`lossutils.functional.probabilistic` so that file holds the math.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import broadcast_shape, dtype_name


def check_kl_dtypes(input: Tensor, target: Tensor) -> None:
    """ATen's ``kl_div`` takes real floating-point tensors only."""
    if input.is_complex() or target.is_complex():
        raise RuntimeError(
            "kl_div: Complex inputs not supported: input and target must be real floating-point "
            f"tensors, got input dtype {input.dtype} and target dtype {target.dtype}"
        )
    if not (input.is_floating_point() and target.is_floating_point()):
        raise RuntimeError(
            "kl_div: Integral inputs not supported: input and target must be floating-point "
            f"tensors, got input dtype {input.dtype} and target dtype {target.dtype}"
        )


def loss_shape(op: str, **tensors: Tensor) -> torch.Size:
    """The shape of the elementwise losses: the arguments broadcast together (torch's
    ``RuntimeError`` naming each shape when they do not). Equal shapes, the usual case, are
    answered without broadcasting."""
    shapes = [t.shape for t in tensors.values()]
    if all(s == shapes[0] for s in shapes):
        return shapes[0]
    return broadcast_shape(op, **tensors)


def check_var(input: Tensor, var: Tensor | float) -> Tensor:
    """``gaussian_nll_loss``'s ``var``, as torch's Python function checks it: its sign (a float
    becomes a tensor of ``input``'s shape), its dtype, then the shapes torch accepts.
    Returns ``var`` ready to broadcast against ``input``.

    The sign of a tensor is a data-dependent Python branch, as in torch: under ``vmap`` of a
    batched ``var`` it raises torch's own "data-dependent control flow" error, as torch does.
    """
    if isinstance(var, float):
        if var < 0:
            raise ValueError(f"var has negative entry/entries: var must be non-negative, got {var}")
        var = var * torch.ones_like(input)
    elif not isinstance(var, Tensor):
        raise TypeError(f"var must be a Tensor or a float, got {type(var).__name__} ({var!r})")
    elif var.numel() and var.min() < 0:  # torch.any(var < 0), in one reduction
        raise ValueError(
            "var has negative entry/entries: var must be non-negative, got minimum "
            f"{var.min().item()}"
        )
    return _check_var_shape(input, var)


def _check_var_shape(input: Tensor, var: Tensor) -> Tensor:
    """torch's accepted ``var`` shapes: the same as ``input``'s (heteroscedastic);
    ``input``'s shape without its last dim (unsqueezed to end in 1); or ``input``'s number of
    dims with the mismatched sides of ``var`` summing to 1 -- one side of size 1
    (homoscedastic along that dim)."""
    if var.size() == input.size():
        return var
    if input.size()[:-1] == var.size():
        return torch.unsqueeze(var, -1)
    if input.dim() == var.dim() and sum(
            v for i, v in zip(input.size(), var.size(), strict=True) if i != v) == 1:
        return var
    raise ValueError(
        f"var is of incorrect size: var has shape {tuple(var.shape)}, input has shape "
        f"{tuple(input.shape)}; expected input's shape, input's shape without its last dim, or "
        "input's shape with one dim of size 1"
    )


def check_clampable(var: Tensor, eps: float) -> None:
    """torch clamps a clone of ``var`` in place at ``eps``: an integer ``var`` cannot hold
    the float result."""
    if not var.is_floating_point():
        result = torch.result_type(var, eps)
        raise RuntimeError(f"var of dtype {var.dtype} cannot be clamped in place at eps={eps}: "
                           f"result type {dtype_name(result)} can't be cast to the desired "
                           f"output type {dtype_name(var.dtype)}")
