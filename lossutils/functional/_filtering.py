r"""Gradient filtering: skip the vocabulary blocks whose softmax entries are all negligible.

The gradient of a linear cross-entropy w.r.t. the logits is
:math:`g_{nc} = \kappa_n q_{nc} - r_n p_{nc}` (times the soft-cap's slope), with
:math:`q_n` the model's softmax, :math:`p_n` the target row and :math:`\kappa_n`
the row's coefficient (:mod:`._chunk_passes`). A trained language model puts
almost all of :math:`q_n` on a few hundred words, so most entries
:math:`q_{nc}` are tiny, and so are their contributions
:math:`\kappa_n q_{nc} W_c` to :math:`\partial L/\partial x_n` and
:math:`\kappa_n q_{nc} x_n` to :math:`\partial L/\partial W_c`. With
``filter_eps`` :math:`= \epsilon`, a sub-block of ``FILTER_BLOCK`` columns of a
chunk's logits in which *every* :math:`q_{nc} < \epsilon` skips its two gradient
products; only its target entries (the one-hot :math:`-r_n p_{n y_n}`, and the
label smoothing's rank-one part) are added, exactly and cheaply. The logits
themselves are still computed (the loss needs all of them), so at most two of
the three products can be saved.

The error is bounded entry by entry: every dropped term has
:math:`q_{nc} < \epsilon` and a soft-cap slope in :math:`[0, 1]`, so

.. math::
    \Bigl\lVert \Delta \frac{\partial L}{\partial x_n} \Bigr\rVert
      \le |\kappa_n| \sum_{c\ \text{skipped}} q_{nc} \lVert W_c \rVert
      < |\kappa_n|\, \epsilon \sum_c \lVert W_c \rVert, \qquad
    \Bigl\lVert \Delta \frac{\partial L}{\partial W_c} \Bigr\rVert
      < \epsilon \sum_n |\kappa_n| \lVert x_n \rVert,

and :math:`|\Delta\, \partial L/\partial b_c| < \epsilon \sum_n |\kappa_n|`.

A block is skipped only when *all* rows of the chunk are negligible in it, so
the order of the vocabulary matters: with ``sort_vocab``, the classes are
processed in descending order of their average logit over the batch,
:math:`\bar z_c = \bar x \cdot W_c + b_c` (exact: the average of an affine
map is the map of the average), so the rarely likely words share blocks.

Used in :doc:`/chapters/07_llm_scale` (the chunked linear cross-entropy).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

FILTER_BLOCK = 256
"""Columns per filtered sub-block: small enough to skip, large enough for a fast product."""


def kept_sub_blocks(values: Tensor, threshold: Tensor) -> list[bool]:
    """Whether each ``FILTER_BLOCK``-wide sub-block of ``values`` (rows x columns,
    non-negative, contiguous) has an entry at or above its row's ``threshold``."""
    rows, width = values.shape
    full = width // FILTER_BLOCK * FILTER_BLOCK
    maxima = []
    if full:
        maxima.append(values[:, :full].reshape(rows, -1, FILTER_BLOCK).amax(2))
    if full < width:
        maxima.append(values[:, full:].amax(1, keepdim=True))
    return (torch.cat(maxima, 1) >= threshold.unsqueeze(1)).any(0).tolist()


def runs(keep: list[bool], width: int, wanted: bool = True) -> list[tuple[int, int]]:
    """The column ranges ``(a, b)`` of the maximal runs of sub-blocks whose ``keep`` is
    ``wanted``, clipped to ``width``."""
    out, start = [], None
    for i, k in enumerate([*keep, not wanted]):
        if k == wanted and start is None:
            start = i
        elif k != wanted and start is not None:
            out.append((start * FILTER_BLOCK, min(i * FILTER_BLOCK, width)))
            start = None
    return out


def vocab_order(x: Tensor, W: Tensor, b: Tensor | None) -> tuple[Tensor, Tensor]:
    r"""The permutation that sorts the classes by descending average logit
    :math:`\bar x \cdot W_c + b_c`, and its inverse."""
    average = W @ x.mean(0)
    if b is not None:
        average = average + b
    order = torch.argsort(average, descending=True)
    return order, torch.empty_like(order).scatter_(0, order, torch.arange(len(order)))


def vocab_sorted(problem, settings):
    """The problem with the classes in descending order of their average logit
    (:func:`._filtering.vocab_order`; class indices, 2-d head), its settings, and the
    order. Costs a copy of the head."""
    x, W, b, target, weight = problem
    order, inverse = vocab_order(x, W, b)
    ignore = settings.ignore_index
    ignore_sorted = int(inverse[ignore]) if 0 <= ignore < len(order) else ignore
    target = torch.where(target == ignore, ignore_sorted,
                         inverse[target.clamp(0, max(len(order) - 1, 0))])
    permuted = problem._replace(W=W[order], b=None if b is None else b[order], target=target,
                                weight=None if weight is None else weight[order])
    return permuted, replace(settings, sort_vocab=False, ignore_index=ignore_sorted), order


def unsorted(grads, order: Tensor):
    """The gradients w.r.t. the head and its bias back in the caller's order of classes."""
    return grads._replace(**{
        name: torch.empty_like(g).index_copy_(0, order, g)
        for name, g in (("linear_weight", grads.linear_weight),
                        ("linear_bias", grads.linear_bias)) if g is not None})
