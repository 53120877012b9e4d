"""Where float16 and bfloat16 accumulate in float32, as torch's kernels do.

A float16 sum of 70,000 terms of about one passes 65504 and becomes inf; a
bfloat16 row sum keeps 8 significant bits. torch's CPU and CUDA kernels for the
reduced-precision types load each element, compute in float32 (``opmath_t``:
softmax row sums and their backward dot products, norms, variance terms, the
target sums of a cross-entropy) and round once, when they store the result.
lossutils does the same through these two helpers: a loss upcasts what it
reduces, computes, and rounds its results to the dtype torch returns.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

HALF = (torch.float16, torch.bfloat16)


def opmath(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype torch computes in for these argument dtypes: their promoted dtype,
    float32 in place of float16 and bfloat16.

    >>> opmath(torch.bfloat16), opmath(torch.float16, torch.float64), opmath(torch.float32)
    (torch.float32, torch.float64, torch.float32)
    """
    dtype = functools.reduce(torch.promote_types, dtypes)
    return torch.float32 if dtype in HALF else dtype


def upcast(t: Tensor | None, dtype: torch.dtype | None = None) -> Tensor | None:
    """``t`` in :func:`opmath` of its dtype (or in ``dtype``), differentiably; ``None``
    stays ``None``."""
    if t is None:
        return None
    dtype = dtype or opmath(t.dtype)
    return t if t.dtype == dtype else t.to(dtype)


def rounded(result: Tensor, *dtypes: torch.dtype) -> Tensor:
    """``result``, computed in :func:`opmath`, rounded to the half dtype torch returns for
    arguments of ``dtypes`` (their promoted dtype); any other result is returned as it is.

    >>> rounded(torch.tensor(1 / 3), torch.bfloat16)
    tensor(0.3340, dtype=torch.bfloat16)
    """
    dtype = functools.reduce(torch.promote_types, dtypes)
    return result.to(dtype) if dtype in HALF and result.dtype == torch.float32 else result


_CONSTANTS: dict[tuple, Tensor] = {}


def constant_like(value: float, like: Tensor) -> Tensor:
    """``value`` as a 0-d tensor of ``like``'s dtype and device, made once per value, dtype
    and device: an operand that must be a tensor (``fmax``'s), or a Python number that an
    op would wrap into a tensor on every call (about 2 us on the CPU), made only once.

    >>> constant_like(0.0, torch.ones(3, dtype=torch.float64))
    tensor(0., dtype=torch.float64)
    """
    key = (value, like.dtype, like.device)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(value, dtype=like.dtype, device=like.device)
    return _CONSTANTS[key]
