"""torch's checks of the arguments of ``cross_entropy`` and ``nll_loss``, in ATen's order.

Each raises the exception type torch raises, with torch's words first and
then the shapes and dtypes of the arguments. Kept apart from
:mod:`lossutils.functional.cross_entropy` so that file holds the math alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._autograd import compiling, has_values, plain, unwrap
from .._checks import dtype_name, refuse_grad, require_floating


class Shapes:
    """``input of shape (N, C), target of shape (N,)`` for a message, worded only when one is
    raised (formatting shapes on every call would cost more than a tiny loss's arithmetic)."""

    __slots__ = ("input", "target")

    def __init__(self, input: Tensor, target: Tensor):
        self.input, self.target = input, target

    def __str__(self) -> str:
        return (f"input of shape {tuple(self.input.shape)}, "
                f"target of shape {tuple(self.target.shape)}")


def _weight_error(op: str, c: int, weight: Tensor, shapes: Shapes) -> RuntimeError:
    return RuntimeError(f"{op}: weight tensor should be defined either for all {c} classes or no "
                        f"classes but got weight of shape {tuple(weight.shape)} for {shapes}")


def check_class_shapes(op: str, input: Tensor, target: Tensor, weight: Tensor | None,
                       shapes: Shapes) -> int:
    """ATen's ``nll_loss_nd`` checks of the shapes and dtypes, in its order, raising the types
    torch raises. Returns the number of classes; :func:`check_class_values` checks the
    targets' values."""
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
    return c


def unchecked_targets(input: Tensor, target: Tensor, ignore_index: int, c: int,
                      forward_elements: int) -> bool:
    """Whether the forward may run before the targets' values are checked: int64 targets
    on the CPU, not under a transform, an ``ignore_index`` outside ``[0, C)``, and a
    forward that reads at most :data:`UNCHECKED_ELEMENTS` (``forward_elements``). Then
    every target that is out of range or ignored makes the forward's ``gather`` raise,
    and only then do the checks look at the values (:func:`check_class_values`): the
    loss saves their pass and synchronisation, and a valid ignored class (which
    ``gather`` would accept) never takes this route."""
    return (target.dtype == torch.int64 and forward_elements <= UNCHECKED_ELEMENTS
            and not 0 <= ignore_index < c and input.is_cpu and target.is_cpu
            and target.numel() > 0 and plain(input, target))


# Up to this many elements read by the forward, running it before the check costs little
# when a target is ignored after all (the forward raises and runs again, masked); past it,
# a batch with ignored targets would redo a large forward. (nll_loss's forward reads the
# targets only: as many as the check itself.)
UNCHECKED_ELEMENTS = 1 << 14


def check_class_values(op: str, target: Tensor, c: int, ignore_index: int,
                       shapes: Shapes) -> bool:
    """Every counted class index lies in ``[0, C)``: a data-dependent check. Returns
    whether a target may equal ``ignore_index`` (False only when the values show none does).

    Under ``torch.func`` transforms it reads the values beneath the wrappers (every
    sample of a vmap at once); while ``torch.compile`` traces, it becomes an assertion in
    the graph (``torch._assert_async``: no graph break, a ``RuntimeError`` when it runs);
    a tensor without data (meta, fake) is not checked. In eager mode it costs one pass
    over the targets (``aminmax``), and a second only when an index outside ``[0, C)``
    might be ``ignore_index``."""
    def out_of_range(t: Tensor) -> Tensor:
        t = t.long()
        return ((t < 0) | (t >= c)) & (t != ignore_index)

    if compiling():
        # torch._assert_async is the op torch.compile itself emits for such checks (the
        # shapes worded by an explicit call: Dynamo formats no object of a user class)
        words = shapes.__str__()
        torch._assert_async(out_of_range(target).any().logical_not(),
                            f"{op}: a class index is out of bounds [0, {c - 1}] ({words})")
        return True
    if not has_values(target):
        return True
    values = unwrap(target)
    if values.numel() == 0:
        return True
    lo, hi = map(int, torch.aminmax(values))
    ignored = lo <= ignore_index <= hi
    if ignore_index in (lo, hi):  # an extreme is ignored: the counted targets' extremes decide
        if lo == hi:
            return True  # every target ignored
        fill = hi if lo == ignore_index else lo  # a counted value: the counted extremes stay
        lo, hi = map(int, torch.aminmax(values.masked_fill(values == ignore_index, fill)))
    if lo >= 0 and hi < c:
        return ignored
    bad = values[out_of_range(values)]
    raise IndexError(f"{op}: Target {int(bad[0])} is out of bounds: class indices must lie in "
                     f"[0, {c - 1}] or equal ignore_index={ignore_index} ({shapes})")


def check_probability_target(input: Tensor, target: Tensor, weight: Tensor | None,
                             ignore_index: int, shapes: Shapes) -> None:
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


def check_class_dim(input: Tensor, shapes: Shapes) -> None:
    """The log-softmax over the class dimension (0 for a 1-d input, else 1) needs it to exist."""
    if input.dim() == 0:
        raise IndexError(f"cross_entropy: input has no class dimension (0-d input; expected (C), "
                         f"(N, C) or (N, C, d1, ...)): {shapes}")
    require_floating("input", "cross_entropy", input, complex_ok=False)
