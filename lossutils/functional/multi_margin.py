r"""Multi-class hinges: ``multi_margin_loss`` (one right class) and ``multilabel_margin_loss``
(a list of right classes).

Both mirror torch's C++ kernels, which exist for float32 and float64 only,
take a ``(C)`` or ``(N, C)`` input with class-index targets, and test the
hinge :math:`z > 0` *strictly* (so a NaN score adds nothing to the loss).
Each hinge term is formed as torch forms it,
:math:`z = (\text{margin} - x_{\text{right}}) + x_i`, so the terms are torch's to
the last bit; only the order of the sums differs.

In the usual ``loss.backward()`` the gradient is built in place in one buffer
(:func:`~lossutils._autograd.fast_path`); under ``torch.func`` transforms the
same formulas run out of place. torch has no second derivative and no
forward-mode derivative of either loss, so neither has lossutils
(:mod:`lossutils._first_order`): ``gradgradcheck``, double backward,
``jvp``, ``jacfwd`` and ``hessian`` raise torch's errors.

Defined in :doc:`/chapters/04_1_margins_and_likelihoods`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, has_values, plain, transformable, unwrap
from .._checks import dtype_name, refuse_grad
from .._first_order import first_order, no_forward_mode
from .._precision import constant_like
from .._reduction import reduce, resolve
from .._staging import stageable
from . import _label_lists as label_lists
from . import _multi_margin_staged as staged
from ._multi_margin_checks import (
    check_class_range,
    frames,
    require_class_indices,
    require_float_kernel,
    require_range,
)

__all__ = ["multi_margin_loss", "multilabel_margin_loss"]


def _scale(grad_output: Tensor, reduction: str, n: int, c: int, factor: float = 1.0) -> Tensor:
    r"""``factor`` times the incoming gradient of each row's *unnormalised* hinge sum: the
    reduction's factor times :math:`1/C`, a scalar, or a column ``(N, 1)`` for ``'none'``."""
    if reduction == "none":
        return grad_output.reshape(-1, 1) * (factor / c)
    # (max: an empty batch's 'mean' has no gradient entry to scale, and no 1 / 0 to raise)
    return grad_output * (factor / max(n * c, 1) if reduction == "mean" else factor / c)


def _finish(rows: Tensor, reduction: str, c: int, shape) -> Tensor:
    """Per-row hinge sums divided by :math:`C`, reduced (``'none'``: in the shape torch gives)."""
    loss = rows / c
    return loss.reshape(shape) if reduction == "none" else reduce(loss, reduction)


@transformable
class MultiMarginLossFunction(Function):
    r"""Multi-class hinge: every wrong class :math:`i` should score ``margin`` below the right
    one :math:`y`.

    .. math::
        l_n = \frac{1}{C}\sum_{i \ne y_n} w_{y_n} \max(0, z_{ni})^p, \qquad
        z_{ni} = (\text{margin} - x_{n y_n}) + x_{ni}

    with :math:`p \in \{1, 2\}` and :math:`w = 1` without ``weight``. Writing
    :math:`h_{ni} = w_{y_n} [z_{ni} > 0] \cdot (1 \text{ or } 2 z_{ni}) / C`:

    .. math::
        \frac{\partial l_n}{\partial x_{ni}} = h_{ni} \;(i \ne y_n), \qquad
        \frac{\partial l_n}{\partial x_{n y_n}} = -\sum_{i \ne y_n} h_{ni}

    The test is :math:`z > 0` strictly, as in torch's kernel (so a NaN
    score contributes 0). ``mean`` divides by :math:`N`; ``weight`` is not
    differentiable (torch has no derivative for it), nor is the gradient:
    torch defines no second or forward-mode derivative of this loss.

    The forward's buffer of :math:`\max(0, z)` (its second output) is kept for
    the backward, which turns it into the gradient in place: the usual forward
    and backward allocate one ``N x C`` tensor between them, as torch's do.
    """

    @staticmethod
    def forward(input, target, p, margin, weight, reduction):
        inplace = plain(input, target, weight)
        x, y, z = MultiMarginLossFunction._hinges(input, target, margin, inplace)
        n, c = x.shape
        if weight is None and reduction != "none":  # one sum over the whole batch
            if p == 1 and reduction == "mean" and z.is_cpu:  # the CPU's mean: sum / NC, bitwise
                return z.mean(), z
            total = z.sum() if p == 1 else torch.dot(z.view(-1), z.view(-1))
            return total / (n * c if reduction == "mean" else c), z
        rows = z.sum(1) if p == 1 else (z.unsqueeze(1) @ z.unsqueeze(2)).view(n)
        if weight is not None:
            rows = rows * weight[y.view(n)]
        return _finish(rows, reduction, c, target.shape), z

    @staticmethod
    def _hinges(input, target, margin, inplace):
        r"""``(x, y, z)``: the rows ``(N, C)``, the right classes ``(N, 1)`` and
        :math:`\max(0, z_{ni})` with 0 at :math:`i = y_n` and where :math:`z` is NaN (torch
        tests :math:`z > 0`), built in one fresh buffer when ``inplace``. A buffer big enough
        to stage (:func:`~lossutils._staging.stageable`) takes ``relu_`` then ``nan_to_num_``,
        two vectorised passes; any other (small, one column, or not on the CPU) takes
        one ``fmax`` against a zero, which the CPU does not vectorise but which is one op
        where the ops' dispatch, not their passes, is the cost."""
        n = target.numel()
        x = input if input.dim() == 2 else input.reshape(n, input.size(-1) if input.dim() else 1)
        y = target.unsqueeze(1) if target.dim() == 1 else target.reshape(n, 1)
        if inplace and stageable(x):  # no (N, 1) tensor of x_y - margin: torch's memory
            return x, y, staged.hinges_into(torch.empty(x.shape, dtype=x.dtype,
                                                        device=x.device), x, y, margin)
        if inplace:
            # x_i - (x_y - margin): torch's (margin - x_y) + x_i to the last bit (a + (-b) is
            # a - b, and -(x_y - margin) is margin - x_y), one op shorter
            z = torch.sub(x, x.gather(1, y).sub_(margin)).scatter_(1, y, 0.0)
            return x, y, torch.fmax(z, constant_like(0.0, z), out=z)
        z = (x + (margin - x.gather(1, y))).scatter(1, y, 0.0)
        return x, y, torch.fmax(z, x.new_zeros(()))

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, p, margin, weight, reduction = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, target, weight)
        ctx.p, ctx.margin, ctx.reduction = p, margin, reduction
        # the plain forward's hinge buffer, for the fast backward to consume
        ctx.hinges = output[1] if plain(output[1]) else None

    @staticmethod
    def backward(ctx, grad_output, _):
        if grad_output is None:  # the loss itself was not differentiated
            return None, None, None, None, None, None
        input, target, weight = ctx.saved_tensors
        z, ctx.hinges = ctx.hinges, None  # a second backward (retain_graph) recomputes it
        if z is not None and fast_path(grad_output):  # (the forward found the rest plain)
            fast, y = True, target.reshape(-1, 1)
        else:
            fast = fast_path(grad_output, input, target, weight)
            _, y, z = MultiMarginLossFunction._hinges(input, target, ctx.margin, fast)
        n, c = z.size(0), z.size(1)
        if fast and weight is None and ctx.reduction != "none" and grad_output.is_cpu:
            # one number scales every slope: a Python number, no 0-d tensor beside z
            factor = float(ctx.p) / (max(n * c, 1) if ctx.reduction == "mean" else c)
            scale = staged.scale_number(grad_output, factor)
            if z.shape == input.shape and stageable(z) and z.is_contiguous() \
                    and staged.few_last_rows(n, c):  # built in z without a float more
                h = staged.gradient_in_place(z, input, y, ctx.margin, ctx.p, scale)
                return (first_order("multi_margin_loss", h, input, grad_output),
                        None, None, None, None, None)
        else:
            scale = _scale(grad_output, ctx.reduction, n, c, float(ctx.p))
        if weight is not None:
            scale = scale * weight[y]
        if fast:  # z's buffer becomes the gradient
            h = staged.slopes_(z, ctx.p, scale)
            h.scatter_(1, y, h.sum(1, keepdim=True).neg_())
        else:
            h = ((z > 0).to(z.dtype) if ctx.p == 1 else z) * scale
            h = h.scatter(1, y, -h.sum(1, keepdim=True))
        h = h if h.shape == input.shape else h.reshape(input.shape)
        return (first_order("multi_margin_loss", h, input, grad_output),
                None, None, None, None, None)

    @staticmethod
    def jvp(ctx, *tangents):
        raise no_forward_mode("multi_margin_loss")


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    r"""Multi-class hinge loss,
    :math:`\frac{1}{C}\sum_{i \ne y} w_y \max(0, \text{margin} - x_y + x_i)^p`,
    like :func:`torch.nn.functional.multi_margin_loss`. See :class:`MultiMarginLossFunction`.

    Examples:
        >>> multi_margin_loss(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([3]))
        tensor(0.3250)
    """
    reduction = resolve(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError(f"only p == 1 and p == 2 supported: multi_margin_loss got p={p!r}")
    if weight is not None and weight.dim() != 1:
        raise ValueError(f"weight must be one-dimensional: multi_margin_loss got weight of shape "
                         f"{tuple(weight.shape)}")
    (input, weight), _ = _autocast.cast("multi_margin_loss", input, weight)
    require_float_kernel("multi_margin_loss", "multi_margin_loss_cpu_kernel", input)
    n, c = frames("multi_margin_loss", input)
    if target.dim() > 1 or target.numel() != n:
        raise RuntimeError(f"multi_margin_loss: target must be 1-D with one class index per "
                           f"sample: expected target of shape ({n},), got {tuple(target.shape)} "
                           f"for input of shape {tuple(input.shape)}")
    if weight is not None and weight.numel() != c:
        raise RuntimeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}: "
                           f"multi_margin_loss needs one weight per class")
    require_class_indices("multi_margin_loss", target)
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {dtype_name(input.dtype)} but found "
                           f"{dtype_name(weight.dtype)}: multi_margin_loss needs weight "
                           f"({weight.dtype}) in input's dtype ({input.dtype})")
    refuse_grad("multi_margin_loss", "weight", weight)
    if not (target.is_cpu and plain(target)):  # (on CUDA a gather out of range is fatal)
        check_class_range("multi_margin_loss", target, 0, c, "target out of range")
        return apply(MultiMarginLossFunction, input, target, p, margin, weight, reduction)[0]
    try:  # an index outside [0, C) makes the forward's gather raise: no pass to check it first
        return apply(MultiMarginLossFunction, input, target, p, margin, weight, reduction)[0]
    except RuntimeError:
        check_class_range("multi_margin_loss", target, 0, c, "target out of range")
        raise


@transformable
class MultiLabelMarginLossFunction(Function):
    r"""Multi-label hinge: every target class :math:`j` should outscore every non-target class
    :math:`i` by 1.

    ``target`` lists the target classes of each sample, padded with -1 (the
    first -1 ends the list). With :math:`T_n` that list and :math:`\bar T_n`
    the other classes,

    .. math::
        l_n = \frac{1}{C}\sum_{j \in T_n}\sum_{i \in \bar T_n} \max(0, z_{nji}), \qquad
        z_{nji} = (1 - x_{nj}) + x_{ni}

    .. math::
        \frac{\partial l_n}{\partial x_{ni}} = \frac{1}{C}\sum_{j \in T_n} [z_{nji} > 0], \qquad
        \frac{\partial l_n}{\partial x_{nj}} = -\frac{1}{C}\sum_{i \in \bar T_n} [z_{nji} > 0]

    A class listed twice counts twice, as in torch's kernel. ``mean``
    divides by :math:`N`. Never an ``N x C x C`` tensor: a loop over the
    :math:`K` list positions (the longest list in the batch), each an ``N x C``
    pass over the whole batch at once -- :math:`O(K N C)` time, as torch's
    kernel, and :math:`O(N C)` memory. When the input requires grad, the usual
    forward also counts the active hinges (the gradient up to its scale, in
    float16: exact integers) and the backward only scales them. torch defines
    no second or forward-mode derivative of this loss, and neither does lossutils.
    """

    @staticmethod
    def forward(input, target, listed, k, reduction, count):
        positions = _lists(input, target, listed, k)
        n, c = positions.x.shape
        mean = False
        if plain(input, target, listed):
            mean = reduction == "mean" and input.is_cpu  # (one position: the mean itself)
            sums, grad = label_lists.count_in_place(positions, count, reduction == "none", mean)
        else:
            sums, grad = label_lists.hinge_sums(positions), None
        if reduction == "none":
            loss = sums.sum(0) / c
            loss = loss if input.dim() == 2 else loss.reshape(())
        elif sums.dim() == 0 and mean:
            loss = sums
        else:  # the sums of each position, per row or (in place) over the batch
            total = sums if sums.dim() == 0 else sums.sum()  # (0-d: one position's total)
            loss = total / (n * c if reduction == "mean" else c)
        return loss, (positions.x.new_empty(0) if grad is None else grad)

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, listed, k, reduction, count = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)
        parsed = isinstance(listed, label_lists.Parsed)
        ctx.save_for_backward(input, target, None if parsed else listed)
        ctx.k, ctx.reduction, ctx.parsed = k, reduction, listed if parsed else None
        # the plain forward's gradient (up to its scale), for the fast backward to consume
        ctx.grad = output[1] if output[1].numel() and plain(output[1]) else None

    @staticmethod
    def backward(ctx, grad_output, _):
        if grad_output is None:  # the loss itself was not differentiated
            return None, None, None, None, None, None
        input, target, listed = ctx.saved_tensors
        listed = ctx.parsed or listed
        fast = fast_path(grad_output, input, target, listed)
        grad, ctx.grad = ctx.grad, None  # a second backward (retain_graph) recounts
        n, c = (input.size(0), input.size(1)) if input.dim() == 2 else (1, input.numel())
        scale = _scale(grad_output, ctx.reduction, n, c)
        if fast:  # the gradient built in one buffer, by the forward or now
            if grad is None:
                positions = _lists(input, target, listed, ctx.k)
                grad = label_lists.count_in_place(positions, True, False)[1]
            grad = grad.mul_(scale)
        else:
            grad = label_lists.counts(_lists(input, target, listed, ctx.k)) * scale
        grad = grad if grad.shape == input.shape else grad.reshape(input.shape)
        return (first_order("multilabel_margin_loss", grad, input, grad_output),
                None, None, None, None, None)

    @staticmethod
    def jvp(ctx, *tangents):
        raise no_forward_mode("multilabel_margin_loss")


def _lists(input: Tensor, target: Tensor, listed, k: int) -> label_lists.Lists:
    """The list positions, from the lengths ``listed`` or from a small target's parse."""
    if isinstance(listed, label_lists.Parsed):
        return label_lists.parsed_lists(input, listed)
    return label_lists.lists(input, target, listed, k)


def _list_lengths(target: Tensor, n: int, c: int) -> tuple[Tensor, int]:
    """Per row, how many entries precede its first -1 (``C`` if none), and the longest: how
    many list positions the loss loops over (``C`` when the values cannot be read)."""
    has_end, first_end = (target.reshape(n, c) < 0).max(1, keepdim=True)
    listed = torch.where(has_end, first_end, c)
    if not n:
        return listed, 0
    return listed, int(unwrap(listed).max()) if has_values(listed) else c


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    r"""Multi-label hinge loss,
    :math:`\frac{1}{C}\sum_{j \in T}\sum_{i \notin T}\max(0, 1 - x_j + x_i)`,
    like :func:`torch.nn.functional.multilabel_margin_loss`.

    See :class:`MultiLabelMarginLossFunction`.

    Examples:
        >>> x = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 1]]))
        tensor(0.8500)
    """
    reduction = resolve(size_average, reduce, reduction)
    (input,), _ = _autocast.cast("multilabel_margin_loss", input)
    require_float_kernel("multilabel_margin_loss", "multilabel_margin_loss_forward_out_frame",
                         input)
    n, c = frames("multilabel_margin_loss", input)
    # (N, C) input: target (N, C); (C) or 0-d input: any target of C entries in at most one dim.
    batched = input.dim() == 2
    want = (n, c) if batched else (c,)
    if (target.shape != want) if batched else (target.dim() > 1 or target.numel() != c):
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)} (multilabel_margin_loss needs target of shape "
                           f"{want}, class indices padded with -1)")
    require_class_indices("multilabel_margin_loss", target)
    count = input.requires_grad and torch.is_grad_enabled()
    if target.numel() <= label_lists.SMALL and input.is_cpu and target.is_cpu \
            and plain(input, target):
        # a small target: its values read once in Python (range, lists), no tensor ops
        target2d = target if batched else target.reshape(n, c)
        rows = target2d.tolist()
        if n:
            require_range("multilabel_margin_loss", min(map(min, rows)), max(map(max, rows)),
                          -1, c, "argument #2 'target' is out of range")
        parsed = label_lists.parse(rows, target2d)
        return apply(MultiLabelMarginLossFunction, input, target, parsed, parsed.k, reduction,
                     count)[0]
    check_class_range("multilabel_margin_loss", target, -1, c,
                      "argument #2 'target' is out of range")
    listed, k = _list_lengths(target, n, c)
    return apply(MultiLabelMarginLossFunction, input, target, listed, k, reduction, count)[0]
