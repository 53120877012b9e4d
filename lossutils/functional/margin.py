"""Margin, ranking and embedding losses.

Two kinds live here. The *margin* losses score a prediction and punish it
only inside a margin: ``soft_margin_loss`` (its smooth version),
``multilabel_soft_margin_loss``, ``multi_margin_loss`` and
``multilabel_margin_loss``. The *ranking / embedding* losses compare two or
three inputs: ``margin_ranking_loss``, ``hinge_embedding_loss``,
``cosine_embedding_loss`` and the two triplet losses, which reuse the
distances of :mod:`lossutils.functional.distance`.

Every hinge here is ``clamp_min(u, 0)``; its gradient passes where
:math:`u \\ge 0` (the boundary included, as torch's ``clamp_min`` does),
except in ``multi_margin_loss`` and ``multilabel_margin_loss``, whose C++
kernels test :math:`z > 0` strictly (and so give NaN inputs a zero loss).

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _reduction
from .._autograd import once_differentiable
from .._checks import broadcast_shape, require_floating
from .._reduction import REDUCTIONS, reduce, reduce_backward, sum_to_shape
from .distance import cosine_similarity, pairwise_distance

__all__ = [
    "soft_margin_loss", "multilabel_soft_margin_loss", "margin_ranking_loss",
    "hinge_embedding_loss", "cosine_embedding_loss", "multi_margin_loss", "multilabel_margin_loss",
    "triplet_margin_loss", "triplet_margin_with_distance_loss",
    "pairwise_distance", "cosine_similarity",
]


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _shapes(**tensors: Tensor) -> str:
    return ", ".join(f"{name} of shape {tuple(t.shape)}" for name, t in tensors.items())


def _not_differentiable(op: str, name: str, tensor: Tensor | None) -> None:
    """torch's kernels without a derivative for ``name`` refuse it when it requires grad."""
    if tensor is not None and tensor.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(f"The function '{op}' is not differentiable with respect to argument "
                           f"'{name}'. This input cannot have requires_grad True "
                           f"(pass {name}.detach()).")


def _float_kernel(op: str, kernel: str, input: Tensor) -> None:
    """The C++ margin kernels exist for float32 and float64 only (``NotImplementedError``)."""
    if input.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError(f'"{kernel}" not implemented for {_dtype(input)!r}: {op} needs '
                                  f"a float32 or float64 input, got {input.dtype}")


def _class_index_target(op: str, target: Tensor) -> None:
    if target.dtype != torch.int64:
        raise RuntimeError(f"expected scalar type Long but found {_dtype(target)}: {op} needs "
                           f"target to hold class indices as int64, got {target.dtype}")


def _frames(op: str, input: Tensor) -> tuple[int, int]:
    """``(N, C)`` of a 0-d, ``(C)`` or ``(N, C)`` input with ``C > 0``: what the C++ kernels take."""
    if not (input.dim() == 0 or (input.dim() in (1, 2) and input.size(-1) != 0)):
        raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, "
                           f"but got: {list(input.shape)} ({op}: input must be (C) or (N, C) "
                           f"with C > 0)")
    if input.dim() <= 1:
        return 1, input.numel()
    return input.size(0), input.size(1)


# --------------------------------------------------------------------------- soft margin


class SoftMarginLossFunction(Function):
    r"""Two-class logistic loss on targets :math:`y \in \{1, -1\}`.

    .. math::
        l_n = \log(1 + e^{-y_n x_n}), \qquad
        \frac{\partial l_n}{\partial x_n} = \frac{-y_n\, e^{-y_n x_n}}{1 + e^{-y_n x_n}}

    computed, like torch's kernel, literally as ``log1p(exp(-y x))``: for
    :math:`-y x` beyond ``exp``'s range the loss is ``inf`` and its gradient
    ``inf / inf = nan``, exactly where torch's are. ``mean`` divides by
    :math:`N`, the number of elements of ``input``.
    """

    @staticmethod
    def forward(input, target, reduction):
        # torch writes into a tensor of input's dtype: (-x * y) is rounded to it first.
        loss = (-input * target).to(input.dtype).exp().log1p()
        return reduce(loss, reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        z = (-target * input).exp()
        g = reduce_backward((-(target * z) / (z + 1)).to(input.dtype), ctx.reduction, grad_output)
        return g, None, None


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    r"""Two-class logistic loss, :math:`l_n = \log(1 + e^{-y_n x_n})`,
    like :func:`torch.nn.functional.soft_margin_loss`. See :class:`SoftMarginLossFunction`."""
    reduction = _reduction.resolve(size_average, reduce, reduction)
    # torch writes the loss into a tensor shaped and typed like input: target
    # may broadcast *to* input, never widen it.
    if broadcast_shape("soft_margin_loss", input=input, target=target) != input.shape:
        raise RuntimeError(f"soft_margin_loss: target of shape {tuple(target.shape)} must "
                           f"broadcast to input's shape {tuple(input.shape)}")
    if not input.is_floating_point():
        raise RuntimeError(f"result type Float can't be cast to the desired output type "
                           f"{_dtype(input).capitalize()}: soft_margin_loss needs a floating-point "
                           f"input, got {input.dtype}")
    _not_differentiable("soft_margin_loss", "target", target)
    return SoftMarginLossFunction.apply(input, target, reduction)


# --------------------------------------------------------------------------- multilabel soft margin


def _log_sigmoid(x: Tensor) -> Tensor:
    r""":math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`, finite for every finite x."""
    return x.clamp_max(0) - (-x.abs()).exp().log1p()


def _log_sigmoid_grad(x: Tensor) -> Tensor:
    r""":math:`\frac{d}{dx}\log\sigma(x) = \sigma(-x)` without cancellation, as torch computes it:
    :math:`\frac{e^{-x}}{1 + e^{-x}}` for :math:`x \ge 0`, :math:`1 - \frac{e^{x}}{1 + e^{x}}` for
    :math:`x < 0`."""
    z = (-x.abs()).exp()
    neg = x < 0
    one, sign = torch.where(neg, 1.0, 0.0), torch.where(neg, 1.0, -1.0)
    return one.to(x.dtype) - sign.to(x.dtype) * (z / (1 + z))


class MultiLabelSoftMarginLossFunction(Function):
    r"""One logistic loss per class, averaged over the :math:`C` classes.

    .. math::
        l_n = -\frac{1}{C}\sum_c w_c \big[y_{nc} \log\sigma(x_{nc}) + (1 - y_{nc})\log\sigma(-x_{nc})\big]

    .. math::
        \frac{\partial l_n}{\partial x_{nc}} = \frac{w_c}{C}\big[(1 - y_{nc})\sigma(x_{nc}) - y_{nc}\sigma(-x_{nc})\big]
        = \frac{w_c}{C}(\sigma(x_{nc}) - y_{nc}),

    .. math::
        \frac{\partial l_n}{\partial y_{nc}} = -\frac{w_c}{C}\big[\log\sigma(x_{nc}) - \log\sigma(-x_{nc})\big]
        = -\frac{w_c x_{nc}}{C}, \qquad
        \frac{\partial l_n}{\partial w_c} = \frac{\ell_{nc}}{C}

    where :math:`\ell_{nc}` is the bracket before weighting. The classes are
    the last dim of ``input``; ``target`` and ``weight`` broadcast against it.
    ``mean`` divides by the number of :math:`l_n`.
    """

    @staticmethod
    def forward(input, target, weight, reduction):
        loss = -(target * _log_sigmoid(input) + (1 - target) * _log_sigmoid(-input))
        if weight is not None:
            loss = loss * weight
        class_dim = input.dim() - 1
        return reduce(loss.sum(class_dim) / input.size(class_dim), reduction)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, reduction = inputs
        ctx.save_for_backward(input, target, weight)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        class_dim, n_classes = input.dim() - 1, input.size(-1)
        shape = broadcast_shape("multilabel_soft_margin_loss", input=input, target=target,
                                 **({} if weight is None else {"weight": weight}))
        per_sample = shape[:class_dim] + shape[class_dim + 1:]
        ones = torch.ones(per_sample, dtype=grad_output.dtype, device=grad_output.device)
        g = reduce_backward(ones, ctx.reduction, grad_output)
        g = g.unsqueeze(class_dim) / n_classes
        w = 1 if weight is None else weight
        grad_input = grad_target = grad_weight = None
        if ctx.needs_input_grad[0]:
            d = -(target * _log_sigmoid_grad(input) - (1 - target) * _log_sigmoid_grad(-input))
            grad_input = sum_to_shape((d * w * g).expand(shape), input.shape)
        if ctx.needs_input_grad[1]:
            d = -(_log_sigmoid(input) - _log_sigmoid(-input))
            grad_target = sum_to_shape((d * w * g).expand(shape), target.shape)
        if ctx.needs_input_grad[2]:
            d = -(target * _log_sigmoid(input) + (1 - target) * _log_sigmoid(-input))
            grad_weight = sum_to_shape((d * g).expand(shape), weight.shape)
        return grad_input, grad_target, grad_weight, None


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Per-class logistic loss averaged over classes, like
    :func:`torch.nn.functional.multilabel_soft_margin_loss`.

    See :class:`MultiLabelSoftMarginLossFunction`.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    if input.dim() == 0:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions: "
                         "multilabel_soft_margin_loss needs input of shape (C) or (N, C), "
                         "got a 0-d tensor")
    broadcast_shape("multilabel_soft_margin_loss", input=input, target=target,
                     **({} if weight is None else {"weight": weight}))
    require_floating("input", "log_sigmoid_cpu", input)
    # torch checks the name only after computing: 'elementwise_mean' is no alias here.
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not valid: reduction must be one of "
                         f"{', '.join(map(repr, REDUCTIONS))}")
    return MultiLabelSoftMarginLossFunction.apply(input, target, weight, reduction)


# ------------------------------------------------------------------ ranking and hinge embedding


class MarginRankingLossFunction(Function):
    r"""Ranking hinge: :math:`y = 1` asks for :math:`x_1 > x_2` by ``margin``, :math:`y = -1` for the reverse.

    .. math::
        l_n = \max(0,\; -y_n (x_{1,n} - x_{2,n}) + \text{margin})

    .. math::
        \frac{\partial l_n}{\partial x_{1,n}} = -y_n m_n = -\frac{\partial l_n}{\partial x_{2,n}}, \qquad
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
    like :func:`torch.nn.functional.margin_ranking_loss`. See :class:`MarginRankingLossFunction`."""
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if not input1.dim() == input2.dim() == target.dim():
        raise RuntimeError(f"margin_ranking_loss: input1, input2 and target must have the same "
                           f"number of dimensions, got "
                           f"{_shapes(input1=input1, input2=input2, target=target)}")
    broadcast_shape("margin_ranking_loss", input1=input1, input2=input2, target=target)
    return MarginRankingLossFunction.apply(input1, input2, target, margin, reduction)


class HingeEmbeddingLossFunction(Function):
    r"""Hinge on a distance :math:`x`: small for similar pairs (:math:`y = 1`), beyond ``margin`` for dissimilar ones.

    .. math::
        l_n = \begin{cases} x_n & y_n = 1 \\ \max(0, \text{margin} - x_n) & y_n = -1 \end{cases}
        \qquad
        \frac{\partial l_n}{\partial x_n} = \begin{cases} 1 & y_n = 1 \\ -[\text{margin} - x_n \ge 0] & y_n = -1 \end{cases}

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
    """
    reduction = _reduction.resolve(size_average, reduce, reduction)
    broadcast_shape("hinge_embedding_loss", input=input, target=target)
    # target only selects a branch: keep it out of the graph, as torch does.
    return HingeEmbeddingLossFunction.apply(input, target.detach(), margin, reduction)


# --------------------------------------------------------------------------- cosine embedding

# ATen's EPSILON, added to each squared norm (not cosine_similarity's eps). It is
# a C++ float: 1e-12 rounded to float32, which float64 inputs see as 9.99999996e-13.
_COSINE_EPS = torch.tensor(1e-12, dtype=torch.float32).item()


class CosineEmbeddingLossFunction(Function):
    r"""Pull pairs together (:math:`y = 1`) or push their cosine below ``margin`` (:math:`y = -1`).

    .. math::
        \cos_n = \frac{x_{1,n} \cdot x_{2,n}}{\sqrt{(\|x_{1,n}\|^2 + \epsilon)(\|x_{2,n}\|^2 + \epsilon)}},
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
    :math:`\epsilon`, a *large but finite* gradient :math:`x_2 / \rho \approx 10^6 x_2/\|x_2\|`.
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
    """
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if target.dim() > 1:
        raise RuntimeError(f"0D or 1D target tensor expected, multi-target not supported: "
                           f"cosine_embedding_loss got target of shape {tuple(target.shape)}")
    want = target.dim() + 1
    if input1.dim() != want or input2.dim() != want:
        raise RuntimeError(f"{target.dim()}D target tensor expects {want}D input tensors, but found "
                           f"inputs with sizes {list(input1.shape)} and {list(input2.shape)} "
                           f"(cosine_embedding_loss: "
                           f"{_shapes(input1=input1, input2=input2, target=target)})")
    pair = broadcast_shape("cosine_embedding_loss", input1=input1, input2=input2)
    # one cosine per row: the row shape must then broadcast with target's
    broadcast_shape("cosine_embedding_loss", cosines=pair[:-1], target=target)
    return CosineEmbeddingLossFunction.apply(input1, input2, target.detach(), margin, reduction)


# --------------------------------------------------------------------------- multi-class margins


class MultiMarginLossFunction(Function):
    r"""Multi-class hinge: every wrong class :math:`i` should score ``margin`` below the right one :math:`y`.

    .. math::
        l_n = \frac{1}{C}\sum_{i \ne y_n} w_{y_n} \max(0, z_{ni})^p, \qquad z_{ni} = \text{margin} - x_{n y_n} + x_{ni}

    with :math:`p \in \{1, 2\}` and :math:`w = 1` without ``weight``. Writing
    :math:`h_{ni} = w_{y_n} [z_{ni} > 0] \cdot (1 \text{ or } 2 z_{ni}) / C`:

    .. math::
        \frac{\partial l_n}{\partial x_{ni}} = h_{ni} \;(i \ne y_n), \qquad
        \frac{\partial l_n}{\partial x_{n y_n}} = -\sum_{i \ne y_n} h_{ni}

    The test is :math:`z > 0` strictly, as in torch's kernel (so a NaN
    score contributes 0). ``mean`` divides by :math:`N`; ``weight`` is not
    differentiable (torch has no derivative for it).
    """

    @staticmethod
    def forward(input, target, p, margin, weight, reduction):
        x, y, z, active = MultiMarginLossFunction._margins(input, target, margin)
        h = z if p == 1 else z * z
        if weight is not None:
            h = h * weight[y].unsqueeze(1)
        loss = torch.where(active, h, 0.0).sum(1) / x.size(1)
        if reduction == "none":
            return loss.reshape(target.shape)
        return reduce(loss, reduction)

    @staticmethod
    def _margins(input, target, margin):
        n = target.numel()
        x = input.reshape(n, input.size(-1) if input.dim() else 1)
        y = target.reshape(n)
        z = (margin - x.gather(1, y.unsqueeze(1))) + x
        wrong = torch.arange(x.size(1), device=x.device).unsqueeze(0) != y.unsqueeze(1)
        return x, y, z, (z > 0) & wrong

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, p, margin, weight, reduction = inputs
        ctx.save_for_backward(input, target, weight)
        ctx.p, ctx.margin, ctx.reduction = p, margin, reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target, weight = ctx.saved_tensors
        x, y, z, active = MultiMarginLossFunction._margins(input, target, ctx.margin)
        h = torch.ones_like(z) if ctx.p == 1 else 2 * z
        if weight is not None:
            h = h * weight[y].unsqueeze(1)
        h = torch.where(active, h, 0.0) / x.size(1)
        h = h.scatter(1, y.unsqueeze(1), -h.sum(1, keepdim=True))
        per_frame = torch.ones(x.size(0), dtype=h.dtype, device=h.device)
        per_frame_grad = grad_output.reshape(-1) if ctx.reduction == "none" else grad_output
        g = reduce_backward(per_frame, ctx.reduction, per_frame_grad)
        return (h * g.unsqueeze(1)).reshape(input.shape), None, None, None, None, None


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    r"""Multi-class hinge loss, :math:`\frac{1}{C}\sum_{i \ne y} w_y \max(0, \text{margin} - x_y + x_i)^p`,
    like :func:`torch.nn.functional.multi_margin_loss`. See :class:`MultiMarginLossFunction`."""
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError(f"only p == 1 and p == 2 supported: multi_margin_loss got p={p!r}")
    if weight is not None and weight.dim() != 1:
        raise ValueError(f"weight must be one-dimensional: multi_margin_loss got weight of shape "
                         f"{tuple(weight.shape)}")
    _float_kernel("multi_margin_loss", "multi_margin_loss_cpu_kernel", input)
    n, c = _frames("multi_margin_loss", input)
    if target.dim() > 1 or target.numel() != n:
        raise RuntimeError(f"multi_margin_loss: target must be 1-D with one class index per "
                           f"sample: expected target of shape ({n},), got {tuple(target.shape)} "
                           f"for input of shape {tuple(input.shape)}")
    if weight is not None and weight.numel() != c:
        raise RuntimeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}: "
                           f"multi_margin_loss needs one weight per class")
    _class_index_target("multi_margin_loss", target)
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {_dtype(input).capitalize()} but found "
                           f"{_dtype(weight).capitalize()}: multi_margin_loss needs weight "
                           f"({weight.dtype}) in input's dtype ({input.dtype})")
    if target.numel() and (target.min() < 0 or target.max() >= c):
        raise RuntimeError(f"target out of range: multi_margin_loss needs class indices in [0, {c}), "
                           f"got values from {target.min().item()} to {target.max().item()}")
    _not_differentiable("multi_margin_loss", "weight", weight)
    return MultiMarginLossFunction.apply(input, target, p, margin, weight, reduction)


class MultiLabelMarginLossFunction(Function):
    r"""Multi-label hinge: every target class :math:`j` should outscore every non-target class :math:`i` by 1.

    ``target`` lists the target classes of each sample, padded with -1 (the
    first -1 ends the list). With :math:`T_n` that list and :math:`\bar T_n`
    the other classes,

    .. math::
        l_n = \frac{1}{C}\sum_{j \in T_n}\sum_{i \in \bar T_n} \max(0, z_{nji}), \qquad
        z_{nji} = 1 - x_{nj} + x_{ni}

    .. math::
        \frac{\partial l_n}{\partial x_{ni}} = \frac{1}{C}\sum_{j \in T_n} [z_{nji} > 0], \qquad
        \frac{\partial l_n}{\partial x_{nj}} = -\frac{1}{C}\sum_{i \in \bar T_n} [z_{nji} > 0]

    A class listed twice counts twice, as in torch's kernel. ``mean``
    divides by :math:`N`.
    """

    @staticmethod
    def forward(input, target, reduction):
        x, z_active, count = MultiLabelMarginLossFunction._margins(input, target)
        z, active = z_active
        loss = (count.unsqueeze(2) * torch.where(active, z, 0.0)).sum((1, 2)) / x.size(1)
        if reduction == "none":
            return loss if input.dim() == 2 else loss.reshape(())
        return reduce(loss, reduction)

    @staticmethod
    def _margins(input, target):
        """z[n, j, i] = 1 - x[n, j] + x[n, i] and where it counts; count[n, j] = times j is listed."""
        c = input.size(-1) if input.dim() else 1
        x = input.reshape(-1, c)
        y = target.reshape(-1, c)
        listed = (y < 0).cumsum(1) == 0  # entries before the first -1
        classes = torch.arange(c, device=x.device)
        one_hot = (y.clamp_min(0).unsqueeze(2) == classes) & listed.unsqueeze(2)
        count = one_hot.sum(1).to(x.dtype)  # [n, class]
        is_target = count > 0
        z = (1 - x.unsqueeze(2)) + x.unsqueeze(1)
        active = (z > 0) & ~is_target.unsqueeze(1)
        return x, (z, active), count

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, reduction = inputs
        ctx.save_for_backward(input, target)
        ctx.reduction = reduction

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        x, (z, active), count = MultiLabelMarginLossFunction._margins(input, target)
        hits = count.unsqueeze(2) * active.to(x.dtype)  # [n, j, i]
        d = (hits.sum(1) - hits.sum(2)) / x.size(1)
        g = reduce_backward(torch.ones(x.size(0), dtype=d.dtype, device=d.device), ctx.reduction,
                            grad_output.reshape(-1) if ctx.reduction == "none" else grad_output)
        return (d * g.unsqueeze(1)).reshape(input.shape), None, None


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    r"""Multi-label hinge loss,
    :math:`\frac{1}{C}\sum_{j \in T}\sum_{i \notin T}\max(0, 1 - x_j + x_i)`,
    like :func:`torch.nn.functional.multilabel_margin_loss`.

    See :class:`MultiLabelMarginLossFunction`.
    """
    reduction = _reduction.resolve(size_average, reduce, reduction)
    _float_kernel("multilabel_margin_loss", "multilabel_margin_loss_forward_out_frame", input)
    n, c = _frames("multilabel_margin_loss", input)
    # (N, C) input: target (N, C); (C) or 0-d input: any target of C entries in at most one dim.
    batched = input.dim() == 2
    want = (n, c) if batched else (c,)
    if (target.shape != want) if batched else (target.dim() > 1 or target.numel() != c):
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)} (multilabel_margin_loss needs target of shape "
                           f"{want}, class indices padded with -1)")
    _class_index_target("multilabel_margin_loss", target)
    if target.numel() and (target.min() < -1 or target.max() >= c):
        raise RuntimeError(f"argument #2 'target' is out of range: multilabel_margin_loss needs "
                           f"class indices in [0, {c}) or -1 padding, got values from "
                           f"{target.min().item()} to {target.max().item()}")
    return MultiLabelMarginLossFunction.apply(input, target, reduction)


# --------------------------------------------------------------------------- triplets


class TripletMarginFunction(Function):
    r"""The triplet hinge on precomputed distances :math:`d(a, p)`, :math:`d(a, n)` and, with ``swap``, :math:`d(p, n)`.

    .. math::
        l_i = \max(0,\; \text{margin} + d(a_i, p_i) - \tilde d_i), \qquad
        \tilde d_i = \begin{cases} \min(d(a_i, n_i), d(p_i, n_i)) & \text{swap} \\ d(a_i, n_i) & \text{otherwise} \end{cases}

    .. math::
        \frac{\partial l_i}{\partial d(a_i, p_i)} = m_i, \qquad
        \frac{\partial l_i}{\partial \tilde d_i} = -m_i, \qquad m_i = [\text{margin} + d(a_i,p_i) - \tilde d_i \ge 0]

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
        given = _shapes(anchor=anchor, positive=positive, negative=negative)
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the "
                           f"same number of dimensions, but got: anchor {anchor.dim()}D, positive "
                           f"{positive.dim()}D, and negative {negative.dim()}D inputs ({given})")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    r"""Triplet loss :math:`\max(0, \text{margin} + d(a, p) - d(a, n))` with
    :math:`d(x, y) = \|x - y + \epsilon\|_p`, like :func:`torch.nn.functional.triplet_margin_loss`.

    A composition: :class:`~lossutils.functional.distance.PairwiseDistanceFunction`
    for each distance (its docstring has :math:`\partial d / \partial x`),
    then :class:`TripletMarginFunction` for the hinge; the chain rule joins
    them. With ``swap``, :math:`d(a, n)` is replaced by :math:`\min(d(a, n), d(p, n))`.
    """
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin} (triplet_margin_loss)")
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
    """
    _reduction.check_reduction(reduction, accept_deprecated=False)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin} "
                         f"(triplet_margin_with_distance_loss)")
    _same_dims(anchor, positive, negative)
    distance = pairwise_distance if distance_function is None else distance_function
    dist_pos = distance(anchor, positive)
    dist_neg = distance(anchor, negative)
    dist_swap = distance(positive, negative) if swap else None
    return TripletMarginFunction.apply(dist_pos, dist_neg, dist_swap, margin, reduction)
