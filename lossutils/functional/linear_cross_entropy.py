"""Linear cross-entropy: ``cross_entropy(input @ W.T + b, target)`` without the logits.

An LLM's last layer turns ``N`` hidden states of width ``F`` into logits over a
vocabulary of ``V`` words and feeds them straight into cross-entropy. The
logits and their gradient are ``N x V`` each (1 GiB in float32 for 8k tokens
and a 32k vocabulary), yet the loss needs only one number per row (the
log-sum-exp) and the gradients only ``N x F`` and ``V x F`` tensors. Here the
rows are processed ``chunk_size`` at a time, the vocabulary ``vocab_chunk_size``
columns at a time with an online log-sum-exp (:mod:`._online_lse`), and the
gradient is formed chunk by chunk, so no ``N x V`` tensor ever exists.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._reduction import check_reduction, reduce, reduction_grad
from ._chunk_passes import (
    ChunkPlan,
    Gradients,
    RowChunk,
    at_position,
    forward_chunk,
    gradient_pass,
)
from ._linear_cross_entropy_checks import (
    aspect_ratio_chunk_size,
    check_chunk_sizes,
    check_dtypes,
    check_shapes,
    check_targets,
    chunk_size_from_options,
    options_apply,
)
from ._target_rows import ClassIndexTargets, ProbabilityTargets, TargetRows

__all__ = ["linear_cross_entropy"]


def _auto_chunk_size(num_rows: int, in_features: int, num_classes: int) -> int:
    """The default ``chunk_size``: rows such that one chunk's logits take about half the
    memory of ``input`` (torch's rule for its own chunked path, ``aspect_ratio:2``)."""
    return aspect_ratio_chunk_size(num_rows, in_features, num_classes, factor=2)


@dataclass(frozen=True)
class Settings:
    """The Function's arguments that are not tensors."""

    reduction: str
    ignore_index: int
    label_smoothing: float
    plan: ChunkPlan
    # accumulate the gradients w.r.t. (input, linear_weight, linear_bias) while forward runs
    precompute: tuple[bool, bool, bool]
    loss_shape: tuple[int, ...]  # the unreduced loss's shape


class _Problem(NamedTuple):
    """The Function's tensors in canonical shapes: ``x`` (N, F); ``W`` (C, F) or, for a
    K-dimensional loss, (C, D, F) with D output positions; ``b`` (C) or (C, D); ``target`` (N)
    or (N, D) class indices, or (N, C) or (N, C, D) probabilities; ``weight`` (C)."""

    x: Tensor
    W: Tensor
    b: Tensor | None
    target: Tensor
    weight: Tensor | None


def _positions(problem: _Problem, settings: Settings):
    """Per output position: ``j`` (None without positions), its classifier and its targets."""
    x, W, b, target, weight = problem
    probabilities = target.is_floating_point()
    eps, num_classes = settings.label_smoothing, W.shape[0]
    for j in range(W.shape[1]) if W.dim() == 3 else [None]:
        target_j = at_position(target, j, 2 if probabilities else 1)
        if probabilities:
            targets = ProbabilityTargets(target_j, weight, eps, num_classes)
        else:
            targets = ClassIndexTargets.build(target_j, weight, settings.ignore_index, eps,
                                              num_classes, x.dtype)
        yield j, at_position(W, j), at_position(b, j), targets


def _mean_denominator(problem: _Problem, targets: list[TargetRows]) -> Tensor:
    """What ``'mean'`` divides by; the targets alone decide it (no logits needed)."""
    x, target = problem.x, problem.target
    if target.is_floating_point():  # rows x positions, weights or not (torch's rule)
        dtype = torch.promote_types(x.dtype, target.dtype)
        return torch.tensor(float(target.shape[0] * len(targets)), dtype=dtype)
    # the total weight w_{y_n} of the kept rows
    return torch.as_tensor(sum(t.total_weight() for t in targets)).to(x.dtype)


def _row_scale(problem: _Problem, settings: Settings, denominator: Tensor) -> Tensor:
    """The weight ``r_n`` of each row's loss in the reduced loss: 1/denominator for 'mean',
    1 for 'sum'."""
    one = torch.ones((), dtype=problem.x.dtype)
    n = problem.x.shape[0]
    return reduction_grad(one, settings.reduction, n, denominator).expand(n)


# ----------------------------------------------------------------------------
# The whole loss: forward (and the gradients it can accumulate), backward
# ----------------------------------------------------------------------------


def _forward(problem: _Problem, settings: Settings, want: tuple[bool, ...]):
    """The reduced loss, every row's lse ``(N, D)`` and the gradients w.r.t. (input,
    linear_weight, linear_bias) that ``want`` asks for (``mean``/``sum`` only: their row
    weights are known before backward)."""
    x, plan = problem.x, settings.plan
    positions = list(_positions(problem, settings))
    denominator = _mean_denominator(problem, [targets for *_, targets in positions])
    scale = _row_scale(problem, settings, denominator)
    grads = Gradients(*(torch.zeros_like(t) if t is not None and wanted else None
                         for t, wanted in zip(problem[:3], want, strict=True)))
    target = problem.target
    dtype = torch.promote_types(x.dtype, target.dtype) if target.is_floating_point() else x.dtype
    # probabilities of a wider dtype than the logits widen the loss, as in torch
    losses = x.new_empty(x.shape[0], len(positions), dtype=dtype)
    lses = x.new_empty(x.shape[0], len(positions))
    buffer = plan.buffer(x)
    for column, (j, W, b, targets) in enumerate(positions):
        position_grads = grads.at(j) if any(want) else None
        for rows in plan.row_chunks():
            chunk = RowChunk(rows, x[rows], W, b, targets.rows(rows))
            # ignored rows get exactly zero gradient, even when 'mean' divides by 0
            row_scale = chunk.targets.mask(scale[rows])
            losses[rows, column], lses[rows, column] = forward_chunk(
                chunk, plan, buffer, row_scale, position_grads)
    return reduce(losses, settings.reduction, denominator), lses, grads


def _backward(problem: _Problem, settings: Settings, lse: Tensor, grad_output: Tensor,
              needs: tuple[bool, ...]) -> Gradients:
    """Every wanted gradient, by one pass that recomputes each chunk's logits from the saved
    inputs and lse: for ``'none'`` (a gradient per row) and for what forward does not
    accumulate (the gradients w.r.t. probability targets and the class weight)."""
    x, W, b, target, weight = problem
    plan, probabilities = settings.plan, target.is_floating_point()
    grads = Gradients(
        input=torch.zeros_like(x) if needs[0] else None,
        linear_weight=torch.zeros_like(W) if needs[1] else None,
        linear_bias=torch.zeros_like(b) if b is not None and needs[2] else None,
        target=torch.zeros_like(target) if probabilities and needs[3] else None,
        weight=torch.zeros_like(weight) if probabilities and weight is not None and needs[4]
        else None,
    )
    positions = list(_positions(problem, settings))
    if settings.reduction == "none":
        grad_rows = grad_output.reshape(x.shape[0], len(positions))
    else:
        denominator = _mean_denominator(problem, [targets for *_, targets in positions])
        scale = _row_scale(problem, settings, denominator) * grad_output
    buffer = plan.buffer(x)
    for column, (j, W_j, b_j, targets) in enumerate(positions):
        position_scale = grad_rows[:, column] if settings.reduction == "none" else scale
        for rows in plan.row_chunks():
            chunk = RowChunk(rows, x[rows], W_j, b_j, targets.rows(rows))
            gradient_pass(chunk, plan, buffer, lse[rows, column], chunk.targets.row_mass(),
                           chunk.targets.mask(position_scale[rows]), grads.at(j))
    return grads


class LinearCrossEntropyFunction(Function):
    r"""Cross-entropy of the logits :math:`z = x W^\top + b`, computed chunk by chunk.

    With :math:`q_n` the target row (see :mod:`._target_rows`), :math:`Q_n = \sum_c q_{nc}`,
    :math:`p_n = \mathrm{softmax}(z_n)` and :math:`r_n` the reduction's weight (for
    ``mean`` one over :math:`\sum_n w_{y_n}` on the kept rows, or over the number of
    rows for probabilities; 1 for ``sum``; ``grad_output[n]`` for ``none``):

    .. math::
        l_n = \sum_c q_{nc} (\mathrm{lse}(z_n) - z_{nc}), \qquad
        \frac{\partial l_n}{\partial z_{nc}} = Q_n p_{nc} - q_{nc},

    .. math::
        \frac{\partial L}{\partial x_n} = \sum_c g_{nc} W_c, \qquad
        \frac{\partial L}{\partial W_c} = \sum_n g_{nc} x_n, \qquad
        \frac{\partial L}{\partial b_c} = \sum_n g_{nc}, \qquad
        g_{nc} = r_n (Q_n p_{nc} - q_{nc}).

    Each chunk of rows needs only its own :math:`\mathrm{lse}_n`, so :math:`g` is
    formed and consumed one ``chunk_size x vocab_chunk_size`` block at a time.
    For ``mean``/``sum`` the gradients are accumulated in forward alongside the
    loss (the logits are computed once) and backward scales them by the scalar
    ``grad_output``; for ``none`` (and a repeated backward) backward recomputes
    the logits from the saved inputs and the saved :math:`\mathrm{lse}`.

    ``input`` is ``(N, F)``; ``linear_weight`` ``(C, F)`` with ``target`` ``(N,)``
    (class indices) or ``(N, C)`` (probabilities), or, for a K-dimensional loss,
    ``(C, D, F)`` with ``target`` ``(N, D)`` or ``(N, C, D)``: ``D`` output
    positions, each its own softmax over the ``C`` classes.
    """

    @staticmethod
    def forward(input, linear_weight, linear_bias, target, weight, settings):
        problem = _Problem(input, linear_weight, linear_bias, target, weight)
        loss, lse, grads = _forward(problem, settings, settings.precompute)
        if settings.reduction == "none":
            loss = loss.reshape(settings.loss_shape)
        # the gradients accumulated on the way are outputs too, so that setup_context keeps them
        empty = input.new_empty(0)
        return loss, lse, *(g if g is not None else empty for g in grads[:3])

    @staticmethod
    def setup_context(ctx, inputs, output):
        *tensors, settings = inputs
        _, lse, *grads = output
        ctx.mark_non_differentiable(*output[1:])
        # no zero-filled "gradients" for those outputs in backward: 80 MiB at 8192 x 512, V = 32768
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*tensors, lse)
        ctx.settings = settings
        # detached: they are outputs of this node and would otherwise keep it alive
        ctx.precomputed = [g.detach() if done else None
                           for g, done in zip(grads, settings.precompute, strict=True)]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, *_):
        if grad_output is None:  # the loss itself was not used
            return (None,) * 6
        *tensors, lse = ctx.saved_tensors
        problem, settings, needs = _Problem(*tensors), ctx.settings, ctx.needs_input_grad
        if settings.reduction == "none" or needs[3] or needs[4]:
            # per-row grad_output (or gradients forward did not accumulate): one recomputing pass
            return (*_backward(problem, settings, lse, grad_output, needs), None)
        want = (needs[0], needs[1], problem.b is not None and needs[2])
        pre, ctx.precomputed = ctx.precomputed, [None, None, None]
        if not all(g is not None for g, wanted in zip(pre, want, strict=True) if wanted):
            # a second backward (retain_graph): the same loop as forward's, so the same bits
            pre = _forward(problem, settings, want)[2]
        # scaled in place with no reference left behind: autograd moves them into .grad, no copy
        grads = [pre[i].mul_(grad_output) if want[i] else None for i in range(3)]
        del pre
        return (*grads, None, None, None)


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,
                         linear_bias: Tensor | None = None, weight: Tensor | None = None,
                         reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None,
                         chunk_size: int | None = None,
                         vocab_chunk_size: int | None = None) -> Tensor:
    r"""Cross-entropy of ``input @ linear_weight.T + linear_bias`` against ``target``, logits
    never stored.

    Same value, gradients, shapes, warnings and errors as
    :func:`torch.nn.functional.linear_cross_entropy`: it equals
    ``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``,
    so with :math:`z_n = W x_n + b`

    .. math::
        l_n = \sum_c q_{nc} \bigl(\log\textstyle\sum_k e^{z_{nk}} - z_{nc}\bigr)

    where :math:`q_n = w_{y_n} e_{y_n}` for a class index :math:`y_n` (0 when
    :math:`y_n` = ``ignore_index``) or :math:`q_{nc} = w_c t_{nc}` for
    probabilities :math:`t_n`, each mixed with :math:`\varepsilon/C` uniform
    by ``label_smoothing`` :math:`\varepsilon`. ``reduction``: ``'none'`` keeps
    :math:`l_n`; ``'sum'`` adds them; ``'mean'`` divides the sum by
    :math:`\sum_n w_{y_n}` over the kept rows (class indices) or by the number
    of rows (probabilities).

    Unlike torch's default path, the ``N x C`` logits never exist: rows are
    processed ``chunk_size`` at a time and classes ``vocab_chunk_size`` at a
    time with an online log-sum-exp (see :class:`LinearCrossEntropyFunction`).

    Args:
        input: hidden states, :math:`(F)` or :math:`(N, F)`.
        linear_weight: :math:`(C, F)`, or :math:`(C, d_1, \dots, d_K, F)` for a K-dimensional loss.
        target: class indices :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots)` (int64 or
            uint8), or probabilities of the logits' shape :math:`(C)`, :math:`(N, C)`,
            :math:`(N, C, d_1, \dots)`.
        linear_bias: :math:`(C, d_1, \dots)` or None.
        weight: per-class rescaling, :math:`(C)`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        ignore_index: class index whose rows count for nothing; None means -100 (class indices
            only).
        label_smoothing: :math:`\varepsilon \in [0, 1]`. Default 0.
        options: a ``torch.nn.LinearCrossEntropyOptions``; where torch would use
            it, its ``batch_chunk_size`` / ``chunking_method`` choose ``chunk_size``.
        chunk_size: rows per chunk. Default: torch's ``aspect_ratio:2`` rule
            (:func:`_auto_chunk_size`), so a chunk's logits take about half the memory of
            ``input``.
        vocab_chunk_size: classes per block. Default: all of them (one block,
            no recomputation); smaller blocks lower the peak further at the cost
            of computing the logits twice.

    Shape:
        output: scalar, or for ``'none'`` :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots)`.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
        >>> W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
        >>> loss = linear_cross_entropy(x, W, torch.tensor([0, 2]), chunk_size=1)
        >>> loss
        tensor(0.8103, grad_fn=<LinearCrossEntropyFunctionBackward>)
        >>> loss.backward()
    """
    check_shapes(input, linear_weight, linear_bias)
    num_batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    logits_shape = (*num_batches, num_classes, *out_features)
    probabilities = tuple(target.shape) == logits_shape
    if probabilities and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities: "
                           f"target has the logits' shape {logits_shape}, so it holds "
                           "probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    n = num_batches[0] if num_batches else 1
    if options is not None and options_apply(reduction, label_smoothing, target, out_features,
                                             linear_bias):
        from_options = chunk_size_from_options(options, n, in_features, num_classes, input)
        chunk_size = chunk_size if chunk_size is not None else from_options
    reduction = check_reduction(reduction)
    check_targets(target, probabilities, logits_shape, num_classes, weight, label_smoothing,
                  input)
    check_dtypes(input, linear_weight, linear_bias)
    check_chunk_sizes(chunk_size, vocab_chunk_size)
    problem = _canonical(input, linear_weight, linear_bias, target, weight, probabilities)
    if not probabilities:
        t = problem.target
        bad = (t != ignore_index) & ((t < 0) | (t >= num_classes))
        if bad.any():
            raise IndexError(f"Target {t[bad][0].item()} is out of bounds.: class indices must lie "
                             f"in [0, {num_classes}) (or equal ignore_index={ignore_index})")
    # the gradients that forward can accumulate: mean/sum over class indices, or over
    # probabilities that (like the class weight) do not require grad themselves
    recompute_only = reduction == "none" or (probabilities and (
        target.requires_grad or (weight is not None and weight.requires_grad)))
    wants = (input.requires_grad, linear_weight.requires_grad,
             linear_bias is not None and linear_bias.requires_grad)
    precompute = tuple(torch.is_grad_enabled() and w and not recompute_only for w in wants)
    plan = ChunkPlan(
        num_rows=n, num_classes=num_classes,
        chunk_size=chunk_size if chunk_size is not None else _auto_chunk_size(n, in_features,
                                                                              num_classes),
        vocab_chunk_size=vocab_chunk_size if vocab_chunk_size is not None else max(num_classes, 1))
    eps = max(float(label_smoothing), 0.0)  # torch treats a negative label_smoothing as none
    settings = Settings(reduction, ignore_index, eps, plan, precompute,
                        (*num_batches, *out_features))
    return LinearCrossEntropyFunction.apply(*problem, settings)[0]


def _canonical(input: Tensor, linear_weight: Tensor, linear_bias: Tensor | None, target: Tensor,
               weight: Tensor | None, probabilities: bool) -> _Problem:
    """The tensors in the shapes of :class:`_Problem`: a K-dimensional loss's D = d_1...d_K
    output positions get their own axis. Plain 2-D tensors go in as they are: a reshaped view
    would make autograd copy their gradients."""
    x, W, b, t = input, linear_weight, linear_bias, target
    num_classes, in_features = W.shape[0], W.shape[-1]
    if input.dim() == 1:
        x = input.unsqueeze(0)
        t = t.reshape(1, num_classes) if probabilities else t.reshape(1)
    if W.dim() > 2:
        d = math.prod(W.shape[1:-1])
        W = W.reshape(num_classes, d, in_features)
        b = b.reshape(num_classes, d) if b is not None else None
        t = t.reshape(x.shape[0], num_classes, d) if probabilities else t.reshape(x.shape[0], d)
    t = t if probabilities or t.dtype == torch.int64 else t.long()
    return _Problem(x, W, b, t, weight)
