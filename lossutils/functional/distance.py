"""Distances between vectors: ``pairwise_distance`` and ``cosine_similarity``.

The triplet and embedding losses measure how far apart two embeddings are;
these are the two measures torch offers, rebuilt on one reduction, the vector
p-norm (:func:`pnorm`), with torch's ``eps`` conventions, which differ between
the two functions (and differ again inside ``cosine_embedding_loss``):

* ``pairwise_distance`` adds ``eps`` to every *component* of the difference,
  ``||x_1 - x_2 + \\epsilon||_p``, so two equal vectors are ``eps * D**(1/p)``
  apart, not 0, and the gradient there is finite.
* ``cosine_similarity`` clamps each *norm* from below, ``max(||x||, eps)``,
  but the clamp is invisible to autograd (torch applies it under
  ``no_grad``): the gradient is that of ``x / n`` with the clamped ``n`` in
  the division and ``dn/dx = x / ||x||`` (0 at ``x = 0``) behind it.

float16 and bfloat16 vectors are computed as torch computes them: each
elementwise op in the arguments' dtype, each norm accumulated in float32 by
the vector-norm kernel and rounded once (a float16 row of 200 values near 300
has a squared norm of about 2e7, far past float16's 65504: squared and summed
as a float16 tensor, it is ``inf``). Each backward is written in
differentiable ops (second derivatives, ``torch.func``); when nothing records
it, it works in place.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, transformable
from .._checks import broadcast_shape
from .._reduction import sum_to_shape

__all__ = ["pairwise_distance", "cosine_similarity"]


def pnorm(x: Tensor, p: float, dim: int) -> Tensor:
    r"""The vector p-norm of ``x`` along ``dim`` (kept as a size-1 dim), as ``torch.norm``
    computes it: :math:`(\sum_i |x_i|^p)^{1/p}`; ``p = 0`` counts the non-zero
    entries, ``p = ±inf`` takes the largest / smallest :math:`|x_i|`.

    One reduction, ``torch.linalg.vector_norm`` (the kernel behind ``torch.norm``): a
    sum of squares written out as ``(x * x).sum()`` rounds differently in float32, and
    a gradient that cancels to nearly 0 over a broadcast dimension must round as
    torch's does.
    """
    if math.isinf(p) and x.dim() and x.size(dim) == 0:
        raise RuntimeError(f"the {p} norm of an empty dimension is undefined (no identity for "
                           f"max/min): got a tensor of shape {tuple(x.shape)} reduced over dim "
                           f"{dim}")
    return torch.linalg.vector_norm(x, p, dim, keepdim=True)


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
    ``p = ±inf``, and no gradient at all for ``p = 0`` (a count). Differentiable
    ops only: a second derivative differentiates this formula, ``norm`` included.
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


def _difference(x1: Tensor, x2: Tensor, eps: float) -> Tensor:
    """:math:`x_1 - x_2 + \\epsilon` (broadcast), as torch's ``pairwise_distance`` forms it."""
    return x1 - x2 + eps


def _kept(t: Tensor, like: Tensor) -> Tensor:
    """A per-row tensor (the distance, its gradient) with the reduced last dim of ``like``
    kept as size 1 (a 0-d ``like`` keeps it 0-d)."""
    return t.reshape(like.shape[:-1] + (1,)) if like.dim() else t.reshape(())


@transformable
class PairwiseDistanceFunction(Function):
    r"""Distance between matching rows: :math:`d = \|x_1 - x_2 + \epsilon\|_p` over the last dim.

    .. math::
        \frac{\partial d}{\partial x_1}
            = \frac{\partial \|u\|_p}{\partial u}\Big|_{u = x_1 - x_2 + \epsilon}
        = -\frac{\partial d}{\partial x_2}, \qquad
        \dot d = \sum_i \frac{\partial \|u\|_p}{\partial u_i} (\dot x_{1,i} - \dot x_{2,i})

    (see :func:`pnorm_backward`), summed over broadcast dimensions. With
    :math:`x_1 = x_2` the difference is :math:`(\epsilon, \dots, \epsilon)`,
    so for ``p = 2`` the gradient is :math:`\pm 1/\sqrt{D}` per component
    rather than the 0/0 of an exact zero. The saved distance is the output,
    so a second derivative reaches the inputs through it too.
    """

    @staticmethod
    def forward(x1, x2, p, eps, keepdim):
        # torch reduces over the last dim of the *broadcast* result; a 0-d
        # difference "reduces" over dim -1 too, which is just abs / count.
        dist = pnorm(_difference(x1, x2, eps), p, -1)
        return dist if keepdim or dist.dim() == 0 else dist.squeeze(-1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x1, x2, p, eps, keepdim = inputs
        ctx.save_for_backward(x1, x2, output)
        ctx.save_for_forward(x1, x2, output)
        ctx.p, ctx.eps = p, eps

    @staticmethod
    def backward(ctx, grad_output):
        x1, x2, dist = ctx.saved_tensors
        diff = _difference(x1, x2, ctx.eps)
        g, d = _kept(grad_output, diff), _kept(dist, diff)
        if ctx.p == 2 and fast_path(grad_output, x1, x2, dist):
            # nothing records this: pnorm_backward's formula, in place in the fresh difference
            # (x / d, 0 where d = 0 and so x = 0: a 1 in the divisor instead of a mask on x)
            gx = diff.div_(d.masked_fill(d == 0, 1)).mul_(g)
        else:
            gx = pnorm_backward(g, diff, ctx.p, d, -1)
        g1 = sum_to_shape(gx, x1.shape) if ctx.needs_input_grad[0] else None
        g2 = -sum_to_shape(gx, x2.shape) if ctx.needs_input_grad[1] else None
        return g1, g2, None, None, None

    @staticmethod
    def jvp(ctx, t1, t2, *_):
        x1, x2, dist = ctx.saved_tensors
        diff = _difference(x1, x2, ctx.eps)
        d = _kept(dist, diff)
        tangent = (0 if t1 is None else t1) - (0 if t2 is None else t2)
        slope = pnorm_backward(torch.ones_like(d), diff, ctx.p, d, -1)
        return (slope * tangent).sum(-1).reshape(dist.shape)


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
    if x1.shape != x2.shape:
        broadcast_shape("pairwise_distance", x1=x1, x2=x2)
    # CUDA autocast: torch's norm runs in float32 there (fp32_append_dtype), see COMPOSITES
    (x1, x2), _ = _autocast.cast("pairwise_distance", x1, x2)
    return apply(PairwiseDistanceFunction, x1, x2, p, eps, keepdim)


def _clamped_norm(n: Tensor, eps: float, recorded: bool) -> Tensor:
    r""":math:`\max(n, \epsilon)` in value; in derivative, :math:`n`'s (torch clamps the norm
    in place under ``no_grad``, so autograd sees the norm). ``recorded``: the form a
    second derivative can differentiate."""
    if not recorded:
        return n.clamp_min(eps)
    return torch.where(n < eps, (n - n.detach()) + eps, n)


def _cosine_grads(x1: Tensor, x2: Tensor, g: Tensor, dim: int, eps: float,
                  recorded: bool) -> tuple[Tensor, Tensor]:
    r"""``g`` (keeping ``dim`` as a size-1 dim) times :math:`\partial s / \partial x_1` and
    :math:`\partial s / \partial x_2`, both of the broadcast shape.

    The chain rule in torch's order, so that float32 rounds alike (a gradient summed
    over a broadcast dimension cancels to nearly 0, and the rounding errors must cancel
    as torch's do): with :math:`\hat x_k = x_k / \hat n_k` and :math:`a = g\,\hat x_2`,
    :math:`g_{x_1} = a / \hat n_1 - \big(\sum_i a_i \hat x_{1,i} / \hat n_1\big)\, x_1 / n_1`
    (:math:`x_1 / n_1` read as 0 at :math:`x_1 = 0`); symmetric for :math:`x_2`.
    ``recorded``: differentiable, out-of-place ops; otherwise in place, into fresh
    tensors."""
    grads = []
    norms = [pnorm(x, 2, dim) for x in (x1, x2)]
    clamped = [_clamped_norm(n, eps, recorded) for n in norms]
    hats = [x / c for x, c in zip((x1, x2), clamped, strict=True)]
    for k in (0, 1):
        x, n, c, x_hat, other_hat = x1 if k == 0 else x2, norms[k], clamped[k], hats[k], hats[1 - k]
        # (in place, the other's x_hat once its own term is done: x_2's, after x_1's)
        a = other_hat.mul_(g) if k == 1 and not recorded else other_hat * g
        # through the clamped norm (torch's division backward, -a * (x_hat / c), summed) ...
        through = a * (x_hat / c) if recorded else torch.div(x_hat, c).mul_(a)
        g_norm = -through.sum(dim, keepdim=True)
        del through
        # ... and the norm's own derivative x / n: a 1 in the divisor where n = 0 (x = 0)
        unit = x / n.masked_fill(n == 0, 1)
        grads.append(a / c + g_norm * unit if recorded else a.div_(c).add_(unit.mul_(g_norm)))
    return grads[0], grads[1]


@transformable
class CosineSimilarityFunction(Function):
    r"""Cosine of the angle between :math:`x_1` and :math:`x_2` along ``dim``.

    .. math::
        s = \sum_i \frac{x_{1,i}}{\hat n_1} \frac{x_{2,i}}{\hat n_2}, \qquad
        \hat n_k = \max(\|x_k\|_2, \epsilon)

    and, treating the clamp as the identity (as torch does),

    .. math::
        \frac{\partial s}{\partial x_1} = \frac{x_2}{\hat n_1 \hat n_2}
        - \frac{s}{\hat n_1} \cdot \frac{x_1}{\|x_1\|}, \qquad
        \dot s = \sum_i \frac{\partial s}{\partial x_{1,i}} \dot x_{1,i}
            + \frac{\partial s}{\partial x_{2,i}} \dot x_{2,i}

    with :math:`x_1 / \|x_1\|` read as 0 when :math:`x_1 = 0`; symmetric for
    :math:`x_2`. Dividing each vector by its own norm *before* the dot
    product keeps :math:`|s| \le 1` and avoids overflow in :math:`\|x_1\| \|x_2\|`.
    """

    @staticmethod
    def forward(x1, x2, dim, eps):
        x1, x2 = torch.broadcast_tensors(x1, x2)
        n1, n2 = pnorm(x1, 2, dim).clamp_min_(eps), pnorm(x2, 2, dim).clamp_min_(eps)
        return ((x1 / n1) * (x2 / n2)).sum(dim)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x1, x2, dim, eps = inputs
        ctx.save_for_backward(x1, x2)
        ctx.save_for_forward(x1, x2)
        ctx.dim, ctx.eps = dim, eps

    @staticmethod
    def backward(ctx, grad_output):
        x1_in, x2_in = ctx.saved_tensors
        recorded = not fast_path(grad_output, x1_in, x2_in)
        x1, x2 = torch.broadcast_tensors(x1_in, x2_in)
        g = grad_output.unsqueeze(ctx.dim) if x1.dim() else grad_output
        g1, g2 = _cosine_grads(x1, x2, g, ctx.dim, ctx.eps, recorded)
        return sum_to_shape(g1, x1_in.shape), sum_to_shape(g2, x2_in.shape), None, None

    @staticmethod
    def jvp(ctx, t1, t2, *_):
        x1_in, x2_in = ctx.saved_tensors
        x1, x2 = torch.broadcast_tensors(x1_in, x2_in)
        ones = torch.ones_like(x1.sum(ctx.dim, keepdim=True))
        g1, g2 = _cosine_grads(x1, x2, ones, ctx.dim, ctx.eps, True)
        out = torch.zeros_like(ones)
        for g, t in ((g1, t1), (g2, t2)):
            if t is not None:
                out = out + (g * t).sum(ctx.dim, keepdim=True)
        return out.sum(ctx.dim) if x1.dim() else out


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
    (x1, x2), _ = _autocast.cast("cosine_similarity", x1, x2)
    dtype = torch.result_type(x1, x2)
    if not dtype.is_floating_point:
        raise RuntimeError(f"cosine_similarity: x1 ({x1.dtype}) and x2 ({x2.dtype}) must have a "
                           f"floating-point common dtype, got {dtype}")
    # torch casts integer (and bool) inputs to the common dtype before the norms.
    x1 = x1 if x1.is_floating_point() else x1.to(dtype)
    x2 = x2 if x2.is_floating_point() else x2.to(dtype)
    if x1.shape != x2.shape:
        broadcast_shape("cosine_similarity", x1=x1, x2=x2)
    return apply(CosineSimilarityFunction, x1, x2, dim, eps)
