r"""The triplet losses: an anchor should be nearer its positive than its negative.

``triplet_margin_loss`` (and ``triplet_margin_with_distance_loss`` with its
default distance) is one Function, :class:`TripletMarginLossFunction`: the
distances of :mod:`lossutils.functional.distance` and the hinge on them,
forward and backward written out together, so a step makes one autograd node
instead of four. With a caller's distance function the loss is a composition:
the caller's distances (autograd differentiates them), then
:class:`TripletMarginFunction` for the hinge.

The hinge is ``clamp_min(u, 0)``, whose gradient passes where :math:`u \ge 0`
on torch 2.13 and where :math:`u > 0` from torch 2.14, as torch's
``clamp_min`` does (:func:`lossutils._torch_version.hinge_active`).

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, transformable
from .._checks import broadcast_shape, shapes_of
from .._reduction import check_reduction, reduce, reduce_backward, resolve, sum_to_shape
from .._torch_version import hinge_active
from .distance import _difference, _kept, pnorm, pnorm_backward

__all__ = ["triplet_margin_loss", "triplet_margin_with_distance_loss"]


def _nearest(dist_neg: Tensor, dist_swap: Tensor | None = None) -> Tensor:
    """The negative distance the hinge uses: :math:`d(a, n)`, or with ``swap``
    :math:`\\min(d(a, n), d(p, n))`."""
    return dist_neg if dist_swap is None else torch.minimum(dist_neg, dist_swap)


def _minimum_split(g: Tensor, dist_neg: Tensor, dist_swap: Tensor) -> tuple[Tensor, Tensor]:
    """``g`` (the gradient of :math:`\\min(d_n, d_s)`) passed to the smaller of the two,
    half to each on a tie: torch's ``minimum`` rule."""
    share = torch.where(dist_neg == dist_swap, g / 2, g)
    return share.masked_fill(dist_neg > dist_swap, 0), share.masked_fill(dist_neg < dist_swap, 0)


def _minimum_tangent(t_neg: Tensor, t_swap: Tensor, dist_neg: Tensor,
                     dist_swap: Tensor) -> Tensor:
    """The tangent of :math:`\\min(d_n, d_s)`: the smaller one's, their mean on a tie."""
    return torch.where(dist_neg == dist_swap, (t_neg + t_swap) / 2,
                       torch.where(dist_neg < dist_swap, t_neg, t_swap))


def _pairs(anchor: Tensor, positive: Tensor, negative: Tensor, swap: bool) -> list:
    """The pairs the loss measures: (a, p), (a, n) and, with ``swap``, (p, n)."""
    pairs = [(anchor, positive), (anchor, negative)]
    return pairs + [(positive, negative)] if swap else pairs


def _geometry(anchor, positive, negative, p, eps, swap):
    """The differences :math:`x_1 - x_2 + \\epsilon` of the pairs, their norms (last dim
    kept) and the norms as rows."""
    diffs = [_difference(x1, x2, eps) for x1, x2 in _pairs(anchor, positive, negative, swap)]
    norms = [pnorm(u, p, -1) for u in diffs]
    rows = [d.reshape(u.shape[:-1]) for d, u in zip(norms, diffs, strict=True)]
    return diffs, norms, rows


@transformable
class TripletMarginLossFunction(Function):
    r"""The triplet loss on :math:`d(x, y) = \|x - y + \epsilon\|_p`, distances and hinge
    in one Function.

    .. math::
        l_i = \max(0,\; \text{margin} + d(a_i, p_i) - \tilde d_i), \qquad
        \tilde d_i = \begin{cases} \min(d(a_i, n_i), d(p_i, n_i)) & \text{swap} \\
            d(a_i, n_i) & \text{otherwise} \end{cases}

    With :math:`m_i = [\text{margin} + d(a_i, p_i) - \tilde d_i \ge 0]` (:math:`> 0` from
    torch 2.14), :math:`\tilde d` passing its gradient to the smaller distance (half to
    each on a tie, torch's ``minimum`` rule; a tie happens exactly when :math:`a = p`)
    and :math:`J(u) = \partial \|u\|_p / \partial u` at :math:`u = x - y + \epsilon`
    (:func:`~lossutils.functional.distance.pnorm_backward`):

    .. math::
        \frac{\partial l_i}{\partial a_i} = m_i \big(J(a_i - p_i) - J(a_i - n_i)\big), \quad
        \frac{\partial l_i}{\partial p_i} = -m_i J(a_i - p_i), \quad
        \frac{\partial l_i}{\partial n_i} = m_i J(a_i - n_i)

    without ``swap``; with it the :math:`\tilde d` share of :math:`d(p_i, n_i)` adds
    :math:`-m_i J(p_i - n_i)` to :math:`p_i` and :math:`m_i J(p_i - n_i)` to
    :math:`n_i`. The tangent is :math:`\dot l_i = m_i (\dot d(a_i, p_i) - \dot{\tilde d}_i)`.
    ``'none'`` returns every :math:`l_i`, ``'sum'`` their sum, ``'mean'`` their average
    over the :math:`N` triplets. float16/bfloat16 inputs are computed as torch computes
    them: elementwise in their dtype, norms and means accumulated in float32.
    """

    @staticmethod
    def forward(anchor, positive, negative, margin, p, eps, swap, reduction):
        _, _, rows = _geometry(anchor, positive, negative, p, eps, swap)
        return reduce((margin + rows[0] - _nearest(*rows[1:])).clamp_min_(0), reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        anchor, positive, negative, margin, p, eps, swap, reduction = inputs
        ctx.save_for_backward(anchor, positive, negative)
        ctx.save_for_forward(anchor, positive, negative)
        ctx.options = margin, p, eps, swap, reduction

    @staticmethod
    def backward(ctx, grad_output):
        anchor, positive, negative = ctx.saved_tensors
        margin, p, eps, swap, reduction = ctx.options
        fast = fast_path(grad_output, anchor, positive, negative)
        diffs, norms, rows = _geometry(anchor, positive, negative, p, eps, swap)
        active = hinge_active(margin + rows[0] - _nearest(*rows[1:]), fast)
        g = reduce_backward(active, reduction, grad_output)
        shares = [g, -g] if not swap else [g, *_minimum_split(-g, rows[1], rows[2])]
        if fast and p == 2:
            # pnorm_backward's formula in place in the fresh differences (x / d, 0 where
            # d = 0 and so x = 0: a 1 in the divisor instead of a mask on x)
            parts = [u.div_(d.masked_fill(d == 0, 1)).mul_(_kept(s, u))
                     for u, d, s in zip(diffs, norms, shares, strict=True)]
        else:
            parts = [pnorm_backward(_kept(s, u), u, p, d, -1)
                     for u, d, s in zip(diffs, norms, shares, strict=True)]
        # a pair (x, y) adds J to x and -J to y, each summed over the dims x or y was
        # broadcast along before they add up: torch's order, so half precision rounds alike
        pairs = _pairs(anchor, positive, negative, swap)
        (a1, p1), (a2, n2), *swapped = ([sum_to_shape(part, x.shape) for x in pair]
                                        for part, pair in zip(parts, pairs, strict=True))
        g_anchor = a1 + a2
        if fast:  # the parts are fresh and a1 is spent: negate them where they are
            g_positive, g_negative = p1.neg_(), n2.neg_()
            for p3, n3 in swapped:
                g_positive, g_negative = g_positive.add_(p3), g_negative.sub_(n3)
        else:
            g_positive, g_negative = -p1, -n2
            for p3, n3 in swapped:
                g_positive, g_negative = g_positive + p3, g_negative - n3
        return g_anchor, g_positive, g_negative, None, None, None, None, None

    @staticmethod
    def jvp(ctx, t_anchor, t_positive, t_negative, *_):
        anchor, positive, negative = ctx.saved_tensors
        margin, p, eps, swap, reduction = ctx.options
        diffs, norms, rows = _geometry(anchor, positive, negative, p, eps, swap)
        tangents = [(0 if t1 is None else t1) - (0 if t2 is None else t2)
                    for t1, t2 in _pairs(t_anchor, t_positive, t_negative, swap)]
        dots = [(pnorm_backward(torch.ones_like(d), u, p, d, -1) * t).sum(-1)
                for u, d, t in zip(diffs, norms, tangents, strict=True)]
        t_nearest = dots[1] if not swap else _minimum_tangent(dots[1], dots[2], rows[1], rows[2])
        active = hinge_active(margin + rows[0] - _nearest(*rows[1:]))
        return reduce(active * (dots[0] - t_nearest), reduction)


@transformable
class TripletMarginFunction(Function):
    r"""The triplet hinge on precomputed distances :math:`d(a, p)`, :math:`d(a, n)` and,
    with ``swap``, :math:`d(p, n)` (a caller's distance function's).

    .. math::
        l_i = \max(0,\; \text{margin} + d(a_i, p_i) - \tilde d_i), \qquad
        \frac{\partial l_i}{\partial d(a_i, p_i)} = m_i, \qquad
        \frac{\partial l_i}{\partial \tilde d_i} = -m_i

    with :math:`\tilde d` and :math:`m_i` as in :class:`TripletMarginLossFunction`, and
    :math:`\tilde d` passing its gradient on by torch's ``minimum`` rule. The distances'
    own gradients are the caller's function's business (autograd's).
    """

    @staticmethod
    def forward(dist_pos, dist_neg, dist_swap, margin, reduction):
        return reduce((margin + dist_pos - _nearest(dist_neg, dist_swap)).clamp_min(0), reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        dist_pos, dist_neg, dist_swap, margin, reduction = inputs
        ctx.save_for_backward(dist_pos, dist_neg, dist_swap)
        ctx.save_for_forward(dist_pos, dist_neg, dist_swap)
        ctx.margin, ctx.reduction = margin, reduction

    @staticmethod
    def backward(ctx, grad_output):
        dp, dn, ds = ctx.saved_tensors
        active = hinge_active(ctx.margin + dp - _nearest(dn, ds))
        g = reduce_backward(active, ctx.reduction, grad_output)
        if ds is None:
            return sum_to_shape(g, dp.shape), sum_to_shape(-g, dn.shape), None, None, None
        g_neg, g_swap = _minimum_split(-g, dn, ds)
        return (sum_to_shape(g, dp.shape), sum_to_shape(g_neg, dn.shape),
                sum_to_shape(g_swap, ds.shape), None, None)

    @staticmethod
    def jvp(ctx, t_pos, t_neg, t_swap, *_):
        dp, dn, ds = ctx.saved_tensors
        t_pos, t_neg = (torch.zeros_like(d) if t is None else t
                        for d, t in ((dp, t_pos), (dn, t_neg)))
        if ds is not None:
            t_swap = torch.zeros_like(ds) if t_swap is None else t_swap
            t_neg = _minimum_tangent(t_neg, t_swap, dn, ds)
        active = hinge_active(ctx.margin + dp - _nearest(dn, ds))
        return reduce(active * (t_pos - t_neg), ctx.reduction)


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

    One Function, :class:`TripletMarginLossFunction` (its docstring has the
    gradients). With ``swap``, :math:`d(a, n)` is replaced by
    :math:`\min(d(a, n), d(p, n))`.

    Examples:
        >>> a, p, n = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
        >>> triplet_margin_loss(a, p, n, eps=0.0)
        tensor(5.)
    """
    reduction = resolve(size_average, reduce, reduction)
    _positive_margin("triplet_margin_loss", margin)
    _same_dims(anchor, positive, negative)
    if not anchor.shape == positive.shape == negative.shape:
        broadcast_shape("triplet_margin_loss", anchor=anchor, positive=positive,
                        negative=negative)
    (anchor, positive, negative), _ = _autocast.cast("triplet_margin_loss", anchor, positive,
                                                     negative)
    return apply(TripletMarginLossFunction, anchor, positive, negative, margin, p, eps, swap,
                 reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    r"""Triplet loss with any distance, like
    :func:`torch.nn.functional.triplet_margin_with_distance_loss`.

    ``distance_function(x, y)`` defaults to :func:`pairwise_distance` (``p=2``,
    ``eps=1e-6``): then the loss is :class:`TripletMarginLossFunction`. With a
    caller's distance it is necessarily a composition: the distance is the
    caller's (autograd differentiates it), the hinge is
    :class:`TripletMarginFunction`. No legacy flags, and unlike the other losses
    ``'elementwise_mean'`` is rejected, as in torch.

    Examples:
        >>> l1 = lambda x, y: (x - y).abs().sum(-1)
        >>> a, p, n = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
        >>> triplet_margin_with_distance_loss(a, p, n, distance_function=l1)
        tensor(7.)
    """
    check_reduction(reduction, accept_deprecated=False)
    _positive_margin("triplet_margin_with_distance_loss", margin)
    _same_dims(anchor, positive, negative)
    if distance_function is None:
        # torch's composition of pairwise_distance (p=2, eps=1e-6), minimum and clamp_min
        (anchor, positive, negative), _ = _autocast.cast("triplet_margin_with_distance_loss",
                                                         anchor, positive, negative)
        return apply(TripletMarginLossFunction, anchor, positive, negative, margin, 2.0, 1e-6,
                     swap, reduction)
    dist_pos = distance_function(anchor, positive)
    dist_neg = distance_function(anchor, negative)
    dist_swap = distance_function(positive, negative) if swap else None
    (dist_pos, dist_neg, dist_swap), _ = _autocast.cast(
        "triplet_margin_with_distance_loss[hinge]", dist_pos, dist_neg, dist_swap,
        reduction=reduction)
    return apply(TripletMarginFunction, dist_pos, dist_neg, dist_swap, margin, reduction)
