"""torch's autocast policy for the losses, in one place, keyed by device type.

Under ``torch.autocast(device_type)``, torch's dispatcher wraps some ATen ops:
before the op runs, its floating-point tensor arguments on that device are
cast, then the op runs with autocast off. A lossutils loss is one Python
call, not one ATen op, so its public wrapper does the same by hand: it asks
:func:`cast` for its arguments as torch's wrapper of the ATen op it mirrors
would pass them on, then runs its Function inside :func:`disabled`, so that
the elementary ops inside are not cast again one by one (on CUDA, ``exp``,
``log``, ``sum`` and ``pow`` have policies of their own).

The policies (``CastPolicy`` in ATen/autocast_mode.h):

- ``fp32``: every *eligible* tensor goes to float32 (eligible: floating point,
  on the autocast's device, and not float64);
- ``fp32_set_opt_dtype`` (softmax, log_softmax, sum, ...): when the first
  argument is eligible and no ``dtype`` was given, ``dtype=float32``;
- ``promote``: eligible tensors go to the widest dtype among them and the
  autocast dtype;
- ``lower_precision_fp``: eligible tensors go to the autocast dtype
  (``torch.get_autocast_dtype``);
- ``banned`` (``binary_cross_entropy`` on CUDA): torch raises.

An op in no list runs in the dtypes it is given. The lists below are the
loss-related entries of torch 2.13.0 (git ``cf30153c``):

- CPU: ``aten/src/ATen/autocast_mode.cpp``, the ``TORCH_LIBRARY_IMPL(aten,
  AutocastCPU, m)`` block (its kernels register at line 335, as
  ``torch._C._dispatch_dump("aten::mse_loss")`` reports): the
  "lower_precision_fp cast policy", "fp32 cast policy" and "promote" sections.
  softmax and log_softmax are in none of them.
- CUDA: the ``TORCH_LIBRARY_IMPL(aten, Autocast, m)`` block of the same file
  (line 181) expands the macros of ``ATen/autocast_mode.h``:
  ``AT_FORALL_LOWER_PRECISION_FP`` (header lines 820-853), ``AT_FORALL_FP32``
  (855-914), ``AT_FORALL_FP32_SET_OPT_DTYPE`` (916-927) and
  ``AT_FORALL_PROMOTE`` (946-957), and bans ``binary_cross_entropy``.

``tests/test_autocast_policy.py`` checks every entry against the installed
torch: the header's macro lists, and an Autocast kernel in the dispatcher
for each op listed for a device (none for an op listed as absent).

Losses torch implements as compositions (an op with no autocast kernel of its
own, or a Python function in ``torch.nn.functional``) take the policies of
the ops they decompose into; :data:`COMPOSITES` records the result per device.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

FP32, SET_OPT_DTYPE, PROMOTE, LOWER, BANNED = (
    "fp32", "fp32_set_opt_dtype", "promote", "lower_precision_fp", "banned")

_CPU_FP32 = (
    "binary_cross_entropy", "cdist", "mse_loss", "cosine_embedding_loss", "nll_loss",
    "nll_loss2d", "hinge_embedding_loss", "poisson_nll_loss", "smooth_l1_loss",
    "cross_entropy_loss", "l1_loss", "huber_loss", "margin_ranking_loss", "soft_margin_loss",
    "triplet_margin_loss", "multi_margin_loss", "ctc_loss", "kl_div", "multilabel_margin_loss",
    "binary_cross_entropy_with_logits", "prod")
_CPU_LOWER = ("bmm", "mm", "linalg_vecdot", "baddbmm", "addmm", "addbmm", "linear", "matmul")
_CPU_PROMOTE = ("stack", "cat", "index_copy")

_CUDA_FP32 = (
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
    "reciprocal", "rsqrt", "sinh", "tan", "pow", "softplus", "layer_norm", "rms_norm",
    "group_norm", "frobenius_norm", "nuclear_norm", "cosine_similarity", "poisson_nll_loss",
    "cosine_embedding_loss", "nll_loss", "nll_loss2d", "hinge_embedding_loss", "kl_div",
    "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss", "margin_ranking_loss",
    "multilabel_margin_loss", "soft_margin_loss", "triplet_margin_loss", "multi_margin_loss",
    "binary_cross_entropy_with_logits", "dist", "pdist", "cdist", "renorm", "logsumexp")
_CUDA_SET_OPT_DTYPE = ("prod", "softmax", "log_softmax", "cumprod", "cumsum",
                       "linalg_vector_norm", "linalg_matrix_norm", "sum")
_CUDA_PROMOTE = ("addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "vdot",
                 "grid_sampler", "index_put", "tensordot", "scatter_add")
_CUDA_LOWER = ("addmm", "addmv", "addr", "matmul", "einsum", "mm", "mv", "linalg_vecdot",
               "linear", "addbmm", "baddbmm", "bmm", "chain_matmul", "linalg_multi_dot")

POLICIES: dict[str, dict[str, str]] = {
    "cpu": {**dict.fromkeys(_CPU_FP32, FP32), **dict.fromkeys(_CPU_LOWER, LOWER),
            **dict.fromkeys(_CPU_PROMOTE, PROMOTE)},
    "cuda": {**dict.fromkeys(_CUDA_FP32, FP32), **dict.fromkeys(_CUDA_SET_OPT_DTYPE, SET_OPT_DTYPE),
             **dict.fromkeys(_CUDA_PROMOTE, PROMOTE), **dict.fromkeys(_CUDA_LOWER, LOWER),
             "binary_cross_entropy": BANNED},
}
"""ATen op name -> cast policy, per device type (ops in no list are absent)."""

COMPOSITES: dict[str, dict[str, str | None | dict[str, str | None]]] = {
    "cpu": {
        # torch.nn.functional's weighted l1/mse branches are Python arithmetic (sub, abs,
        # pow, mul, sum, div: no CPU policy): they run in the dtypes they are given. The
        # weighted huber branch calls aten::huber_loss (fp32), then multiplies by the weight.
        "l1_loss[weighted]": None, "mse_loss[weighted]": None, "huber_loss[weighted]": FP32,
    },
    "cuda": {
        # aten::cross_entropy_loss has no CUDA autocast kernel: it decomposes into
        # log_softmax (fp32_set_opt_dtype: float32 log-probabilities), then nll_loss /
        # nll_loss2d (fp32), or for probability targets a product with the target and a
        # sum (fp32_set_opt_dtype): float32 either way, as if its inputs were cast to it.
        "cross_entropy_loss": FP32,
        # weighted l1: abs(input - target) * weight runs as given; torch.sum (fp32_set_opt_dtype)
        # makes 'sum' and 'mean' float32. Weighted mse squares with pow (fp32); weighted
        # huber calls huber_loss (fp32).
        "l1_loss[weighted]": {"none": None, "sum": FP32, "mean": FP32},
        "mse_loss[weighted]": FP32, "huber_loss[weighted]": FP32,
        # aten::pairwise_distance has no autocast kernel: it is sub, add, then aten::norm,
        # whose CUDA wrapper (fp32_append_dtype) returns float32; the default distance of
        # triplet_margin_with_distance_loss is that one. With a caller's distances, the
        # hinge's arithmetic runs as given, torch.sum (fp32_set_opt_dtype) gives float32.
        "pairwise_distance": FP32, "triplet_margin_with_distance_loss": FP32,
        "triplet_margin_with_distance_loss[hinge]": {"none": None, "mean": None, "sum": FP32},
        # the per-class losses are summed over the classes by torch.sum (fp32_set_opt_dtype)
        "multilabel_soft_margin_loss": FP32,
        # torch.nn.functional.gaussian_nll_loss is Python arithmetic: log and pow (fp32) make
        # log(var) and (input - target) ** 2 float32, and the rest follows them to float32.
        # (On CPU none of its ops has a policy: it runs in the dtypes it is given.)
        "gaussian_nll_loss": FP32,
    },
}
"""Losses that decompose on a device (an ATen op without an autocast kernel there, or a
branch of a Python function of ``torch.nn.functional``, named ``op[weighted]``): the
policy the composition amounts to, per reduction where it depends on it (``None``: the
loss runs in the dtypes it is given)."""

_BANNED_MESSAGE = (
    "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
    "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
    "In this case, combine the two layers using "
    "torch.nn.functional.binary_cross_entropy_with_logits\n"
    "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
    "safe to autocast.")


def policy(op: str, device_type: str, reduction: str | None = None) -> str | None:
    """The cast policy torch applies to ATen op ``op`` under autocast on ``device_type``
    (``None``: it runs as given).

    >>> policy("mse_loss", "cpu"), policy("softmax", "cpu"), policy("softmax", "cuda")
    ('fp32', None, 'fp32_set_opt_dtype')
    """
    composite = COMPOSITES.get(device_type, {})
    if op in composite:
        rule = composite[op]
        return rule.get(reduction) if isinstance(rule, dict) else rule
    return POLICIES.get(device_type, {}).get(op)


# torch.is_autocast_enabled(device_type) for every device type at once (Dynamo folds it to a
# constant while tracing, as it does torch.is_autocast_enabled).
_any_enabled = torch._C._is_any_autocast_enabled


def _device_type(tensors) -> str | None:
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    return None if first is None else first.device.type


def enabled(*tensors) -> bool:
    """Whether autocast is on for the device of the first tensor among ``tensors``."""
    if not _any_enabled():  # one call answers for every device: the usual case, autocast off
        return False
    device_type = _device_type(tensors)
    return device_type in POLICIES and torch.is_autocast_enabled(device_type)


def _eligible(t, device_type: str) -> bool:
    return (isinstance(t, Tensor) and t.device.type == device_type and t.is_floating_point()
            and t.dtype != torch.float64)


def decide(op: str, device_type: str, dtypes: list[torch.dtype | None],
           dtype: torch.dtype | None = None, autocast_dtype: torch.dtype | None = None,
           reduction: str | None = None) -> tuple[list, torch.dtype | None]:
    """The dtypes torch's autocast wrapper gives the arguments of ``op`` on ``device_type``.

    ``dtypes``: each tensor argument's dtype when it is eligible (floating point, on the
    device, not float64), ``None`` when not. ``dtype`` is the op's optional ``dtype=``
    argument, ``reduction`` the loss's (for a composite whose policy depends on it).
    Returns (the dtype each argument is cast to, ``None``: unchanged; the ``dtype=`` the
    op then runs with). Pure logic, so the CUDA table is testable anywhere.

    >>> decide("nll_loss", "cuda", [torch.float16, None, torch.float16])
    ([torch.float32, None, torch.float32], None)
    >>> decide("softmax", "cuda", [torch.bfloat16])
    ([None], torch.float32)
    """
    rule = policy(op, device_type, reduction)
    if rule == BANNED:
        raise RuntimeError(_BANNED_MESSAGE)
    keep = [None] * len(dtypes)
    if rule is None:
        return keep, dtype
    if rule == SET_OPT_DTYPE:
        return keep, (torch.float32 if dtype is None and dtypes[0] is not None else dtype)
    if rule == FP32:
        return [None if d is None else torch.float32 for d in dtypes], dtype
    low = autocast_dtype or torch.get_autocast_dtype(device_type)
    if rule == LOWER:
        return [None if d is None else low for d in dtypes], dtype
    widest = low  # PROMOTE
    for d in dtypes:
        widest = widest if d is None else torch.promote_types(widest, d)
    return [None if d is None else widest for d in dtypes], dtype


def cast(op: str, *tensors: Tensor | None, dtype: torch.dtype | None = None,
         reduction: str | None = None):
    """``tensors`` as torch's autocast wrapper of ATen op ``op`` passes them on (unchanged
    when autocast is off for their device), and the ``dtype=`` the op runs with.

    The casts are ordinary differentiable ``.to`` calls: gradients flow back to the
    caller's dtypes, as in torch."""
    if not enabled(*tensors):
        return tensors, dtype
    device_type = _device_type(tensors)
    dtypes = [t.dtype if _eligible(t, device_type) else None for t in tensors]
    targets, dtype = decide(op, device_type, dtypes, dtype, reduction=reduction)
    return tuple(t if d is None or t.dtype == d else t.to(d)
                 for t, d in zip(tensors, targets, strict=True)), dtype


def disabled(*tensors) -> contextlib.AbstractContextManager:
    """A context in which autocast is off for the device of ``tensors`` (where it was on):
    what torch's wrappers do around the op itself."""
    if not enabled(*tensors):
        return contextlib.nullcontext()
    return torch.autocast(_device_type(tensors), enabled=False)
