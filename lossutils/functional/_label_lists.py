r"""The target lists of ``multilabel_margin_loss``, and the loop over their positions.

Row :math:`n` lists its target classes :math:`T_n` up to its first -1. For
each list position :math:`k < K` (:math:`K`: the longest list in the batch),
:math:`\theta_{nk} = x_{n j_k} - 1` is the score a non-target class must
exceed to make the hinge :math:`z = (1 - x_{nj_k}) + x_{ni}` positive:
:math:`x_i - \theta` *is* torch's :math:`z`, bit for bit (:math:`\theta =
-(1 - x_j)` exactly, since rounding is symmetric), and its sign is the sign
of the exact sum. A position past a row's list gets :math:`\theta = +\infty`,
which no score exceeds.

Each position is one ``N x C`` pass over the whole batch: :math:`O(KNC)`
time, like torch's kernel, and :math:`O(NC)` memory (never the ``N x C x C``
tensor of every pair). The in-place loop uses only vectorised CPU kernels
(``sub``, ``relu_``, ``gt_``, ``sum``, and ``index_fill_`` over the few target
entries); the out-of-place one (``torch.func`` transforms) masks with
``masked_fill`` and ``fmax``, which also treat NaN the way torch's kernel does.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

INF = float("inf")


class Lists(NamedTuple):
    """The rows ``x`` ``(N, C)``; ``thresholds`` :math:`\\theta` ``(N, K)``; ``targets``, the
    listed entries as indices into ``x.view(-1)`` ``(N K,)`` (a position past a row's list
    repeats its first class: harmless, its threshold is :math:`+\\infty`); or, when every
    row lists as many classes, ``columns``, those classes ``(N, K)``, and ``targets`` None
    (:func:`flat_targets` forms them where they are needed)."""

    x: Tensor
    thresholds: Tensor
    targets: Tensor | None
    columns: Tensor | None = None


def flat_targets(lists: Lists) -> Tensor:
    """``lists.targets``, formed from ``lists.columns`` when it holds them."""
    if lists.targets is not None:
        return lists.targets
    n, c = lists.x.shape
    rows = torch.arange(0, n * c, c, device=lists.x.device).unsqueeze(1)
    return (lists.columns + rows).view(-1)


def lists(input: Tensor, target: Tensor, listed: Tensor, k: int) -> Lists:
    """The first ``k`` list positions of every row; ``listed`` ``(N, 1)`` counts each row's."""
    c = input.size(-1) if input.dim() else 1
    x, entries = input.reshape(-1, c), target.reshape(-1, c)[:, :k]
    counted = torch.arange(k, device=x.device) < listed
    columns = torch.where(counted, entries, entries[:, :1]).clamp_min(0)
    thresholds = torch.where(counted, x.gather(1, columns) - 1, INF)
    rows = torch.arange(0, x.numel(), c, device=x.device).unsqueeze(1)
    return Lists(x, thresholds, (columns + rows).view(-1))


# A target of at most this many entries, on the CPU, is read in Python (:func:`parse`): one
# copy of its values, where finding the lists in tensor ops costs a dozen small ops.
SMALL = 1 << 10


class Parsed(NamedTuple):
    """The lists of a small target, read once in Python: ``k`` list positions, the listed
    entries as :class:`Lists` holds them (indices into ``x.view(-1)``, ``(N K,)``), and the
    positions past a row's list as indices into ``thresholds.view(-1)`` (``None``: none);
    or, when every row lists ``k`` classes, ``columns``: the target's first ``k`` columns."""

    k: int
    targets: Tensor | None
    padding: Tensor | None
    columns: Tensor | None = None


def parse(rows: list[list[int]], target: Tensor) -> Parsed:
    """The lists of ``rows``, the values of ``target`` ``(N, C)`` (every one in ``[-1, C)``):
    what :func:`lists` finds in tensor ops, found here in Python."""
    c = target.size(1)
    lengths = [row.index(-1) if -1 in row else c for row in rows]
    k = max(lengths, default=0)
    if min(lengths, default=0) == k:  # every list as long: the target's own first columns
        return Parsed(k, None, None, target[:, :k])
    targets, padding = [], []
    for n, (row, length) in enumerate(zip(rows, lengths, strict=True)):
        targets += [n * c + j for j in row[:length]]
        if length < k:  # past the list: the first class again (0 for an empty list), as lists()
            targets += [n * c + max(row[0], 0)] * (k - length)
            padding += range(n * k + length, (n + 1) * k)
    return Parsed(k, torch.tensor(targets, dtype=torch.long),
                  torch.tensor(padding, dtype=torch.long) if padding else None)


def parsed_lists(input: Tensor, parsed: Parsed) -> Lists:
    """:func:`lists` of a target read by :func:`parse`: the same thresholds, in two ops."""
    c = input.size(-1) if input.dim() else 1
    x = input if input.dim() == 2 else input.reshape(-1, c)
    if parsed.columns is not None:
        return Lists(x, x.gather(1, parsed.columns) - 1, None, parsed.columns)
    thresholds = input.take(parsed.targets) - 1  # take reads input as if flattened
    if parsed.padding is not None:  # past a row's list: +inf, which no score exceeds
        thresholds = thresholds.index_fill(0, parsed.padding, INF)
    return Lists(x, thresholds.view(x.size(0), parsed.k), parsed.targets)


def count_in_place(lists: Lists, count: bool, rows: bool,
                   mean: bool = False) -> tuple[Tensor, Tensor | None]:
    r"""``(sums, grad)`` through one ``N x C`` scratch buffer (plain tensors only): the sums
    of the hinges at each position, per row ``(K, N)`` (``rows``) or over the batch ``(K)``
    (0-d for one position; with ``mean``, the CPU's mean of the ``N x C`` hinges, which is
    that sum divided by :math:`NC` to the last bit),
    and (if ``count``) the gradient of the unnormalised hinge sums,
    :math:`\partial / \partial x_i` = how many hinges are active at a non-target
    :math:`x_i`, minus, at a target, how many are active at its list positions.

    With several positions the per-class counts add up in float16 (exact integers up
    to 2048; float32 past that many positions), and become the gradient's buffer at the
    end; with one position the scratch buffer itself becomes the gradient. A NaN hinge
    (NaN scores, :math:`\infty - \infty`) is inactive, as in torch (``nan_to_num_``)."""
    x, thresholds, columns = lists.x, lists.thresholds, lists.columns
    (n, c), k = x.shape, thresholds.size(1)
    if k == 1:  # the loop below, less its slices and buffers: fewer ops for a small batch
        buf = torch.sub(x, thresholds).relu_().nan_to_num_(0.0, INF)
        if columns is not None:  # the classes by row: no flat indices
            buf.scatter_(1, columns, 0.0)
        else:
            buf.view(-1).index_fill_(0, lists.targets, 0.0)
        sums = buf.sum(1).unsqueeze(0) if rows else buf.mean() if mean else buf.sum()
        if count and columns is not None:
            buf.scatter_add_(1, columns, buf.gt_(0).sum(1, keepdim=True).neg_())
        elif count:
            buf.view(-1).index_add_(0, lists.targets, buf.gt_(0).sum(1), alpha=-1)
        return sums, buf if count else None
    targets = flat_targets(lists)
    buf = torch.empty_like(x)
    flat, sums = buf.view(-1), x.new_empty(k, n) if rows else x.new_empty(k)
    counts = x.new_empty(n, k) if count else None
    above = None
    if count and k > 1:
        above = torch.zeros(n, c, dtype=torch.float16 if k <= 2048 else x.dtype)
    for j in range(k):
        torch.sub(x, thresholds if k == 1 else thresholds[:, j:j + 1], out=buf)
        buf.relu_().nan_to_num_(0.0, INF)
        flat.index_fill_(0, targets, 0.0)  # only non-target classes take part
        if rows:
            torch.sum(buf, 1, out=sums[j])
        else:
            torch.sum(buf, (0, 1), out=sums[j])
        if count:
            torch.sum(buf.gt_(0), 1, out=counts[:, j])  # 1.0 where the hinge is active
            if above is not None:
                above.add_(buf)
    if not count:
        return sums, None
    if above is not None:
        del buf, flat
    grad = torch.zeros_like(x) if k == 0 else buf if above is None else above.to(x.dtype)
    return sums, grad.view(-1).index_add_(0, targets, counts.view(-1), alpha=-1).view(n, c)


def _target_mask(lists: Lists) -> Tensor:
    mask = torch.zeros(lists.x.numel(), dtype=torch.bool, device=lists.x.device)
    return mask.index_fill(0, flat_targets(lists), True).view(lists.x.shape)


def hinge_sums(lists: Lists) -> Tensor:
    """The row sums of the hinges ``(K, N)``, out of place (any transform)."""
    x, thresholds = lists.x, lists.thresholds
    is_target, zero = _target_mask(lists), x.new_zeros(())
    rows = [torch.fmax(x - thresholds[:, j:j + 1], zero).masked_fill(is_target, 0.0).sum(1)
            for j in range(thresholds.size(1))]
    return torch.stack(rows) if rows else x.new_zeros(0, x.size(0))


def counts(lists: Lists) -> Tensor:
    """The gradient of :func:`count_in_place`, out of place (any transform)."""
    x, thresholds, targets = lists.x, lists.thresholds, flat_targets(lists)
    is_target = _target_mask(lists)
    above, per_position = torch.zeros_like(x), []
    for j in range(thresholds.size(1)):
        hits = (x > thresholds[:, j:j + 1]).masked_fill(is_target, False).to(x.dtype)
        above, per_position = above + hits, per_position + [hits.sum(1)]
    if not per_position:
        return above
    taken = torch.stack(per_position, 1).reshape(-1)
    return above.view(-1).index_add(0, targets, taken, alpha=-1).view(x.shape)
