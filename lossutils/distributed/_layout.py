"""Where this rank's shard sits in the vocabulary, and the checks that need the other ranks.

A rank knows only its own shard. Its offset ``s_r`` and the vocabulary size
``V`` are either given, or found by one all-gather of a few integers per rank:
the shard sizes (``s_r`` = the sizes of the ranks before it) and what the
ranks must agree on. The same gather carries an error flag, so that a rank
whose arguments are wrong stops every rank with its error: a rank that raised
alone would leave the others waiting in the next collective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Layout:
    """This rank's rows ``[start, start + size)`` of a vocabulary of ``vocab_size`` in ``group``."""

    group: object
    start: int
    size: int
    vocab_size: int


def _membership(group) -> tuple[int, int]:
    """(rank in ``group``, size of ``group``), or an error saying why there is none."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("vocab_parallel_cross_entropy needs an initialized torch.distributed "
                           "process group: call torch.distributed.init_process_group(...) first "
                           "(or run the function with lossutils.distributed.run_on_gloo)")
    rank = dist.get_rank(group)
    if rank < 0:
        raise RuntimeError(f"vocab_parallel_cross_entropy: this process (global rank "
                           f"{dist.get_rank()}) is not a member of group")
    return rank, dist.get_world_size(group)


def explicit_layout(group, vocab_start, vocab_size, size: int) -> Layout:
    """The layout the caller gave (``vocab_start``, ``vocab_size``), checked against the shard."""
    _membership(group)
    for n in (vocab_start, vocab_size):
        if n is None or isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"vocab_start and vocab_size must be given together, as ints, or "
                             f"both left None; got vocab_start={vocab_start!r}, "
                             f"vocab_size={vocab_size!r}")
    if not 0 <= vocab_start <= vocab_start + size <= vocab_size:
        raise ValueError(f"vocab_parallel_cross_entropy: the shard's rows [vocab_start, "
                         f"vocab_start + V_r) = [{vocab_start}, {vocab_start + size}) must lie in "
                         f"[0, vocab_size) = [0, {vocab_size})")
    return Layout(group, vocab_start, size, vocab_size)


def _checksum(target: Tensor) -> int:
    """A position-weighted sum of the targets: equal targets give equal sums (int64, wrapping)."""
    return int(((target.long() + 1) * torch.arange(1, target.numel() + 1)).sum())


def gathered_layout(group, error: Exception | None, input, weight_shard, target, weight) -> Layout:
    """One all-gather of 7 int64 per rank: offsets, ``V`` and the checks that need every rank.

    Each rank sends ``[error?, V_r, N, F, dtype, target checksum, weight size]``.

    Every rank sees the same table, so every rank raises the same error (or none).
    """
    rank, world = _membership(group)
    if error is None:
        dtype = _DTYPES.index(input.dtype) if input.dtype in _DTYPES else len(_DTYPES)
        info = [0, weight_shard.shape[0], *input.shape, dtype, _checksum(target),
                -1 if weight is None else weight.numel()]
    else:
        info = [1, 0, 0, 0, 0, 0, 0]
    mine = torch.tensor(info, dtype=torch.int64)
    table = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(table, mine, group=group)
    rows = torch.stack(table).tolist()
    failed = [k for k, row in enumerate(rows) if row[0]]
    if failed:
        # only on the error path: the message of each rank that failed, for the others to show
        messages = [None] * world
        mine_msg = None if error is None else f"{type(error).__name__}: {error}"
        dist.all_gather_object(messages, mine_msg, group=group)
        if error is not None:
            raise error
        raise RuntimeError(f"vocab_parallel_cross_entropy: rank {failed[0]} of the group "
                           f"rejected its arguments, so every rank stops: {messages[failed[0]]}")
    sizes = [row[1] for row in rows]
    layout = Layout(group, sum(sizes[:rank]), sizes[rank], sum(sizes))
    check_weight([row[6] for row in rows], layout)
    for i, what in ((2, "input rows N"), (3, "in_features F (input and weight_shard)"),
                    (4, "input dtype"), (5, "target (a checksum of the class indices)"),
                    (6, "class weights or none")):
        values = [row[i] for row in rows]
        if len(set(values)) > 1:
            shown = [str((*_DTYPES, "another dtype")[v]) if i == 4 else v for v in values]
            raise RuntimeError(f"vocab_parallel_cross_entropy: every rank of the group must pass "
                               f"the same {what}; got {shown} on ranks 0..{world - 1}")
    return layout


def check_weight(sizes: list[int], layout: Layout) -> None:
    """The class weights are the ``(V,)`` vector of the whole vocabulary, not a shard.

    ``sizes``: the weight's length on each rank (-1 where there is none).
    """
    V = layout.vocab_size
    if any(n not in (-1, V) for n in sizes):
        shards = "" if len(sizes) == 1 else f" on ranks 0..{len(sizes) - 1}"
        raise RuntimeError(f"vocab_parallel_cross_entropy: weight must hold the class weights of "
                           f"the whole vocabulary, shape ({V},), the same on every rank (not the "
                           f"rank's shard); got weight of {sizes} elements{shards}")


def check_targets(target: Tensor, ignore_index: int, layout: Layout) -> None:
    """Class indices lie in the whole vocabulary ``[0, V)`` (or equal ``ignore_index``)."""
    V = layout.vocab_size
    bad = (target != ignore_index) & ((target < 0) | (target >= V))
    if bad.any():
        raise IndexError(f"Target {target[bad][0].item()} is out of bounds.: class indices must "
                         f"lie in [0, {V}) of the whole vocabulary (summed over the group's "
                         f"shards), or equal ignore_index={ignore_index}")
