r"""The triplet losses: an anchor should be nearer its positive than its negative.

Both are a composition: a distance for each pair (a Function of
:mod:`lossutils.functional.distance`, or the caller's own for
``triplet_margin_with_distance_loss``), then :class:`TripletMarginFunction`
for the hinge; the chain rule joins them. The hinge is ``clamp_min(u, 0)``,
whose gradient passes where :math:`u \ge 0`, the boundary included, as
torch's ``clamp_min`` does.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._checks import broadcast_shape, shapes_of
from .._reduction import check_reduction, reduce, reduce_backward, resolve, sum_to_shape
from .distance import pairwise_distance

__all__ = ["triplet_margin_loss", "triplet_margin_with_distance_loss"]


class TripletMarginFunction(Function):
    r"""The triplet hinge on precomputed distances :math:`d(a, p)`, :math:`d(a, n)` and,
    with ``swap``, :math:`d(p, n)`.

    .. math::
        l_i = \max(0,\; \text{margin} + d(a_i, p_i) - \tilde d_i), \qquad
        \tilde d_i = \begin{cases} \min(d(a_i, n_i), d(p_i, n_i)) & \text{swap} \\
            d(a_i, n_i) & \text{otherwise} \end{cases}

    .. math::
        \frac{\partial l_i}{\partial d(a_i, p_i)} = m_i, \qquad
        \frac{\partial l_i}{\partial \tilde d_i} = -m_i, \qquad
        m_i = [\text{margin} + d(a_i,p_i) - \tilde d_i \ge 0]

    and :math:`\tilde d` passes its gradient to the smaller of the two
    distances, *half to each on a tie* (torch's ``minimum`` rule; a tie
    happens exactly when :math:`a = p`). The distances' own gradients are
    their Functions' business: the triplet losses are this hinge composed
    with a distance. ``'none'`` returns every :math:`l_i`, ``'sum'`` their
    sum, ``'mean'`` their average over the :math:`N` triplets.
    """

    @staticmethod
    def forward(dist_pos, dist_neg, dist_swap, margin, reduction):
        if dist_swap is not None:
            dist_neg = torch.minimum(dist_neg, dist_swap)
        return reduce((margin + dist_pos - dist_neg).clamp_min(0), reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        dist_pos, dist_neg, dist_swap, margin, reduction = inputs
        ctx.save_for_backward(dist_pos, dist_neg, dist_swap)
        ctx.margin, ctx.reduction = margin, reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        dist_pos, dist_neg, dist_swap = ctx.saved_tensors
        nearest = dist_neg if dist_swap is None else torch.minimum(dist_neg, dist_swap)
        active = (ctx.margin + dist_pos - nearest >= 0).to(grad_output.dtype)
        g = reduce_backward(active, ctx.reduction, grad_output)
        if dist_swap is None:
            g_pos, g_neg = sum_to_shape(g, dist_pos.shape), sum_to_shape(-g, dist_neg.shape)
            return g_pos, g_neg, None, None, None
        share = torch.where(dist_neg == dist_swap, -g / 2, -g)
        g_neg = share.masked_fill(dist_neg > dist_swap, 0)
        g_swap = share.masked_fill(dist_neg < dist_swap, 0)
        return (sum_to_shape(g, dist_pos.shape), sum_to_shape(g_neg, dist_neg.shape),
                sum_to_shape(g_swap, dist_swap.shape), None, None)


def _same_dims(anchor: Tensor, positive: Tensor, negative: Tensor) -> None:
    if not anchor.dim() == positive.dim() == negative.dim():
        given = shapes_of(anchor=anchor, positive=positive, negative=negative)
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the "
                           f"same number of dimensions, but got: anchor {anchor.dim()}D, positive "
                           f"{positive.dim()}D, and negative {negative.dim()}D inputs ({given})")


def _positive_margin(op: str, margin: float) -> None:
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin} ({op})")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    r"""Triplet loss :math:`\max(0, \text{margin} + d(a, p) - d(a, n))` with
    :math:`d(x, y) = \|x - y + \epsilon\|_p`, like
    :func:`torch.nn.functional.triplet_margin_loss`.

    A composition: :class:`~lossutils.functional.distance.PairwiseDistanceFunction`
    for each distance (its docstring has :math:`\partial d / \partial x`),
    then :class:`TripletMarginFunction` for the hinge; the chain rule joins
    them. With ``swap``, :math:`d(a, n)` is replaced by :math:`\min(d(a, n), d(p, n))`.

    Examples:
        >>> a, p, n = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
        >>> triplet_margin_loss(a, p, n, eps=0.0)
        tensor(5.)
    """
    reduction = resolve(size_average, reduce, reduction)
    _positive_margin("triplet_margin_loss", margin)
    _same_dims(anchor, positive, negative)
    broadcast_shape("triplet_margin_loss", anchor=anchor, positive=positive, negative=negative)
    dist_pos = pairwise_distance(anchor, positive, p, eps)
    dist_neg = pairwise_distance(anchor, negative, p, eps)
    dist_swap = pairwise_distance(positive, negative, p, eps) if swap else None
    return TripletMarginFunction.apply(dist_pos, dist_neg, dist_swap, margin, reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    r"""Triplet loss with any distance, like
    :func:`torch.nn.functional.triplet_margin_with_distance_loss`.

    ``distance_function(x, y)`` defaults to :func:`pairwise_distance` (``p=2``,
    ``eps=1e-6``). Necessarily a composition: the distance is the caller's
    (autograd differentiates it), the hinge is :class:`TripletMarginFunction`.
    No legacy flags, and unlike the other losses ``'elementwise_mean'`` is
    rejected, as in torch.

    Examples:
        >>> l1 = lambda x, y: (x - y).abs().sum(-1)
        >>> a, p, n = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
        >>> triplet_margin_with_distance_loss(a, p, n, distance_function=l1)
        tensor(7.)
    """
    check_reduction(reduction, accept_deprecated=False)
    _positive_margin("triplet_margin_with_distance_loss", margin)
    _same_dims(anchor, positive, negative)
    distance = pairwise_distance if distance_function is None else distance_function
    dist_pos = distance(anchor, positive)
    dist_neg = distance(anchor, negative)
    dist_swap = distance(positive, negative) if swap else None
    return TripletMarginFunction.apply(dist_pos, dist_neg, dist_swap, margin, reduction)
