"""The fast paths of :mod:`lossutils.functional.regression`: the forward chunk by chunk,
the backward in one buffer.

They run only for plain tensors (:func:`lossutils._autograd.plain`), and the
backward only when nothing records it (:func:`lossutils._autograd.fast_path`, the
usual ``loss.backward()``); under ``create_graph=True``, a ``torch.func``
transform or ``torch.compile`` the Functions run their whole-tensor forms,
which give the same numbers.

- **Forward in chunks of rows.** A reduced loss needs no elementwise loss of
  the whole input: each chunk of rows (about :data:`CHUNK_ELEMENTS` with one
  thread, :data:`CHUNK_ELEMENTS_THREADED` with several) gets the Function's
  elementwise loss, in place on its residual (the same operations), reduced to
  its sum, and the chunk sums are added. Only a chunk's temporaries exist at
  once (torch's fused kernel holds none either) and with one thread each
  chunk's passes run in the core's cache. An unreduced loss is computed in
  place on the whole residual, its output.
- **Backward in one buffer.** :math:`d = x - y` is formed in the gradient's
  buffer, the slope :math:`\\ell'(d)` is applied in place (the same operations
  as the Function's differentiable form, in the same order), then the
  reduction's factor: one :math:`N`-element tensor, as in torch.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._precision import upcast
from .._reduction import reduction_grad

# Elements per chunk of rows: a chunk's inputs and temporaries fit a core's L2 cache (2 MiB
# on the machines measured), and an op on a chunk is long enough that dispatching it costs
# little next to its arithmetic (below about 2^16 elements it does not).
CHUNK_ELEMENTS = 1 << 18
# With several threads every op is a fork and a join, and on a busy machine a join waits for
# a descheduled thread: there, few big chunks win (as cross-entropy's blocks).
CHUNK_ELEMENTS_THREADED = 1 << 22
FAST_DTYPES = (torch.float32, torch.float64)  # float16/bfloat16 compute in float32 instead


def row_chunks(x: Tensor, buffers: int) -> list[slice]:
    """Slices of dim 0 of ``x``: at most a chunk's elements each, and at least
    ``buffers`` of them (as many as there are rows allow), so that ``buffers`` chunk-sized
    temporaries never hold more elements than ``x``."""
    rows = x.shape[0]
    size = CHUNK_ELEMENTS if torch.get_num_threads() == 1 else CHUNK_ELEMENTS_THREADED
    count = min(rows, max(buffers, -(-x.numel() // size)))
    step = -(-rows // count)
    return [slice(i, i + step) for i in range(0, rows, step)]


def reduced_residual(loss_, buffers: int, input: Tensor, target: Tensor, reduction: str,
                  params) -> Tensor:
    """The unweighted loss :math:`\\mathrm{reduce}(\\ell(x - y))` with ``loss_`` the elementwise
    loss computed in place (on a fresh residual, with ``buffers - 1`` more temporaries):
    for ``'sum'`` and ``'mean'``, chunk by chunk (:func:`row_chunks`), adding the chunk sums."""
    if reduction == "none" or input.dim() == 0 or input.numel() == 0:
        loss = loss_(torch.sub(input, target), *params)
        return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())
    sums = [loss_(torch.sub(input[rows], target[rows]), *params).sum()
            for rows in row_chunks(input, buffers)]
    total = sums[0] if len(sums) == 1 else torch.stack(sums).sum()
    return total if reduction == "sum" else total / input.numel()


def residual_grad(input: Tensor, target: Tensor, grad_output: Tensor, reduction: str,
                  slope_, params, need_target: bool) -> tuple[Tensor, Tensor | None]:
    """:math:`\\partial L / \\partial x` and, if ``need_target``, :math:`-\\partial L / \\partial x`
    for an unweighted loss, in one buffer: :math:`d = x - y`, ``slope_(d, *params)`` in
    place, times the reduction's factor (for ``'none'``, the incoming gradient)."""
    grad = torch.sub(upcast(input), upcast(target))  # float32 for float16/bfloat16
    scale = reduction_grad(upcast(grad_output), reduction, grad.numel())
    slope_(grad, *params).mul_(scale)
    return grad, (-grad if need_target else None)


def half_square_(c: Tensor) -> Tensor:
    """:math:`0.5 c^2` written over ``c`` (a fresh tensor), as torch's kernels round it,
    ``(0.5 * c) * c``, in one pass (0 + ...)."""
    return torch.addcmul(c.new_zeros(()), c, c, value=0.5, out=c)


def smooth_l1_(d: Tensor, beta: float) -> Tensor:
    z = d.abs_()  # regression._smooth_l1 on d in place, and one more buffer
    q = half_square_(z.clamp(max=beta))
    if beta != 1.0:  # (a division by 1 changes nothing)
        q.div_(beta)
    return torch.maximum(q, z.sub_(0.5 * beta), out=z)


def huber_(d: Tensor, delta: float, out_dtype: torch.dtype) -> Tensor:
    # regression._huber on d in place, and one more buffer; rounded to out_dtype as forward
    z = d.abs_()
    q, line = half_square_(z.clamp(max=delta)), z.sub_(0.5 * delta)
    if delta != 1.0:
        line.mul_(delta)
    loss = torch.maximum(q, line, out=z)
    return loss if loss.dtype == out_dtype else loss.to(out_dtype)
