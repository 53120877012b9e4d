r"""``multi_margin_loss``'s fast forward and backward in torch's memory: the ``N x C`` hinge
buffer and nothing else, not even one float per row (``lossutils._staging``).

torch's kernels keep each row's :math:`x_{y_n} - \text{margin}` (forward) and
:math:`\sum_i h_{ni}` (backward) in a register. Here the forward stages the first in the
last rows of the hinge buffer before writing the rows. The backward turns that buffer
into the gradient in place and needs the row sums somewhere, while every float of the
buffer holds a gradient entry. So it frees the last ``k = ceil(N / C)`` rows: their
sums are read first, as Python numbers; the other rows' sums then go into those rows
(over their entries), finish the other rows, and the last rows are recomputed from the
input, exactly as the forward formed them. Only for a reduced loss without ``weight``,
whose scale is one number.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._reduction import scalar_product
from .._staging import blocks, tail


def hinges_into(z: Tensor, x: Tensor, y: Tensor, margin: float) -> Tensor:
    r""":math:`\max(0, x_{ni} - (x_{n y_n} - \text{margin}))` with 0 at :math:`i = y_n` and
    where it is NaN, written into ``z`` (contiguous, of ``x``'s shape, at least two
    columns): :math:`x_{y} - \text{margin}` staged in its last rows, then the rows in
    blocks. The forward's numbers to the last bit (``x_i - (x_y - margin)``)."""
    torch.gather(x, 1, y, out=tail(z)).sub_(margin)
    for rows, shift in blocks(z):
        torch.sub(x[rows], shift, out=z[rows])
    return z.scatter_(1, y, 0.0).relu_().nan_to_num_(0.0, float("inf"))


def scale_number(grad_output: Tensor, factor: float) -> float:
    """``grad_output * factor`` as torch computes it in ``grad_output``'s dtype
    (:func:`lossutils._reduction.scalar_product`), as a Python number: a 0-d tensor would
    be four bytes more than torch's backward."""
    return scalar_product(grad_output.item(), factor, grad_output.dtype)


MAX_LAST_ROWS = 8
"""The most rows whose sums :func:`gradient_in_place` reads one by one (``ceil(N / C)``)."""


def few_last_rows(n: int, c: int) -> bool:
    """Whether :func:`gradient_in_place` can take an ``(n, c)`` buffer: some rows before the
    last ``ceil(n / c)``, and at most :data:`MAX_LAST_ROWS` of those (each costs a few
    small ops)."""
    k = -(-n // c)
    return n > k and k <= MAX_LAST_ROWS


def gradient_in_place(z: Tensor, x: Tensor, y: Tensor, margin: float, p: int,
                      scale: float) -> Tensor:
    r"""The contiguous hinge buffer ``z`` (N, C) (see :func:`few_last_rows`) turned into the
    gradient: :math:`h = s\,[z > 0]` (``p = 1``) or :math:`s z` (``p = 2``, the 2 in
    ``scale``), and :math:`-\sum_i h_{ni}` at :math:`i = y_n`."""
    n, c = z.shape
    k = -(-n // c)  # the last k rows will hold the other rows' sums
    first, last = z[:n - k], z[n - k:]
    # 1. the last rows' sums, as numbers: each summed into a slot of the first row (the
    #    right class's entry, 0 until its own sum), read, and the 0 put back
    slot = z[0, int(y[0])]
    sums = []
    for row in slopes_(last, p, scale):
        sums.append(torch.sum(row, 0, out=slot).item())
    slot.zero_()
    # 2. the other rows, their sums written over the last rows' entries
    other = tail(z)[:n - k]
    torch.sum(slopes_(first, p, scale), 1, True, out=other).neg_()
    first.scatter_(1, y[:n - k], other)
    # 3. the last rows again, as the forward formed them, and their sums from step 1
    slopes_(hinges_into(last, x[n - k:], y[n - k:], margin), p, scale)
    for row, column, total in zip(last, y[n - k:].flatten().tolist(), sums, strict=True):
        row[column].fill_(-total)  # (not `row[column] = -total`: that makes a 0-d tensor)
    return z


def slopes_(h: Tensor, p: int, scale: Tensor | float) -> Tensor:
    r"""The hinge buffer ``h`` (:math:`\max(0, z)`, NaN-free) turned in place into its
    slopes times ``scale``: :math:`[z > 0]` for ``p = 1``, which for ``h >= 0`` is its sign
    (one unary op, no comparison with a Python scalar), or ``h`` itself for ``p = 2``."""
    return (h.sign_() if p == 1 else h).mul_(scale)
