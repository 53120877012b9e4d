r"""Ranking and embedding hinges: margin ranking, hinge embedding, cosine embedding.

Each compares two inputs (or an input and a distance) and punishes them only
inside a margin. Every hinge here is ``clamp_min(u, 0)``; its gradient
passes where :math:`u \ge 0` on torch 2.13 and where :math:`u > 0` from torch
2.14, as torch's ``clamp_min`` does (:func:`lossutils._torch_version.hinge_active`).

Each is computed with torch's ops in torch's order, in the arguments' dtype
(float16 and bfloat16 included; sums and means accumulate in float32 inside
torch's reduction kernels), so every dtype rounds as torch's does. Each
backward is written in differentiable ops (second derivatives, ``torch.func``);
when nothing records it, its masks are written straight into float tensors
(``out=``): on CPU a bool tensor, and ``torch.where`` on one, cost several
times a float pass.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, plain, transformable
from .._checks import broadcast_shape, shapes_of
from .._reduction import reduce, reduction_grad, resolve, sum_to_shape
from .._torch_version import CLAMP_BOUNDARY_PASSES_GRADIENT, hinge_active

__all__ = ["margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss"]


def _where_equal(t: Tensor, value: float, like: Tensor, fast: bool, equal: bool = True) -> Tensor:
    """1 where ``t == value`` (``equal``) or ``t != value`` (not ``equal``), else 0, in
    ``like``'s dtype: the selection of ``torch.where(t == value, x, 0)`` as a factor.
    ``fast`` (plain eager tensors): written straight into a float tensor, no bool tensor."""
    compare = torch.eq if equal else torch.ne
    if fast:
        return compare(t, value, out=torch.empty(t.shape, dtype=like.dtype, device=like.device))
    return compare(t, value).to(like.dtype)


@transformable
class MarginRankingLossFunction(Function):
    r"""Ranking hinge: :math:`y = 1` asks for :math:`x_1 > x_2` by ``margin``, :math:`y = -1`
    for the reverse.

    .. math::
        l_n = \max(0,\; -y_n (x_{1,n} - x_{2,n}) + \text{margin})

    .. math::
        \frac{\partial l_n}{\partial x_{1,n}} = -y_n m_n = -\frac{\partial l_n}{\partial x_{2,n}},
        \qquad
        \frac{\partial l_n}{\partial y_n} = -(x_{1,n} - x_{2,n})\, m_n, \qquad
        \dot l_n = m_n \big(-\dot y_n (x_{1,n} - x_{2,n}) - y_n (\dot x_{1,n} - \dot x_{2,n})\big)

    with :math:`m_n = [\,-y_n(x_{1,n} - x_{2,n}) + \text{margin} \ge 0\,]`
    (:math:`> 0` from torch 2.14, whose ``clamp_min`` passes no gradient at the bound).
    ``target`` is not checked to be :math:`\pm 1` (torch does not either) and
    is differentiable: the second derivative :math:`\partial^2 l_n / \partial x_{1,n}
    \partial y_n = -m_n` is not zero. The three inputs broadcast; gradients are summed
    back. ``'none'`` returns every :math:`l_n`, ``'sum'`` their sum, ``'mean'`` the
    sum over the number of :math:`l_n` (so each gradient is divided by it).
    """

    @staticmethod
    def forward(input1, input2, target, margin, reduction):
        # float(margin): torch's margin is a double even when written 0, so
        # integer inputs give a floating loss.
        return reduce((-target * (input1 - input2) + float(margin)).clamp_min_(0), reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input1, input2, target, margin, reduction = inputs
        ctx.save_for_backward(input1, input2, target)
        ctx.save_for_forward(input1, input2, target)
        ctx.margin, ctx.reduction = float(margin), reduction

    @staticmethod
    def backward(ctx, grad_output):
        input1, input2, target = ctx.saved_tensors
        fast = fast_path(grad_output, input1, input2, target)
        if fast and input1.shape == input2.shape == target.shape:
            return MarginRankingLossFunction._fast_backward(ctx, grad_output, input1, input2,
                                                            target)
        diff, neg_target = input1 - input2, -target
        hinge = neg_target * diff + ctx.margin
        # clamp_min's gradient, then the product's, each summed to its factor's shape
        g = hinge_active(hinge, fast)
        g = g.mul_(reduction_grad(grad_output, ctx.reduction, g.numel())) if fast else (
            g * reduction_grad(grad_output, ctx.reduction, g.numel()))
        g_diff = sum_to_shape(g * neg_target, diff.shape)
        g1 = sum_to_shape(g_diff, input1.shape) if ctx.needs_input_grad[0] else None
        g2 = -sum_to_shape(g_diff, input2.shape) if ctx.needs_input_grad[1] else None
        g_target = -sum_to_shape(g * diff, target.shape) if ctx.needs_input_grad[2] else None
        return g1, g2, g_target, None, None

    @staticmethod
    def _fast_backward(ctx, grad_output, input1, input2, target):
        """The backward above for equal shapes, in two buffers (and the second input's
        gradient): each product reordered only where that is exact (:math:`-y d = -(y d)`)."""
        needs = ctx.needs_input_grad
        diff = input1 - input2
        g = torch.mul(target, diff).neg_().add_(ctx.margin)
        compare = torch.ge if CLAMP_BOUNDARY_PASSES_GRADIENT else torch.gt
        g = compare(g, 0, out=g).mul_(reduction_grad(grad_output, ctx.reduction, g.numel()))
        g_target = diff.mul_(g).neg_() if needs[2] else None
        g.mul_(target)  # the second input's gradient, minus the first's
        g1 = (torch.neg(g) if needs[1] else g.neg_()) if needs[0] else None
        return g1, g if needs[1] else None, g_target, None, None

    @staticmethod
    def jvp(ctx, t1, t2, t_target, *_):
        input1, input2, target = ctx.saved_tensors
        diff = input1 - input2
        active = hinge_active(-target * diff + ctx.margin)
        tangent = torch.zeros_like(active)
        if t1 is not None or t2 is not None:
            t_diff = (0 if t1 is None else t1) - (0 if t2 is None else t2)
            tangent = tangent - target * t_diff
        if t_target is not None:
            tangent = tangent - t_target * diff
        return reduce(active * tangent, ctx.reduction)


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
    if not input1.shape == input2.shape == target.shape:
        broadcast_shape("margin_ranking_loss", input1=input1, input2=input2, target=target)
    (input1, input2, target), _ = _autocast.cast("margin_ranking_loss", input1, input2, target)
    return apply(MarginRankingLossFunction, input1, input2, target, margin, reduction)


@transformable
class HingeEmbeddingLossFunction(Function):
    r"""Hinge on a distance :math:`x`: small for similar pairs (:math:`y = 1`), beyond
    ``margin`` for dissimilar ones.

    .. math::
        l_n = \begin{cases} x_n & y_n = 1 \\ \max(0, \text{margin} - x_n) & y_n = -1 \end{cases}
        \qquad
        \frac{\partial l_n}{\partial x_n} = \begin{cases} 1 & y_n = 1 \\
            -[\text{margin} - x_n \ge 0] & y_n = -1 \end{cases}

    (the bracket is :math:`> 0` from torch 2.14), and :math:`\dot l_n` is that slope
    times :math:`\dot x_n`. Like torch, a target that is neither 1 nor -1 adds *both*
    terms. ``target`` is not differentiable; ``input`` and ``target`` broadcast.
    ``'none'`` returns every :math:`l_n`, ``'sum'`` their sum, ``'mean'`` their average
    over all elements.
    """

    @staticmethod
    def forward(input, target, margin, reduction):
        # full_like, not `margin - input`: torch fills a tensor of input's dtype
        # with margin first, so an integer input truncates a fractional margin.
        hinge = (torch.full_like(input, margin) - input).clamp_min_(0)
        if input.is_floating_point() and plain(input, target):
            # torch.where's selections as factors 0 and 1: bitwise the same wherever the
            # terms are finite (an infinite one times 0 would be nan: then torch's way)
            loss = (hinge * _where_equal(target, 1, input, True, equal=False)
                    + input * _where_equal(target, -1, input, True, equal=False))
            out = reduce(loss, reduction)
            if bool(torch.isfinite(out if out.dim() == 0 else out.sum())):
                return out
        loss = torch.where(target != 1, hinge, 0) + torch.where(target != -1, input, 0)
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, margin, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.save_for_forward(input, target)
        ctx.margin, ctx.reduction = margin, reduction

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        fast = fast_path(grad_output, input, target)
        shape = input.shape if input.shape == target.shape else torch.broadcast_shapes(
            input.shape, target.shape)
        g = reduction_grad(grad_output, ctx.reduction, shape.numel()).expand(shape)
        # torch's order: each where's gradient summed to input's shape, the hinge's through
        # clamp_min and the negation, then the two added
        hinge = sum_to_shape(_where_equal(target, 1, input, fast, equal=False) * g, input.shape)
        active = hinge_active(torch.full_like(input, ctx.margin) - input, fast)
        hinge = hinge.mul_(active) if fast else hinge * active
        straight = sum_to_shape(_where_equal(target, -1, input, fast, equal=False) * g,
                                input.shape)
        return straight - hinge, None, None, None

    @staticmethod
    def jvp(ctx, input_tangent, *_):
        input, target = ctx.saved_tensors
        active = hinge_active(torch.full_like(input, ctx.margin) - input)
        slope = ((target != -1).to(input.dtype) - (target != 1).to(input.dtype) * active)
        return reduce(slope * input_tangent, ctx.reduction)


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
    if input.shape != target.shape:
        broadcast_shape("hinge_embedding_loss", input=input, target=target)
    (input, target), _ = _autocast.cast("hinge_embedding_loss", input, target)
    # target only selects a branch: keep it out of the graph, as torch does.
    return apply(HingeEmbeddingLossFunction, input, target.detach(), margin, reduction)


# ATen's EPSILON, added to each squared norm (not cosine_similarity's eps). It is
# a C++ float: 1e-12 rounded to float32, which float64 inputs see as 9.99999996e-13.
_COSINE_EPS = torch.tensor(1e-12, dtype=torch.float32).item()


def _cosine(input1: Tensor, input2: Tensor, dim: int):
    """The cosine of each pair as torch's kernel forms it, and the pieces its gradient
    reuses: :math:`x_1 \\cdot x_2`, :math:`m_k = \\|x_k\\|^2 + \\epsilon`,
    :math:`\\rho = \\sqrt{m_1 m_2}`."""
    prod = (input1 * input2).sum(dim)
    m1 = (input1 * input1).sum(dim) + _COSINE_EPS
    m2 = (input2 * input2).sum(dim) + _COSINE_EPS
    rho = (m1 * m2).sqrt()
    return prod / rho, m1, m2, rho


@transformable
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
    (:math:`y = -1`; :math:`> 0` from torch 2.14); :math:`\dot l_n` is the same factor
    times :math:`\dot{\cos}_n = \sum_i \frac{\partial \cos}{\partial x_{1,i}} \dot x_{1,i}
    + \frac{\partial \cos}{\partial x_{2,i}} \dot x_{2,i}`. A zero vector has
    :math:`\cos = 0` and, through the :math:`\epsilon`, a *large but finite* gradient
    :math:`x_2 / \rho \approx 10^6 x_2/\|x_2\|`.
    ``'none'`` returns every :math:`l_n`, ``'sum'`` their sum, ``'mean'`` their
    average over the :math:`N` pairs.
    """

    @staticmethod
    def forward(input1, input2, target, margin, reduction):
        cos = _cosine(input1, input2, target.dim())[0]  # 0 for one pair of 1-D vectors
        loss = (torch.where(target == 1, 1 - cos, 0)
                + torch.where(target == -1, (cos - margin).clamp_min_(0), 0))
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input1, input2, target, margin, reduction = inputs
        ctx.save_for_backward(input1, input2, target)
        ctx.save_for_forward(input1, input2, target)
        ctx.margin, ctx.reduction = margin, reduction

    @staticmethod
    def backward(ctx, grad_output):
        input1, input2, target = ctx.saved_tensors
        fast = fast_path(grad_output, input1, input2, target)
        dim = target.dim()
        cos, m1, m2, rho = _cosine(input1, input2, dim)
        # the chain rule through torch's ops, in torch's order, so every dtype rounds alike:
        # each where's gradient summed to cos's shape (a broadcast target may widen it) ...
        shape = cos.shape if cos.shape == target.shape else torch.broadcast_shapes(
            target.shape, cos.shape)
        g = reduction_grad(grad_output, ctx.reduction, shape.numel()).expand(shape)
        pos = sum_to_shape(torch.where(target == 1, g, 0), cos.shape)
        neg = sum_to_shape(torch.where(target == -1, g, 0), cos.shape)
        g_cos = neg * hinge_active(cos - ctx.margin) - pos
        # ... then cos = prod / rho, rho = sqrt(m1 m2), m_k = |x_k|^2 + eps
        # (2 g_m1 x1 = -g cos x1 / m1 and g_prod x2 = g x2 / rho)
        # (each product's gradient summed to its factor's shape first, as autograd does)
        g_m1m2 = -g_cos * (cos / rho) / (2 * rho)
        g_m1, g_m2 = (sum_to_shape(g_m1m2 * m, other.shape) for m, other in ((m2, m1), (m1, m2)))
        g_prod = (g_cos / rho).unsqueeze(dim)
        grads = []
        for x, other, g_m in ((input1, input2, g_m1), (input2, input1, g_m2)):
            through_prod = sum_to_shape(g_prod * other, x.shape)
            grads.append(torch.mul(x, 2 * g_m.unsqueeze(dim)).add_(through_prod) if fast
                         else x * (2 * g_m.unsqueeze(dim)) + through_prod)
        return grads[0], grads[1], None, None, None

    @staticmethod
    def jvp(ctx, t1, t2, *_):
        input1, input2, target = ctx.saved_tensors
        dim = target.dim()
        cos, m1, m2, rho = _cosine(input1, input2, dim)
        t_cos = torch.zeros_like(cos)
        for x, other, m, t in ((input1, input2, m1, t1), (input2, input1, m2, t2)):
            if t is not None:
                t_cos = t_cos + (t * other).sum(dim) / rho - cos * (t * x).sum(dim) / m
        slope = (torch.where(target == -1, hinge_active(cos - ctx.margin), 0)
                 - (target == 1).to(cos.dtype))
        return reduce(slope * t_cos, ctx.reduction)


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
    pair = input1.shape if input1.shape == input2.shape else broadcast_shape(
        "cosine_embedding_loss", input1=input1, input2=input2)
    # one cosine per row: the row shape must then broadcast with target's
    if pair[:-1] != target.shape:
        broadcast_shape("cosine_embedding_loss", cosines=pair[:-1], target=target)
    (input1, input2, target), _ = _autocast.cast("cosine_embedding_loss", input1, input2, target)
    return apply(CosineEmbeddingLossFunction, input1, input2, target.detach(), margin, reduction)
