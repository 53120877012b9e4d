"""Module classes of the multi-class hinges: ``MultiMarginLoss`` and ``MultiLabelMarginLoss``.

Same constructor arguments, attributes and ``forward`` as ``torch.nn``; each
``forward`` is one call into :mod:`lossutils.functional`.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

from torch import Tensor

from ..functional import multi_margin_loss, multilabel_margin_loss
from .base import _Loss, _WeightedLoss

__all__ = ["MultiMarginLoss", "MultiLabelMarginLoss"]


class MultiMarginLoss(_WeightedLoss):
    r"""Multi-class hinge: the right class :math:`y` should beat every other by ``margin``.

    .. math::
        l_n = \frac{1}{C}\sum_{i \ne y_n} w_{y_n} \max(0, \text{margin} - x_{n y_n} + x_{ni})^p

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns
    :math:`\sum_n l_n`.

    Args:
        p: 1 or 2. Default 1.
        margin: Default 1.
        weight: per-class weights (shape :math:`(C)`), a buffer. Default ``None``.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(N, C)` or :math:`(C)`, target :math:`(N)` or :math:`()` class indices,
        output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = MultiMarginLoss()
        >>> x = torch.tensor([[0.1, 0.2, 0.4, 0.8]], requires_grad=True)
        >>> output = loss(x, torch.tensor([3]))
        >>> output
        tensor(0.3250, grad_fn=<MultiMarginLossFunctionBackward>)
        >>> output.backward()
    """

    margin: float
    p: int

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
                 size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p != 1 and p != 2:
            raise ValueError(f"only p == 1 and p == 2 supported: MultiMarginLoss got p={p!r}")
        if weight is not None and weight.dim() != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got "
                             f"{weight.dim()}D instead: weight must be one-dimensional, got "
                             f"weight of shape {tuple(weight.shape)}")
        self.p = p
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                 reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    r"""Multi-label hinge: each listed target class should beat each unlisted class by 1.

    .. math::
        l_n = \frac{1}{C}\sum_{j \in T_n}\sum_{i \notin T_n} \max(0, 1 - x_{nj} + x_{ni})

    where :math:`T_n` is the list in ``target[n]`` up to its first -1; and,
    with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns
    :math:`\sum_n l_n`.

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(N, C)` or :math:`(C)`, target the same shape (int64, padded with -1),
        output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = MultiLabelMarginLoss()
        >>> x = torch.tensor([[0.1, 0.2, 0.4, 0.8]], requires_grad=True)
        >>> output = loss(x, torch.tensor([[3, 0, -1, 1]]))
        >>> output
        tensor(0.8500, grad_fn=<MultiLabelMarginLossFunctionBackward>)
        >>> output.backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multilabel_margin_loss(input, target, reduction=self.reduction)
