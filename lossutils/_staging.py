"""Row statistics staged in the output's own buffer: the memory of torch's fused kernels.

A fused kernel such as torch's softmax backward keeps each row's sum
(:math:`\\sum_j g_j y_j`) in a register while it writes the row. Composed of
whole-tensor ops, the same backward needs that sum as a tensor, one float per
row, alive next to the output: N floats more than torch at the peak.

The fast paths avoid it by writing the statistics into the output buffer
itself, into its last M floats (:func:`tail`), which hold no result yet. The
rows are then finished in blocks (:func:`finish_rows`): first every row whose
statistic lies in rows other than its own, which leaves only the few rows that
hold statistics; of those, again the ones that do not hold their own; and so
on, down to one last row, whose statistic is read as a Python number before the
row is overwritten. No block ever writes over a statistic it or a later block
still reads, and nothing is allocated. Used by the softmax family's backward and
``multi_margin_loss``'s forward.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def stageable(out: Tensor) -> bool:
    """Whether ``out`` (M, C) can hold its rows' statistics: contiguous, at least one row,
    and at least two columns (with one, every row would hold its own statistic)."""
    return out.dim() == 2 and out.size(0) >= 1 and out.size(1) >= 2 and out.is_contiguous()


def tail(out: Tensor) -> Tensor:
    """The last M floats of ``out`` (M, C), as a column ``(M, 1)``: where row ``i``'s
    statistic goes (entry ``i``), before any row is written."""
    m = out.size(0)
    return out.view(-1)[out.numel() - m:].view(m, 1)


def finish_rows(out: Tensor, finish: Callable[[slice, Tensor | float], object]) -> None:
    """Call ``finish(rows, stats)`` on blocks of rows covering all of ``out`` (M, C), in an
    order that never overwrites a statistic still to be read. ``stats`` is a column view
    of the block's statistics in :func:`tail` (a Python number for the last row alone);
    ``finish`` writes ``out[rows]`` from them.

    With ``left`` rows unfinished, their statistics are the last ``left`` floats of the
    buffer, inside its last ``ceil(left / C)`` rows: every row before those can be
    finished now. A 1,024 x 500 buffer takes three blocks (rows 0-1020, 1021-1022, 1023),
    an 8 x 10 one two (rows 0-6, 7)."""
    m, c = out.shape
    flat = out.view(-1)
    start = 0
    while m - start > 1:
        left = m - start
        stop = m - -(-left // c)  # the rows from `stop` on hold the statistics
        at = flat.numel() - left
        finish(slice(start, stop), flat[at:at + stop - start].view(-1, 1))
        start = stop
    finish(slice(m - 1, m), flat[-1].item())
