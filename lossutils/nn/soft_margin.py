"""Module classes of the soft margins: ``SoftMarginLoss`` and ``MultiLabelSoftMarginLoss``.

Same constructor arguments, attributes and ``forward`` as ``torch.nn``; each
``forward`` is one call into :mod:`lossutils.functional`.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

from torch import Tensor

from ..functional import multilabel_soft_margin_loss, soft_margin_loss
from .base import _Loss, _WeightedLoss

__all__ = ["SoftMarginLoss", "MultiLabelSoftMarginLoss"]


class SoftMarginLoss(_Loss):
    r"""Two-class logistic loss between ``input`` :math:`x` and a target :math:`y \in \{1, -1\}`.

    .. math::
        l_n = \log(1 + e^{-y_n x_n})

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n` over all :math:`N` elements,
    ``'sum'`` returns :math:`\sum_n l_n`.

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (broadcastable to input), output scalar or
        :math:`(*)` for ``'none'``.

    Examples:
        >>> loss = SoftMarginLoss()
        >>> x = torch.tensor([2.0, -1.0], requires_grad=True)
        >>> output = loss(x, torch.tensor([1.0, 1.0]))
        >>> output
        tensor(0.7201, grad_fn=<SoftMarginLossFunctionBackward>)
        >>> output.backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    r"""One-versus-all logistic loss for multi-label targets :math:`y_{nc} \in \{0, 1\}`.

    .. math::
        l_n = -\frac{1}{C}\sum_c w_c \big[y_{nc} \log\sigma(x_{nc})
            + (1 - y_{nc}) \log\sigma(-x_{nc})\big]

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns
    :math:`\sum_n l_n`. :math:`\log\sigma(x)` is computed as
    :math:`\min(x, 0) - \log(1 + e^{-|x|})`, finite for any finite score.

    Args:
        weight: per-class weights :math:`w` (shape :math:`(C)`), a buffer. Default ``None``
            (all ones).
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(N, C)` or :math:`(C)`, target the same shape, output scalar or
        :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = MultiLabelSoftMarginLoss(reduction="none")
        >>> x = torch.tensor([[3.0, -3.0], [0.0, 0.0]], requires_grad=True)
        >>> output = loss(x, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
        >>> output
        tensor([0.0486, 0.6931], grad_fn=<MultiLabelSoftMarginLossFunctionBackward>)
        >>> output.sum().backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multilabel_soft_margin_loss(input, target, weight=self.weight,
                                           reduction=self.reduction)
