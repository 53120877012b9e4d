"""The fast paths of :mod:`lossutils.functional.regression` and
:mod:`lossutils.functional.robust`: the forward chunk by chunk, the backward in one buffer.

They run only for plain tensors (:func:`lossutils._autograd.plain`), and the
backward only when nothing records it (:func:`lossutils._autograd.fast_path`, the
usual ``loss.backward()``); under ``create_graph=True``, a ``torch.func``
transform or ``torch.compile`` the Functions run their whole-tensor forms,
which give the same numbers.

- **Forward in chunks of rows.** A reduced loss needs no elementwise loss of
  the whole input: each chunk of rows (about :data:`CHUNK_ELEMENTS` with one
  thread, :data:`CHUNK_ELEMENTS_THREADED` with several) gets the Function's
  elementwise loss, in place on its residual (the same operations), reduced to
  its sum, and the chunk sums are added. The chunk-sized buffers are allocated
  once and reused by every chunk: with one thread their passes run in the
  core's cache, and no fresh memory is touched chunk after chunk. An unreduced
  loss is computed in place on the whole residual, its output.
- **Backward in one buffer.** :math:`d = x - y` is formed in the gradient's
  buffer, the slope :math:`\\ell'(d)` is applied in place (the same operations
  as the Function's differentiable form, in the same order), then the
  reduction's factor: one :math:`N`-element tensor, as in torch.
- **The slope kept from the forward.** Huber's slope (and SmoothL1's with
  :math:`\\beta = 1`) is the clipped residual :math:`c = \\operatorname{clip}(d, -\\delta,
  \\delta)`, which its forward computes anyway: when a gradient will be asked for, the
  forward writes every :math:`c` into one input-sized buffer (as torch's forward fills
  one with the elementwise loss), each chunk's temporary in the part of that buffer not
  yet written, and the backward scales it in place (:func:`clipped_forward`): one pass
  instead of three, and no fresh buffer.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._precision import opmath, upcast
from .._reduction import reduction_grad, scalar_quotient

# Elements per chunk of rows: a chunk's two buffers (the residual and one temporary, reused
# from chunk to chunk) stay in a core's L2 cache (2 MiB on the machines measured), and an op
# on a chunk is long enough that dispatching it costs little next to its arithmetic.
CHUNK_ELEMENTS = 1 << 17
# With several threads every op is a fork and a join, and on a busy machine a join waits for
# a descheduled thread: there, few big chunks win (as cross-entropy's blocks), the whole
# tensor where the memory allows (all but Huber: see reduced_residual).
CHUNK_ELEMENTS_THREADED = 1 << 22
# Chunks of at least this many elements reuse two buffers allocated once (no fresh memory
# for the kernel to fault in page by page, chunk after chunk); smaller ones take fresh
# temporaries, which cost less than the reused ones' slicing and out= bookkeeping.
REUSE_ELEMENTS = 1 << 14
FAST_DTYPES = (torch.float32, torch.float64)  # float16/bfloat16 compute in float32 instead
# incoming gradients whose reduction factor scalar_scale computes (in opmath: float32 for halves)
SCALAR_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def row_chunks(x: Tensor, fewest: int) -> list[slice]:
    """Slices of dim 0 of ``x``: at most a chunk's elements each, and at least ``fewest``
    of them (as many as there are rows allow)."""
    rows = x.shape[0]
    size = CHUNK_ELEMENTS if torch.get_num_threads() == 1 else CHUNK_ELEMENTS_THREADED
    count = min(rows, max(fewest, -(-x.numel() // size)))
    step = -(-rows // count)
    return [slice(i, i + step) for i in range(0, rows, step)]


def reduced_residual(loss_, buffers: int, fewest: int, input: Tensor, target: Tensor,
                     reduction: str, params) -> Tensor:
    """The unweighted loss :math:`\\mathrm{reduce}(\\ell(x - y))` with ``loss_(d, spare,
    *params)`` the elementwise loss computed in place on a fresh residual ``d`` (with
    ``spare``, a buffer of ``d``'s shape or ``None`` to allocate one, for its temporary
    when it needs one: ``buffers = 2``).

    For ``'sum'`` and ``'mean'``, chunk by chunk (at least ``fewest`` chunks,
    :func:`row_chunks`), the chunk sums added: big chunks reuse buffers allocated once
    (:data:`REUSE_ELEMENTS`). ``fewest = 2`` where torch's own forward holds no input-sized
    tensor (Huber): two half-size buffers then hold no more than the input has elements."""
    if reduction == "none" or input.dim() == 0 or input.numel() == 0:
        loss = loss_(torch.sub(input, target), None, *params)
        return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())
    chunks = row_chunks(input, fewest)
    if len(chunks) == 1:
        total = loss_(torch.sub(input, target), None, *params).sum()
        return total if reduction == "sum" else total / input.numel()
    rows = chunks[0].stop
    residual = spare = None
    if rows * (input.numel() // input.shape[0]) >= REUSE_ELEMENTS:
        residual = torch.empty((rows, *input.shape[1:]), dtype=input.dtype, device=input.device)
        spare = torch.empty_like(residual) if buffers == 2 else None
    total = None
    for chunk in chunks:
        x, y = input[chunk], target[chunk]
        if residual is None:
            d, buffer = torch.sub(x, y), None
        else:
            n = x.shape[0]
            d = torch.sub(x, y, out=residual if n == rows else residual[:n])
            buffer = None if spare is None else spare if n == rows else spare[:n]
        loss = loss_(d, buffer, *params)
        # A two-buffer loss leaves the residual free: let it go before the sum (the reused
        # buffer too, after the last chunk), so that the sums never sit beside both buffers
        # (with two halves, that is torch's peak exactly).
        d = None
        if chunk is chunks[-1]:
            residual = None
        part = loss.sum()
        loss = None
        total = part if total is None else total.add_(part)
    return total if reduction == "sum" else total / input.numel()


def residual_grad(input: Tensor, target: Tensor, grad_output: Tensor, reduction: str,
                  slope_, params, need_target: bool,
                  kept: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:math:`\\partial L / \\partial x` and, if ``need_target``, :math:`-\\partial L / \\partial x`
    for an unweighted loss, in one buffer: :math:`d = x - y`, ``slope_(d, *params)`` in
    place, times the reduction's factor (for ``'none'``, the incoming gradient). ``kept``:
    the slopes the forward kept (:func:`clipped_forward`), scaled in place instead."""
    if kept is not None:
        scale = scalar_scale(grad_output.item(), reduction, input.numel(), kept.dtype)
        grad = kept if scale == 1.0 else kept.mul_(scale)  # times 1 changes no float
        return grad, (-grad if need_target else None)
    if grad_output.dim() == 0 and grad_output.device.type == "cpu" \
            and grad_output.dtype in SCALAR_DTYPES:
        # The factor as a Python number (the same float, so the same products): no 0-dim
        # tensor stays alive beside the gradient, as torch's kernel keeps its factor in a
        # register, and no division dispatched. On an accelerator, .item() would wait for
        # the device: kept a tensor.
        scale = scalar_scale(grad_output.item(), reduction, input.numel(),
                             opmath(grad_output.dtype))
    else:
        scale = reduction_grad(upcast(grad_output), reduction, input.numel())
    grad = torch.sub(upcast(input), upcast(target))  # float32 for float16/bfloat16
    slope_(grad, *params).mul_(scale)
    return grad, (-grad if need_target else None)


# The attribute that hands the kept slopes from the forward to setup_context (the forward
# of a Function has no ctx): set on the output by the forward, taken off by setup_context.
SLOPE_ATTR = "_lossutils_kept_slope"


def keeps_slope(input: Tensor, target: Tensor, reduction: str) -> bool:
    """Whether the forward keeps the clipped residual for the backward (:func:`clipped_forward`):
    a reduced loss of same-dtype CPU tensors of at least two rows and :data:`REUSE_ELEMENTS`
    elements (a smaller one costs its operations' dispatch more than their passes), of which
    one will have a gradient (else the chunked forward, which keeps nothing)."""
    return ((input.requires_grad or target.requires_grad) and reduction != "none"
            and input.dim() > 0 and input.shape[0] > 1 and input.numel() >= REUSE_ELEMENTS
            and target.dtype == input.dtype and input.device.type == "cpu")


def clip_chunks(rows: int, step: int) -> list[int]:
    """Rows per chunk for :func:`clipped_forward`, in order: at most ``step`` each, and each
    but the last at most as many as follow it (its temporary lives in their part of the
    buffer). The last, at most half the rows, borrows the first rows' part, which is then
    written again."""
    sizes, left = [], rows
    while left > step or 2 * left > rows:
        n = min(step, left // 2)
        sizes.append(n)
        left -= n
    return [*sizes, left]


def clipped_forward(input: Tensor, target: Tensor, reduction: str,
                    bound: float) -> tuple[Tensor, Tensor]:
    """Huber's reduced loss :math:`\\mathrm{reduce}(c\\,(d - c/2))` (:func:`huber_` with
    :math:`\\delta` = ``bound``), and :math:`c = \\operatorname{clip}(d, -\\delta, \\delta)`
    for every element, the slope the backward scales (:func:`residual_grad`).

    One buffer of the input's shape holds the :math:`c`: chunk by chunk of rows
    (:func:`clip_chunks`), :math:`d` goes into the part of the buffer after the chunk
    (not yet written), :math:`c` into the chunk's part, then :math:`d - c/2` and the
    product in place on :math:`d` (the operations of :func:`huber_`), summed. The chunk
    sums are added as Python floats: no tensor but the buffer and one sum is alive at a
    time, as in torch's forward (its elementwise loss, then its sum).

    Chunks of about :data:`CHUNK_ELEMENTS` with one thread; with several, every operation
    on a chunk is a fork and a join (on a busy machine, a wait for a descheduled thread):
    the fewest, two halves for a training-sized input, the first half written twice.
    (Measured on the busy 2-core machine, against the first half in one chunk and the
    rest in blocks under torch's grain size on the calling thread, 6 forks instead of 13:
    the serial half costs more than the forks it saves, median 2.0x torch against 2.4x.)"""
    rows = input.shape[0]
    size = CHUNK_ELEMENTS if torch.get_num_threads() == 1 else CHUNK_ELEMENTS_THREADED
    count = max(2, -(-input.numel() // size))
    sizes = clip_chunks(rows, -(-rows // count))
    slope = torch.empty(input.shape, dtype=input.dtype, device=input.device)
    parts = slope.split(sizes)
    total, start = 0.0, 0
    for k, (x, y, c) in enumerate(zip(input.split(sizes), target.split(sizes), parts,
                                      strict=True)):
        # the temporary: the next chunk's part when it is as big (no new view), else the rows
        # after this chunk; the last chunk's, the first rows
        following = parts[(k + 1) % len(parts)]
        if following.shape != c.shape:
            following = slope[(start + len(c)) % len(slope):][:len(c)]
        start += len(c)
        d = torch.sub(x, y, out=following)
        torch.clamp(d, -bound, bound, out=c)
        total += d.add_(c, alpha=-0.5).mul_(c).sum().item()
    redo = c.shape[0]  # the rows the last chunk's temporary overwrote: their c again
    torch.sub(input[:redo], target[:redo], out=slope[:redo]).clamp_(-bound, bound)
    value = total if reduction == "sum" else total / input.numel()
    return torch.tensor(value, dtype=input.dtype), slope


def scalar_scale(grad: float, reduction: str, count: int, dtype: torch.dtype) -> float:
    """:func:`lossutils._reduction.reduction_grad` of a scalar incoming gradient ``grad``,
    as a Python float, bit for bit the tensor's value, without a tensor (the kept slopes
    fill torch's peak already)."""
    return scalar_quotient(grad, max(count, 1), dtype) if reduction == "mean" else grad


def half_square_(c: Tensor) -> Tensor:
    """:math:`0.5 c^2` written over ``c`` (a fresh tensor), as torch's kernels round it,
    ``(0.5 * c) * c``, in one pass (0 + ...)."""
    return torch.addcmul(c.new_zeros(()), c, c, value=0.5, out=c)


def abs_(d: Tensor, spare: Tensor | None) -> Tensor:
    """regression._l1 on a fresh ``d``, in place."""
    return d.abs_()


def square_(d: Tensor, spare: Tensor | None) -> Tensor:
    """regression._squared on a fresh ``d``, in place."""
    return d.mul_(d)


def huber_(d: Tensor, spare: Tensor | None, delta: float,
           out_dtype: torch.dtype | None = None) -> Tensor:
    """regression._huber on a fresh ``d``, its temporary in ``spare`` (returned):
    :math:`c = \\operatorname{clip}(d, -\\delta, \\delta)`, then :math:`c\\,(d - c/2)`.
    Rounded to ``out_dtype`` as the Function's forward rounds it."""
    c = torch.clamp(d, -delta, delta, out=spare)
    loss = c.mul_(d.add_(c, alpha=-0.5))  # d - c/2 in place (c/2 is exact), then times c
    return loss if out_dtype is None or loss.dtype == out_dtype else loss.to(out_dtype)


def smooth_l1_(d: Tensor, spare: Tensor | None, beta: float) -> Tensor:
    """regression._smooth_l1 on a fresh ``d``, its temporary in ``spare`` (returned)."""
    if beta == 1.0:  # Huber's terms with delta = 1, bit for bit
        return huber_(d, spare, 1.0)
    z = d.abs_()
    q = half_square_(torch.clamp(z, max=beta, out=spare)).div_(beta)
    return torch.maximum(q, z.sub_(0.5 * beta), out=q)
