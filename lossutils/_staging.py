"""Row statistics staged in the output's own buffer: the memory of torch's fused kernels.

A fused kernel such as torch's softmax backward keeps each row's sum
(:math:`\\sum_j g_j y_j`) in a register while it writes the row. Composed of
whole-tensor ops, the same backward needs that sum as a tensor, one float per
row, alive next to the output: N floats more than torch at the peak.

The fast paths avoid it by writing the statistics into the output buffer
itself, into its last M floats (:func:`tail`), which hold no result yet. The
rows are then finished in blocks (:func:`blocks`): first every row whose
statistic lies in rows other than its own, which leaves only the few rows that
hold statistics; of those, again the ones that do not hold their own; and so
on, down to one last row, whose statistic is read as a Python number. No block
writes over a statistic that it or a later block still reads, and nothing is
allocated. Used by the backward of ``softmax`` and ``log_softmax`` and by
``multi_margin_loss`` (``functional/_multi_margin_staged.py``).
"""

from __future__ import annotations

from torch import Tensor

MIN_ELEMENTS = 1 << 14
"""Below this many elements the fast paths do not stage: the blocks cost a dozen or more
small ops (about 20 us on the CPU, where an 8 x 10 softmax backward takes 5) to save one
float per row."""


def stageable(t: Tensor) -> bool:
    """Whether a buffer shaped like ``t`` (M, C) can stage its rows' statistics, and it is
    worth it: at least :data:`MIN_ELEMENTS` elements, at least two columns (with one, every
    row would hold its own statistic), on the CPU (on a GPU, reading the last statistic
    back as a number would wait for the device). The buffer itself must be contiguous."""
    return t.dim() == 2 and t.numel() >= MIN_ELEMENTS and t.size(1) >= 2 and t.is_cpu


def tail(out: Tensor) -> Tensor:
    """The last M floats of ``out`` (M, C), as a column ``(M, 1)``: where row ``i``'s
    statistic goes (entry ``i``), before any row is written."""
    m = out.size(0)
    return out.as_strided((m, 1), (1, 1), out.storage_offset() + out.numel() - m)


def blocks(out: Tensor) -> list[tuple[slice, Tensor | float]]:
    """The row blocks that finish ``out`` (M, C) once :func:`tail` holds the statistics,
    in the order to finish them: each block's rows and statistics, a column view into the
    tail, or for the last block, one row that holds its own, a Python number (read now:
    only that block writes over it).

    With ``left`` rows unfinished, their statistics are the last ``left`` floats of the
    buffer, inside its last ``ceil(left / C)`` rows: every row before those can be
    finished now. A 1,024 x 500 buffer takes three blocks (1,021 rows, 2, 1), an 8 x 10
    one two (7 rows, 1)."""
    m, c = out.shape
    end = out.storage_offset() + out.numel()
    found, start = [], 0
    while m - start > 1:
        left = m - start
        stop = m - -(-left // c)  # the rows from `stop` on hold the statistics
        found.append((slice(start, stop), out.as_strided((stop - start, 1), (1, 1), end - left)))
        start = stop
    return found + [(slice(m - 1, m), out.as_strided((), (), end - 1).item())]
