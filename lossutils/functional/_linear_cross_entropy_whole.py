r"""Small linear cross-entropy problems in one pass: the whole ``N x C`` logits at once.

When the logits fit in one chunk and one block anyway (at most
:data:`~._linear_cross_entropy_args.SMALL_LOGITS` numbers, class-index targets,
a 2-d head, single or double precision, none of lossutils' extensions), the
chunked passes of :mod:`._chunk_passes` would run once, and their generality
(target objects, slices, per-chunk row weights) would cost more than the
arithmetic. This is the same computation written out for that case: one buffer
holds the logits, then :math:`z - m`, then :math:`e^{z - m}`, then the gradient
w.r.t. the logits,

.. math::
    l_n = P_n \log s_n - T_n, \qquad
    \frac{\partial L}{\partial z_{nc}} = r_n \Bigl(\frac{P_n}{s_n} e^{z_{nc} - m_n}
        - (1-\varepsilon) w_{y_n} [c = y_n] - \frac{\varepsilon}{C} w_c\Bigr),

with :math:`s_n = \sum_c e^{z_{nc} - m_n}`,
:math:`T_n = (1-\varepsilon) w_{y_n} (z_{n y_n} - m_n) + \frac{\varepsilon}{C} \sum_c w_c
(z_{nc} - m_n)` and :math:`P_n = (1-\varepsilon) w_{y_n} + \frac{\varepsilon}{C} \sum_c w_c`
(all zero on ignored rows), chained through :math:`z = x W^\top + b` by two
products and a sum. For ``'mean'`` and ``'sum'`` the gradients are formed in
forward, where the row weights :math:`r_n` are known; anything else goes through
the chunked passes, which give the same numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Targets(NamedTuple):
    """The class-index targets of the whole batch, as the formulas read them, ``(N, 1)``."""

    valid: Tensor | None  # y_n != ignore_index (None: every row is kept, as the checks saw)
    index: Tensor  # y_n, clamped into [0, C): the entry an ignored row reads (times 0)
    one_hot: Tensor | None  # (1 - eps) w_{y_n}, 0 where ignored (None: 1 on the kept rows)
    uniform: Tensor | None  # eps / C on the kept rows (None without smoothing)
    mass: Tensor | None  # P_n, 0 where ignored (None: 1 on the kept rows)
    kept_weight: Tensor | int  # sum_n w_{y_n} over the kept rows: what 'mean' divides by


def targets(target: Tensor, weight: Tensor | None, ignore_index: int, eps: float,
            num_classes: int, dtype: torch.dtype, ignored: bool = True) -> Targets:
    """:class:`Targets` of the class indices ``target`` (N,), weights ``weight`` (C,);
    ``ignored`` False when the checks saw that no target equals ``ignore_index``."""
    y = target.unsqueeze(1)
    if not ignored and weight is None and not eps:  # p_n = e_{y_n} on every row: no masks
        return Targets(None, y, None, None, None, target.shape[0])
    valid = y != ignore_index
    index = y.clamp(0, num_classes - 1)  # every valid y_n is in range already (checked)
    kept = valid.to(dtype)
    if weight is None and not eps:  # the common case: p_n = e_{y_n} on the kept rows
        return Targets(valid, index, None, None, None, kept.sum())
    w_y = kept if weight is None else weight[index] * kept
    if not eps:
        return Targets(valid, index, w_y, None, w_y, w_y.sum())
    one_hot = w_y * (1 - eps)
    uniform = kept * (eps / num_classes)
    total = num_classes if weight is None else weight.sum()
    return Targets(valid, index, one_hot, uniform, one_hot + uniform * total, w_y.sum())


def forward(x: Tensor, W: Tensor, b: Tensor | None, target: Tensor, weight: Tensor | None,
            settings, want: tuple[bool, bool, bool]):
    """The loss, every row's lse ``(N, 1)`` (for ``'none'``, whose backward reads it; else
    None) and, for ``'mean'``/``'sum'``, the gradients ``want`` asks for (None for the
    others). Each temporary is dropped as soon as it has served: at the end only the logits'
    buffer (now their gradient) and the gradients remain, the fewest bytes any method can
    hold."""
    reduction = settings.reduction
    t = targets(target, weight, settings.ignore_index, settings.label_smoothing, W.shape[0],
                x.dtype, settings.ignored)
    z = torch.mm(x, W.T) if b is None else torch.addmm(b, x, W.T)  # the one N x C buffer
    m = z.amax(1, keepdim=True)
    z.sub_(m)  # z - m <= 0: exp cannot overflow
    dot = z.gather(1, t.index)
    if t.one_hot is not None:
        dot = t.one_hot * dot
    if t.uniform is not None:  # sum_c w_c (z_c - m), before z is exponentiated
        dot = dot + t.uniform * (z.sum(1, keepdim=True) if weight is None else z @ weight[:, None])
    s = z.exp_().sum(1, keepdim=True)
    log_s = s.log()
    rows = log_s - dot if t.mass is None else t.mass * log_s - dot
    del dot
    # where, not a product: an ignored row's logits may be -inf, and 0 * -inf is nan
    rows = rows if t.valid is None else torch.where(t.valid, rows, 0.0)
    lse = m.add_(log_s) if reduction == "none" else None
    del m, log_s
    if reduction == "none":
        return rows.squeeze(1), lse, (None, None, None)
    loss = rows.sum() if reduction == "sum" else rows.sum() / t.kept_weight
    del rows
    if not any(want):
        return loss, lse, (None, None, None)
    # r_n: 1 ('sum') or 1 / sum_n w_{y_n} ('mean'), exactly 0 on ignored rows (even for 1 / 0)
    if t.valid is None:  # every row kept: 1 / N, rounded once (as the reciprocal of float N)
        scale = torch.full_like(s, 1.0 if reduction == "sum" else 1 / t.kept_weight)
    else:
        scale = t.valid.to(z.dtype) if reduction == "sum" else torch.where(
            t.valid, t.kept_weight.reciprocal(), 0.0)
    dz = z.mul_(scale / s if t.mass is None else (scale * t.mass).div_(s))  # r_n P_n q_nc
    del s
    scale.neg_()  # -r_n from here on
    dz.scatter_add_(1, t.index, scale if t.one_hot is None else scale * t.one_hot)
    if t.uniform is not None:
        dz.addcmul_(scale, t.uniform * (1 if weight is None else weight))
    del scale, t
    return loss, lse, (dz @ W if want[0] else None, dz.T @ x if want[1] else None,
                       dz.sum(0) if want[2] else None)
