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

from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
from torch import Tensor
from torch.autograd import Function

from .. import _reduction
from .._reduction import reduction_grad
from ..functional._chunk_passes import ChunkPlan, Gradients, RowChunk, gradient_pass, online_lse
from ..functional._linear_cross_entropy_args import auto_chunk_size
from ..functional._linear_cross_entropy_checks import check_chunk_sizes
from ..functional._target_rows import ClassIndexTargets
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
class _Settings:
    """The Function's arguments that are not tensors."""

    reduction: str
    ignore_index: int
    label_smoothing: float
    plan: ChunkPlan  # this rank's rows x shard columns, cut into chunks and blocks
    layout: Layout


def _shard_targets(target: Tensor, weight: Tensor | None, settings: _Settings,
                   dtype: torch.dtype) -> ClassIndexTargets:
    r"""The target rows :math:`p_n` seen on this rank's columns ``[s_r, s_r + V_r)`` (their
    masses :math:`P_n` over the whole vocabulary: ``weight`` is the full vector)."""
    layout = settings.layout
    return ClassIndexTargets.build(target, weight, settings.ignore_index,
                                   settings.label_smoothing, layout.vocab_size, dtype,
                                   start=layout.start)


def _shard_statistics(x: Tensor, W: Tensor, b: Tensor | None, targets: ClassIndexTargets,
                      plan: ChunkPlan):
    r"""Per row, over this shard only: max :math:`m^{(r)}`, :math:`s^{(r)} = \sum e^{z-m^{(r)}}`,
    :math:`T^{(r)} = \sum p (z - m^{(r)})` and :math:`P^{(r)} = \sum p`.

    The online log-sum-exp of the single-process loss (:func:`online_lse`), chunk by
    chunk over the shard's blocks of columns. An empty shard gives
    :math:`m = -\infty`, :math:`s = T = P = 0`.
    """
    n = x.shape[0]
    m, s, T, P = x.new_full((n,), -torch.inf), x.new_zeros(n), x.new_zeros(n), x.new_zeros(n)
    if W.shape[0] == 0:
        return m, s, T, P
    buffer = plan.buffer(x)
    for rows in plan.row_chunks():
        lse, _ = online_lse(RowChunk(rows, x[rows], W, b, targets.rows(rows)), plan, buffer)
        m[rows], s[rows], T[rows], P[rows] = (lse.max, lse.sum_exp, lse.target_dot,
                                              lse.target_mass)
    return m, s, T, P


def _combine(m_r, s_r, T_r, P_r, group) -> tuple[Tensor, Tensor, Tensor]:
    r"""The two all-reduces of forward: :math:`m = \max_r m^{(r)}`, then
    :math:`(s, T) = \sum_r (s^{(r)} e^{m^{(r)} - m},\; T^{(r)} + (m^{(r)} - m) P^{(r)})`.

    Returns :math:`m`, :math:`\log s` and :math:`T = \sum_c p_c (z_c - m)`.
    """
    m = m_r.clone()
    dist.all_reduce(m, op=dist.ReduceOp.MAX, group=group)  # collective 1: N numbers
    shift = m_r - m  # <= 0; -inf on an empty shard
    T_r = torch.where(P_r == 0, T_r, T_r + shift * P_r)  # P_r = 0: no -inf * 0
    sums = torch.stack([s_r * shift.exp(), T_r])
    dist.all_reduce(sums, group=group)  # collective 2: 2N numbers (sum of exps, target term)
    return m, sums[0].log(), sums[1]


SECOND_DERIVATIVES = (
    "vocab_parallel_cross_entropy: second derivatives are not supported (its backward was "
    "asked to be recorded, create_graph=True): the all-reduce of the input gradient is "
    "torch.distributed's in-place collective, which autograd does not differentiate, so the "
    "terms that flow through the other ranks' shards would be missing. Differentiate once "
    "(create_graph=False), or use lossutils.functional.linear_cross_entropy on the whole head.")


class VocabParallelCrossEntropyFunction(Function):
    r"""Cross-entropy of :math:`z = x W^\top + b` with the rows of :math:`W` sharded over a group.

    Rank :math:`r` holds :math:`W_{[s_r, s_r + V_r)}`. With :math:`p_n` the
    target row (the true distribution, see :func:`_shard_targets`),
    :math:`P_n = \sum_c p_{nc}` and :math:`\mathrm{lse}_n = \log \sum_c e^{z_{nc}}`
    over the *whole* vocabulary:

    .. math::
        l_n = P_n\, \mathrm{lse}_n - \sum_c p_{nc} z_{nc}
            = P_n \log s_n - T_n,\qquad
        s_n = \sum_c e^{z_{nc} - m_n},\quad T_n = \sum_c p_{nc} (z_{nc} - m_n),

    with :math:`m_n = \max_c z_{nc}`. Each sum over :math:`c` splits over the
    shards, so forward runs two all-reduces of per-row numbers:

    1. ``MAX`` of each shard's row maximum :math:`m^{(r)}_n` (:math:`N` numbers);
    2. ``SUM`` of :math:`s^{(r)}_n e^{m^{(r)}_n - m_n}` and
       :math:`T^{(r)}_n + (m^{(r)}_n - m_n) P^{(r)}_n` (:math:`2N` numbers):
       the sum of exponentials and the target term, which holds the target
       logit and, with label smoothing, the (weighted) sum of the logits.

    Backward, with :math:`r_n` the reduction's weight (``1 / sum_n w_{y_n}`` for
    ``mean``, 1 for ``sum``, ``grad_output[n]`` for ``none``),
    :math:`q_{nc} = e^{z_{nc} - \mathrm{lse}_n}` the model's softmax and
    :math:`g_{nc} = r_n (P_n q_{nc} - p_{nc})`, each rank forms its own columns of
    :math:`g` from the saved :math:`\mathrm{lse}` (recomputing its logits block by
    block, the single-process loss's own
    :func:`~lossutils.functional._chunk_passes.gradient_pass`) and

    .. math::
        \frac{\partial L}{\partial W_c} = \sum_n g_{nc} x_n,\quad
        \frac{\partial L}{\partial b_c} = \sum_n g_{nc}\quad (c \text{ in the shard: local}),
        \qquad
        \frac{\partial L}{\partial x_n} = \sum_{r} \sum_{c \in \text{shard } r} g_{nc} W_c,

    the last one a ``SUM`` all-reduce of :math:`N \times F` numbers (3).

    Second derivatives are refused on purpose: ``backward`` raises when it would be
    recorded (``create_graph=True``). torch has no vocabulary-parallel loss to match,
    and a recorded backward here would be wrong, not merely slow: the all-reduce of the
    input gradient is ``torch.distributed``'s in-place collective, which autograd does
    not differentiate, so every second-order term that flows through the other ranks'
    shards would be silently missing. (Making it differentiable would take
    ``torch.distributed.nn``'s autograd-aware collectives in forward and backward, on
    every rank in lock step.) ``torch.func`` transforms are not supported either: a
    collective cannot run per sample of a ``vmap``.
    """

    @staticmethod
    def forward(input, weight_shard, bias_shard, target, weight, settings):
        targets = _shard_targets(target, weight, settings, input.dtype)
        statistics = _shard_statistics(input, weight_shard, bias_shard, targets, settings.plan)
        m, log_s, T = _combine(*statistics, settings.layout.group)
        losses = targets.mask(targets.row_mass() * log_s - T)
        if settings.reduction == "none":
            loss = losses
        elif settings.reduction == "sum":
            loss = losses.sum()
        else:
            loss = losses.sum() / targets.total_weight()
        return loss, m + log_s

    @staticmethod
    def setup_context(ctx, inputs, output):
        *tensors, settings = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*tensors, output[1])
        ctx.settings = settings

    @staticmethod
    def backward(ctx, grad_output, _):
        nothing = (None,) * 6
        if grad_output is None:
            return nothing
        if torch.is_grad_enabled():
            raise RuntimeError(SECOND_DERIVATIVES)
        x, W, b, target, weight, lse = ctx.saved_tensors
        needs, settings = ctx.needs_input_grad, ctx.settings
        targets = _shard_targets(target, weight, settings, x.dtype)
        n = x.shape[0]
        if settings.reduction == "none":
            scale = grad_output
        else:
            scale = reduction_grad(grad_output, settings.reduction, n,
                                   targets.total_weight()).expand(n)
        # ignored rows get exactly zero gradient, even when 'mean' divides by a total weight of 0
        scale = targets.mask(scale)
        grads = Gradients(torch.zeros_like(x) if needs[0] else None,
                          torch.zeros_like(W) if needs[1] else None,
                          torch.zeros_like(b) if b is not None and needs[2] else None)
        if W.shape[0]:
            plan = settings.plan
            buffer = plan.buffer(x)
            for rows in plan.row_chunks():
                chunk = RowChunk(rows, x[rows], W, b, targets.rows(rows))
                coefficient = scale[rows] * chunk.targets.row_mass()
                gradient_pass(chunk, plan, buffer, lse[rows], coefficient, scale[rows], grads)
        if grads.input is not None:
            dist.all_reduce(grads.input, group=settings.layout.group)  # collective 3: N x F
        return (*grads[:3], *nothing[3:])


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
    or none needs the input gradient. First derivatives only: a backward with
    ``create_graph=True`` raises (see :class:`VocabParallelCrossEntropyFunction`
    for why), and ``torch.func`` transforms are not supported.

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
    error, settings = None, None
    try:
        settings, target = _check_local(input, weight_shard, bias_shard, target, weight,
                                        reduction, ignore_index, label_smoothing, chunk_size,
                                        vocab_chunk_size)
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
                                                      weight, replace(settings, layout=layout))
    return loss


def _check_local(input, W, b, target, weight, reduction, ignore_index, label_smoothing,
                 chunk_size, vocab_chunk_size) -> tuple[_Settings, Tensor]:
    """Every check one rank can make alone; returns the settings (without the layout,
    which may need the other ranks) and the int64 target."""
    reduction = _reduction.check_reduction(reduction)
    if not input.is_floating_point() or input.dim() != 2:
        raise RuntimeError(f"vocab_parallel_cross_entropy: input must be a floating-point (N, F) "
                           f"tensor, got shape {tuple(input.shape)} and dtype {input.dtype}")
    n, f = input.shape
    if W.dim() != 2 or W.shape[1] != f:
        raise RuntimeError(f"vocab_parallel_cross_entropy: weight_shard must be (V_r, {f}) to "
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
    if tuple(target.shape) != (n,):
        raise ValueError(f"vocab_parallel_cross_entropy: target must be ({n},) for input of shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if weight is not None and weight.requires_grad and torch.is_grad_enabled():
        raise RuntimeError("vocab_parallel_cross_entropy: the loss is not differentiable with "
                           "respect to the class weights: weight cannot have requires_grad=True")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"vocab_parallel_cross_entropy: ignore_index must be an int, "
                        f"got {ignore_index!r}")
    if not label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    check_chunk_sizes(chunk_size, vocab_chunk_size)
    shard = W.shape[0]
    plan = ChunkPlan(
        num_rows=n, num_classes=shard,
        chunk_size=chunk_size if chunk_size is not None else auto_chunk_size(n, f, shard),
        vocab_chunk_size=vocab_chunk_size if vocab_chunk_size is not None else max(shard, 1))
    settings = _Settings(reduction, ignore_index, max(float(label_smoothing), 0.0), plan,
                         layout=None)
    return settings, target.long()
