r"""The exponential of the fast paths: :math:`e^t = 2^{t \log_2 e}` on the CPU.

torch's CPU ``exp`` (and ``log``) of float32 and float64 tensors goes through
MKL's vector math library in the standard builds; on CPUs whose code path MKL
does not tune (AMD's, such as the machines the benchmarks run on) it is 3 to 5
times slower than the SLEEF kernels of torch's other elementwise ops,
``exp2`` among them, and slower than torch's own fused softmax kernels, which
exponentiate with a polynomial of their own. The fast paths of the softmax
family and of cross-entropy exponentiate every logit once or twice, so they
take :math:`e^t` as :math:`2^{t \log_2 e}`: one multiplication and an ``exp2``,
written in place into a fresh buffer.

The product :math:`t \log_2 e` rounds, so the result carries a relative error
of up to :math:`|t| \cdot 2^{-24}` in float32 (a few units in the last place for
:math:`|t| \le 4`, 16 at :math:`t = -20`, where :math:`e^t \approx 2 \cdot 10^{-9}`):
probabilities a few units in the last place from ``exp``'s, as torch's own
softmax kernels are (their polynomial is accurate to about 2 units). The
differentiable paths, which second derivatives and ``torch.func`` run, keep
``Tensor.exp``; ``tests/test_capabilities.py`` holds the two to ``rtol=1e-12``
in float64. Elsewhere (CUDA, half dtypes, a build without MKL) and for tensors of fewer
than 4,096 elements (where the extra multiplication costs more than it saves) this is
``exp_``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG2E = 1 / math.log(2)
"""The base-2 logarithm of :math:`e`: :math:`e^t = 2^{t \\log_2 e}`."""

_MKL_EXP = (torch.float32, torch.float64) if torch.backends.mkl.is_available() else ()
# Below this many elements the extra multiplication costs more than MKL's exp loses.
_MIN_ELEMENTS = 1 << 12


def exp_(t: Tensor) -> Tensor:
    """:math:`e^t` written over ``t`` (a fresh tensor nothing records), and returned.

    >>> exp_(torch.tensor([0.0, -1.0, 1.0]))
    tensor([1.0000, 0.3679, 2.7183])
    """
    if t.dtype in _MKL_EXP and t.is_cpu and t.numel() >= _MIN_ELEMENTS:
        return t.mul_(LOG2E).exp2_()
    return t.exp_()


def exp(t: Tensor) -> Tensor:
    """:math:`e^t` in a new tensor (what :func:`exp_` computes), for a fast path."""
    if t.dtype in _MKL_EXP and t.is_cpu and t.numel() >= _MIN_ELEMENTS:
        return torch.mul(t, LOG2E).exp2_()
    return t.exp()


def exp_into(t: Tensor, out: Tensor, whole: Tensor) -> Tensor:
    """:math:`e^t` written into ``out`` (of ``t``'s shape), for ``t`` a block of rows of
    ``whole``: the choice between ``exp2`` and ``exp`` is made for ``whole``, so every block
    rounds as :func:`exp` of ``whole`` would."""
    if whole.dtype in _MKL_EXP and whole.is_cpu and whole.numel() >= _MIN_ELEMENTS:
        return torch.mul(t, LOG2E, out=out).exp2_()
    return torch.exp(t, out=out)
