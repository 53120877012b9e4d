r"""The target of each row of a cross-entropy as a row vector :math:`p_n` over the classes.

Every variant of cross-entropy that :mod:`lossutils.functional.linear_cross_entropy`
computes is :math:`l_n = \sum_c p_{nc}(\mathrm{lse}_n - z_{nc})`, with :math:`p_n` the
*true* distribution of the row (the course's :math:`P`; the model's softmax is
:math:`q_n`, see the notation page):

* class index :math:`y_n`: :math:`p_n = (1-\varepsilon) w_{y_n} e_{y_n} + \frac{\varepsilon}{C} w`
  (zero on ignored rows), :class:`ClassIndexTargets`;
* probabilities :math:`t_n`:
  :math:`p_{nc} = w_c \bigl((1-\varepsilon) t_{nc} + \frac{\varepsilon}{C}\bigr)`,
  :class:`ProbabilityTargets`.

:math:`p` is never built for the whole vocabulary: :meth:`dot` and
:meth:`subtract` use it one block of columns ``lo:hi`` at a time. Both kinds
answer the same questions, so the chunked loops never ask which kind they hold.

A :class:`ClassIndexTargets` may see only the columns ``[start, start + width)``
of a vocabulary of ``num_classes``: one rank's shard in
:mod:`lossutils.distributed.vocab_parallel`. Its blocks ``lo:hi`` are then
numbered within the shard, while :meth:`row_mass` is over the whole
vocabulary (it needs no logits, so every rank computes it alone).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class ClassIndexTargets:
    r""":math:`p_n = (1-\varepsilon) w_{y_n} e_{y_n} + \frac{\varepsilon}{C} w`, zero where
    :math:`y_n` is ``ignore_index``; seen on the columns ``[start, start + width)``."""

    valid: Tensor  # y_n != ignore_index
    index: Tensor  # y_n, 0 where ignored
    one_hot: Tensor  # the coefficient on e_{y_n}: (1 - eps) w_{y_n}, 0 where ignored
    uniform: Tensor  # the coefficient on w: eps / C, 0 where ignored
    weight: Tensor | None  # the class weights of the whole vocabulary
    eps: float
    num_classes: int
    start: int = 0  # the first column this view sees (a shard's offset)

    @classmethod
    def build(cls, target: Tensor, weight: Tensor | None, ignore_index: int, eps: float,
              num_classes: int, dtype: torch.dtype, start: int = 0) -> ClassIndexTargets:
        valid = target != ignore_index
        index = torch.where(valid, target, 0)
        w_y = weight[index] if weight is not None else torch.ones(target.shape, dtype=dtype)
        one_hot = torch.where(valid, (1 - eps) * w_y, 0)
        # built in ``dtype`` directly: a python-float where() would round eps / C to float32
        uniform = valid.to(dtype) * (eps / num_classes)
        return cls(valid, index, one_hot, uniform, weight, eps, num_classes, start)

    def rows(self, rows: slice) -> ClassIndexTargets:
        """The same targets for ``rows`` only."""
        return replace(self, valid=self.valid[rows], index=self.index[rows],
                       one_hot=self.one_hot[rows], uniform=self.uniform[rows])

    def mask(self, per_row: Tensor) -> Tensor:
        """``per_row`` with ignored rows set to exactly zero (even where it is nan or inf)."""
        return torch.where(self.valid, per_row, 0)

    def total_weight(self) -> Tensor:
        r""":math:`\sum_n w_{y_n}` over the counted rows: what ``'mean'`` divides by."""
        if self.weight is None:
            return self.valid.sum()
        return torch.where(self.valid, self.weight[self.index], 0).sum()

    def row_mass(self) -> Tensor:
        r""":math:`P_n = \sum_c p_{nc}` over the whole vocabulary, from the targets alone."""
        class_weights = self.weight.sum() if self.weight is not None else self.num_classes
        return self.one_hot + self.uniform * class_weights

    def in_block(self, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """Which rows' class lies in the block ``lo:hi`` of this view, and its column in the
        block (clamped into it where it does not)."""
        local = self.index - (self.start + lo)
        inside = (local >= 0) & (local < hi - lo) & self.valid
        return inside, local.clamp(0, max(hi - lo - 1, 0)).unsqueeze(1)

    def block_weight(self, lo: int, hi: int) -> Tensor | None:
        """The class weights of the block ``lo:hi`` of this view (None without weights)."""
        return None if self.weight is None else self.weight[self.start + lo:self.start + hi]

    def dot(self, z: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """``(<p_n, z_n>, sum_c p_nc)`` over the block of columns ``lo:hi`` held in ``z``."""
        inside, column = self.in_block(lo, hi)
        dot = torch.where(inside, self.one_hot * z.gather(1, column).squeeze(1), 0)
        mass = torch.where(inside, self.one_hot, 0)
        if self.eps > 0:
            w = self.block_weight(lo, hi)
            # mask first: an ignored row may hold -inf logits, and 0 * -inf is nan
            spread = z.sum(1) if w is None else z @ w
            dot = dot + torch.where(self.valid, self.uniform * spread, 0)
            mass = mass + self.uniform * (hi - lo if w is None else w.sum())
        return dot, mass

    def subtract(self, dz: Tensor, scale: Tensor, lo: int, hi: int) -> None:
        """``dz -= scale_n * p_n`` on the block ``lo:hi``, in place."""
        inside, column = self.in_block(lo, hi)
        dz.scatter_add_(1, column, torch.where(inside, -scale * self.one_hot, 0).unsqueeze(1))
        if self.eps > 0:
            w = self.block_weight(lo, hi)
            if w is None:
                dz.sub_((scale * self.uniform).unsqueeze(1))
            else:
                dz.addr_(scale * self.uniform, w, alpha=-1)


@dataclass(frozen=True)
class ProbabilityTargets:
    r""":math:`p_{nc} = w_c t'_{nc}` with :math:`t' = (1-\varepsilon) t + \frac{\varepsilon}{C}`."""

    target: Tensor  # t, (N, C)
    weight: Tensor | None
    eps: float
    num_classes: int

    def rows(self, rows: slice) -> ProbabilityTargets:
        """The same targets for ``rows`` only."""
        return replace(self, target=self.target[rows])

    def mask(self, per_row: Tensor) -> Tensor:
        """Every row counts: ``per_row`` as it is."""
        return per_row

    def smoothed(self, lo: int, hi: int) -> Tensor:
        r""":math:`t'` on the block ``lo:hi``, before the class weights."""
        return self.target[:, lo:hi] * (1 - self.eps) + self.eps / self.num_classes

    def _p(self, lo: int, hi: int) -> Tensor:
        p = self.smoothed(lo, hi)
        return p if self.weight is None else p * self.weight[lo:hi]

    def row_mass(self) -> Tensor:
        r""":math:`P_n = \sum_c p_{nc}`, from the targets alone."""
        return self._p(0, self.num_classes).sum(1)

    def dot(self, z: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """``(<p_n, z_n>, sum_c p_nc)`` over the block of columns ``lo:hi`` held in ``z``."""
        p = self._p(lo, hi)
        return (p * z).sum(1), p.sum(1)

    def subtract(self, dz: Tensor, scale: Tensor, lo: int, hi: int) -> None:
        """``dz -= scale_n * p_n`` on the block ``lo:hi``, in place."""
        dz.sub_(scale.unsqueeze(1) * self._p(lo, hi))


TargetRows = ClassIndexTargets | ProbabilityTargets
