"""The arguments of ``linear_cross_entropy`` as its Function takes them.

torch's order of checks and its autocast policy, then lossutils' chunk plan:
:func:`prepare` turns the public function's arguments into an
:class:`Arguments` record (the tensors as autocast passes them on, the
resolved reduction and ``ignore_index``, the chunk plan, the loss's dtype).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .. import _autocast
from .._autograd import compiling, has_values, unwrap
from .._precision import HALF
from .._reduction import check_reduction
from ._chunk_passes import ChunkPlan
from ._linear_cross_entropy_checks import (
    aspect_ratio_chunk_size,
    check_chunk_sizes,
    check_dtypes,
    check_extras,
    check_shapes,
    check_targets,
    chunk_size_from_options,
    options_apply,
)

SMALL_LOGITS = 1 << 15
"""Logits of at most this many numbers (128 KiB in float32) are computed in one chunk by
default: for them a loop over chunks costs more than the memory it saves."""


_WHOLE_DTYPES = (torch.float32, torch.float64)


MIN_CHUNK_ROWS = 128
"""The fewest rows a default chunk has: each chunk adds a rank-``chunk_size`` update to the
whole ``V x F`` weight gradient, which below about 128 rows costs more in memory traffic than
its multiply-adds (measured: 16-row chunks take 1.4x the time of 128-row ones at
``N = 1024, F = 256, V = 8192``)."""


def auto_chunk_size(num_rows: int, in_features: int, num_classes: int,
                    positions: int = 1) -> int:
    """The default ``chunk_size``: rows such that one chunk's logits take about half the
    memory of ``input`` (torch's rule for its own chunked path, ``aspect_ratio:2``), but at
    least :data:`MIN_CHUNK_ROWS`; all rows when the logits (``positions`` of them per row
    and class) are small (:data:`SMALL_LOGITS`).

    >>> auto_chunk_size(8192, 512, 32768), auto_chunk_size(1024, 256, 8192)
    (128, 128)
    >>> auto_chunk_size(8192, 4096, 32768), auto_chunk_size(8, 10, 10)
    (512, 8)
    """
    if num_rows * num_classes * positions <= SMALL_LOGITS:
        return max(num_rows, 1)
    rule = aspect_ratio_chunk_size(num_rows, in_features, num_classes, factor=2)
    return max(rule, min(MIN_CHUNK_ROWS, num_rows))


class Arguments(NamedTuple):
    """What :func:`prepare` hands the Function: its tensors ``(x, W, b, target, weight)`` in
    canonical shapes (:func:`canonical`) and its settings."""

    tensors: tuple
    reduction: str
    ignore_index: int
    label_smoothing: float
    plan: ChunkPlan
    precompute: tuple[bool, bool, bool]
    loss_shape: tuple[int, ...]
    out_dtype: torch.dtype
    rounding: torch.dtype | None  # the half dtype torch's composition rounds the logits to
    whole: bool  # one chunk, one block, nothing but torch's options: one pass will do
    ignored: bool  # a class-index target may equal ignore_index (False: the values show none)


def _autocast_arguments(input, linear_weight, linear_bias, target, weight):
    """The tensors as torch's composition ``cross_entropy(linear(...))`` passes them on under
    autocast (unchanged without it), and the dtype of the logits cross_entropy sees:
    ``linear`` runs in the autocast dtype, ``cross_entropy_loss`` in float32."""
    (input, linear_weight, linear_bias), _ = _autocast.cast("linear", input, linear_weight,
                                                            linear_bias)
    logits_dtype = input.dtype
    if _autocast.enabled(input):
        (target, weight), _ = _autocast.cast("cross_entropy_loss", target, weight)
        eligible = input.is_floating_point() and input.dtype != torch.float64
        device = input.device.type
        cast, _ = _autocast.decide("cross_entropy_loss", device, [input.dtype if eligible
                                                                  else None])
        logits_dtype = cast[0] or logits_dtype
    return input, linear_weight, linear_bias, target, weight, logits_dtype


def _check_class_range(target: Tensor, ignore_index: int, num_classes: int) -> bool:
    """Class indices lie in ``[0, C)`` or equal ``ignore_index`` (read beneath a ``vmap``;
    an assertion in the graph while compiling). One ``aminmax`` when they do; a small
    target on the CPU is read in Python instead (a copy of a few numbers costs less than a
    pass and two synchronisations). Returns whether a target may equal ``ignore_index``
    (False only when the values show that none does)."""
    if has_values(target):
        t = unwrap(target)
        if not t.numel():
            return True
        values = t.reshape(-1).tolist() if t.numel() <= _READ_IN_PYTHON and t.is_cpu else None
        lo, hi = (min(values), max(values)) if values is not None \
            else (int(v) for v in torch.aminmax(t))
        if lo >= 0 and hi < num_classes:
            return lo <= ignore_index <= hi
        if ignore_index in (lo, hi):  # the extremes may be ignore_index: look again without it
            if values is not None:
                kept = [v for v in values if v != ignore_index]
                if not kept:
                    return True
                lo, hi = min(kept), max(kept)
            else:
                kept = t[t != ignore_index]
                if not kept.numel():
                    return True
                lo, hi = (int(v) for v in torch.aminmax(kept))
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise IndexError(f"Target {bad} is out of bounds.: class indices must lie "
                             f"in [0, {num_classes}) (or equal ignore_index={ignore_index})")
    elif compiling():
        ok = ((target == ignore_index) | ((target >= 0) & (target < num_classes))).all()
        torch._assert_async(ok, f"linear_cross_entropy: a class index is out of [0, {num_classes})")
    return True


_READ_IN_PYTHON = 1 << 10


def prepare(input, linear_weight, target, linear_bias, weight, reduction, ignore_index,
            label_smoothing, options, chunk_size, vocab_chunk_size, softcap, lse_square_scale,
            filter_eps, sort_vocab) -> Arguments:
    """Check the arguments in torch's order, apply autocast's policy, plan the chunks."""
    check_shapes(input, linear_weight, linear_bias)
    num_batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    logits_shape = (*num_batches, num_classes, *out_features)
    probabilities = tuple(target.shape) == logits_shape
    if probabilities and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities: "
                           f"target has the logits' shape {logits_shape}, so it holds "
                           "probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    n = num_batches[0] if num_batches else 1
    chunked = options is not None and options_apply(
        reduction, label_smoothing, target, out_features, linear_bias, input, probabilities)
    if chunked:
        from_options = chunk_size_from_options(options, n, in_features, num_classes, input)
        chunk_size = chunk_size if chunk_size is not None else from_options
    reduction = check_reduction(reduction)
    logits_dtype = input.dtype
    if not chunked:  # torch's chunked op has no autocast kernel: it runs as given
        input, linear_weight, linear_bias, target, weight, logits_dtype = _autocast_arguments(
            input, linear_weight, linear_bias, target, weight)
    check_targets(target, probabilities, logits_shape, num_classes, weight, label_smoothing,
                  logits_dtype)
    check_dtypes(input, linear_weight, linear_bias)
    check_chunk_sizes(chunk_size, vocab_chunk_size)
    check_extras(softcap, lse_square_scale, filter_eps, sort_vocab, probabilities, out_features,
                 label_smoothing)
    ignored = probabilities or _check_class_range(target, ignore_index, num_classes)
    # torch's default path rounds linear's half-precision output (the logits, and the gradient
    # that comes back to it); its chunked path accumulates in float32 throughout
    rounding = input.dtype if input.dtype in HALF and not chunked else None
    # the gradients that forward can accumulate: mean/sum over class indices, or over
    # probabilities that (like the class weight) do not require grad themselves; not where
    # the gradient is rounded, which must happen after grad_output scales it, as in torch
    recompute_only = reduction == "none" or rounding is not None or (probabilities and (
        target.requires_grad or (weight is not None and weight.requires_grad)))
    wants = (input.requires_grad, linear_weight.requires_grad,
             linear_bias is not None and linear_bias.requires_grad)
    precompute = tuple(torch.is_grad_enabled() and w and not recompute_only for w in wants)
    plan = ChunkPlan(
        num_rows=n, num_classes=num_classes,
        chunk_size=chunk_size if chunk_size is not None else auto_chunk_size(
            n, in_features, num_classes, math.prod(out_features)),
        vocab_chunk_size=vocab_chunk_size if vocab_chunk_size is not None else max(num_classes, 1))
    out_dtype = torch.promote_types(logits_dtype, target.dtype) if probabilities else logits_dtype
    eps = max(float(label_smoothing), 0.0)  # torch treats a negative label_smoothing as none
    tensors = canonical(input, linear_weight, linear_bias, target, weight, probabilities)
    whole = (not probabilities and not out_features and plan.chunk_size >= n
             and plan.vocab_chunk_size >= num_classes and input.dtype in _WHOLE_DTYPES
             and softcap is None and not lse_square_scale and filter_eps is None)
    return Arguments(tensors, reduction, ignore_index, eps, plan, precompute,
                     (*num_batches, *out_features), out_dtype, rounding, whole, ignored)


def canonical(input: Tensor, linear_weight: Tensor, linear_bias: Tensor | None, target: Tensor,
              weight: Tensor | None, probabilities: bool) -> tuple:
    """The tensors in the Function's canonical shapes: a K-dimensional loss's D = d_1...d_K
    output positions get their own axis. Plain 2-D tensors go in as they are: a reshaped view
    would make autograd copy their gradients."""
    x, W, b, t = input, linear_weight, linear_bias, target
    num_classes, in_features = W.shape[0], W.shape[-1]
    if input.dim() == 1:
        x = input.unsqueeze(0)
        t = t.reshape(1, num_classes) if probabilities else t.reshape(1)
    if W.dim() > 2:
        d = math.prod(W.shape[1:-1])
        W = W.reshape(num_classes, d, in_features)
        b = b.reshape(num_classes, d) if b is not None else None
        t = t.reshape(x.shape[0], num_classes, d) if probabilities else t.reshape(x.shape[0], d)
    t = t if probabilities or t.dtype == torch.int64 else t.long()
    return x, W, b, t, weight
