"""The passes over one chunk of rows of :mod:`lossutils.functional.linear_cross_entropy`.

A :class:`ChunkPlan` cuts the ``N x C`` logits into chunks of rows and, within
a chunk, blocks of classes; a :class:`RowChunk` is all that one chunk's pass
reads. :func:`forward_chunk` runs the online log-sum-exp over the blocks
(:func:`online_lse`) and, when the reduction's row weights are known, adds
the chunk's gradient while the logits are at hand; :func:`gradient_pass`
recomputes each block of logits from the saved log-sum-exp and adds its
gradient. Only one ``chunk_size x vocab_chunk_size`` block of logits ever
exists, in one scratch buffer.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._online_lse import OnlineLogSumExp
from ._target_rows import TargetRows


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

    def logits(self, lo: int, hi: int, buffer: Tensor) -> Tensor:
        """``x @ W[lo:hi].T + b[lo:hi]``: one block of logits (``addmm``, as ``F.linear``
        does), written into the front of ``buffer``."""
        out = buffer[: self.x.shape[0] * (hi - lo)].view(self.x.shape[0], hi - lo)
        if self.b is None:
            return torch.mm(self.x, self.W[lo:hi].T, out=out)
        return torch.addmm(self.b[lo:hi], self.x, self.W[lo:hi].T, out=out)


def at_position(t: Tensor | None, j: int | None, dim: int = 1) -> Tensor | None:
    """Output position ``j`` of ``t`` along ``dim``; ``t`` itself when there are no positions
    (``j is None``)."""
    return t if t is None or j is None else t.select(dim, j)


def online_lse(chunk: RowChunk, plan: ChunkPlan, buffer: Tensor):
    r"""One pass over the vocabulary blocks: the online log-sum-exp of the chunk's logits
    (:class:`OnlineLogSumExp`), with :math:`T = \sum_c q_c (z_c - m)` and :math:`Q = \sum_c q_c`
    alongside. Returns its running sums and, when there is a single block, that block's
    ``exp(z - m)`` (which the gradient reuses)."""
    lse, blocks = OnlineLogSumExp(), plan.blocks()
    for lo, hi in blocks:
        z = lse.rebase(chunk.logits(lo, hi, buffer))  # z - m, in place: every exponent <= 0
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


def add_target_gradients(chunk: RowChunk, log_p: Tensor, scale: Tensor, lo: int, hi: int,
                          grads: Gradients) -> None:
    r"""Probability targets only (the loss :math:`-\sum_c w_c t'_{nc} \log p_{nc}` is
    differentiable in them and in the class weight):
    :math:`\partial l_n / \partial t_{nc} = -(1-\varepsilon) w_c \log p_{nc}` and
    :math:`\partial l_n / \partial w_c = -t'_{nc} \log p_{nc}`, times :math:`r_n`."""
    targets, r = chunk.targets, scale.unsqueeze(1)
    if grads.target is not None:
        w = targets.weight[lo:hi] if targets.weight is not None else 1.0
        grads.target[chunk.rows, lo:hi] = -(1 - targets.eps) * r * w * log_p
    if grads.weight is not None:
        grads.weight[lo:hi] -= (r * targets.smoothed(lo, hi) * log_p).sum(0)


def gradient_pass(chunk: RowChunk, plan: ChunkPlan, buffer: Tensor, lse: Tensor,
                   mass: Tensor, scale: Tensor, grads: Gradients) -> None:
    r"""Recompute each block of logits and add its gradient:
    :math:`g = r (Q p - q)` with :math:`p = e^{z - \mathrm{lse}}` (``mass`` is :math:`Q`,
    ``scale`` is :math:`r`)."""
    for lo, hi in plan.blocks():
        log_p = chunk.logits(lo, hi, buffer).sub_(lse.unsqueeze(1))
        if grads.target is not None or grads.weight is not None:
            add_target_gradients(chunk, log_p, scale, lo, hi, grads)
        dz = log_p.exp_().mul_((scale * mass).unsqueeze(1))
        chunk.targets.subtract(dz, scale, lo, hi)
        add_block_gradient(chunk, dz, lo, hi, grads)


def forward_chunk(chunk: RowChunk, plan: ChunkPlan, buffer: Tensor, scale: Tensor,
                   grads: Gradients | None) -> tuple[Tensor, Tensor]:
    r"""The chunk's losses :math:`l_n = Q_n \log s_n - T_n` and :math:`\mathrm{lse}_n`; with
    ``grads``, also its gradient :math:`r_n \partial l_n / \partial(\cdot)`, added while the
    logits are at hand (with one block, the pass's ``exp(z - m)`` is reused: nothing is
    computed twice)."""
    lse, exp_z = online_lse(chunk, plan, buffer)
    loss, row_lse = lse.loss_and_lse()
    if grads is not None:
        if exp_z is not None:  # one block: p = exp(z - m) / s is already here
            lo, hi = plan.blocks()[0]
            dz = exp_z.mul_((scale * lse.target_mass / lse.sum_exp).unsqueeze(1))
            chunk.targets.subtract(dz, scale, lo, hi)
            add_block_gradient(chunk, dz, lo, hi, grads)
        else:
            gradient_pass(chunk, plan, buffer, row_lse, lse.target_mass, scale, grads)
    return chunk.targets.mask(loss), row_lse
