r"""The passes over one chunk of rows of :mod:`lossutils.functional.linear_cross_entropy`.

A :class:`ChunkPlan` cuts the ``N x C`` logits into chunks of rows and, within
a chunk, blocks of classes; a :class:`RowChunk` is all that one chunk's pass
reads. :func:`forward_chunk` runs the online log-sum-exp over the blocks
(:func:`online_lse`) and, when the reduction's row weights are known, adds
the chunk's gradient while the logits are at hand; :func:`gradient_pass`
recomputes each block of logits from the saved log-sum-exp and adds its
gradient. Only one ``chunk_size x vocab_chunk_size`` block of logits ever
exists, in one scratch buffer (two with a soft-cap).

The gradient w.r.t. the logits of row :math:`n` is
:math:`g_n = \kappa_n q_n - r_n p_n`, times the soft-cap's slope
:math:`1 - \tanh^2(u/c)` where there is one: :math:`q_n` the model's softmax,
:math:`p_n` the target row, :math:`r_n` the reduction's weight of the row's
cross-entropy, and :math:`\kappa_n = r_n P_n + 2 \lambda \rho_n \mathrm{lse}_n`
its coefficient on :math:`q_n` (:math:`P_n = \sum_c p_{nc}`; :math:`\rho_n` is
the reduction's weight of the row's z-loss :math:`\lambda\,\mathrm{lse}_n^2`).

Defined in :doc:`/chapters/07_llm_scale`; used on each rank's shard by
:mod:`lossutils.distributed.vocab_parallel`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._filtering import FILTER_BLOCK, kept_sub_blocks, runs
from ._online_lse import OnlineLogSumExp
from ._target_rows import ClassIndexTargets, TargetRows


class ChunkPlan(NamedTuple):
    """How the ``N x C`` logits are cut: ``chunk_size`` rows at a time and, within a chunk,
    ``vocab_chunk_size`` classes (a block) at a time."""

    num_rows: int
    num_classes: int
    chunk_size: int
    vocab_chunk_size: int

    def row_chunks(self) -> list[slice]:
        step = self.chunk_size
        return [slice(a, min(a + step, self.num_rows)) for a in range(0, self.num_rows, step)]

    def blocks(self) -> list[tuple[int, int]]:
        """The class ranges ``(lo, hi)`` of the blocks (one empty block when there are none)."""
        c, step = self.num_classes, self.vocab_chunk_size
        return [(lo, min(lo + step, c)) for lo in range(0, c, step)] or [(0, 0)]

    def buffer(self, like: Tensor) -> Tensor:
        """The one scratch buffer that holds a chunk's block of logits, for the whole loop: a
        fresh block per chunk would leave freed blocks cached by the C allocator."""
        rows = min(self.chunk_size, self.num_rows)
        return like.new_empty(rows * min(self.vocab_chunk_size, self.num_classes))


class Extras(NamedTuple):
    """lossutils' options beyond torch's: the soft-cap :math:`c` of the logits, the z-loss
    scale :math:`\\lambda` and the filter threshold :math:`\\epsilon` (None: off)."""

    softcap: float | None = None
    lse_square_scale: float = 0.0
    filter_eps: float | None = None


class Gradients(NamedTuple):
    """Accumulators of the gradients w.r.t. the Function's tensors (None: not wanted)."""

    input: Tensor | None = None
    linear_weight: Tensor | None = None
    linear_bias: Tensor | None = None
    target: Tensor | None = None  # probability targets only
    weight: Tensor | None = None  # probability targets only

    def at(self, j: int | None) -> Gradients:
        """The accumulators of output position ``j`` (views)."""
        return self._replace(linear_weight=at_position(self.linear_weight, j),
                             linear_bias=at_position(self.linear_bias, j),
                             target=at_position(self.target, j, 2))


class RowChunk(NamedTuple):
    """One chunk of rows at one output position: all a pass over its vocabulary reads."""

    rows: slice
    x: Tensor  # the chunk's inputs, (rows, F)
    W: Tensor  # the position's classifier, (C, F)
    b: Tensor | None  # (C)
    targets: TargetRows  # the chunk's rows of targets
    extras: Extras = Extras()
    # float16/bfloat16 where torch's composition rounds the logits and their gradient (the
    # dtype of linear's output); None where it does not
    rounding: torch.dtype | None = None

    def logits(self, lo: int, hi: int, buffer: Tensor, slope: Tensor | None = None) -> Tensor:
        """``x @ W[lo:hi].T + b[lo:hi]``: one block of logits (``addmm``, as ``F.linear``
        does), written into the front of ``buffer``. With a soft-cap :math:`c` the block is
        :math:`c \\tanh(u / c)`, and ``slope`` receives :math:`\\tanh(u / c)`."""
        out = buffer[: self.x.shape[0] * (hi - lo)].view(self.x.shape[0], hi - lo)
        if self.b is None:
            torch.mm(self.x, self.W[lo:hi].T, out=out)
        else:
            torch.addmm(self.b[lo:hi], self.x, self.W[lo:hi].T, out=out)
        self.round(out)
        cap = self.extras.softcap
        if cap is not None:
            tanh = slope[: out.numel()].view(out.shape)
            torch.tanh(out.div_(cap), out=tanh)
            torch.mul(tanh, cap, out=out)
        return out

    def round(self, t: Tensor) -> None:
        """``t`` rounded to :attr:`rounding` in place (kept in its own dtype)."""
        if self.rounding is not None:
            t.copy_(t.to(self.rounding))

    def cap_slope(self, dz: Tensor, slope: Tensor | None) -> None:
        """``dz *= 1 - tanh^2``: the soft-cap's derivative, in place (``slope`` is consumed)."""
        if self.extras.softcap is not None:
            tanh = slope[: dz.numel()].view(dz.shape)
            dz.mul_(tanh.mul_(tanh).neg_().add_(1))


def at_position(t: Tensor | None, j: int | None, dim: int = 1) -> Tensor | None:
    """Output position ``j`` of ``t`` along ``dim``; ``t`` itself when there are no positions
    (``j is None``)."""
    return t if t is None or j is None else t.select(dim, j)


def online_lse(chunk: RowChunk, plan: ChunkPlan, buffer: Tensor, slope: Tensor | None = None):
    r"""One pass over the vocabulary blocks: the online log-sum-exp of the chunk's logits
    (:class:`OnlineLogSumExp`), with :math:`T = \sum_c p_c (z_c - m)` and :math:`P = \sum_c p_c`
    alongside. Returns its running sums and, when there is a single block, that block's
    ``exp(z - m)`` (which the gradient reuses)."""
    lse, blocks = OnlineLogSumExp(), plan.blocks()
    for lo, hi in blocks:
        z = lse.rebase(chunk.logits(lo, hi, buffer, slope))  # z - m, in place: exponents <= 0
        exp_z = lse.add(z, *chunk.targets.dot(z, lo, hi))  # exponentiates z in place
    return lse, (exp_z if len(blocks) == 1 else None)


def add_block_gradient(chunk: RowChunk, dz: Tensor, lo: int, hi: int,
                       grads: Gradients) -> None:
    """Chain one block of ``dL/dz`` through ``z = x W^T + b`` into the accumulators."""
    if grads.input is not None:
        grads.input[chunk.rows].addmm_(dz, chunk.W[lo:hi])
    if grads.linear_weight is not None:
        grads.linear_weight[lo:hi].addmm_(dz.T, chunk.x)
    if grads.linear_bias is not None:
        grads.linear_bias[lo:hi] += dz.sum(0)


def add_filtered_gradient(chunk: RowChunk, dz: Tensor, lo: int, hi: int, grads: Gradients,
                          keep: list[bool], scale: Tensor, target_slope: Tensor | None) -> None:
    """:func:`add_block_gradient` on the kept sub-blocks only (:mod:`._filtering`); on the
    skipped ones, the target's part :math:`-r_n p_n` alone: its one-hot entries by index
    (times ``target_slope``, the soft-cap's slope at each row's target, where there is one),
    the label smoothing's part as a rank-one update (no soft-cap then)."""
    width = hi - lo
    for a, b in runs(keep, width):
        add_block_gradient(chunk, dz[:, a:b], lo + a, lo + b, grads)
    skipped = runs(keep, width, wanted=False)
    if not skipped:
        return
    targets: ClassIndexTargets = chunk.targets
    inside, column = targets.in_block(lo, hi)
    column = column.squeeze(1)
    hit = inside & ~torch.tensor(keep)[column // FILTER_BLOCK]
    value = torch.where(hit, -scale * targets.one_hot, 0).unsqueeze(1)
    if target_slope is not None:
        value = value * target_slope
    index = lo + column
    if grads.input is not None:
        grads.input[chunk.rows] += value * chunk.W[index]
    if grads.linear_weight is not None:
        grads.linear_weight.index_add_(0, index, value * chunk.x)
    if grads.linear_bias is not None:
        grads.linear_bias.index_add_(0, index, value.squeeze(1))
    if targets.eps > 0:  # -r_n u_n w_c on every skipped column: a rank-one update
        spread = scale * targets.uniform
        for a, b in skipped:
            w, W = targets.block_weight(lo + a, lo + b), chunk.W[lo + a:lo + b]
            if grads.input is not None:
                grads.input[chunk.rows].addr_(spread, W.sum(0) if w is None else w @ W,
                                              alpha=-1)
            w = W.new_ones(b - a) if w is None else w
            if grads.linear_weight is not None:
                grads.linear_weight[lo + a:lo + b].addr_(w, spread @ chunk.x, alpha=-1)
            if grads.linear_bias is not None:
                grads.linear_bias[lo + a:lo + b] -= w * spread.sum()


def add_target_gradients(chunk: RowChunk, log_q: Tensor, scale: Tensor, lo: int, hi: int,
                         grads: Gradients) -> None:
    r"""Probability targets only (the loss :math:`-\sum_c w_c t'_{nc} \log q_{nc}` is
    differentiable in them and in the class weight):
    :math:`\partial l_n / \partial t_{nc} = -(1-\varepsilon) w_c \log q_{nc}` and
    :math:`\partial l_n / \partial w_c = -t'_{nc} \log q_{nc}`, times :math:`r_n`."""
    targets, r = chunk.targets, scale.unsqueeze(1)
    if grads.target is not None:
        w = targets.weight[lo:hi] if targets.weight is not None else 1.0
        grads.target[chunk.rows, lo:hi] = -(1 - targets.eps) * r * w * log_q
    if grads.weight is not None:
        grads.weight[lo:hi] -= (r * targets.smoothed(lo, hi) * log_q).sum(0)


def _chain(chunk: RowChunk, dz: Tensor, lo: int, hi: int, grads: Gradients, scale: Tensor,
           slope: Tensor | None, keep: list[bool] | None) -> None:
    """``dz`` (the block's :math:`\\kappa q`) minus :math:`r p`, times the soft-cap's slope,
    chained into the accumulators (filtered when ``keep`` is given)."""
    chunk.targets.subtract(dz, scale, lo, hi)
    target_slope = None
    if keep is not None and slope is not None:  # read before cap_slope consumes the tanh
        _, column = chunk.targets.in_block(lo, hi)
        tanh = slope[: dz.numel()].view(dz.shape).gather(1, column)
        target_slope = 1 - tanh * tanh
    chunk.cap_slope(dz, slope)
    chunk.round(dz)
    if keep is None:
        add_block_gradient(chunk, dz, lo, hi, grads)
    else:
        add_filtered_gradient(chunk, dz, lo, hi, grads, keep, scale, target_slope)


def gradient_pass(chunk: RowChunk, plan: ChunkPlan, buffer: Tensor, lse: Tensor,
                  coefficient: Tensor, scale: Tensor, grads: Gradients,
                  slope: Tensor | None = None) -> None:
    r"""Recompute each block of logits and add its gradient:
    :math:`g = \kappa q - r p` with :math:`q = e^{z - \mathrm{lse}}` (``coefficient`` is
    :math:`\kappa`, ``scale`` is :math:`r`)."""
    eps = chunk.extras.filter_eps
    for lo, hi in plan.blocks():
        log_q = chunk.logits(lo, hi, buffer, slope).sub_(lse.unsqueeze(1))
        if grads.target is not None or grads.weight is not None:
            add_target_gradients(chunk, log_q, scale, lo, hi, grads)
        q = log_q.exp_()
        keep = None if eps is None else kept_sub_blocks(q, q.new_full((1,), eps).expand(len(q)))
        dz = q.mul_(coefficient.unsqueeze(1))
        _chain(chunk, dz, lo, hi, grads, scale, slope, keep)


def forward_chunk(chunk: RowChunk, plan: ChunkPlan, buffer: Tensor, scale: Tensor,
                  z_scale: Tensor | None, grads: Gradients | None,
                  slope: Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""The chunk's cross-entropies :math:`l_n = P_n \log s_n - T_n` and :math:`\mathrm{lse}_n`;
    with ``grads``, also its gradient (``scale`` :math:`r_n`, ``z_scale`` :math:`\rho_n`),
    added while the logits are at hand (with one block, the pass's ``exp(z - m)`` is
    reused: nothing is computed twice)."""
    lse, exp_z = online_lse(chunk, plan, buffer, slope)
    loss, row_lse = lse.loss_and_lse()
    if grads is not None:
        coefficient = scale * lse.target_mass
        if z_scale is not None:  # d(lambda lse^2)/dz = 2 lambda lse q
            coefficient = coefficient + 2 * chunk.extras.lse_square_scale * z_scale * row_lse
        if exp_z is not None:  # one block: q = exp(z - m) / s is already here
            lo, hi = plan.blocks()[0]
            eps = chunk.extras.filter_eps
            keep = None if eps is None else kept_sub_blocks(exp_z, eps * lse.sum_exp)
            dz = exp_z.mul_((coefficient / lse.sum_exp).unsqueeze(1))
            _chain(chunk, dz, lo, hi, grads, scale, slope, keep)
        else:
            gradient_pass(chunk, plan, buffer, row_lse, coefficient, scale, grads, slope)
    return chunk.targets.mask(loss), row_lse
