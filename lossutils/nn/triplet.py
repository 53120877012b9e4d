"""Module classes of the triplet losses: ``TripletMarginLoss`` and
``TripletMarginWithDistanceLoss``.

Same constructor arguments, attributes and ``forward`` as ``torch.nn``; each
``forward`` is one call into :mod:`lossutils.functional`.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ..functional import triplet_margin_loss, triplet_margin_with_distance_loss
from .base import _Loss
from .distance import PairwiseDistance

__all__ = ["TripletMarginLoss", "TripletMarginWithDistanceLoss"]


class TripletMarginLoss(_Loss):
    r"""Triplet loss: the anchor should be nearer the positive than the negative, by ``margin``.

    .. math::
        l_i = \max(0, \text{margin} + d(a_i, p_i) - d(a_i, n_i)), \qquad
        d(x, y) = \|x - y + \epsilon\|_p

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_i l_i`, ``'sum'`` returns
    :math:`\sum_i l_i`.

    Args:
        margin: must be positive. Default 1.
        p: the norm degree. Default 2.
        eps: added to each component of the difference. Default ``1e-6``.
        swap: use :math:`\min(d(a, n), d(p, n))` as the negative distance. Default ``False``.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        anchor, positive, negative :math:`(N, D)` or :math:`(D)`, output scalar or :math:`(N)`
        for ``'none'``.

    Examples:
        >>> loss = TripletMarginLoss(eps=0.0)
        >>> anchor = torch.zeros(1, 2, requires_grad=True)
        >>> output = loss(anchor, torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]]))
        >>> output
        tensor(5., grad_fn=<TripletMarginLossFunctionBackward>)
        >>> output.backward()
    """

    margin: float
    p: float
    eps: float
    swap: bool

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: margin must be greater than 0, got {margin}")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                   eps=self.eps, swap=self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    r"""Triplet loss with a distance :math:`d` of your choice.

    .. math::
        l_i = \max(0, \text{margin} + d(a_i, p_i) - d(a_i, n_i))

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_i l_i`, ``'sum'`` returns
    :math:`\sum_i l_i`.

    Args:
        distance_function: a callable ``(x, y) -> distances``; default a
            :class:`PairwiseDistance` child module (so it shows in ``repr``, as in torch).
        margin: must be positive. Default 1.
        swap: use :math:`\min(d(a, n), d(p, n))` as the negative distance. Default ``False``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``. No legacy flags.

    Shape:
        anchor, positive, negative :math:`(N, *)` or whatever ``distance_function`` accepts,
        output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> l1 = lambda x, y: (x - y).abs().sum(-1)
        >>> loss = TripletMarginWithDistanceLoss(distance_function=l1, margin=0.5)
        >>> anchor = torch.zeros(1, 2, requires_grad=True)
        >>> output = loss(anchor, torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]]))
        >>> output
        tensor(6.5000, grad_fn=<TripletMarginFunctionBackward>)
        >>> output.backward()
    """

    margin: float
    swap: bool

    def __init__(self, *, distance_function: Callable[[Tensor, Tensor], Tensor] | None = None,
                 margin: float = 1.0, swap: bool = False, reduction: str = "mean") -> None:
        super().__init__(size_average=None, reduce=None, reduction=reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: margin must be greater than 0, "
                             f"got {margin}")
        self.distance_function = (distance_function if distance_function is not None
                                  else PairwiseDistance())
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_with_distance_loss(anchor, positive, negative,
                                                 distance_function=self.distance_function,
                                                 margin=self.margin, swap=self.swap,
                                                 reduction=self.reduction)
