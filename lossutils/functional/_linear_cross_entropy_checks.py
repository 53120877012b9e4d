"""torch's checks of the arguments of ``linear_cross_entropy``, and what its ``options`` ask for.

Each check raises the exception type torch raises, with torch's words first
and then the shapes and dtypes involved. ``LinearCrossEntropyOptions`` is
read through its public fields only (``batch_chunk_size``,
``chunking_method``), resolved by the rules its documentation states.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .._checks import dtype_name, refuse_grad

# What chunking_method="auto" resolves to, per (device type, input dtype), as
# LinearCrossEntropyOptions documents; every other pair gets the fallback.
_AUTO_CHUNKING = {("cpu", torch.bfloat16): "aspect_ratio", ("cpu", torch.float16): "aspect_ratio"}
_AUTO_CHUNKING_FALLBACK = "aspect_ratio:2"


def aspect_ratio_chunk_size(num_rows: int, in_features: int, num_classes: int,
                            factor: int = 2) -> int:
    """Rows per chunk so one chunk's logits take about ``1 / factor`` of the memory of ``input``.

    torch's ``chunking_method='aspect_ratio:<factor>'``:
    ``next_pow2(ceil(N / ceil(C / F))) // factor``, at least 1, at most ``N``
    (``factor=2`` is its default for float32 on CPU).

    >>> aspect_ratio_chunk_size(8192, 512, 32768)
    64
    """
    rows_per_input = -(-num_rows // max(-(-num_classes // max(in_features, 1)), 1))
    return max(1, min((1 << max(rows_per_input - 1, 0).bit_length()) // factor, num_rows))


def chunk_size_from_options(options, num_rows: int, in_features: int, num_classes: int,
                            input: Tensor) -> int:
    """The rows per chunk that ``options`` (a ``torch.nn.LinearCrossEntropyOptions``) asks for.

    ``batch_chunk_size`` and ``chunking_method`` as its documentation states:
    ``"auto"`` is a per-(device, dtype) pick, unless ``batch_chunk_size`` is
    set; both set and disagreeing is torch's ``ValueError``.
    """
    method, size = options.chunking_method, options.batch_chunk_size
    if method == "auto":
        key = (input.device.type, input.dtype)
        method = None if size is not None else _AUTO_CHUNKING.get(key, _AUTO_CHUNKING_FALLBACK)
    rows = num_rows if size is None else min(size, num_rows)
    if method is not None:
        factor = int(method.partition(":")[2] or 1)
        rows = aspect_ratio_chunk_size(num_rows, in_features, num_classes, factor)
        if size is not None and size != rows:
            raise ValueError(f"batch_chunk_size (={size}) and chunking_method ('{method}') give "
                             f"different chunk sizes ({size} vs {rows}); pass only one.")
    return max(1, rows)


# torch 2.14 (not 2.13) also chunks probability targets, and its warning says so
_CHUNKS_PROBABILITIES = torch.__version__ >= (2, 14)


def options_apply(reduction: str, label_smoothing: float, target: Tensor, out_features: tuple,
                  linear_bias: Tensor | None, input: Tensor, probabilities: bool) -> bool:
    """Whether torch's chunked path takes ``options``; where it does not, torch ignores
    them with this very warning (and lossutils keeps its own default chunking).

    From torch 2.14 the chunked path also takes probability targets for ``'mean'`` and
    ``'sum'`` when they have the input's dtype and need no gradient.
    """
    chunkable_probabilities = (
        _CHUNKS_PROBABILITIES and probabilities and reduction in {"mean", "sum"}
        and target.dtype == input.dtype and not (target.requires_grad and torch.is_grad_enabled()))
    if (not out_features and reduction in {"mean", "sum", "none"} and label_smoothing == 0.0
            and (target.dtype == torch.int64 or chunkable_probabilities)):
        return True
    bias_shape = tuple(linear_bias.shape) if linear_bias is not None else None
    if _CHUNKS_PROBABILITIES:
        needs = (" == int64 (or a probability target with reduction in {'mean','sum'}, dtype "
                 "matching input, and requires_grad == False), out_features")
        requires_grad = f", target.requires_grad={target.requires_grad}"
    else:
        needs, requires_grad = " == int64, out_features", ""
    warnings.warn(
        "linear_cross_entropy: ``options`` ignored; chunked path needs "
        "reduction in {'mean','sum','none'}, label_smoothing == 0, target.dtype"
        f"{needs} == (). Got "
        f"reduction={reduction!r}, label_smoothing={label_smoothing}, "
        f"target.dtype={target.dtype}, out_features={tuple(out_features)}"
        f", tracing=False{requires_grad}, linear_bias.shape={bias_shape}.",
        stacklevel=3,
    )
    return False


def check_shapes(input: Tensor, linear_weight: Tensor, linear_bias: Tensor | None) -> None:
    """The layer's shapes: ``input`` (F) or (N, F), ``linear_weight`` (C, ..., F), the bias
    (C, ...)."""
    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}: input "
                           f"must be (in_features,) or (N, in_features), got shape "
                           f"{tuple(input.shape)}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got "
                           f"{linear_weight.dim()}: linear_weight must be (C, in_features), got "
                           f"shape {tuple(linear_weight.shape)}")
    in_features = input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {in_features} and {linear_weight.shape[-1]}, respectively: input has shape "
            f"{tuple(input.shape)}, linear_weight has shape {tuple(linear_weight.shape)}")
    out_features = tuple(linear_weight.shape[1:-1])
    bias_shape = (linear_weight.shape[0], *out_features)
    if linear_bias is not None and tuple(linear_bias.shape) != bias_shape:
        raise RuntimeError(f"expected linear_bias shape {bias_shape}, "
                           f"got {tuple(linear_bias.shape)}")
    if out_features and input.dim() == 1:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} "
            f"requires batched input, (N, {in_features}), got unbatched input with shape "
            f"{tuple(input.shape)}")


def check_targets(target: Tensor, probabilities: bool, logits_shape: tuple, num_classes: int,
                  weight: Tensor | None, label_smoothing: float, logits_dtype: torch.dtype) -> None:
    """cross_entropy's own checks on ``target``, ``weight`` and ``label_smoothing``, with the
    logits' shape in the messages (``logits_dtype``: the dtype cross_entropy would see)."""
    if probabilities:
        if not target.is_floating_point():
            raise RuntimeError(
                f"Expected floating point type for target with class probabilities, got "
                f"{dtype_name(target.dtype)}: a target of the logits' shape "
                f"{tuple(logits_shape)} holds probabilities")
    elif target.dtype not in (torch.int64, torch.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{dtype_name(target.dtype)}: class-index targets must be int64 (or "
                           f"uint8), got target of dtype {target.dtype}")
    else:
        _check_class_target_shape(target, logits_shape)
    if weight is not None and (weight.dim() != 1 or weight.numel() != num_classes):
        raise RuntimeError(f"weight tensor should be defined either for all {num_classes} "
                           f"classes or no classes but got weight tensor of shape: "
                           f"{list(weight.shape)}")
    if weight is not None and weight.dtype != logits_dtype and not probabilities:
        raise RuntimeError(f"expected scalar type {dtype_name(logits_dtype)} but found "
                           f"{dtype_name(weight.dtype)}: weight has dtype {weight.dtype}, input "
                           f"has dtype {logits_dtype}")
    if not label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if not probabilities:
        refuse_grad("nll_loss_forward", "weight", weight)


def _check_class_target_shape(target: Tensor, logits_shape: tuple) -> None:
    expected = (logits_shape[0], *logits_shape[2:]) if len(logits_shape) > 1 else ()
    if len(logits_shape) == 1:
        if target.dim() > 1:
            raise RuntimeError(f"0D or 1D target tensor expected, multi-target not supported: "
                               f"unbatched input needs a target of shape () or (1,), got "
                               f"{tuple(target.shape)}")
    elif len(logits_shape) == 2 and target.shape[:1] != expected[:1]:
        batch = target.shape[0] if target.dim() else 0
        raise ValueError(f"Expected input batch_size ({logits_shape[0]}) to match target "
                         f"batch_size ({batch}): target of shape {tuple(target.shape)}")
    elif target.shape != expected:
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}: "
                           f"target must have shape {tuple(expected)} for logits of shape "
                           f"{tuple(logits_shape)}")


def check_dtypes(input: Tensor, linear_weight: Tensor, linear_bias: Tensor | None) -> None:
    """The matrix product's dtype check, in its words (C++ type names)."""
    for name, t in (("linear_weight", linear_weight), ("linear_bias", linear_bias)):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(
                f"expected m1 and m2 to have the same dtype, but got: "
                f"{dtype_name(input.dtype, cpp=True)} != {dtype_name(t.dtype, cpp=True)}: "
                f"{name} has dtype {t.dtype}, input has dtype {input.dtype}")


def check_chunk_sizes(chunk_size, vocab_chunk_size) -> None:
    for name, n in (("chunk_size", chunk_size), ("vocab_chunk_size", vocab_chunk_size)):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ValueError(f"{name} must be a positive int or None, got {n!r}")


def check_extras(softcap, lse_square_scale, filter_eps, sort_vocab, probabilities: bool,
                 out_features: tuple, label_smoothing: float) -> None:
    """lossutils' own options: a positive soft-cap, a z-loss scale of at least 0, and a
    filter threshold in (0, 1) for the cases filtering covers."""
    if softcap is not None and not (isinstance(softcap, (int, float)) and softcap > 0):
        raise ValueError(f"softcap must be a positive number or None, got {softcap!r}")
    if not (isinstance(lse_square_scale, (int, float)) and lse_square_scale >= 0):
        raise ValueError(f"lse_square_scale must be a number >= 0, got {lse_square_scale!r}")
    if filter_eps is None:
        if sort_vocab:
            raise ValueError("sort_vocab=True orders the vocabulary for gradient filtering: "
                             "give filter_eps too")
        return
    if not (isinstance(filter_eps, (int, float)) and 0 < filter_eps < 1):
        raise ValueError(f"filter_eps must be in (0, 1) or None, got {filter_eps!r}")
    if probabilities or out_features:
        what = "probability targets" if probabilities else f"out_features={out_features}"
        raise ValueError(f"filter_eps needs class-index targets and a 2-d linear_weight (C, F): "
                         f"got {what}")
    if softcap is not None and label_smoothing > 0:
        raise ValueError("filter_eps with both softcap and label_smoothing is not supported: the "
                         "smoothing term of a skipped block would need the block's product")
