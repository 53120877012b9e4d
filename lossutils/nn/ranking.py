"""Module classes of the ranking and embedding hinges: ``MarginRankingLoss``,
``HingeEmbeddingLoss`` and ``CosineEmbeddingLoss``.

Same constructor arguments, attributes and ``forward`` as ``torch.nn``; each
``forward`` is one call into :mod:`lossutils.functional`.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

from torch import Tensor

from ..functional import cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss
from .base import _Loss

__all__ = ["MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss"]


class MarginRankingLoss(_Loss):
    r"""Ranking hinge: :math:`y = 1` means :math:`x_1` should rank above :math:`x_2`,
    :math:`y = -1` below.

    .. math::
        l_n = \max(0, -y_n (x_{1,n} - x_{2,n}) + \text{margin})

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns
    :math:`\sum_n l_n`.

    Args:
        margin: the required gap. Default 0.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input1, input2, target :math:`(N)` or :math:`()` (the same number of dims,
        broadcastable), output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = MarginRankingLoss(margin=0.1, reduction="none")
        >>> x1 = torch.tensor([1.0, 0.2], requires_grad=True)
        >>> output = loss(x1, torch.tensor([0.5, 0.6]), torch.tensor([1.0, 1.0]))
        >>> output
        tensor([0.0000, 0.5000], grad_fn=<MarginRankingLossFunctionBackward>)
        >>> output.sum().backward()
    """

    margin: float

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return margin_ranking_loss(input1, input2, target, margin=self.margin,
                                   reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    r"""Hinge on a distance :math:`x`: small for similar pairs (:math:`y = 1`), at least
    ``margin`` otherwise.

    .. math::
        l_n = \begin{cases} x_n & y_n = 1 \\ \max(0, \text{margin} - x_n) & y_n = -1 \end{cases}

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n` over all elements, ``'sum'``
    returns :math:`\sum_n l_n`.

    Args:
        margin: Default 1.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (broadcastable), output scalar or :math:`(*)`
        for ``'none'``.

    Examples:
        >>> loss = HingeEmbeddingLoss(margin=2.0)
        >>> d = torch.tensor([0.5, 1.5, 3.0], requires_grad=True)
        >>> output = loss(d, torch.tensor([1.0, -1.0, -1.0]))
        >>> output
        tensor(0.3333, grad_fn=<HingeEmbeddingLossFunctionBackward>)
        >>> output.backward()
    """

    margin: float

    def __init__(self, margin: float = 1.0, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    r"""Cosine similarity hinge: pull pairs together (:math:`y = 1`), push them apart below
    ``margin`` (:math:`y = -1`).

    .. math::
        l_n = \begin{cases} 1 - \cos(x_{1,n}, x_{2,n}) & y_n = 1 \\
        \max(0, \cos(x_{1,n}, x_{2,n}) - \text{margin}) & y_n = -1 \end{cases}

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns
    :math:`\sum_n l_n`.

    Args:
        margin: in :math:`[-1, 1]`; 0 to 0.5 is typical. Default 0.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input1, input2 :math:`(N, D)` or :math:`(D)`, target :math:`(N)` or :math:`()`,
        output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = CosineEmbeddingLoss(margin=0.5, reduction="none")
        >>> a = torch.tensor([[1.0, 0.0], [1.0, 1.0]], requires_grad=True)
        >>> output = loss(a, torch.tensor([[0.0, 1.0], [1.0, 1.0]]), torch.tensor([1.0, -1.0]))
        >>> output
        tensor([1.0000, 0.5000], grad_fn=<CosineEmbeddingLossFunctionBackward>)
        >>> output.sum().backward()
    """

    margin: float

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)
