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
from typing import NamedTuple

import torch
from torch import Tensor

from .._exp import log2e_like
from .._lists import tensor_of

BOUND = {torch.float32: 85.0, torch.float64: 700.0}
LOG3 = math.log(3.0)
class Plan(NamedTuple):
    """The lattice as Python values, read once from the targets and lengths."""

    width: int  # W, the slots of all sequences
    frames: list[int]  # each sequence's input length
    longest: int  # the most frames: how long the recursions run
    # (K, S, 1) per slot and two slots of zeros; alpha_{-1} (two zeros, then 1 on each
    # first slot); per frame where sequences end, 1 on their last two slots; each
    # max(L_b, 1); each N max(L_b, 1)
    floats: list[float]
    # emission (per slot: its index into a frame's N * C log-probabilities), sample (per
    # slot: its sequence), owner and reads (per term of p(l|x): its sequence, and where it
    # is: alpha's last row, after two zeros, or flat (T, W) at frame T_b - 1)
    ints: list[int]
    terms: int  # how many terms p(l|x) has: two per sequence, one for an empty target
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
    lo, hi = (v.item() for v in torch.aminmax(log_probs))
    return longest * lo >= -bound and longest * (max(hi, 0.0) + LOG3) <= bound


def plan(labels: list[list[int]], frames: list[int], blank: int, classes: int) -> Plan:
    """The :class:`Plan` of the label lists; every sequence has at least one frame."""
    longest = max(frames)
    uniform = min(frames) == longest
    lengths = [len(seq) for seq in labels]
    width = 2 * sum(lengths) + len(labels)
    emission, taps, start, sample, spans, impossible = [], [], [0.0, 0.0], [], [], []
    owner, reads, by_frame, first = [], [], {}, 0
    for b, seq in enumerate(labels):
        m, base, frame = lengths[b], b * classes, frames[b]
        n = 2 * m + 1
        extended = [base + blank] * n
        extended[1::2] = [base + label for label in seq]
        emission += extended
        weights = [0.0, 1.0, 1.0] * n  # (K, S, 1): each slot steps in from the one before
        weights[1] = 0.0  # (not the first), a skip lands on a label unlike the one before
        skips = [k for k in range(1, m) if seq[k] != seq[k - 1]]
        for k in skips:
            weights[6 * k + 3] = 1.0
        taps += weights
        if frame < 2 * m - 1 - len(skips):  # a blank between repeats: no alignment fits
            impossible.append(b)
        start += [1.0] + [0.0] * (n - 1)
        sample += [b] * n
        last = first + n - 1
        ends = (last, last - 1) if m else (last,)
        by_frame.setdefault(frame - 1, []).extend(ends)
        owner += [b] * len(ends)
        reads += [e + 2 for e in ends] if uniform else [(frame - 1) * width + e for e in ends]
        spans.append((first, first + n))
        first += n
    floats = taps + [0.0] * 6 + start
    ends = sorted(by_frame, reverse=True)
    for t in ends:
        row = [0.0] * width
        for e in by_frame[t]:
            row[e] = 1.0
        floats += row
    per_label = [float(m or 1) for m in lengths]
    floats += per_label + [len(labels) * d for d in per_label]
    return Plan(width, frames, longest, floats, emission + sample + owner + reads, len(owner),
                ends, spans, impossible)


class Tensors(NamedTuple):
    """The plan's tensors: ``floats`` (freed before the backward allocates the gradient)
    and ``ints`` (int32, kept for the last ``index_add_``)."""

    floats: Tensor
    ints: Tensor

    @staticmethod
    def of(p: Plan, dtype: torch.dtype, device) -> Tensors:
        return Tensors(tensor_of(p.floats, dtype, device), tensor_of(p.ints, torch.int32, device))

    def taps(self, p: Plan, forward: bool) -> Tensor:
        """``(W, 3, 1)``: the weights of each slot's predecessors :math:`(s-2, s-1, s)`,
        :math:`(K_s, S_s, 1)`, or of its successors :math:`(s, s+1, s+2)`,
        :math:`(1, S_{s+1}, K_{s+2})`: the same numbers with another stride."""
        if forward:
            return self.floats.as_strided((p.width, 3, 1), (3, 1, 1))
        return self.floats.as_strided((p.width, 3, 1), (3, 2, 1), 2)

    def start(self, p: Plan) -> Tensor:
        r""":math:`\alpha_{-1}`, after two zeros: 1 on each sequence's first slot."""
        at = 3 * p.width + 6
        return self.floats[at:at + p.width + 2]

    def injections(self, p: Plan) -> dict[int, Tensor]:
        """Frame -> ``(W, 1, 1)``: 1 on the last two slots of the sequences ending there."""
        at, w = 4 * p.width + 8, p.width
        return {t: self.floats[at + k * w:at + (k + 1) * w].view(w, 1, 1)
                for k, t in enumerate(p.ends)}

    def divisor(self, p: Plan, mean: bool) -> Tensor:
        """Each sequence's target length, at least 1 (``'none'``), times the batch size
        (``'mean'``: the batch mean of each loss over its target length)."""
        at = (4 + len(p.ends)) * p.width + 8 + mean * len(p.frames)
        return self.floats[at:at + len(p.frames)]

    def emission(self, p: Plan) -> Tensor:
        return self.ints[:p.width]


def alpha(log_probs: Tensor, tensors: Tensors, p: Plan, keep: bool) -> tuple:
    r"""The forward pass: :math:`p(l \mid x)` per sequence, the rows :math:`\bar\alpha_t`
    (``(T, W)``, all frames if ``keep`` or the lengths differ), the emissions
    :math:`y^t_{l'_s}` ``(T, W)``, and both as per-frame ``(W, 1, 1)`` views (which
    the backward reuses)."""
    t_all, w = p.longest, p.width
    rows = log_probs.view(log_probs.size(0), -1)
    em = torch.index_select(rows if rows.size(0) == t_all else rows[:t_all], 1,
                            tensors.emission(p))
    em.mul_(log2e_like(em)).exp2_()  # e^x as 2^(x log2 e): see _ctc_lattice's LOG2E
    row = tensors.start(p).clone()  # alpha_{t-1}, after two zeros
    windows = row.unfold(0, 3, 1).unsqueeze(1)  # (W, 1, 3): alpha(s-2), alpha(s-1), alpha(s)
    taps, alpha_row = tensors.taps(p, forward=True), row[2:].view(w, 1, 1)
    keep = keep or not p.uniform
    bars = log_probs.new_empty(t_all if keep else 1, w, 1, 1)
    outs, ems = bars.unbind(0), em.view(t_all, w, 1, 1).unbind(0)
    for t in range(t_all):
        bar = outs[t if keep else 0]
        torch.bmm(windows, taps, out=bar)
        torch.mul(bar, ems[t], out=alpha_row)
    at = 2 * w + p.terms
    owner, reads = tensors.ints[2 * w:at], tensors.ints[at:at + p.terms]
    if p.uniform:
        terms = row.index_select(0, reads)
    else:
        terms = bars.view(-1).index_select(0, reads).mul_(em.view(-1).index_select(0, reads))
    bars = bars.view(-1, w)
    likelihood = log_probs.new_zeros(len(p.frames)).index_add_(0, owner, terms)
    return likelihood, bars, em, outs, ems


def gradient(log_probs: Tensor, state: list, p: Plan) -> Tensor:
    r""":math:`y^t_c - \sum_{s: l'_s = c} \gamma_t(s)`, ``(T, N, C)``, before the incoming
    gradient's scale. ``state`` is ``[floats, ints]`` and what :func:`alpha` returned,
    emptied here: all but :math:`\gamma` (in the rows of :math:`\bar\alpha`) and ``ints``
    are freed before the gradient is allocated. Frames past a sequence's length, and
    impossible sequences, are the caller's."""
    gamma, emission = _occupations(state, p)
    grad = torch.mul(log_probs, log2e_like(log_probs)).exp2_()
    rows = grad.view(grad.size(0), -1)
    (rows if rows.size(0) == p.longest else rows[:p.longest]).index_add_(
        1, emission, gamma, alpha=-1)
    return grad


def _occupations(state: list, p: Plan) -> tuple[Tensor, Tensor]:
    r""":math:`\gamma_t(s) = \bar\alpha_t(s) \beta_t(s) / p(l \mid x)` ``(T, W)``, in the
    rows of :math:`\bar\alpha`, and the emission index (a view of ``ints``).

    The backward variables :math:`\beta_t = y^t \cdot r_t`, with
    :math:`r_t(s) = \beta_{t+1}(s) + S_{s+1}\beta_{t+1}(s+1) + K_{s+2}\beta_{t+1}(s+2)`
    and :math:`r = 1` on a sequence's last two slots at its last frame, run in one row
    from the last frame; each multiplies its frame's row of :math:`\bar\alpha`."""
    floats, ints, likelihood, bars, em, outs, ems = state
    state.clear()
    tensors, t_all, w = Tensors(floats, ints), p.longest, p.width
    for (first, stop), frames in zip(p.spans, p.frames, strict=True):
        if frames < t_all:  # nothing of this sequence after its last frame
            em[frames:, first:stop].zero_()
    row = em.new_zeros(w + 2)  # beta_{t+1}, then two zeros
    windows = row.unfold(0, 3, 1).unsqueeze(1)  # (W, 1, 3): beta(s), beta(s+1), beta(s+2)
    taps, beta, r = tensors.taps(p, forward=False), row[:w].view(w, 1, 1), em.new_empty(w, 1, 1)
    injections = tensors.injections(p)
    for t in range(t_all - 1, -1, -1):
        if t == t_all - 1:
            torch.mul(injections[t], ems[t], out=beta)
        else:
            torch.bmm(windows, taps, out=r)
            if t in injections:
                r.add_(injections[t])
            torch.mul(r, ems[t], out=beta)
        outs[t].mul_(beta)
    bars.mul_(likelihood.reciprocal().index_select(0, ints[w:2 * w]))
    return bars, tensors.emission(p)
