r"""The CTC lattice: every sequence's extended labels side by side in one row, and the
forward (:math:`\alpha`) and backward (:math:`\beta`) recursions over it, in log space.

A target :math:`l = (l_1, \dots, l_L)` becomes :math:`l' = (\varnothing, l_1,
\varnothing, \dots, l_L, \varnothing)`, :math:`2L + 1` positions. The lattice puts
the batch's sequences end to end in one *row* of slots, gaps between them and two
at either end. In the *ragged* lattice (plain tensors, built from Python ints by
:func:`ragged`) each sequence takes its own :math:`2L_b + 1` positions, one gap
between two sequences::

    gap gap | ∅ l1 ∅ l2 ∅ | gap | ∅ l1 ∅ | gap gap

A gap's log-probability is :math:`-\infty`, so it stays :math:`-\infty` through both
recursions, and CTC's three moves (stay, step, skip) are three shifted views of one
row, with no test at a sequence's boundary: a first blank steps in from a gap, a last
blank steps out into one. Only the skip is masked: it may land on a label that
differs from the label two positions back, never on a blank nor on a first label, so
it never crosses a gap. In the *padded* lattice (``torch.func`` transforms, where
lengths may differ between the samples of a ``vmap``: :func:`lattice`) every
sequence takes two gaps and :math:`2 \max L + 1` positions, those past its own end
treated as gaps.

Time is a Python loop (frame :math:`t` needs frame :math:`t \mp 1`), each step on the
whole batch at once with ``torch.logaddexp`` (the elementwise
:math:`\log(e^a + e^b)`, exact at :math:`-\infty`) of shifted views, in place in
preallocated rows in the usual case. Defined in
:doc:`/chapters/04_2_likelihoods_and_sequences`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._exp import LOG2E
from .._lists import tensor_of

NEG_INF = float("-inf")
# e^x is computed as 2^(x log2 e): torch's exp calls MKL, which runs even a few hundred
# elements on its thread pool (with 2 threads on a busy machine, each call waited
# milliseconds for the other thread) and is 10x slower where e^x underflows; exp2 is
# torch's own vectorised kernel. The product's rounding moves e^x by < 3e-6 relative
# (float32, x > -88; ~1e-7 for |x| < 10). LOG2E is lossutils._exp's.
CHUNK = 8  # frames of emissions the in-place backward gathers at once


class Lattice(NamedTuple):
    """Where everything sits in a row of ``width`` slots. Positions lie in the interior,
    slots ``2`` to ``width - 2``; the masks are additive (0 or -inf)."""

    width: int
    emission: Tensor  # (width,) int64: each slot's index into a frame's B * C log-probabilities
    sample: Tensor  # (width,) int64: each slot's sequence
    gaps: Tensor  # (width,): -inf on gaps
    start: Tensor  # (width,): -inf but where alpha starts, s <= 1
    skip: Tensor  # (width,): -inf but on labels a skip may reach (s >= 3, l'_s != l'_{s-2})
    ends: Tensor  # (B,) int64: each sequence's last slot, s = 2 L_b

    def pack(self) -> tuple[Tensor, Tensor, Tensor]:
        """Three tensors (to hand to a Function): the masks, the indices, the ends."""
        return (torch.stack([self.gaps, self.start, self.skip]),
                torch.stack([self.emission, self.sample]), self.ends)

    @staticmethod
    def unpack(masks: Tensor, indices: Tensor, ends: Tensor) -> Lattice:
        return Lattice(masks.size(-1), *indices.unbind(0), *masks.unbind(0), ends)


def lattice(labels: Tensor, lengths: Tensor, blank: int, classes: int, padded: int) -> Lattice:
    r"""The *padded* lattice of ``labels`` ``(B, S)`` (each row's first ``lengths[b]``
    count): every sequence ``2 padded + 1`` positions, so that ``lengths`` may be
    batched by ``vmap``. Plain tensors take :func:`ragged` instead."""
    b, device = labels.size(0), labels.device
    width = b * (2 * padded + 3) + 2
    sample = torch.arange(width - 2, device=device).div(2 * padded + 3, rounding_mode="floor")
    first = torch.arange(b, device=device) * (2 * padded + 3)
    sample = torch.cat([sample, sample.new_full((2,), max(b - 1, 0))])  # the two last gaps
    local = torch.arange(width, device=device) - first[sample] - 2  # s; gaps below 0
    last = 2 * lengths[sample]
    on_label = (local % 2 == 1) & (local > 0) & (local < last)
    column = (local - 1).div(2, rounding_mode="floor").clamp(0, max(labels.size(1) - 1, 0))
    label = labels[sample, column] if labels.numel() else torch.zeros_like(local)
    extended = torch.where(on_label, label, blank)
    before = torch.cat([extended.new_full((2,), -1), extended[:-2]])
    zero, ninf = torch.zeros((), device=device), torch.full((), NEG_INF, device=device)
    on_position = (local >= 0) & (local <= last)
    return Lattice(
        width=width, emission=sample * classes + extended, sample=sample,
        gaps=torch.where(on_position, zero, ninf),
        start=torch.where(on_position & (local <= 1), zero, ninf),
        skip=torch.where(on_label & (local >= 3) & (extended != before), zero, ninf),
        ends=first + 2 + 2 * lengths)


class Ragged(NamedTuple):
    """What the plain path knows as Python ints, so that it reads no tensor again."""

    frames: list[int]  # each sequence's input length
    labels: list[int]  # each sequence's target length
    ends: list[int]  # each sequence's last slot, s = 2 L_b
    blank_last: list[bool]  # the last label is the blank itself


def ragged(labels: list[list[int]], frames: list[int], blank: int, classes: int,
           dtype: torch.dtype, device) -> tuple[tuple[Tensor, Tensor, Tensor], Ragged]:
    r"""The *ragged* lattice of the label lists, packed (:meth:`Lattice.pack`), built in
    Python and made into tensors at once: each sequence takes its own :math:`2L_b + 1`
    slots, with one gap between two sequences (the step into a first position reads it;
    a skip never lands on a blank, so none reads past it) and two at either end of the
    row, for the shifted views."""
    emission, sample, gaps, start, skip, ends, blank_last = [], [], [], [], [], [], []
    ninf = NEG_INF
    for b, seq in enumerate(labels):
        base, lead, n = b * classes, 2 if b == 0 else 1, 2 * len(seq) + 1
        extended = [blank] * n
        extended[1::2] = seq
        emission += [base + blank] * lead + [base + e for e in extended]
        sample += [b] * (lead + n)
        gaps += [ninf] * lead + [0.0] * n
        start += [ninf] * lead + [0.0, 0.0][:n] + [ninf] * (n - 2)
        skip += [ninf] * (lead + 1)
        for k in range(len(seq)):  # s = 2k + 1 may be reached by a skip from s - 2
            skip += [0.0 if k and seq[k] != seq[k - 1] else ninf, ninf]
        ends.append(len(emission) - 1)
        blank_last.append(bool(seq) and seq[-1] == blank)
    emission += [emission[-1]] * 2
    sample += [sample[-1]] * 2
    for row in (gaps, start, skip):
        row += [ninf] * 2
    # converted in C (lossutils._lists): torch.tensor would take ~100 ns per number, and a
    # training-sized batch has thousands (0.4 ms a call at T = 150, N = 8, S = 50)
    packed = (tensor_of(gaps + start + skip, dtype, device).view(3, -1),
              tensor_of(emission + sample, torch.int64, device).view(2, -1),
              tensor_of(ends, torch.int64, device))
    return packed, Ragged(frames, [len(seq) for seq in labels], ends, blank_last)


def serial_blocks(*tensors: Tensor):
    """The ``tensors`` (one first dimension) cut along it into blocks of fewer than 32,768
    elements (torch's grain size), zipped: an op on a block runs on one thread. A parallel
    region makes the Python loop wait for a second thread at its end: on a busy machine
    that thread may not be running, and the wait lasts milliseconds."""
    widest = max((t[0].numel() for t in tensors if len(t)), default=1)
    return zip(*(t.split(max(1, 32767 // max(widest, 1))) for t in tensors), strict=True)


def emissions(log_probs: Tensor, lat: Lattice, frames: slice = slice(None),
              inplace: bool = True) -> Tensor:
    r""":math:`\log y^t_{l'_s}` of every slot ``(frames, width)``; :math:`-\infty` on gaps."""
    rows = log_probs.reshape(log_probs.size(0), -1)[frames]
    if not inplace:
        return torch.index_select(rows, 1, lat.emission) + lat.gaps
    picked = rows.new_empty(rows.size(0), lat.width)
    for source, block in serial_blocks(rows, picked):
        torch.index_select(source, 1, lat.emission, out=block).add_(lat.gaps)
    return picked


def log_likelihood(alpha: Tensor, lat: Lattice, input_lengths: Tensor,
                   target_lengths: Tensor) -> Tensor:
    r""":math:`\log p(l \mid x) = \operatorname{logadd}(\alpha_{T_b-1}(2L_b),
    \alpha_{T_b-1}(2L_b - 1))` per sequence (the second is a gap when :math:`L_b = 0`);
    with no frames, 0 for the empty target and :math:`-\infty` for any other."""
    at = (input_lengths - 1).clamp_min(0) * lat.width + lat.ends
    flat = alpha.reshape(-1)
    ll = torch.logaddexp(flat[at], flat[at - 1])
    none = torch.where(target_lengths == 0, 0.0, NEG_INF).to(ll.dtype)
    return torch.where(input_lengths == 0, none, ll)


def log_likelihood_ragged(alpha: Tensor, width: int, rag: Ragged) -> Tensor:
    """:func:`log_likelihood` where the lengths are Python ints (one gather)."""
    at = [max(f - 1, 0) * width + e for f, e in zip(rag.frames, rag.ends, strict=True)]
    pair = alpha.view(-1)[torch.tensor(at + [a - 1 for a in at], device=alpha.device)]
    ll = torch.logaddexp(*pair.view(2, -1).unbind(0))
    if min(rag.frames) > 0:
        return ll
    none = [NEG_INF if n else 0.0 for n in rag.labels]  # no frames: 0 for an empty target
    return torch.tensor(none, dtype=ll.dtype, device=ll.device).where(
        torch.tensor([f == 0 for f in rag.frames], device=ll.device), ll)


# ------------------------------------------------------------------ in place (plain tensors)


def alpha_in_place(log_probs: Tensor, lat: Lattice, frames: int) -> Tensor:
    r"""The forward variables :math:`\alpha_t` ``(T, width)`` (frame :math:`t`'s emission
    included) for the first ``frames`` frames, in one buffer: the emissions are gathered
    into it, then each frame adds the log-sum of its predecessors in place,

    .. math::
        \alpha_t(s) = \log y^t_{l'_s} + \operatorname{logadd}(\alpha_{t-1}(s),
        \alpha_{t-1}(s-1), [\alpha_{t-1}(s-2) \text{ if } l'_s \ne l'_{s-2}])

    from :math:`\alpha_0(s) = \log y^0_{l'_s}` for :math:`s \le 1`."""
    alpha = emissions(log_probs, lat)
    alpha[0].add_(lat.start)
    stay, step, skip = (alpha[:, 2:-2].unbind(0), alpha[:, 1:-3].unbind(0),
                        alpha[:, :-4].unbind(0))
    allowed = lat.skip[2:-2]
    both, jump = alpha.new_empty(2, lat.width - 4)
    for t in range(1, frames):
        torch.logaddexp(stay[t - 1], step[t - 1], out=both)
        torch.logaddexp(both, torch.add(skip[t - 1], allowed, out=jump), out=both)
        stay[t].add_(both)
    return alpha


def gradient_in_place(log_probs: Tensor, alpha: Tensor, lat: Lattice, starts: dict[int, Tensor],
                      frames: int) -> Tensor:
    r""":math:`y^t_c - \sum_{s: l'_s = c} \gamma_t(s)` ``(T, B, C)``, the gradient before its
    scale, for the frames before ``frames`` (the later ones hold :math:`y^t_c`: the
    caller zeroes them). ``alpha`` holds :math:`\alpha_t(s) + \text{nll}`.

    The backward variables, emission excluded,
    :math:`r_t(s) = \operatorname{logadd}(\beta_{t+1}(s), \beta_{t+1}(s+1),
    [\beta_{t+1}(s+2) \text{ if } l'_s \ne l'_{s+2}])`, run backwards in one row,
    :math:`\beta_t = r_t + \log y^t_{l'_s}`; a sequence of :math:`T_b` frames starts at
    frame :math:`T_b - 1` with :math:`r = 0` at its last two positions (``starts``: frame
    -> those interior slots). :math:`\gamma_t(s) = e^{\alpha_t(s) + r_t(s) + \text{nll}}`,
    the probability that an alignment is at :math:`s` at frame :math:`t`, is subtracted
    from its class. The emissions are gathered ``CHUNK`` frames at a time (into one
    buffer), and the chunk's :math:`r_t` rows kept: once the chunk is done, one ``add_``
    of :math:`\alpha`, one ``exp_`` and one ``index_add_`` subtract its :math:`\gamma_t`
    from the gradient."""
    t_all, width = log_probs.size(0), lat.width
    flat = log_probs.reshape(t_all, -1)
    grad = torch.empty_like(flat)
    for source, block in serial_blocks(flat, grad):
        torch.mul(source, LOG2E, out=block).exp2_()
    beta = alpha.new_full((width,), NEG_INF)
    stay, step, skip, fresh = beta[2:-2], beta[3:-1], beta[4:], beta[2:-2]
    emission, allowed, gaps = lat.emission[2:-2], lat.skip[4:], lat.gaps[2:-2]
    rows = alpha[:, 2:-2]
    both, jump = alpha.new_empty(2, width - 4)
    size = min(CHUNK, max(frames, 1))
    chunks, gathered = alpha.new_empty(2, size, width - 4)
    # each chunk row's slots as indices into the chunk's flattened gradient rows: one 1-D
    # index_add_ per chunk (a 2-D index_add_ along dim 1 walks the index slice by slice)
    step_rows = torch.arange(0, size * grad.size(1), grad.size(1), dtype=torch.int32,
                             device=grad.device)
    into = (emission.to(torch.int32) + step_rows.unsqueeze(1)).view(-1)  # int32: half the bytes
    cells = grad.view(-1)
    for top in range(frames - 1, -1, -CHUNK):
        bottom = max(top - CHUNK + 1, 0)
        em = torch.index_select(flat[bottom:top + 1], 1, emission,
                                out=gathered[:top + 1 - bottom]).add_(gaps).unbind(0)
        gamma = chunks[:top + 1 - bottom]
        rs = gamma.unbind(0)
        for t in range(top, bottom - 1, -1):
            r = rs[t - bottom]
            torch.logaddexp(stay, step, out=both)
            torch.logaddexp(both, torch.add(skip, allowed, out=jump), out=r)
            if t in starts:
                r.index_fill_(0, starts[t], 0.0)
            torch.add(r, em[t - bottom], out=fresh)
        gamma.add_(rows[bottom:top + 1]).mul_(LOG2E).exp2_()  # the r_t rows become gamma_t
        n = top + 1 - bottom
        cells[bottom * grad.size(1):(top + 1) * grad.size(1)].index_add_(
            0, into[:n * (width - 4)], gamma.view(-1), alpha=-1)
    return grad.view(log_probs.shape)


# ------------------------------------------------------------------ out of place (transforms)


def alpha_out_of_place(log_probs: Tensor, lat: Lattice, frames: int) -> Tensor:
    """:func:`alpha_in_place` in out-of-place ops (``vmap``, ``grad``, ``jacrev``):
    ``(frames, width)``."""
    em = emissions(log_probs, lat, inplace=False)
    rows, pad = [em[0] + lat.start], em.new_full((2,), NEG_INF)
    for t in range(1, frames):
        prev = rows[-1]
        both = torch.logaddexp(torch.logaddexp(prev[2:-2], prev[1:-3]),
                               prev[:-4] + lat.skip[2:-2])
        rows.append(em[t] + torch.cat([pad, both, pad]))
    return torch.stack(rows)


def gradient_out_of_place(log_probs: Tensor, alpha: Tensor, lat: Lattice,
                          input_lengths: Tensor, frames: int) -> Tensor:
    """:func:`gradient_in_place` in out-of-place ops; the sequences start where
    ``input_lengths`` (which ``vmap`` may batch) say."""
    t_all = log_probs.size(0)
    em = emissions(log_probs, lat, inplace=False)[:, 2:-2]
    last = torch.zeros(lat.width, dtype=torch.bool, device=em.device)
    last = last.index_fill(0, lat.ends, True).index_fill(0, lat.ends - 1, True)[2:-2]
    begins = input_lengths[lat.sample[2:-2]] - 1
    beta, pad, occupied = em.new_full((lat.width,), NEG_INF), em.new_full((2,), NEG_INF), []
    for t in range(frames - 1, -1, -1):
        r = torch.logaddexp(torch.logaddexp(beta[2:-2], beta[3:-1]), beta[4:] + lat.skip[4:])
        r = torch.where(last & (begins == t), 0.0, r)
        occupied.append(torch.exp(alpha[t, 2:-2] + r))
        beta = torch.cat([pad, r + em[t], pad])
    flat = torch.exp(log_probs.reshape(t_all, -1))
    if not occupied:
        return flat.view(log_probs.shape)
    gamma = torch.stack(occupied[::-1])
    taken = torch.zeros_like(flat[:frames]).index_add(1, lat.emission[2:-2], gamma)
    grad = torch.cat([flat[:frames] - taken, flat[frames:]])
    return grad.view(log_probs.shape)
