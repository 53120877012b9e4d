r"""The target of each row of a cross-entropy as a row vector :math:`q_n` over the classes.

Every variant of cross-entropy that :mod:`lossutils.functional.linear_cross_entropy`
computes is :math:`l_n = \sum_c q_{nc}(\mathrm{lse}_n - z_{nc})`, with

* class index :math:`y_n`: :math:`q_n = (1-\varepsilon) w_{y_n} e_{y_n} + \frac{\varepsilon}{C} w`
  (zero on ignored rows), :class:`ClassIndexTargets`;
* probabilities :math:`t_n`:
  :math:`q_{nc} = w_c \bigl((1-\varepsilon) t_{nc} + \frac{\varepsilon}{C}\bigr)`,
  :class:`ProbabilityTargets`.

:math:`q` is never built for the whole vocabulary: :meth:`dot` and
:meth:`subtract` use it one block of columns ``lo:hi`` at a time. Both kinds
answer the same questions, so the chunked loops never ask which kind they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class ClassIndexTargets:
    r""":math:`q_n = (1-\varepsilon) w_{y_n} e_{y_n} + \frac{\varepsilon}{C} w`, zero where
    :math:`y_n` is ``ignore_index``."""

    valid: Tensor  # y_n != ignore_index
    index: Tensor  # y_n, 0 where ignored
    one_hot: Tensor  # the coefficient on e_{y_n}: (1 - eps) w_{y_n}, 0 where ignored
    uniform: Tensor  # the coefficient on w: eps / C, 0 where ignored
    weight: Tensor | None
    eps: float
    num_classes: int

    @classmethod
    def build(cls, target: Tensor, weight: Tensor | None, ignore_index: int, eps: float,
              num_classes: int, dtype: torch.dtype) -> ClassIndexTargets:
        valid = target != ignore_index
        index = torch.where(valid, target, 0)
        w_y = weight[index] if weight is not None else torch.ones(target.shape, dtype=dtype)
        one_hot = torch.where(valid, (1 - eps) * w_y, 0)
        # built in ``dtype`` directly: a python-float where() would round eps / C to float32
        uniform = valid.to(dtype) * (eps / num_classes)
        return cls(valid, index, one_hot, uniform, weight, eps, num_classes)

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
        r""":math:`Q_n = \sum_c q_{nc}`, from the targets alone."""
        class_weights = self.weight.sum() if self.weight is not None else self.num_classes
        return self.one_hot + self.uniform * class_weights

    def _in_block(self, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """Which rows' class lies in ``lo:hi``, and its column in the block (clamped)."""
        inside = (self.index >= lo) & (self.index < hi) & self.valid
        return inside, (self.index - lo).clamp(0, hi - lo - 1).unsqueeze(1)

    def dot(self, z: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """``(<q_n, z_n>, sum_c q_nc)`` over the block of columns ``lo:hi`` held in ``z``."""
        inside, column = self._in_block(lo, hi)
        dot = torch.where(inside, self.one_hot * z.gather(1, column).squeeze(1), 0)
        mass = torch.where(inside, self.one_hot, 0)
        if self.eps > 0:
            w = self.weight[lo:hi] if self.weight is not None else None
            # mask first: an ignored row may hold -inf logits, and 0 * -inf is nan
            spread = z.sum(1) if w is None else z @ w
            dot = dot + torch.where(self.valid, self.uniform * spread, 0)
            mass = mass + self.uniform * (hi - lo if w is None else w.sum())
        return dot, mass

    def subtract(self, dz: Tensor, scale: Tensor, lo: int, hi: int) -> None:
        """``dz -= scale_n * q_n`` on the block ``lo:hi``, in place."""
        inside, column = self._in_block(lo, hi)
        dz.scatter_add_(1, column, torch.where(inside, -scale * self.one_hot, 0).unsqueeze(1))
        if self.eps > 0:
            if self.weight is None:
                dz.sub_((scale * self.uniform).unsqueeze(1))
            else:
                dz.addr_(scale * self.uniform, self.weight[lo:hi], alpha=-1)


@dataclass(frozen=True)
class ProbabilityTargets:
    r""":math:`q_{nc} = w_c t'_{nc}` with :math:`t' = (1-\varepsilon) t + \frac{\varepsilon}{C}`."""

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

    def _q(self, lo: int, hi: int) -> Tensor:
        q = self.smoothed(lo, hi)
        return q if self.weight is None else q * self.weight[lo:hi]

    def row_mass(self) -> Tensor:
        r""":math:`Q_n = \sum_c q_{nc}`, from the targets alone."""
        return self._q(0, self.num_classes).sum(1)

    def dot(self, z: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """``(<q_n, z_n>, sum_c q_nc)`` over the block of columns ``lo:hi`` held in ``z``."""
        q = self._q(lo, hi)
        return (q * z).sum(1), q.sum(1)

    def subtract(self, dz: Tensor, scale: Tensor, lo: int, hi: int) -> None:
        """``dz -= scale_n * q_n`` on the block ``lo:hi``, in place."""
        dz.sub_(scale.unsqueeze(1) * self._q(lo, hi))


TargetRows = ClassIndexTargets | ProbabilityTargets
