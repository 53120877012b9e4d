r"""The online log-sum-exp: :math:`\log\sum_c e^{z_c}` of a row whose columns arrive in blocks.

Only a running maximum :math:`m` and the rescaled sum :math:`s = \sum_c e^{z_c - m}`
over the columns seen so far are kept. When a block raises the maximum from
:math:`m` to :math:`m'`, the sum so far is rescaled, :math:`s \leftarrow s\,
e^{m - m'}`, and the block adds :math:`\sum_{c \in \text{block}} e^{z_c - m'}`:
every exponent is at most 0, so nothing overflows, and in the end
:math:`\log\sum_c e^{z_c} = m + \log s`.

Cross-entropy against a target row :math:`p` (the true distribution) also needs
:math:`T = \sum_c p_c (z_c - m)` and :math:`P = \sum_c p_c`, kept relative to
the same running maximum (:math:`T \leftarrow T + (m - m') P` when it moves),
because then :math:`l = \sum_c p_c (\mathrm{lse} - z_c) = P \log s - T`.

Used by :mod:`lossutils.functional.linear_cross_entropy` and by each rank of
:mod:`lossutils.distributed.vocab_parallel`, one block of logits at a time,
for all the rows of a chunk at once.
"""

from __future__ import annotations

import torch
from torch import Tensor


class OnlineLogSumExp:
    """The running :math:`m, s, T, P` of a chunk of rows (one value per row each).

    Per block of columns: :meth:`rebase` the block onto the new running maximum,
    then :meth:`add` it with its :math:`\\sum_c p_c (z_c - m')` and :math:`\\sum_c p_c`.
    """

    def __init__(self) -> None:
        self.max: Tensor | None = None  # m
        self.sum_exp: Tensor | None = None  # s = sum_c exp(z_c - m)
        self.target_dot: Tensor | None = None  # T = sum_c p_c (z_c - m)
        self.target_mass: Tensor | None = None  # P = sum_c p_c

    def rebase(self, block: Tensor) -> Tensor:
        """Raise the running maximum to cover ``block`` (rows x columns), rescale the sums so
        far to it, and return ``block - m'``, computed in place: every entry at most 0."""
        block_max = block.amax(1)
        if self.max is None:
            self.max = block_max
        else:
            new_max = torch.maximum(self.max, block_max)
            shift = self.max - new_max  # m - m' <= 0
            self.sum_exp = self.sum_exp * shift.exp()
            self.target_dot = self.target_dot + shift * self.target_mass
            self.max = new_max
        return block.sub_(self.max.unsqueeze(1))

    def add(self, shifted: Tensor, target_dot: Tensor, target_mass: Tensor) -> Tensor:
        """Add a block returned by :meth:`rebase`, with its :math:`\\sum_c p_c (z_c - m)` and
        :math:`\\sum_c p_c`. Exponentiates ``shifted`` in place and returns it:
        :math:`e^{z - m}`, which a single-block gradient reuses."""
        if self.sum_exp is None:
            self.sum_exp = torch.zeros_like(self.max)
            self.target_dot, self.target_mass = target_dot, target_mass
        else:
            self.target_dot = self.target_dot + target_dot
            self.target_mass = self.target_mass + target_mass
        self.sum_exp = self.sum_exp + shifted.exp_().sum(1)
        return shifted

    def loss_and_lse(self) -> tuple[Tensor, Tensor]:
        r"""Each row's cross-entropy :math:`P \log s - T` and its
        :math:`\mathrm{lse} = m + \log s`."""
        log_sum = self.sum_exp.log()
        return self.target_mass * log_sum - self.target_dot, self.max + log_sum
