"""Distances between vectors: ``pairwise_distance`` and ``cosine_similarity``.

The triplet and embedding losses measure how far apart two embeddings are;
these are the two measures torch offers, rebuilt from ``abs``, ``pow``,
``sum`` and ``sqrt`` with torch's ``eps`` conventions, which differ between
the two functions (and differ again inside ``cosine_embedding_loss``):

* ``pairwise_distance`` adds ``eps`` to every *component* of the difference,
  ``||x_1 - x_2 + \\epsilon||_p``, so two equal vectors are ``eps * D**(1/p)``
  apart, not 0, and the gradient there is finite.
* ``cosine_similarity`` clamps each *norm* from below, ``max(||x||, eps)``,
  but the clamp is invisible to autograd (torch applies it under
  ``no_grad``): the gradient is that of ``x / n`` with the clamped ``n`` in
  the division and ``dn/dx = x / ||x||`` (0 at ``x = 0``) behind it.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._checks import broadcast_shape
from .._reduction import sum_to_shape

__all__ = ["pairwise_distance", "cosine_similarity"]


def pnorm(x: Tensor, p: float, dim: int) -> Tensor:
    r"""The vector p-norm of ``x`` along ``dim`` (kept as a size-1 dim), as ``torch.norm``
    computes it.

    :math:`(\sum_i |x_i|^p)^{1/p}`; ``p = 0`` counts the non-zero entries,
    ``p = ±inf`` takes the largest / smallest :math:`|x_i|`.
    """
    if p == 0:
        return (x != 0).to(x.dtype).sum(dim, keepdim=True)
    if p == 1:
        return x.abs().sum(dim, keepdim=True)
    if p == 2:
        return (x * x).sum(dim, keepdim=True).sqrt()
    if math.isinf(p) and x.dim() and x.size(dim) == 0:
        raise RuntimeError(f"the {p} norm of an empty dimension is undefined (no identity for "
                           f"max/min): got a tensor of shape {tuple(x.shape)} reduced over dim "
                           f"{dim}")
    if p == math.inf:
        return x.abs().amax(dim, keepdim=True)
    if p == -math.inf:
        return x.abs().amin(dim, keepdim=True)
    return x.abs().pow(p).sum(dim, keepdim=True).pow(1.0 / p)


def pnorm_backward(grad: Tensor, x: Tensor, p: float, norm: Tensor, dim: int) -> Tensor:
    r"""``grad * d||x||_p / dx``, with ``grad`` and ``norm`` keeping ``dim`` as a size-1 dim.

    .. math::
        \frac{\partial \|x\|_p}{\partial x_i}
            = \frac{\operatorname{sgn}(x_i)\,|x_i|^{p-1}}{\|x\|_p^{p-1}}

    which is :math:`x_i / \|x\|` for ``p = 2`` and :math:`\operatorname{sgn}(x_i)`
    for ``p = 1``. Where the formula is 0/0 torch picks a subgradient, and so
    do we, case by case as ``norm_backward`` in torch's autograd does: 0 where
    the norm is 0 (``1 < p``), 0 where :math:`x_i = 0` (``p < 1``), the
    gradient shared equally among the entries that attain the max for
    ``p = ±inf``, and no gradient at all for ``p = 0`` (a count).
    """
    if p == 0:
        return torch.zeros_like(x)
    if p == 1:
        return x.sgn() * grad
    if p == 2:
        return grad * (x / norm).masked_fill(norm == 0, 0)
    if math.isinf(p):
        ax = x.abs()
        hit = (ax == norm) | ax.isnan()
        return x.sgn() * (grad / hit.sum(dim, keepdim=True) * hit)
    if p < 1:
        scaled = x.sgn() * x.abs().pow(p - 1).masked_fill(x == 0, 0)
        return scaled * grad * norm.pow(1 - p)
    scale = (grad / norm.pow(p - 1)).masked_fill(norm == 0, 0)
    scaled = x.sgn() * x.abs().pow(p - 1) if p < 2 else x * x.abs().pow(p - 2)
    return scaled * scale


class PairwiseDistanceFunction(Function):
    r"""Distance between matching rows: :math:`d = \|x_1 - x_2 + \epsilon\|_p` over the last dim.

    .. math::
        \frac{\partial d}{\partial x_1}
            = \frac{\partial \|u\|_p}{\partial u}\Big|_{u = x_1 - x_2 + \epsilon}
        = -\frac{\partial d}{\partial x_2}

    (see :func:`pnorm_backward`), summed over broadcast dimensions. With
    :math:`x_1 = x_2` the difference is :math:`(\epsilon, \dots, \epsilon)`,
    so for ``p = 2`` the gradient is :math:`\pm 1/\sqrt{D}` per component
    rather than the 0/0 of an exact zero.
    """

    @staticmethod
    def forward(x1, x2, p, eps, keepdim):
        diff = x1 - x2 + eps
        # torch reduces over the last dim of the *broadcast* result; a 0-d
        # difference "reduces" over dim -1 too, which is just abs / count.
        dist = pnorm(diff, p, -1)
        return dist if keepdim or diff.dim() == 0 else dist.squeeze(-1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x1, x2, p, eps, keepdim = inputs
        ctx.save_for_backward(x1, x2, output)
        ctx.p, ctx.eps = p, eps

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x1, x2, dist = ctx.saved_tensors
        diff = x1 - x2 + ctx.eps
        shape = diff.shape[:-1] + (1,) if diff.dim() else diff.shape
        g = pnorm_backward(grad_output.reshape(shape), diff, ctx.p, dist.reshape(shape), -1)
        return sum_to_shape(g, x1.shape), -sum_to_shape(g, x2.shape), None, None, None


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    r"""p-norm distance between matching rows, :math:`\|x_1 - x_2 + \epsilon\|_p`,
    like :func:`torch.nn.functional.pairwise_distance`.

    Args:
        x1, x2: tensors of shape :math:`(N, D)` or :math:`(D)` (broadcastable to each other).
        p: the norm degree (any real, ``inf`` included). Default 2.
        eps: added to every component of the difference. Default ``1e-6``.
        keepdim: keep the reduced last dim as size 1. Default ``False``.

    Shape:
        output :math:`(N)` (or :math:`(N, 1)` with ``keepdim``), a scalar for 1-D inputs.

    Examples:
        >>> pairwise_distance(torch.zeros(2, 3), torch.ones(2, 3), eps=0)
        tensor([1.7321, 1.7321])
    """
    broadcast_shape("pairwise_distance", x1=x1, x2=x2)
    return PairwiseDistanceFunction.apply(x1, x2, p, eps, keepdim)


class CosineSimilarityFunction(Function):
    r"""Cosine of the angle between :math:`x_1` and :math:`x_2` along ``dim``.

    .. math::
        s = \sum_i \frac{x_{1,i}}{\hat n_1} \frac{x_{2,i}}{\hat n_2}, \qquad
        \hat n_k = \max(\|x_k\|_2, \epsilon)

    and, treating the clamp as the identity (as torch does),

    .. math::
        \frac{\partial s}{\partial x_1} = \frac{x_2}{\hat n_1 \hat n_2}
        - \frac{s}{\hat n_1} \cdot \frac{x_1}{\|x_1\|}

    with :math:`x_1 / \|x_1\|` read as 0 when :math:`x_1 = 0`; symmetric for
    :math:`x_2`. Dividing each vector by its own norm *before* the dot
    product keeps :math:`|s| \le 1` and avoids overflow in :math:`\|x_1\| \|x_2\|`.
    """

    @staticmethod
    def forward(x1, x2, dim, eps):
        x1, x2 = torch.broadcast_tensors(x1, x2)
        n1 = pnorm(x1, 2, dim).clamp_min(eps)
        n2 = pnorm(x2, 2, dim).clamp_min(eps)
        return ((x1 / n1) * (x2 / n2)).sum(dim)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x1, x2, dim, eps = inputs
        ctx.save_for_backward(x1, x2)
        ctx.dim, ctx.eps = dim, eps

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x1_in, x2_in = ctx.saved_tensors
        x1, x2 = torch.broadcast_tensors(x1_in, x2_in)
        g = grad_output.unsqueeze(ctx.dim) if x1.dim() else grad_output
        n1, n2 = pnorm(x1, 2, ctx.dim), pnorm(x2, 2, ctx.dim)
        c1, c2 = n1.clamp_min(ctx.eps), n2.clamp_min(ctx.eps)

        def through(x, n, c, g_xhat):
            # x_hat = x / c: directly 1/c, and through c (= n for autograd) with dn/dx = x / n
            g_c = -g_xhat * ((x / c) / c)
            g_c = g_c.sum(ctx.dim, keepdim=True) if x.dim() else g_c
            return g_xhat / c + g_c * (x / n).masked_fill(n == 0, 0)

        # the chain rule in torch's order (s = sum(x1_hat * x2_hat)), so float32 rounds alike
        g1 = through(x1, n1, c1, g * (x2 / c2))
        g2 = through(x2, n2, c2, g * (x1 / c1))
        return sum_to_shape(g1, x1_in.shape), sum_to_shape(g2, x2_in.shape), None, None


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    r"""Cosine similarity along ``dim``, :math:`\frac{x_1}{\max(\|x_1\|, \epsilon)} \cdot
    \frac{x_2}{\max(\|x_2\|, \epsilon)}`, like :func:`torch.nn.functional.cosine_similarity`.

    Args:
        x1, x2: tensors broadcastable to a common shape.
        dim: the dimension holding the vectors. Default 1.
        eps: lower bound on each norm. Default ``1e-8``.

    Shape:
        output: the broadcast shape without ``dim``.

    Examples:
        >>> cosine_similarity(torch.tensor([[1., 0.]]), torch.tensor([[1., 1.]]))
        tensor([0.7071])
    """
    dtype = torch.result_type(x1, x2)
    if not dtype.is_floating_point:
        raise RuntimeError(f"cosine_similarity: x1 ({x1.dtype}) and x2 ({x2.dtype}) must have a "
                           f"floating-point common dtype, got {dtype}")
    # torch casts integer (and bool) inputs to the common dtype before the norms.
    x1 = x1 if x1.is_floating_point() else x1.to(dtype)
    x2 = x2 if x2.is_floating_point() else x2.to(dtype)
    broadcast_shape("cosine_similarity", x1=x1, x2=x2)
    return CosineSimilarityFunction.apply(x1, x2, dim, eps)
