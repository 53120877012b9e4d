"""Module classes of binary cross-entropy: on probabilities and on logits.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

from torch import Tensor

from ..functional import binary_cross_entropy, binary_cross_entropy_with_logits
from .base import _Loss, _WeightedLoss

__all__ = ["BCELoss", "BCEWithLogitsLoss"]


class BCELoss(_WeightedLoss):
    r"""Binary cross-entropy between probabilities ``input`` and targets in :math:`[0, 1]`.

    .. math::
        \ell(x, y) = L = \{l_1, \dots, l_N\}^\top, \qquad
        l_n = -w_n \big[y_n \log x_n + (1 - y_n) \log(1 - x_n)\big]

    and, with ``reduction``: ``'none'`` returns :math:`L`, ``'mean'`` returns
    :math:`\frac{1}{N}\sum_n l_n` (divided by :math:`N`, also with weights),
    ``'sum'`` returns :math:`\sum_n l_n`. Each log is clamped at -100, so
    :math:`x_n \in \{0, 1\}` gives a finite loss (100) and a finite gradient.

    Args:
        weight: rescaling weight, broadcast to the input's shape; a buffer, never trained.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)` in :math:`[0, 1]`, target :math:`(*)` (same shape and dtype),
        output scalar or :math:`(*)` for ``'none'``.

    Examples:
        >>> loss = BCELoss()
        >>> p = torch.rand(3, 2, requires_grad=True)
        >>> loss(p, torch.rand(3, 2)).backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    r"""Binary cross-entropy on logits: a sigmoid and :class:`BCELoss` in one stable step.

    .. math::
        l_{n,c} = -w_{n,c} \big[p_c\, y_{n,c} \log \sigma(x_{n,c})
                  + (1 - y_{n,c}) \log(1 - \sigma(x_{n,c}))\big]

    with ``pos_weight`` :math:`p_c` for the positives of class :math:`c` (the last
    dim, by broadcasting). With ``reduction``: ``'none'`` returns the losses,
    ``'mean'`` their mean over all elements, ``'sum'`` their sum. The log-sigmoid
    is computed as :math:`\min(x, 0) - \log(1 + e^{-|x|})`, finite for any finite logit.

    Args:
        weight: rescaling weight, broadcast to the input's shape (a buffer).
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        pos_weight: weight of the positive examples, broadcast with the target (a buffer).

    Shape:
        input :math:`(*)`, target :math:`(*)` (same shape), output scalar or :math:`(*)` for
        ``'none'``.

    Examples:
        >>> loss = BCEWithLogitsLoss(pos_weight=torch.full((64,), 3.0))
        >>> x = torch.randn(10, 64, requires_grad=True)
        >>> loss(x, torch.ones(10, 64)).backward()
    """

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean",
                 pos_weight: Tensor | None = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight,
                                                pos_weight=self.pos_weight,
                                                reduction=self.reduction)
