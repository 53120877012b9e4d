"""Module classes of the two distances: ``PairwiseDistance`` and ``CosineSimilarity``.

Same constructor arguments, attributes and ``forward`` as ``torch.nn``; each
``forward`` is one call into :mod:`lossutils.functional`.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..functional import cosine_similarity, pairwise_distance

__all__ = ["PairwiseDistance", "CosineSimilarity"]


class PairwiseDistance(nn.Module):
    r"""The p-norm distance between matching rows of ``x1`` and ``x2``.

    .. math::
        d(x_1, x_2) = \|x_1 - x_2 + \epsilon\|_p

    over the last dimension; ``forward(x1, x2)`` is
    :func:`lossutils.functional.pairwise_distance`.

    Args:
        p: the norm degree (stored as ``self.norm``, as torch does). Default 2.
        eps: added to every component of the difference. Default ``1e-6``.
        keepdim: keep the reduced last dim as size 1. Default ``False``.

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
    r"""The cosine of the angle between ``x1`` and ``x2`` along ``dim``.

    .. math::
        s = \frac{x_1 \cdot x_2}{\max(\|x_1\|_2, \epsilon)\, \max(\|x_2\|_2, \epsilon)}

    ``forward(x1, x2)`` is :func:`lossutils.functional.cosine_similarity`.

    Args:
        dim: the dimension holding the vectors. Default 1.
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
