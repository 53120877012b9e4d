"""Module classes of the cross-entropy family: ``NLLLoss`` and ``CrossEntropyLoss``.

Defined in :doc:`/chapters/03_1_backward`, options in :doc:`/chapters/03_3_in_practice`.
"""

from __future__ import annotations

from torch import Tensor

from ..functional import cross_entropy, nll_loss
from .base import _WeightedLoss

__all__ = ["NLLLoss", "CrossEntropyLoss"]


class NLLLoss(_WeightedLoss):
    r"""Negative log-likelihood of class indices, given log-probabilities.

    .. math::
        \ell(x, y) = L = \{l_1, \dots, l_N\}^\top, \qquad
        l_n = -w_{y_n} x_{n, y_n}, \qquad
        w_c = \text{weight}[c] \cdot \mathbb{1}[c \ne \text{ignore\_index}]

    and, with ``reduction``: ``'none'`` returns :math:`L`, ``'mean'`` returns
    :math:`\sum_n l_n / \sum_n w_{y_n}` (nan when every target is ignored),
    ``'sum'`` returns :math:`\sum_n l_n`.

    Args:
        weight: per-class rescaling of shape :math:`(C)` (a buffer).
        size_average, reduce: deprecated, see ``reduction``.
        ignore_index: a target value that contributes neither loss nor gradient. Default ``-100``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_k)`; target
        :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots, d_k)` with values in
        :math:`[0, C)`; output scalar, or the target's shape for ``'none'``.

    Examples:
        >>> loss = NLLLoss()
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> from lossutils.functional import log_softmax
        >>> loss(log_softmax(x, dim=1), torch.tensor([1, 0, 4])).backward()
    """

    __constants__ = ["ignore_index", "reduction"]
    ignore_index: int

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    r"""Cross-entropy between logits and class indices or class probabilities.

    For class indices:

    .. math::
        l_n = -w_{y_n} \log \frac{\exp(x_{n,y_n})}{\sum_c \exp(x_{n,c})}
        \cdot \mathbb{1}[y_n \ne \text{ignore\_index}]

    and for class probabilities
    :math:`l_n = -\sum_c w_c y_{n,c} \log \frac{\exp(x_{n,c})}{\sum_k \exp(x_{n,k})}`.
    ``label_smoothing`` :math:`\varepsilon` mixes the target with the uniform
    distribution over the :math:`C` classes. With ``reduction``: ``'none'``
    returns every :math:`l_n`; ``'mean'`` divides the sum by :math:`\sum_n w_{y_n}`
    of the non-ignored targets (class indices) or by the number of positions
    (probabilities); ``'sum'`` returns :math:`\sum_n l_n`.

    Args:
        weight: per-class rescaling of shape :math:`(C)` (a buffer).
        size_average, reduce: deprecated, see ``reduction``.
        ignore_index: a class index that contributes neither loss nor gradient. Default ``-100``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        label_smoothing: :math:`\varepsilon \le 1`. Default ``0.0``.

    Shape:
        input :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_k)`; target class
        indices :math:`()`, :math:`(N)`, :math:`(N, d_1, \dots, d_k)` or probabilities of the
        input's shape; output scalar, or the input's shape without :math:`C` for ``'none'``.

    Examples:
        >>> loss = CrossEntropyLoss(label_smoothing=0.1)
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.tensor([1, 0, 4])).backward()
    """

    __constants__ = ["ignore_index", "reduction", "label_smoothing"]
    ignore_index: int
    label_smoothing: float

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)
