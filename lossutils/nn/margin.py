"""Module classes of the margin, ranking and embedding losses, and the two distance modules.

Same constructor arguments, attributes and ``forward`` as ``torch.nn``;
each ``forward`` is one call into :mod:`lossutils.functional`.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from ..functional import (
    cosine_embedding_loss,
    cosine_similarity,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    pairwise_distance,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from .base import _Loss, _WeightedLoss

__all__ = [
    "SoftMarginLoss", "MultiLabelSoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
    "CosineEmbeddingLoss", "MultiMarginLoss", "MultiLabelMarginLoss", "TripletMarginLoss",
    "TripletMarginWithDistanceLoss", "PairwiseDistance", "CosineSimilarity",
]

_REDUCTION = r"""``'none'`` returns :math:`L = \{l_1, \dots, l_N\}`, ``'mean'`` returns
    :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns :math:`\sum_n l_n`."""


class SoftMarginLoss(_Loss):
    r"""Two-class logistic loss between ``input`` :math:`x` and a target :math:`y \in \{1, -1\}`.

    .. math::
        l_n = \log(1 + e^{-y_n x_n})

    and, with ``reduction``: ``'none'`` returns :math:`L`, ``'mean'`` returns
    :math:`\frac{1}{N}\sum_n l_n` over all :math:`N` elements, ``'sum'`` returns :math:`\sum_n l_n`.

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (broadcastable to input), output scalar or :math:`(*)` for ``'none'``.

    Examples:
        >>> loss = SoftMarginLoss()
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.randint(0, 2, (3, 5)) * 2.0 - 1).backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    r"""One-versus-all logistic loss for multi-label targets :math:`y_{nc} \in \{0, 1\}`.

    .. math::
        l_n = -\frac{1}{C}\sum_c w_c \big[y_{nc} \log\sigma(x_{nc}) + (1 - y_{nc}) \log\sigma(-x_{nc})\big]

    and, with ``reduction``: """ + _REDUCTION + r"""

    Args:
        weight: per-class weights :math:`w` (shape :math:`(C)`), a buffer. Default ``None`` (all ones).
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(N, C)` or :math:`(C)`, target same shape, output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = MultiLabelSoftMarginLoss()
        >>> x = torch.randn(3, 4, requires_grad=True)
        >>> loss(x, torch.randint(0, 2, (3, 4)).float()).backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    r"""Ranking hinge: :math:`y = 1` means :math:`x_1` should rank above :math:`x_2`, :math:`y = -1` below.

    .. math::
        l_n = \max(0, -y_n (x_{1,n} - x_{2,n}) + \text{margin})

    and, with ``reduction``: """ + _REDUCTION + r"""

    Args:
        margin: the required gap. Default 0.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input1, input2, target :math:`(N)` or :math:`()` (same number of dims), output scalar or :math:`(N)`.

    Examples:
        >>> loss = MarginRankingLoss(margin=0.5)
        >>> x1, x2 = torch.randn(4, requires_grad=True), torch.randn(4, requires_grad=True)
        >>> loss(x1, x2, torch.tensor([1., -1., 1., -1.])).backward()
    """

    margin: float

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    r"""Hinge on a distance :math:`x`: small for similar pairs (:math:`y = 1`), at least ``margin`` otherwise.

    .. math::
        l_n = \begin{cases} x_n & y_n = 1 \\ \max(0, \text{margin} - x_n) & y_n = -1 \end{cases}

    and, with ``reduction``: """ + _REDUCTION + r"""

    Args:
        margin: Default 1.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (broadcastable), output scalar or :math:`(*)` for ``'none'``.

    Examples:
        >>> loss = HingeEmbeddingLoss(margin=2.0)
        >>> d = torch.rand(5, requires_grad=True)
        >>> loss(d, torch.tensor([1., -1., -1., 1., -1.])).backward()
    """

    margin: float

    def __init__(self, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    r"""Cosine similarity hinge: pull pairs together (:math:`y = 1`), push apart below ``margin`` (:math:`y = -1`).

    .. math::
        l_n = \begin{cases} 1 - \cos(x_{1,n}, x_{2,n}) & y_n = 1 \\
        \max(0, \cos(x_{1,n}, x_{2,n}) - \text{margin}) & y_n = -1 \end{cases}

    and, with ``reduction``: """ + _REDUCTION + r"""

    Args:
        margin: in :math:`[-1, 1]`; 0 to 0.5 is typical. Default 0.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input1, input2 :math:`(N, D)` or :math:`(D)`, target :math:`(N)` or :math:`()`,
        output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = CosineEmbeddingLoss(margin=0.2)
        >>> a, b = torch.randn(3, 8, requires_grad=True), torch.randn(3, 8)
        >>> loss(a, b, torch.tensor([1., -1., 1.])).backward()
    """

    margin: float

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    r"""Multi-class hinge: the right class :math:`y` should beat every other by ``margin``.

    .. math::
        l_n = \frac{1}{C}\sum_{i \ne y_n} w_{y_n} \max(0, \text{margin} - x_{n y_n} + x_{ni})^p

    and, with ``reduction``: """ + _REDUCTION + r"""

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
        >>> loss = MultiMarginLoss(p=2)
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.tensor([0, 4, 2])).backward()
    """

    margin: float
    p: int

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Tensor | None = None, size_average=None,
                 reduce=None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p != 1 and p != 2:
            raise ValueError(f"only p == 1 and p == 2 supported: MultiMarginLoss got p={p!r}")
        if weight is not None and weight.dim() != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got {weight.dim()}D "
                             f"instead: weight must be one-dimensional, got weight of shape {tuple(weight.shape)}")
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
    with ``reduction``: """ + _REDUCTION + r"""

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(N, C)` or :math:`(C)`, target the same shape (int64, padded with -1),
        output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = MultiLabelMarginLoss()
        >>> x = torch.tensor([[0.1, 0.2, 0.4, 0.8]], requires_grad=True)
        >>> loss(x, torch.tensor([[3, 0, -1, 1]]))
        tensor(0.8500, grad_fn=<MultiLabelMarginLossFunctionBackward>)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    r"""Triplet loss: the anchor should be nearer the positive than the negative, by ``margin``.

    .. math::
        l_i = \max(0, \text{margin} + d(a_i, p_i) - d(a_i, n_i)), \qquad d(x, y) = \|x - y + \epsilon\|_p

    and, with ``reduction``: ``'none'`` returns :math:`L`, ``'mean'`` returns
    :math:`\frac{1}{N}\sum_i l_i`, ``'sum'`` returns :math:`\sum_i l_i`.

    Args:
        margin: must be positive. Default 1.
        p: the norm degree. Default 2.
        eps: added to each component of the difference. Default ``1e-6``.
        swap: use :math:`\min(d(a, n), d(p, n))` as the negative distance. Default ``False``.
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        anchor, positive, negative :math:`(N, D)` or :math:`(D)`, output scalar or :math:`(N)` for ``'none'``.

    Examples:
        >>> loss = TripletMarginLoss(margin=1.0, swap=True)
        >>> a, p, n = (torch.randn(4, 8, requires_grad=True) for _ in range(3))
        >>> loss(a, p, n).backward()
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
        return triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p, eps=self.eps,
                                      swap=self.swap, reduction=self.reduction)


class PairwiseDistance(nn.Module):
    r"""``forward(x1, x2)`` is :func:`lossutils.functional.pairwise_distance`: :math:`\|x_1 - x_2 + \epsilon\|_p`.

    Args:
        p: the norm degree (stored as ``self.norm``, as torch does). Default 2.
        eps: Default ``1e-6``.
        keepdim: Default ``False``.

    Shape:
        x1, x2 :math:`(N, D)` or :math:`(D)`, output :math:`(N)` or :math:`()`.

    Examples:
        >>> PairwiseDistance(p=1)(torch.zeros(2, 3), torch.ones(2, 3))
        tensor([3.0000, 3.0000])
    """

    norm: float
    eps: float
    keepdim: bool

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(nn.Module):
    r"""``forward(x1, x2)`` is :func:`lossutils.functional.cosine_similarity` along ``dim``.

    Args:
        dim: Default 1.
        eps: lower bound on each norm. Default ``1e-8``.

    Shape:
        x1, x2 broadcastable, output the broadcast shape without ``dim``.

    Examples:
        >>> CosineSimilarity(dim=0)(torch.tensor([1., 0.]), torch.tensor([0., 1.]))
        tensor(0.)
    """

    dim: int
    eps: float

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return cosine_similarity(x1, x2, self.dim, self.eps)


class TripletMarginWithDistanceLoss(_Loss):
    r"""Triplet loss with a distance of your choice.

    .. math::
        l_i = \max(0, \text{margin} + d(a_i, p_i) - d(a_i, n_i))

    and, with ``reduction``: ``'none'`` returns :math:`L`, ``'mean'`` returns
    :math:`\frac{1}{N}\sum_i l_i`, ``'sum'`` returns :math:`\sum_i l_i`.

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
        >>> cosine = lambda x, y: 1.0 - cosine_similarity(x, y)
        >>> loss = TripletMarginWithDistanceLoss(distance_function=cosine, margin=0.5)
        >>> a, p, n = (torch.randn(4, 8, requires_grad=True) for _ in range(3))
        >>> loss(a, p, n).backward()
    """

    margin: float
    swap: bool

    def __init__(self, *, distance_function: Callable[[Tensor, Tensor], Tensor] | None = None,
                 margin: float = 1.0, swap: bool = False, reduction: str = "mean") -> None:
        super().__init__(size_average=None, reduce=None, reduction=reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: margin must be greater than 0, got {margin}")
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_with_distance_loss(anchor, positive, negative,
                                                    distance_function=self.distance_function,
                                                    margin=self.margin, swap=self.swap, reduction=self.reduction)
