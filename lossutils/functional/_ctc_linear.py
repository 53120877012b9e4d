r"""CTC's two recursions in probability space, for inputs where no probability underflows.

The log-space recursions (:mod:`._ctc_lattice`) spend four operations per frame on each
recursion: ``logaddexp`` is needed because :math:`\alpha_t(s)` may be far below the
smallest float. When it is not, the same sums can be taken of the probabilities
themselves,

.. math::
    \bar\alpha_t(s) = \alpha_{t-1}(s) + \alpha_{t-1}(s-1) + [\text{skip}]\,\alpha_{t-1}(s-2),
    \qquad \alpha_t(s) = y^t_{l'_s}\, \bar\alpha_t(s),

a three-term weighted sum per position, which one batched matrix product computes for a
whole row (each position's window of three predecessors times its weights), plus one
product with the emissions: two operations per frame instead of the log-space loop's
four (on 8 sequences of 10 frames, forward and backward take about half the time).

**When it is exact.** Every quantity here is a sum of products of at most :math:`T`
emission probabilities :math:`y \ge e^{\min \log y}`, over at most :math:`3^T` alignments
(:math:`y \le e^{\max \log y}`). :func:`fits` takes this route only when
:math:`T \min \log y \ge -B` and :math:`T(\max(\max \log y, 0) + \log 3) \le B`, with
:math:`B` = 85 for float32 and 700 for float64 (:math:`e^{-87.3}` and :math:`e^{-708}`
are the smallest normal numbers): then nothing that the loss or its gradient reads can
underflow or overflow, and the sums carry the same relative rounding as torch's log-space
kernel. Any :math:`-\infty` or nan, a long sequence or a very peaked distribution takes
the log-space route.

**Layout.** The sequences' extended labels :math:`l'` lie side by side in one row of
:math:`W = \sum_b (2L_b + 1)` slots, with no gaps: each slot has three weights
:math:`(K, S, 1)` for its predecessors :math:`(s-2, s-1, s)`, :math:`S = 0` on a
sequence's first slot (nothing steps in from the sequence before) and :math:`K = 1`
where a skip may land (a label unlike the label before it). The backward recursion
reads the successors :math:`(s, s+1, s+2)` with the weights :math:`(1, S_{s+1}, K_{s+2})`,
the same numbers read with another stride. Defined in
:doc:`/chapters/04_2_likelihoods_and_sequences`.
"""

from __future__ import annotations

import math
from operator import ne
from typing import NamedTuple

import torch
from torch import Tensor

from .._exp import exp, exp_
from .._lists import tensor_of

BOUND = {torch.float32: 85.0, torch.float64: 700.0}
LOG3 = math.log(3.0)
class Plan(NamedTuple):
    """The lattice as Python values, read once from the targets and lengths."""

    width: int  # W, the slots of all sequences
    frames: list[int]  # each sequence's input length
    longest: int  # the most frames: how long the recursions run
    # 0s and 1s, one byte each (converted in one op, :meth:`Tensors.of`): (K, S, 1) per
    # slot and two slots of zeros; alpha_{-1} (two zeros, then 1 on each first slot); per
    # frame where sequences end, 1 on their last two slots
    weights: bytearray
    # emission (per slot: its index into a frame's N * C log-probabilities, then two
    # pads), sample (per slot: its sequence), reads (the two terms of each sequence's
    # p(l|x), where they are: alpha's last row, after two zeros, or flat (T, W + 2) at
    # frame T_b - 1; an empty target's second term reads a zero), and each N max(L_b, 1)
    ints: list[int]
    ends: list[int]  # the frames where sequences end, from the last
    spans: list[tuple[int, int]]  # each sequence's slots
    impossible: list[int]  # the sequences with too few frames for their labels

    @property
    def uniform(self) -> bool:
        """Every sequence has all ``longest`` frames."""
        return min(self.frames) == self.longest


def fits(log_probs: Tensor, longest: int) -> bool:
    r"""Whether the probability-space route is exact for ``log_probs`` (module docstring):
    one read of the smallest and largest log-probability. Log-probabilities of ``C``
    classes have a minimum at most :math:`-\log C`, so longer inputs are not read."""
    bound = BOUND.get(log_probs.dtype)
    if bound is None or longest * math.log(max(log_probs.size(-1), 1)) > bound:
        return False
    lo, hi = (v.item() for v in torch.aminmax(log_probs.detach()))  # no graph to record
    return longest * lo >= -bound and longest * (max(hi, 0.0) + LOG3) <= bound


def plan(labels: list[list[int]], frames: list[int], blank: int, classes: int) -> Plan:
    """The :class:`Plan` of the label lists; every sequence has at least one frame."""
    longest = max(frames)
    uniform = min(frames) == longest
    lengths = [len(seq) for seq in labels]
    width = 2 * sum(lengths) + len(labels)
    padded = width + 2  # a row of the emissions and of alpha-bar (see alpha)
    weights = bytearray(5 * width + 8 + width * len(set(frames)))  # zeros: the 1s are set
    emission, sample, spans, impossible, reads, by_frame, first = [], [], [], [], [], {}, 0
    for b, seq in enumerate(labels):
        m, base, frame = lengths[b], b * classes, frames[b]
        n = 2 * m + 1
        extended = [base + blank] * n
        extended[1::2] = map(base.__add__, seq)
        emission += extended
        sample += [b] * n
        # (K, S, 1) per slot: each steps in from the one before (not the first), a skip
        # lands on a label unlike the label before it
        at = 3 * first
        weights[at + 2:at + 3 * n:3] = b"\1" * n
        weights[at + 4:at + 3 * n:3] = b"\1" * (n - 1)
        skips = bytes(map(ne, seq[1:], seq))
        weights[at + 9:at + 6 * m:6] = skips
        weights[3 * width + 8 + first] = 1  # alpha_{-1}: the first slot
        if frame < 2 * m - 1 - sum(skips):  # a blank between repeats: no alignment fits
            impossible.append(b)
        last = first + n - 1
        by_frame.setdefault(frame - 1, []).extend((last, last - 1) if m else (last,))
        # (an empty target's second term: one of alpha's leading zeros, or a pad column of
        # the first row of alpha-bar, which stays 0)
        row = 2 if uniform else (frame - 1) * padded
        reads += (row + last, row + last - 1) if m else (row + last, 0 if uniform else width)
        spans.append((first, first + n))
        first += n
    ends = sorted(by_frame, reverse=True)
    for k, t in enumerate(ends):
        for e in by_frame[t]:
            weights[(4 + k) * width + 8 + e] = 1
    del weights[(4 + len(ends)) * width + 8:]
    emission += emission[-1:] * 2  # any class: the pad is read only with weight 0
    n_seq = len(labels)
    return Plan(width, frames, longest, weights,
                emission + sample + reads + [n_seq * (m or 1) for m in lengths],
                ends, spans, impossible)


class Tensors(NamedTuple):
    """The plan's tensors: ``floats`` (:attr:`Plan.weights` in the loss's dtype, freed before
    the backward allocates the gradient) and ``ints`` (int32, kept for the last
    ``index_add_``)."""

    floats: Tensor
    ints: Tensor

    @staticmethod
    def of(p: Plan, dtype: torch.dtype, device) -> Tensors:
        ones = torch.frombuffer(p.weights, dtype=torch.uint8)  # the bytes themselves
        return Tensors(ones.to(device, dtype), tensor_of(p.ints, torch.int32, device))

    def taps(self, p: Plan, forward: bool) -> Tensor:
        """``(W, 3, 1)``: the weights of each slot's predecessors :math:`(s-2, s-1, s)`,
        :math:`(K_s, S_s, 1)`, or of its successors :math:`(s, s+1, s+2)`,
        :math:`(1, S_{s+1}, K_{s+2})`: the same numbers with another stride."""
        if forward:
            return self.floats.as_strided((p.width, 3, 1), (3, 1, 1))
        return self.floats.as_strided((p.width, 3, 1), (3, 2, 1), 2)

    def start(self, p: Plan) -> Tensor:
        r""":math:`\alpha_{-1}`, after two zeros: 1 on each sequence's first slot. The
        forward recursion runs in it (nothing else reads it, and a backward that needs the
        forward again makes new tensors)."""
        at = 3 * p.width + 6
        return self.floats[at:at + p.width + 2]

    def injections(self, p: Plan) -> dict[int, Tensor]:
        """Frame -> ``(W, 1, 1)``: 1 on the last two slots of the sequences ending there."""
        at, w = 4 * p.width + 8, p.width
        return {t: self.floats[at + k * w:at + (k + 1) * w].view(w, 1, 1)
                for k, t in enumerate(p.ends)}

    def divisor(self, p: Plan) -> Tensor:
        """Each sequence's target length, at least 1, times the batch size (int32): what
        ``'mean'`` divides its loss by (the batch mean of each loss over its length)."""
        n = len(p.frames)
        at = 2 * p.width + 2 + 2 * n
        return self.ints[at:at + n]

    def emission(self, p: Plan, padded: bool = False) -> Tensor:
        """Each slot's index into a frame's N * C log-probabilities (``padded``: and two
        more, the columns that pad a row of the emissions)."""
        return self.ints[:p.width + 2 * padded]

    def sample(self, p: Plan) -> Tensor:
        """Each slot's sequence."""
        return self.ints[p.width + 2:2 * p.width + 2]

    def reads(self, p: Plan) -> Tensor:
        """Where the two terms of each sequence's :math:`p(l \\mid x)` are (:attr:`Plan.ints`)."""
        at = 2 * p.width + 2
        return self.ints[at:at + 2 * len(p.frames)]


def alpha(log_probs: Tensor, tensors: Tensors, p: Plan, keep: bool) -> tuple:
    r"""The forward pass: :math:`p(l \mid x)` per sequence, the rows :math:`\bar\alpha_t`
    (``(T, W)``, all frames if ``keep`` or the lengths differ), the emissions
    :math:`y^t_{l'_s}` ``(T, W)``, and both as per-frame ``(W, 1, 1)`` views (which
    the backward reuses).

    Both tables are views of ``(T, W + 2)`` buffers: the backward recursion writes each
    frame's :math:`\beta_t` over its emissions and reads it back, as the window of each
    slot's three successors, with two more columns past the last slot (read with weight
    0, :meth:`Tensors.taps`)."""
    t_all, w = p.longest, p.width
    rows = log_probs.view(log_probs.size(0), -1)
    em = torch.index_select(rows if rows.size(0) == t_all else rows[:t_all], 1,
                            tensors.emission(p, padded=True))
    exp_(em)
    row = tensors.start(p)  # alpha_{t-1}, after two zeros
    # (W, 1, 3): alpha(s-2), alpha(s-1), alpha(s); and alpha itself
    windows = row.as_strided((w, 1, 3), (1, 3, 1))
    alpha_row = row.as_strided((w, 1, 1), (1, 1, 1), row.storage_offset() + 2)
    taps = tensors.taps(p, forward=True)
    keep = keep or not p.uniform
    bars = log_probs.new_zeros(t_all if keep else 1, w + 2)  # (its pads read as 0)
    outs, ems = _frames(bars, w).unbind(0), _frames(em, w).unbind(0)
    for t in range(t_all):
        bar = outs[t if keep else 0]
        torch.bmm(windows, taps, out=bar)
        torch.mul(bar, ems[t], out=alpha_row)
    reads = tensors.reads(p)
    if p.uniform:
        terms = row.index_select(0, reads)
    else:
        terms = bars.view(-1).index_select(0, reads).mul_(em.view(-1).index_select(0, reads))
    likelihood = terms.view(-1, 2).sum(1)
    return likelihood, bars[:, :w], em[:, :w], outs, ems


def _frames(table: Tensor, w: int) -> Tensor:
    """``(T, W, 1, 1)``: each frame's first ``w`` columns of a ``(T, W + 2)`` table."""
    return table.as_strided((table.size(0), w, 1, 1), (w + 2, 1, 1, 1))


def gradient(log_probs: Tensor, state: list, p: Plan) -> Tensor:
    r""":math:`y^t_c - \sum_{s: l'_s = c} \gamma_t(s)`, ``(T, N, C)``, before the incoming
    gradient's scale. ``state`` is ``[floats, ints]`` and what :func:`alpha` returned,
    emptied here: all but :math:`\gamma` (in the rows of :math:`\bar\alpha`) and ``ints``
    are freed before the gradient is allocated. Frames past a sequence's length, and
    impossible sequences, are the caller's."""
    gamma, emission = _occupations(state, p)
    grad = exp(log_probs)
    rows = grad.view(grad.size(0), -1)
    (rows if rows.size(0) == p.longest else rows[:p.longest]).index_add_(
        1, emission, gamma, alpha=-1)
    return grad


def _occupations(state: list, p: Plan) -> tuple[Tensor, Tensor]:
    r""":math:`\gamma_t(s) = \bar\alpha_t(s) \beta_t(s) / p(l \mid x)` ``(T, W)``, in the
    rows of :math:`\bar\alpha`, and the emission index (a view of ``ints``).

    The backward variables :math:`\beta_t = y^t \cdot r_t`, with
    :math:`r_t(s) = \beta_{t+1}(s) + S_{s+1}\beta_{t+1}(s+1) + K_{s+2}\beta_{t+1}(s+2)`
    and :math:`r = 1` on a sequence's last two slots at its last frame, run from the last
    frame, each written over its frame's emissions (read by nothing after it), from where
    the next frame reads it; then one product with :math:`\bar\alpha` for all frames."""
    floats, ints, likelihood, bars, em, _, ems = state
    state.clear()
    tensors, t_all, w = Tensors(floats, ints), p.longest, p.width
    if not p.uniform:
        for (first, stop), frames in zip(p.spans, p.frames, strict=True):
            if frames < t_all:  # nothing of this sequence after its last frame
                em[frames:, first:stop].zero_()
    # (T, W, 1, 3): at frame t, beta_t(s), beta_t(s+1), beta_t(s+2), the last two past W
    # in the pad columns
    windows = em.as_strided((t_all, w, 1, 3), (w + 2, 1, 3, 1)).unbind(0)
    taps, r = tensors.taps(p, forward=False), em.new_empty(w, 1, 1)
    injections = tensors.injections(p)
    ems[t_all - 1].mul_(injections[t_all - 1])
    for t in range(t_all - 2, -1, -1):
        torch.bmm(windows[t + 1], taps, out=r)
        if t in injections:
            r.add_(injections[t])
        ems[t].mul_(r)
    bars.mul_(em).mul_(likelihood.reciprocal().index_select(0, tensors.sample(p)))
    return bars, tensors.emission(p)
