"""torch's checks of the arguments of the binary cross-entropies, with its exception types.

Each raises what torch raises, with torch's words first and then the shapes or
the value at fault. Kept apart from :mod:`lossutils.functional.binary` so that
file holds the math. The one check of *values* (probabilities in :math:`[0, 1]`)
works under every transform: it reads the values beneath a ``torch.func``
wrapper, and while ``torch.compile`` traces it becomes an assertion in the graph.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._autograd import compiling, has_values, unwrap
from .._checks import dtype_name


def check_same_size(input: Tensor, target: Tensor, op: str) -> None:
    """Neither loss broadcasts ``target`` (torch raises ``ValueError``). A static shape
    comparison: nothing is traced, so it never breaks a ``torch.compile`` graph."""
    if target.shape != input.shape:
        raise ValueError(
            f"{op}: target and input must have the same size (torch no longer broadcasts them), "
            f"got target of shape {tuple(target.shape)} and input of shape {tuple(input.shape)}"
        )


def expand_weight(weight: Tensor | None, target: Tensor, op: str) -> Tensor | None:
    """``binary_cross_entropy``'s weight, expanded as torch's Python wrapper expands it."""
    if weight is None:
        return None
    try:
        return weight.expand(torch.broadcast_shapes(target.shape, weight.shape))
    except RuntimeError:
        raise RuntimeError(
            f"{op}: weight of shape {tuple(weight.shape)} does not broadcast to the "
            f"target's shape {tuple(target.shape)}"
        ) from None


def check_fits(name: str, tensor: Tensor | None, shape: torch.Size, op: str,
               *others: Tensor) -> None:
    """``tensor`` (broadcast with ``others``) must broadcast to ``shape``, the loss's shape,
    without growing it."""
    if tensor is None:
        return
    try:
        full = torch.broadcast_shapes(tensor.shape, *(o.shape for o in others), shape)
    except RuntimeError:
        full = None
    if full != shape:
        raise RuntimeError(
            f"{op}: {name} of shape {tuple(tensor.shape)} does not broadcast to the input's shape "
            f"{tuple(shape)}"
        )


def check_probability_dtypes(input: Tensor, target: Tensor, op: str) -> None:
    """ATen's ``binary_cross_entropy`` needs ``target`` in ``input``'s floating dtype."""
    if target.dtype != input.dtype:
        raise RuntimeError(
            f"Found dtype {dtype_name(target.dtype)} but expected {dtype_name(input.dtype)}: "
            f"{op} needs target of input's dtype ({input.dtype}), got {target.dtype}"
        )
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"{op}" not implemented for {dtype_name(input.dtype)!r}: input must be a '
            f"floating-point tensor of probabilities, got dtype {input.dtype}"
        )


def check_logit_dtypes(input: Tensor, target: Tensor, op: str) -> None:
    """``binary_cross_entropy_with_logits`` computes in ``target``'s dtype, on float logits."""
    if not input.is_floating_point():
        raise NotImplementedError(
            f'"log_sigmoid_cpu" not implemented for {dtype_name(input.dtype)!r}: {op} needs '
            f"floating-point logits, got input of dtype {input.dtype}"
        )
    if not target.is_floating_point():
        raise RuntimeError(
            f"result type {dtype_name(torch.promote_types(input.dtype, target.dtype))} can't be "
            f"cast to the desired output type {dtype_name(target.dtype)}: {op} computes in "
            f"target's dtype, so target must be floating-point, got {target.dtype}"
        )


def check_probabilities(**tensors: Tensor) -> None:
    """Every element of each tensor lies in :math:`[0, 1]` (NaN does not): a data-dependent
    check, as ATen's kernel makes it element by element; the first tensor named is checked
    first (torch's order: input, then target).

    One cheap reduction per tensor (``aminmax``: its minimum and maximum in one pass), all
    read in one synchronisation when all is well (on the CPU, where there is nothing to wait
    for, one by one: cheaper than a stack); the offending value is looked for only to word
    the error. Under ``torch.func`` transforms it reads the values beneath the wrappers
    (every sample of a ``vmap`` at once); while ``torch.compile`` traces, it is
    ``torch._assert_async`` (no graph break, a ``RuntimeError`` when the graph runs); a
    tensor without data (meta, fake) is not checked."""
    if compiling():
        for name, tensor in tensors.items():
            torch._assert_async(((tensor >= 0) & (tensor <= 1)).all(), _message(name))
        return
    named = [(name, unwrap(t)) for name, t in tensors.items() if has_values(t)]
    named = [(name, values) for name, values in named if values.numel()]
    if not named:
        return
    # NaN is the minimum and the maximum of a tensor that holds one, and fails both tests
    extremes = [e for _, values in named for e in torch.aminmax(values)]
    if all(e.device.type == "cpu" for e in extremes):
        bounds = [e.item() for e in extremes]
    else:
        if len({e.dtype for e in extremes}) > 1:  # one stack needs one dtype
            extremes = [e.double() for e in extremes]
        bounds = torch.stack(extremes).tolist()
    for i, (name, values) in enumerate(named):
        if not (bounds[2 * i] >= 0 and bounds[2 * i + 1] <= 1):
            bad = values[~((values >= 0) & (values <= 1))].flatten()[0].item()
            raise RuntimeError(f"{_message(name)}, got {bad} in {name}")


def _message(name: str) -> str:
    return f"all elements of {name} should be between 0 and 1"
