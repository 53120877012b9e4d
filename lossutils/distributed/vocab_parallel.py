r"""Vocabulary-parallel cross-entropy: the output layer's rows sharded over a process group.

A language model's head ``W`` is ``V x F``; with a large vocabulary it is
split by rows over the ``P`` ranks of a ``torch.distributed`` group, rank
``r`` holding the contiguous rows ``[s_r, s_r + V_r)``. Every rank holds the
same hidden states ``x`` (``N x F``) and targets. Gathering the logits to one
place would move and store ``N x V`` numbers per rank; the loss needs only
three numbers per row from the other ranks (the row maximum, the sum of
exponentials and the target term), and the gradient of each shard is local.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor
from torch.autograd import Function

from .. import _reduction
from .._autograd import once_differentiable
from ._layout import Layout, check_targets, check_weight, explicit_layout, gathered_layout

__all__ = ["VocabParallelCrossEntropyFunction", "shard_bounds", "vocab_parallel_cross_entropy"]


def shard_bounds(vocab_size: int, world_size: int) -> list[tuple[int, int]]:
    """The rows ``(start, stop)`` of each rank: contiguous, sizes differing by at most one.

    The first ``vocab_size % world_size`` ranks hold one row more (as
    :func:`torch.tensor_split` splits), e.g. 10 rows over 3 ranks: 4, 3, 3.

    >>> shard_bounds(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(vocab_size, world_size)
    stops = [sum(base + (k < extra) for k in range(r + 1)) for r in range(world_size)]
    return list(zip([0, *stops[:-1]], stops, strict=True))


@dataclass(frozen=True)
class _Options:
    reduction: str
    ignore_index: int
    eps: float  # label smoothing
    chunk: int  # rows per chunk
    vchunk: int  # shard columns per block


class _ShardTargets:
    r"""This rank's columns of the target rows :math:`q_n`, and the row masses :math:`Q_n`.

    For a class index :math:`y_n`,
    :math:`q_n = (1-\varepsilon) w_{y_n} e_{y_n} + \frac{\varepsilon}{V} w` (zero when
    :math:`y_n` is ``ignore_index``); the rank sees only the columns of its shard,
    so :math:`e_{y_n}` is there only when its shard holds :math:`y_n`. The total
    mass :math:`Q_n = \sum_c q_{nc} = (1-\varepsilon) w_{y_n} + \frac{\varepsilon}{V}\sum_c w_c`
    needs no logits, so every rank computes it alone (``weight`` is the full vector).
    """

    def __init__(self, target: Tensor, weight: Tensor | None, opts: _Options, layout: Layout,
                 dtype):
        V, eps = layout.vocab_size, opts.eps
        self.eps = eps
        self.valid = target != opts.ignore_index
        index = torch.where(self.valid, target, 0)
        w_y = weight[index] if weight is not None else torch.ones(target.shape, dtype=dtype)
        self.one_hot = torch.where(self.valid, (1 - eps) * w_y, 0)  # a_n, coefficient on e_{y_n}
        self.uniform = self.valid.to(dtype) * (eps / V)  # u_n, the coefficient on w
        self.local = index - layout.start  # y_n in the shard's own column numbers
        self.inside = self.valid & (self.local >= 0) & (self.local < layout.size)
        self.w = weight[layout.start:layout.start + layout.size] if weight is not None else None
        wsum = weight.sum() if weight is not None else V
        self.mass = self.one_hot + self.uniform * wsum  # Q_n, over the whole vocabulary
        self.kept = torch.where(self.valid, w_y, 0)  # what 'mean' divides by, summed

    def _hit(self, rows: slice, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """Rows whose target falls in the block ``lo:hi``, and its column there."""
        local = self.local[rows]
        hit = self.inside[rows] & (local >= lo) & (local < hi)
        return hit, (local - lo).clamp(0, max(hi - lo - 1, 0)).unsqueeze(1)

    def dot(self, z: Tensor, rows: slice, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """``(<q_n, z_n>, sum_c q_nc)`` over the shard columns ``lo:hi`` held in ``z``."""
        hit, col = self._hit(rows, lo, hi)
        a = self.one_hot[rows]
        dot = torch.where(hit, a * z.gather(1, col).squeeze(1), 0)
        mass = torch.where(hit, a, 0)
        if self.eps > 0:
            u, w = self.uniform[rows], self.w[lo:hi] if self.w is not None else None
            dot = dot + torch.where(self.valid[rows], u * (z.sum(1) if w is None else z @ w), 0)
            mass = mass + u * (hi - lo if w is None else w.sum())
        return dot, mass

    def subtract(self, dz: Tensor, r: Tensor, rows: slice, lo: int, hi: int) -> None:
        """``dz -= r_n q_n`` on the shard columns ``lo:hi``, in place."""
        hit, col = self._hit(rows, lo, hi)
        dz.scatter_add_(1, col, torch.where(hit, -r * self.one_hot[rows], 0).unsqueeze(1))
        if self.eps > 0:
            ru = r * self.uniform[rows]
            if self.w is None:
                dz.sub_(ru.unsqueeze(1))
            else:
                dz.addr_(ru, self.w[lo:hi], alpha=-1)


def _blocks(size: int, vchunk: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + vchunk, size)) for lo in range(0, size, vchunk)]


def _logits(x: Tensor, W: Tensor, b: Tensor | None, lo: int, hi: int, buf: Tensor) -> Tensor:
    """``x @ W[lo:hi].T + b[lo:hi]`` written into the front of ``buf`` (one buffer per call)."""
    out = buf[: x.shape[0] * (hi - lo)].view(x.shape[0], hi - lo)
    if b is None:
        return torch.mm(x, W[lo:hi].T, out=out)
    return torch.addmm(b[lo:hi], x, W[lo:hi].T, out=out)


def _shard_statistics(x, W, b, tq: _ShardTargets, opts: _Options):
    r"""Per row, over this shard only: max :math:`m^{(r)}`, :math:`s^{(r)} = \sum e^{z-m^{(r)}}`,
    :math:`T^{(r)} = \sum q (z - m^{(r)})` and :math:`Q^{(r)} = \sum q`.

    An online log-sum-exp over the shard's blocks of columns: when the running
    max grows from :math:`m` to :math:`m'`, :math:`s \leftarrow s e^{m-m'}` and
    :math:`T \leftarrow T + (m - m') Q`. An empty shard gives
    :math:`m = -\infty`, :math:`s = T = Q = 0`.
    """
    N, size = x.shape[0], W.shape[0]
    m_r = x.new_full((N,), -torch.inf)
    s_r, T_r, Q_r = x.new_zeros(N), x.new_zeros(N), x.new_zeros(N)
    blocks = _blocks(size, opts.vchunk)
    buf = x.new_empty(min(opts.chunk, N) * min(opts.vchunk, size))
    for a in range(0, N, opts.chunk):
        rows = slice(a, min(a + opts.chunk, N))
        m = s = T = Q = None
        for lo, hi in blocks:
            z = _logits(x[rows], W, b, lo, hi, buf)
            m_new = z.amax(1) if m is None else torch.maximum(m, z.amax(1))
            z.sub_(m_new.unsqueeze(1))  # every exponent <= 0: no overflow
            dot, mass = tq.dot(z, rows, lo, hi)
            if m is None:
                s, T, Q = torch.zeros_like(m_new), dot, mass
            else:
                shift = m - m_new
                s, T, Q = s * shift.exp(), T + shift * Q + dot, Q + mass
            s = s + z.exp_().sum(1)
            m = m_new
        if m is not None:
            m_r[rows], s_r[rows], T_r[rows], Q_r[rows] = m, s, T, Q
    return m_r, s_r, T_r, Q_r


def _combine(m_r, s_r, T_r, Q_r, group) -> tuple[Tensor, Tensor, Tensor]:
    r"""The two all-reduces of forward: :math:`m = \max_r m^{(r)}`, then
    :math:`(s, T) = \sum_r (s^{(r)} e^{m^{(r)} - m},\; T^{(r)} + (m^{(r)} - m) Q^{(r)})`.

    Returns :math:`m`, :math:`\log s` and :math:`T = \sum_c q_c (z_c - m)`.
    """
    m = m_r.clone()
    dist.all_reduce(m, op=dist.ReduceOp.MAX, group=group)  # collective 1: N numbers
    shift = m_r - m  # <= 0; -inf on an empty shard
    T_r = torch.where(Q_r == 0, T_r, T_r + shift * Q_r)  # Q_r = 0: no -inf * 0
    sums = torch.stack([s_r * shift.exp(), T_r])
    dist.all_reduce(sums, group=group)  # collective 2: 2N numbers (sum of exps, target term)
    return m, sums[0].log(), sums[1]


def _backward_pass(x, W, b, tq: _ShardTargets, opts: _Options, lse, r, grads) -> None:
    r"""Recompute each block of this shard's logits and add its gradient.

    :math:`g_{nc} = r_n (Q_n p_{nc} - q_{nc})` with :math:`p = e^{z - \mathrm{lse}}`;
    then :math:`\partial L/\partial x \mathrel{+}= g W_{\text{shard}}`,
    :math:`\partial L/\partial W_{\text{shard}} \mathrel{+}= g^\top x`,
    :math:`\partial L/\partial b_{\text{shard}} \mathrel{+}= \sum_n g_n`.
    """
    gx, gW, gb = grads
    N, size = x.shape[0], W.shape[0]
    blocks = _blocks(size, opts.vchunk)
    buf = x.new_empty(min(opts.chunk, N) * min(opts.vchunk, size))
    for a in range(0, N, opts.chunk):
        rows = slice(a, min(a + opts.chunk, N))
        x_c, rQ = x[rows], (r[rows] * tq.mass[rows]).unsqueeze(1)
        for lo, hi in blocks:
            z = _logits(x_c, W, b, lo, hi, buf).sub_(lse[rows].unsqueeze(1))  # log p
            dz = z.exp_().mul_(rQ)
            tq.subtract(dz, r[rows], rows, lo, hi)
            if gx is not None:
                gx[rows].addmm_(dz, W[lo:hi])
            if gW is not None:
                gW[lo:hi].addmm_(dz.T, x_c)
            if gb is not None:
                gb[lo:hi] += dz.sum(0)


class VocabParallelCrossEntropyFunction(Function):
    r"""Cross-entropy of :math:`z = x W^\top + b` with the rows of :math:`W` sharded over a group.

    Rank :math:`r` holds :math:`W_{[s_r, s_r + V_r)}`. With :math:`q_n` the
    target row (see :class:`_ShardTargets`), :math:`Q_n = \sum_c q_{nc}` and
    :math:`\mathrm{lse}_n = \log \sum_c e^{z_{nc}}` over the *whole* vocabulary:

    .. math::
        l_n = Q_n\, \mathrm{lse}_n - \sum_c q_{nc} z_{nc}
            = Q_n \log s_n - T_n,\qquad
        s_n = \sum_c e^{z_{nc} - m_n},\quad T_n = \sum_c q_{nc} (z_{nc} - m_n),

    with :math:`m_n = \max_c z_{nc}`. Each sum over :math:`c` splits over the
    shards, so forward runs two all-reduces of per-row numbers:

    1. ``MAX`` of each shard's row maximum :math:`m^{(r)}_n` (:math:`N` numbers);
    2. ``SUM`` of :math:`s^{(r)}_n e^{m^{(r)}_n - m_n}` and
       :math:`T^{(r)}_n + (m^{(r)}_n - m_n) Q^{(r)}_n` (:math:`2N` numbers):
       the sum of exponentials and the target term, which holds the target
       logit and, with label smoothing, the (weighted) sum of the logits.

    Backward, with :math:`r_n` the reduction's weight (``1 / sum_n w_{y_n}`` for
    ``mean``, 1 for ``sum``, ``grad_output[n]`` for ``none``) and
    :math:`g_{nc} = r_n (Q_n p_{nc} - q_{nc})`, :math:`p_{nc} = e^{z_{nc} - \mathrm{lse}_n}`,
    each rank forms its own columns of :math:`g` from the saved
    :math:`\mathrm{lse}` (recomputing its logits block by block) and

    .. math::
        \frac{\partial L}{\partial W_c} = \sum_n g_{nc} x_n,\quad
        \frac{\partial L}{\partial b_c} = \sum_n g_{nc}\quad (c \text{ in the shard: local}),
        \qquad
        \frac{\partial L}{\partial x_n} = \sum_{r} \sum_{c \in \text{shard } r} g_{nc} W_c,

    the last one a ``SUM`` all-reduce of :math:`N \times F` numbers (3).
    """

    @staticmethod
    def forward(input, weight_shard, bias_shard, target, weight, layout, opts):
        tq = _ShardTargets(target, weight, opts, layout, input.dtype)
        m, log_s, T = _combine(*_shard_statistics(input, weight_shard, bias_shard, tq, opts),
                               layout.group)
        losses = torch.where(tq.valid, tq.mass * log_s - T, 0)
        if opts.reduction == "none":
            loss = losses
        elif opts.reduction == "sum":
            loss = losses.sum()
        else:
            loss = losses.sum() / tq.kept.sum()
        return loss, m + log_s

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight_shard, bias_shard, target, weight, layout, opts = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, weight_shard, bias_shard, target, weight, output[1])
        ctx.layout, ctx.opts = layout, opts

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, _):
        nothing = (None,) * 7
        if grad_output is None:
            return nothing
        x, W, b, target, weight, lse = ctx.saved_tensors
        needs, opts = ctx.needs_input_grad, ctx.opts
        tq = _ShardTargets(target, weight, opts, ctx.layout, x.dtype)
        N = x.shape[0]
        if opts.reduction == "none":
            r = grad_output
        else:
            scale = grad_output / tq.kept.sum() if opts.reduction == "mean" else grad_output
            r = scale.expand(N)
        # ignored rows get exactly zero gradient, even when 'mean' divides by a total weight of 0
        r = torch.where(tq.valid, r, 0)
        grads = (torch.zeros_like(x) if needs[0] else None,
                 torch.zeros_like(W) if needs[1] else None,
                 torch.zeros_like(b) if b is not None and needs[2] else None)
        if W.shape[0]:
            _backward_pass(x, W, b, tq, opts, lse, r, grads)
        if grads[0] is not None:
            dist.all_reduce(grads[0], group=ctx.layout.group)  # collective 3: N x F numbers
        return (*grads, *nothing[3:])


def _default_chunk(num_rows: int, in_features: int, shard_size: int) -> int:
    """Rows per chunk so that one chunk's logits take about half the memory of ``input``.

    The rule of ``linear_cross_entropy`` (torch's ``aspect_ratio:2``) with the
    shard's width: ``next_pow2(ceil(N / ceil(V_r / F))) // 2``, in ``[1, N]``.
    """
    per_input = -(-num_rows // max(-(-shard_size // max(in_features, 1)), 1))
    return max(1, min((1 << max(per_input - 1, 0).bit_length()) // 2, num_rows))


def vocab_parallel_cross_entropy(input: Tensor, weight_shard: Tensor, target: Tensor, *,
                                 bias_shard: Tensor | None = None, group=None,
                                 weight: Tensor | None = None, reduction: str = "mean",
                                 ignore_index: int = -100, label_smoothing: float = 0.0,
                                 vocab_start: int | None = None, vocab_size: int | None = None,
                                 chunk_size: int | None = None,
                                 vocab_chunk_size: int | None = None) -> Tensor:
    r"""Cross-entropy of ``input @ W.T + b`` where each rank of ``group`` holds rows of ``W``.

    Called on every rank of ``group`` with the same ``input`` and ``target``
    and this rank's contiguous shard of the output layer; returns, on every
    rank, the loss that
    ``linear_cross_entropy(input, W, target, linear_bias=b, weight=weight, ...)``
    returns for the whole ``W`` (rank order = row order). Backward gives each
    rank the gradient of its own shard (no communication) and the full
    gradient of ``input`` (one all-reduce). See
    :class:`VocabParallelCrossEntropyFunction` for the math.

    Communication per call, for :math:`N` rows of :math:`F` features in a
    dtype of :math:`b` bytes: forward all-reduces :math:`N` numbers (``MAX``)
    and :math:`2N` (``SUM``), :math:`3Nb` bytes, whatever the reduction,
    weights or label smoothing; backward all-reduces :math:`NFb` bytes for
    the input gradient (none when ``input`` does not require grad). Unless
    ``vocab_start`` and ``vocab_size`` are given, forward also starts with
    one all-gather of 7 int64 per rank (:math:`56P` bytes) that gives each
    rank its offset, checks that the ranks agree (same ``N``, ``F``, dtype,
    targets and class-weight size) and lets a rank that rejects its arguments stop every rank with
    its error instead of leaving them waiting.

    The gradient that reaches backward must be the same on every rank (as it
    is when every rank computes the same loss from it), and either every rank
    or none needs the input gradient.

    Args:
        input: hidden states :math:`(N, F)`, the same on every rank.
        weight_shard: this rank's rows of the output layer, :math:`(V_r, F)`; shards may
            differ in size (see :func:`shard_bounds`), even be empty.
        target: class indices of the whole vocabulary, :math:`(N)`, int64 or uint8, the
            same on every rank.
        bias_shard: this rank's entries of the output bias, :math:`(V_r)`, or None.
        group: the process group (default: the whole world).
        weight: class weights of the *whole* vocabulary, :math:`(V)`, the same on
            every rank (a :math:`V`-vector is small next to the :math:`V \times F` head,
            and ``mean`` and label smoothing need all of it). Not a shard.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        ignore_index: rows with this target count for nothing. Default -100.
        label_smoothing: :math:`\varepsilon \in [0, 1]`, mixed with the uniform over the
            :math:`V` classes of the whole vocabulary.
        vocab_start, vocab_size: this rank's first row and the whole vocabulary's size.
            Give both to skip the all-gather above (then nothing checks that the
            ranks agree); give neither to derive them from the shard sizes.
        chunk_size: rows per chunk. Default: a chunk's logits take about half the
            memory of ``input``.
        vocab_chunk_size: shard columns per block. Default: the whole shard.

    Shape:
        output: scalar, or :math:`(N)` for ``'none'``; the same on every rank.

    Examples:
        Every rank runs (here with ``P`` ranks and ``W`` the ``V x F`` head)::

            rank, P = dist.get_rank(), dist.get_world_size()
            start, stop = shard_bounds(V, P)[rank]
            W_shard = W[start:stop].clone().requires_grad_()
            loss = vocab_parallel_cross_entropy(x, W_shard, y, chunk_size=1024)
            loss.backward()  # W_shard.grad: its rows of dL/dW; x.grad: all of dL/dx
    """
    layout_given = vocab_start is not None or vocab_size is not None
    error, opts = None, None
    try:
        opts, target = _check_local(input, weight_shard, bias_shard, target, weight, reduction,
                                    ignore_index, label_smoothing, chunk_size, vocab_chunk_size)
        if layout_given:
            layout = explicit_layout(group, vocab_start, vocab_size, weight_shard.shape[0])
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError) as err:
        if layout_given:
            raise
        error = err
    if not layout_given:
        layout = gathered_layout(group, error, input, weight_shard, target, weight)
    if layout_given:
        check_weight([-1 if weight is None else weight.numel()], layout)
    check_targets(target, ignore_index, layout)
    loss, _ = VocabParallelCrossEntropyFunction.apply(input, weight_shard, bias_shard, target,
                                                      weight, layout, opts)
    return loss


def _check_local(input, W, b, target, weight, reduction, ignore_index, label_smoothing, chunk,
                 vchunk):
    """Every check one rank can make alone; returns the options and the int64 target."""
    reduction = _reduction.check_reduction(reduction)
    if not input.is_floating_point() or input.dim() != 2:
        raise RuntimeError(f"vocab_parallel_cross_entropy: input must be a floating-point (N, F) "
                           f"tensor, got shape {tuple(input.shape)} and dtype {input.dtype}")
    N, F = input.shape
    if W.dim() != 2 or W.shape[1] != F:
        raise RuntimeError(f"vocab_parallel_cross_entropy: weight_shard must be (V_r, {F}) to "
                           f"match input of shape {tuple(input.shape)}, got {tuple(W.shape)}")
    if b is not None and tuple(b.shape) != (W.shape[0],):
        raise RuntimeError(f"vocab_parallel_cross_entropy: bias_shard must be ({W.shape[0]},) to "
                           f"match weight_shard of shape {tuple(W.shape)}, got {tuple(b.shape)}")
    if weight is not None and weight.dim() != 1:
        raise RuntimeError(f"vocab_parallel_cross_entropy: weight must be a vector of class "
                           f"weights, (V,), got shape {tuple(weight.shape)}")
    for name, t in (("weight_shard", W), ("bias_shard", b), ("weight", weight)):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"vocab_parallel_cross_entropy: {name} must have input's dtype "
                               f"{input.dtype}, got {t.dtype}")
    if target.dtype not in (torch.int64, torch.uint8):
        raise RuntimeError(f"vocab_parallel_cross_entropy: target must hold class indices "
                           f"(int64 or uint8), got dtype {target.dtype}")
    if tuple(target.shape) != (N,):
        raise ValueError(f"vocab_parallel_cross_entropy: target must be ({N},) for input of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if weight is not None and weight.requires_grad and torch.is_grad_enabled():
        raise RuntimeError("vocab_parallel_cross_entropy: the loss is not differentiable with "
                           "respect to the class weights: weight cannot have requires_grad=True")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"vocab_parallel_cross_entropy: ignore_index must be an int, "
                        f"got {ignore_index!r}")
    if not label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    for name, n in (("chunk_size", chunk), ("vocab_chunk_size", vchunk)):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ValueError(f"{name} must be a positive int or None, got {n!r}")
    size = W.shape[0]
    opts = _Options(reduction, ignore_index, max(float(label_smoothing), 0.0),
                    chunk if chunk is not None else _default_chunk(N, F, size),
                    vchunk if vchunk is not None else max(size, 1))
    return opts, target.long()
