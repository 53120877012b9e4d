r"""Ranking and embedding hinges: margin ranking, hinge embedding, cosine embedding.

Each compares two inputs (or an input and a distance) and punishes them only
inside a margin. Every hinge here is ``clamp_min(u, 0)``; its gradient
passes where :math:`u \ge 0`, the boundary included, as torch's
``clamp_min`` does.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._checks import broadcast_shape, shapes_of
from .._reduction import reduce, reduce_backward, resolve, sum_to_shape

__all__ = ["margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss"]


class MarginRankingLossFunction(Function):
    r"""Ranking hinge: :math:`y = 1` asks for :math:`x_1 > x_2` by ``margin``, :math:`y = -1`
    for the reverse.

    .. math::
        l_n = \max(0,\; -y_n (x_{1,n} - x_{2,n}) + \text{margin})

    .. math::
        \frac{\partial l_n}{\partial x_{1,n}} = -y_n m_n = -\frac{\partial l_n}{\partial x_{2,n}},
        \qquad
        \frac{\partial l_n}{\partial y_n} = -(x_{1,n} - x_{2,n})\, m_n

    with :math:`m_n = [\,-y_n(x_{1,n} - x_{2,n}) + \text{margin} \ge 0\,]`.
    ``target`` is not checked to be :math:`\pm 1` (torch does not either) and
    is differentiable. The three inputs broadcast; gradients are summed back.
    ``'none'`` returns every :math:`l_n`, ``'sum'`` their sum, ``'mean'`` the
    sum over the number of :math:`l_n` (so each gradient is divided by it).
    """

    @staticmethod
    def forward(input1, input2, target, margin, reduction):
        # float(margin): torch's margin is a double even when written 0, so
        # integer inputs give a floating loss.
        return reduce((-target * (input1 - input2) + float(margin)).clamp_min(0), reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input1, input2, target, margin, reduction = inputs
        ctx.save_for_backward(input1, input2, target)
        ctx.margin, ctx.reduction = float(margin), reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input1, input2, target = ctx.saved_tensors
        diff = input1 - input2
        active = (-target * diff + ctx.margin >= 0).to(grad_output.dtype)
        g = reduce_backward(active, ctx.reduction, grad_output)
        return (sum_to_shape(-target * g, input1.shape), sum_to_shape(target * g, input2.shape),
                sum_to_shape(-diff * g, target.shape), None, None)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Ranking hinge :math:`\max(0, -y(x_1 - x_2) + \text{margin})`,
    like :func:`torch.nn.functional.margin_ranking_loss`. See :class:`MarginRankingLossFunction`.

    Examples:
        >>> x1, x2 = torch.tensor([1.0, 0.2]), torch.tensor([0.5, 0.6])
        >>> margin_ranking_loss(x1, x2, torch.tensor([1.0, 1.0]), margin=0.1, reduction="none")
        tensor([0.0000, 0.5000])
    """
    reduction = resolve(size_average, reduce, reduction)
    if not input1.dim() == input2.dim() == target.dim():
        raise RuntimeError(f"margin_ranking_loss: input1, input2 and target must have the same "
                           f"number of dimensions, got "
                           f"{shapes_of(input1=input1, input2=input2, target=target)}")
    broadcast_shape("margin_ranking_loss", input1=input1, input2=input2, target=target)
    return MarginRankingLossFunction.apply(input1, input2, target, margin, reduction)


class HingeEmbeddingLossFunction(Function):
    r"""Hinge on a distance :math:`x`: small for similar pairs (:math:`y = 1`), beyond
    ``margin`` for dissimilar ones.

    .. math::
        l_n = \begin{cases} x_n & y_n = 1 \\ \max(0, \text{margin} - x_n) & y_n = -1 \end{cases}
        \qquad
        \frac{\partial l_n}{\partial x_n} = \begin{cases} 1 & y_n = 1 \\
            -[\text{margin} - x_n \ge 0] & y_n = -1 \end{cases}

    Like torch, a target that is neither 1 nor -1 adds *both* terms. ``target``
    is not differentiable; ``input`` and ``target`` broadcast. ``'none'`` returns
    every :math:`l_n`, ``'sum'`` their sum, ``'mean'`` their average over all elements.
    """

    @staticmethod
    def forward(input, target, margin, reduction):
        zeros = torch.zeros_like(input)
        # full_like, not `margin - input`: torch fills a tensor of input's dtype
        # with margin first, so an integer input truncates a fractional margin.
        hinge = (torch.full_like(input, margin) - input).clamp_min(0)
        loss = torch.where(target != 1, hinge, zeros) + torch.where(target != -1, input, zeros)
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, margin, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.margin, ctx.reduction = margin, reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        active = torch.full_like(input, ctx.margin) - input >= 0
        d = (torch.where(target != 1, -active.to(input.dtype), 0.0)
             + torch.where(target != -1, 1.0, 0.0))
        g = reduce_backward(d, ctx.reduction, grad_output)
        return sum_to_shape(g, input.shape), None, None, None


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    r"""Hinge on a distance, :math:`x` for :math:`y = 1` and :math:`\max(0, \text{margin} - x)`
    for :math:`y = -1`, like :func:`torch.nn.functional.hinge_embedding_loss`.

    See :class:`HingeEmbeddingLossFunction`.

    Examples:
        >>> hinge_embedding_loss(torch.tensor([0.3, 0.4]), torch.tensor([1.0, -1.0]),
        ...                      reduction="none")
        tensor([0.3000, 0.6000])
    """
    reduction = resolve(size_average, reduce, reduction)
    broadcast_shape("hinge_embedding_loss", input=input, target=target)
    # target only selects a branch: keep it out of the graph, as torch does.
    return HingeEmbeddingLossFunction.apply(input, target.detach(), margin, reduction)


# ATen's EPSILON, added to each squared norm (not cosine_similarity's eps). It is
# a C++ float: 1e-12 rounded to float32, which float64 inputs see as 9.99999996e-13.
_COSINE_EPS = torch.tensor(1e-12, dtype=torch.float32).item()


class CosineEmbeddingLossFunction(Function):
    r"""Pull pairs together (:math:`y = 1`) or push their cosine below ``margin`` (:math:`y = -1`).

    .. math::
        \cos_n = \frac{x_{1,n} \cdot x_{2,n}}
            {\sqrt{(\|x_{1,n}\|^2 + \epsilon)(\|x_{2,n}\|^2 + \epsilon)}},
        \qquad \epsilon = 10^{-12} \text{ (as a float32)}

    .. math::
        l_n = \begin{cases} 1 - \cos_n & y_n = 1 \\ \max(0, \cos_n - \text{margin}) & y_n = -1 \\
        0 & \text{otherwise} \end{cases}

    With :math:`m_k = \|x_k\|^2 + \epsilon` and :math:`\rho = \sqrt{m_1 m_2}`:

    .. math::
        \frac{\partial \cos}{\partial x_1} = \frac{x_2}{\rho} - \cos\,\frac{x_1}{m_1}, \qquad
        \frac{\partial \cos}{\partial x_2} = \frac{x_1}{\rho} - \cos\,\frac{x_2}{m_2}

    times :math:`-1` (:math:`y = 1`) or :math:`[\cos - \text{margin} \ge 0]`
    (:math:`y = -1`). A zero vector has :math:`\cos = 0` and, through the
    :math:`\epsilon`, a *large but finite* gradient
    :math:`x_2 / \rho \approx 10^6 x_2/\|x_2\|`.
    ``'none'`` returns every :math:`l_n`, ``'sum'`` their sum, ``'mean'`` their
    average over the :math:`N` pairs.
    """

    @staticmethod
    def forward(input1, input2, target, margin, reduction):
        dim = target.dim()  # 0 for one pair of 1-D vectors, 1 for a batch
        cos = CosineEmbeddingLossFunction._cos(input1, input2, dim)[0]
        zeros = torch.zeros_like(cos)
        loss = (torch.where(target == 1, 1 - cos, zeros)
                + torch.where(target == -1, (cos - margin).clamp_min(0), zeros))
        return reduce(loss, reduction)

    @staticmethod
    def _cos(input1, input2, dim):
        prod = (input1 * input2).sum(dim)
        m1 = (input1 * input1).sum(dim) + _COSINE_EPS
        m2 = (input2 * input2).sum(dim) + _COSINE_EPS
        rho = (m1 * m2).sqrt()
        return prod / rho, m1, m2, rho

    @staticmethod
    def setup_context(ctx, inputs, output):
        input1, input2, target, margin, reduction = inputs
        ctx.save_for_backward(input1, input2, target)
        ctx.margin, ctx.reduction = margin, reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input1, input2, target = ctx.saved_tensors
        dim = target.dim()
        cos, m1, m2, rho = CosineEmbeddingLossFunction._cos(input1, input2, dim)
        active = (cos - ctx.margin >= 0).to(cos.dtype)
        d = torch.where(target == 1, -1.0, 0.0) + torch.where(target == -1, active, 0.0)
        g = reduce_backward(d.to(cos.dtype), ctx.reduction, grad_output)
        g = sum_to_shape(g, cos.shape)  # a broadcast target may have widened the loss
        # The formula above, evaluated as the chain rule through cos = prod / rho,
        # rho = sqrt(m1 m2), m_k = |x_k|^2 + eps in torch's order, so float32 rounds alike
        # (2 g_m1 x1 = -g cos x1 / m1 and g_prod x2 = g x2 / rho).
        g_m1m2 = -g * (cos / rho) / (2 * rho)
        g_prod, g_m1, g_m2 = (t.unsqueeze(dim) for t in (g / rho, g_m1m2 * m2, g_m1m2 * m1))
        g1 = g_prod * input2 + 2 * g_m1 * input1
        g2 = g_prod * input1 + 2 * g_m2 * input2
        return sum_to_shape(g1, input1.shape), sum_to_shape(g2, input2.shape), None, None, None


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Cosine embedding loss, :math:`1 - \cos` for :math:`y = 1` and
    :math:`\max(0, \cos - \text{margin})` for :math:`y = -1`, like
    :func:`torch.nn.functional.cosine_embedding_loss`.

    See :class:`CosineEmbeddingLossFunction`.

    Examples:
        >>> a, b = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 1.0]])
        >>> cosine_embedding_loss(a, b, torch.tensor([1.0, -1.0]), reduction="none")
        tensor([1., 1.])
    """
    reduction = resolve(size_average, reduce, reduction)
    if target.dim() > 1:
        raise RuntimeError(f"0D or 1D target tensor expected, multi-target not supported: "
                           f"cosine_embedding_loss got target of shape {tuple(target.shape)}")
    want = target.dim() + 1
    if input1.dim() != want or input2.dim() != want:
        raise RuntimeError(f"{target.dim()}D target tensor expects {want}D input tensors, but "
                           f"found inputs with sizes {list(input1.shape)} and {list(input2.shape)} "
                           f"(cosine_embedding_loss: "
                           f"{shapes_of(input1=input1, input2=input2, target=target)})")
    pair = broadcast_shape("cosine_embedding_loss", input1=input1, input2=input2)
    # one cosine per row: the row shape must then broadcast with target's
    broadcast_shape("cosine_embedding_loss", cosines=pair[:-1], target=target)
    return CosineEmbeddingLossFunction.apply(input1, input2, target.detach(), margin, reduction)
