"""Linear cross-entropy: ``cross_entropy(input @ W.T + b, target)`` without the logits.

An LLM's last layer turns ``N`` hidden states of width ``F`` into logits over a
vocabulary of ``V`` words and feeds them straight into cross-entropy. The
logits and their gradient are ``N x V`` each (1 GiB in float32 for 8k tokens
and a 32k vocabulary), yet the loss needs only one number per row (the
log-sum-exp) and the gradients only ``N x F`` and ``V x F`` tensors. Here the
rows are processed ``chunk_size`` at a time, the vocabulary ``vocab_chunk_size``
columns at a time with an online log-sum-exp (:mod:`._online_lse`), and the
gradient is formed chunk by chunk, so no ``N x V`` tensor ever exists.

That is the usual ``loss.backward()``. A backward that is itself recorded
(second derivatives) or transformed (``torch.func``) runs the same formulas
on whole tensors, in differentiable ops (:mod:`._linear_cross_entropy_dense`).

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import apply, fast_path, plain, transformable
from .._precision import upcast
from .._reduction import reduce, reduction_grad
from . import _linear_cross_entropy_dense as dense
from . import _linear_cross_entropy_whole as whole
from ._chunk_passes import (
    ChunkPlan,
    Extras,
    Gradients,
    RowChunk,
    at_position,
    forward_chunk,
    gradient_pass,
)
from ._filtering import unsorted, vocab_sorted
from ._linear_cross_entropy_args import prepare
from ._target_rows import ClassIndexTargets, ProbabilityTargets, TargetRows

__all__ = ["linear_cross_entropy"]


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
    out_dtype: torch.dtype  # the loss's dtype (torch's, autocast included)
    extras: Extras = Extras()
    sort_vocab: bool = False
    # where torch rounds the logits and their gradient: the half dtype of linear's output
    rounding: torch.dtype | None = None
    whole: bool = False  # a small problem: forward in one pass (._linear_cross_entropy_whole)
    ignored: bool = True  # a target may equal ignore_index (False: the checks saw none does)


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


def _denominators(problem: _Problem, targets: list[TargetRows]) -> tuple[Tensor, Tensor]:
    """What ``'mean'`` divides the cross-entropies and the z-losses by; the targets alone
    decide it (no logits needed)."""
    x, target = problem.x, problem.target
    if target.is_floating_point():  # rows x positions, weights or not (torch's rule)
        dtype = torch.promote_types(x.dtype, target.dtype)
        count = torch.tensor(float(target.shape[0] * len(targets)), dtype=dtype)
        return count, count
    # the total weight w_{y_n} of the kept rows; the z-loss averages over the kept rows
    return (torch.as_tensor(sum(t.total_weight() for t in targets)).to(x.dtype),
            torch.as_tensor(sum(t.valid.sum() for t in targets)).to(x.dtype))


def _row_scale(problem: _Problem, settings: Settings, denominator: Tensor) -> Tensor:
    """The weight of each row's loss in the reduced loss: 1/denominator for 'mean', 1 for
    'sum'."""
    one = torch.ones((), dtype=problem.x.dtype)
    n = problem.x.shape[0]
    return reduction_grad(one, settings.reduction, n, denominator).expand(n)


def _upcast(problem: _Problem) -> _Problem:
    """float16/bfloat16 tensors in float32: every pass accumulates in it, as torch's do."""
    return _Problem(*(t if t is None or not t.is_floating_point() else upcast(t)
                      for t in problem))


# ----------------------------------------------------------------------------
# The chunked passes (the usual loss.backward()): forward (and the gradients it can
# accumulate), backward
# ----------------------------------------------------------------------------


def _forward(problem: _Problem, settings: Settings, want: tuple[bool, ...]):
    """The reduced loss, every row's lse ``(N, D)`` and the gradients w.r.t. (input,
    linear_weight, linear_bias) that ``want`` asks for (``mean``/``sum`` only: their row
    weights are known before backward)."""
    if settings.sort_vocab:
        problem, settings, order = vocab_sorted(problem, settings)
        loss, lses, grads = _forward(problem, settings, want)
        return loss, lses, unsorted(grads, order)
    x, plan, lam = problem.x, settings.plan, settings.extras.lse_square_scale
    positions = list(_positions(problem, settings))
    denominator, count = _denominators(problem, [targets for *_, targets in positions])
    scale = _row_scale(problem, settings, denominator)
    z_scale = _row_scale(problem, settings, count) if lam else None
    grads = Gradients(*(torch.zeros_like(t) if t is not None and wanted else None
                        for t, wanted in zip(problem[:3], want, strict=True)))
    target = problem.target
    dtype = torch.promote_types(x.dtype, target.dtype) if target.is_floating_point() else x.dtype
    # probabilities of a wider dtype than the logits widen the loss, as in torch
    losses = x.new_empty(x.shape[0], len(positions), dtype=dtype)
    lses = x.new_empty(x.shape[0], len(positions))
    buffer = plan.buffer(x)
    slope = plan.buffer(x) if settings.extras.softcap is not None else None
    for column, (j, W, b, targets) in enumerate(positions):
        position_grads = grads.at(j) if any(want) else None
        for rows in plan.row_chunks():
            chunk = RowChunk(rows, x[rows], W, b, targets.rows(rows), settings.extras,
                             settings.rounding)
            # ignored rows get exactly zero gradient, even when 'mean' divides by 0
            row_scale = chunk.targets.mask(scale[rows])
            row_z = chunk.targets.mask(z_scale[rows]) if lam else None
            losses[rows, column], lses[rows, column] = forward_chunk(
                chunk, plan, buffer, row_scale, row_z, position_grads, slope)
    loss = reduce(losses, settings.reduction, denominator)
    if lam:  # the z-loss lambda lse^2 of the rows that count
        valid = torch.stack([t.mask(torch.ones_like(scale)) for *_, t in positions], 1)
        loss = loss + reduce(lam * valid * lses * lses, settings.reduction, count)
    return loss, lses, grads


def _backward(problem: _Problem, settings: Settings, lse: Tensor, grad_output: Tensor,
              needs: tuple[bool, ...]) -> Gradients:
    """Every wanted gradient, by one pass that recomputes each chunk's logits from the saved
    inputs and lse: for ``'none'`` (a gradient per row) and for what forward does not
    accumulate (the gradients w.r.t. probability targets and the class weight)."""
    if settings.sort_vocab:
        problem, settings, order = vocab_sorted(problem, settings)
        return unsorted(_backward(problem, settings, lse, grad_output, needs), order)
    x, W, b, target, weight = problem
    plan, probabilities = settings.plan, target.is_floating_point()
    lam = settings.extras.lse_square_scale
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
        z_rows = grad_rows
    else:
        denominator, count = _denominators(problem, [targets for *_, targets in positions])
        scale = _row_scale(problem, settings, denominator) * grad_output
        z_scale = _row_scale(problem, settings, count) * grad_output
    buffer = plan.buffer(x)
    slope = plan.buffer(x) if settings.extras.softcap is not None else None
    for column, (j, W_j, b_j, targets) in enumerate(positions):
        position_scale = grad_rows[:, column] if settings.reduction == "none" else scale
        position_z = z_rows[:, column] if settings.reduction == "none" else z_scale
        for rows in plan.row_chunks():
            chunk = RowChunk(rows, x[rows], W_j, b_j, targets.rows(rows), settings.extras,
                             settings.rounding)
            row_scale = chunk.targets.mask(position_scale[rows])
            coefficient = row_scale * chunk.targets.row_mass()
            if lam:
                coefficient = coefficient + 2 * lam * chunk.targets.mask(
                    position_z[rows]) * lse[rows, column]
            gradient_pass(chunk, plan, buffer, lse[rows, column], coefficient, row_scale,
                          grads.at(j), slope)
    return grads


@transformable
class LinearCrossEntropyFunction(Function):
    r"""Cross-entropy of the logits :math:`z = x W^\top + b`, computed chunk by chunk.

    With :math:`p_n` the target row (the true distribution, see :mod:`._target_rows`),
    :math:`P_n = \sum_c p_{nc}`, :math:`q_n = \mathrm{softmax}(z_n)` the model's and
    :math:`r_n` the reduction's weight (for ``mean`` one over :math:`\sum_n w_{y_n}` on the
    kept rows, or over the number of rows for probabilities; 1 for ``sum``;
    ``grad_output[n]`` for ``none``):

    .. math::
        l_n = \sum_c p_{nc} (\mathrm{lse}(z_n) - z_{nc}), \qquad
        \frac{\partial l_n}{\partial z_{nc}} = P_n q_{nc} - p_{nc},

    .. math::
        \frac{\partial L}{\partial x_n} = \sum_c g_{nc} W_c, \qquad
        \frac{\partial L}{\partial W_c} = \sum_n g_{nc} x_n, \qquad
        \frac{\partial L}{\partial b_c} = \sum_n g_{nc}, \qquad
        g_{nc} = r_n (P_n q_{nc} - p_{nc}).

    With lossutils' extras, :math:`z = c \tanh(u / c)` of :math:`u = x W^\top + b`
    (soft-cap :math:`c`; :math:`g` then carries the factor :math:`1 - \tanh^2(u/c)`), and
    each counted row adds the z-loss :math:`\lambda\, \mathrm{lse}_n^2` (``mean``: over
    the number of counted rows), whose gradient adds :math:`2 \lambda \rho_n \mathrm{lse}_n
    q_{nc}` to :math:`g_{nc}` (see :mod:`._chunk_passes`).

    Each chunk of rows needs only its own :math:`\mathrm{lse}_n`, so :math:`g` is
    formed and consumed one ``chunk_size x vocab_chunk_size`` block at a time.
    For ``mean``/``sum`` the gradients are accumulated in forward alongside the
    loss (the logits are computed once) and backward scales them by the scalar
    ``grad_output``; for ``none`` (and a repeated backward) backward recomputes
    the logits from the saved inputs and the saved :math:`\mathrm{lse}`.

    When the backward is recorded (``create_graph=True``) or a ``torch.func``
    transform runs the Function, forward, backward and ``jvp`` run these formulas on
    whole tensors in differentiable ops (:mod:`._linear_cross_entropy_dense`), so
    second derivatives, ``vmap``, ``jacrev``, ``jacfwd`` and ``hessian`` are exact.
    float16/bfloat16 arguments are computed in float32 and the loss rounded once.

    ``input`` is ``(N, F)``; ``linear_weight`` ``(C, F)`` with ``target`` ``(N,)``
    (class indices) or ``(N, C)`` (probabilities), or, for a K-dimensional loss,
    ``(C, D, F)`` with ``target`` ``(N, D)`` or ``(N, C, D)``: ``D`` output
    positions, each its own softmax over the ``C`` classes.
    """

    @staticmethod
    def forward(input, linear_weight, linear_bias, target, weight, settings):
        problem = _Problem(input, linear_weight, linear_bias, target, weight)
        empty = input.new_empty(0)
        if plain(*problem):
            if settings.whole:  # a small problem: one pass (._linear_cross_entropy_whole)
                loss, lse, grads = whole.forward(*problem, settings, settings.precompute)
                lse = empty if lse is None else lse
            else:
                loss, lse, grads = _forward(_upcast(problem), settings, settings.precompute)
            grads = [g if g is not None else empty for g in grads[:3]]
        else:  # traced by a torch.func transform: whole tensors, no in-place buffers
            loss, lse = dense.forward(problem, settings)
            grads = [empty] * 3
        if settings.reduction == "none":
            loss = loss.reshape(settings.loss_shape)
        # the gradients accumulated on the way are outputs too, so that setup_context keeps them
        return loss.to(settings.out_dtype), lse, *grads

    @staticmethod
    def setup_context(ctx, inputs, output):
        *tensors, settings = inputs
        _, lse, *grads = output
        ctx.mark_non_differentiable(*output[1:])
        # no zero-filled "gradients" for those outputs in backward: 80 MiB at 8192 x 512, V = 32768
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*tensors, lse)
        ctx.save_for_forward(*tensors)
        ctx.settings = settings
        # detached: they are outputs of this node and would otherwise keep it alive
        ctx.precomputed = [
            g.detach() if done and g.shape == t.shape else None
            for g, t, done in zip(grads, tensors[:3], settings.precompute, strict=True)]

    @staticmethod
    def backward(ctx, grad_output, *_):
        if grad_output is None:  # the loss itself was not used
            return (None,) * 6
        *tensors, lse = ctx.saved_tensors
        problem, settings, needs = _Problem(*tensors), ctx.settings, ctx.needs_input_grad
        if not fast_path(grad_output, *tensors):  # recorded, or transformed: differentiable ops
            ctx.precomputed = [None, None, None]
            return (*dense.backward(problem, settings, grad_output, needs), None)
        problem, grad_output = _upcast(problem), upcast(grad_output)
        if settings.reduction == "none" or needs[3] or needs[4] or settings.rounding:
            # per-row grad_output, gradients forward did not accumulate, or a gradient to round
            # after grad_output has scaled it: one recomputing pass
            return (*_backward(problem, settings, lse, grad_output, needs), None)
        want = (needs[0], needs[1], problem.b is not None and needs[2])
        pre, ctx.precomputed = ctx.precomputed, [None, None, None]
        if not all(g is not None for g, wanted in zip(pre, want, strict=True) if wanted):
            # a second backward (retain_graph): the same loop as forward's, so the same bits
            pre = (whole.forward(*problem, settings, want) if settings.whole
                   else _forward(problem, settings, want))[2]
        # scaled in place with no reference left behind: autograd moves them into .grad, no copy
        grads = [pre[i].mul_(grad_output) if want[i] else None for i in range(3)]
        del pre
        return (*grads, None, None, None)

    @staticmethod
    def jvp(ctx, *tangents):
        problem, settings = _Problem(*ctx.saved_tensors), ctx.settings
        tangent = dense.jvp(problem, settings, tangents[:5])
        if settings.reduction == "none":
            tangent = tangent.reshape(settings.loss_shape)
        return tangent.to(settings.out_dtype), None, None, None, None


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,
                         linear_bias: Tensor | None = None, weight: Tensor | None = None,
                         reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None,
                         chunk_size: int | None = None, vocab_chunk_size: int | None = None,
                         softcap: float | None = None, lse_square_scale: float = 0.0,
                         filter_eps: float | None = None, sort_vocab: bool = False) -> Tensor:
    r"""Cross-entropy of ``input @ linear_weight.T + linear_bias`` against ``target``, logits
    never stored.

    Same value, gradients (first and second), shapes, warnings and errors as
    :func:`torch.nn.functional.linear_cross_entropy`: it equals
    ``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``,
    so with :math:`z_n = W x_n + b`

    .. math::
        l_n = \sum_c p_{nc} \bigl(\log\textstyle\sum_k e^{z_{nk}} - z_{nc}\bigr)

    where the target row is :math:`p_n = w_{y_n} e_{y_n}` for a class index :math:`y_n`
    (0 when :math:`y_n` = ``ignore_index``) or :math:`p_{nc} = w_c t_{nc}` for
    probabilities :math:`t_n`, each mixed with :math:`\varepsilon/C` uniform
    by ``label_smoothing`` :math:`\varepsilon`. ``reduction``: ``'none'`` keeps
    :math:`l_n`; ``'sum'`` adds them; ``'mean'`` divides the sum by
    :math:`\sum_n w_{y_n}` over the kept rows (class indices) or by the number
    of rows (probabilities).

    Unlike torch's default path, the ``N x C`` logits never exist: rows are
    processed ``chunk_size`` at a time and classes ``vocab_chunk_size`` at a
    time with an online log-sum-exp (see :class:`LinearCrossEntropyFunction`).

    Like torch's default path (``options=None``), second derivatives,
    ``torch.func`` (``grad``, ``vmap``, ``jacrev``, ``jacfwd``, ``hessian``) and
    autocast work: under ``torch.autocast`` the matrix product runs in the
    autocast dtype (``linear``'s policy) and the loss in float32
    (``cross_entropy``'s), as torch's composition does; float16 and bfloat16
    arguments accumulate in float32. Where ``options`` sends torch to its
    chunked path, torch itself cannot do second derivatives, ``grad``,
    ``jacrev`` or ``hessian`` (it raises) and its ``jacfwd`` is wrong (its
    documentation: "forward-mode AD unsupported"); lossutils computes them
    all, exactly, whatever ``options`` says.

    The keyword arguments under *Keyword Args* are lossutils extensions: torch has none
    of them, and each defaults to torch's behaviour.

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
            it, its ``batch_chunk_size`` / ``chunking_method`` choose ``chunk_size``
            (and, as in torch, autocast leaves the arguments alone).

    Keyword Args:
        chunk_size: rows per chunk. Default: torch's ``aspect_ratio:2`` rule
            (:func:`._linear_cross_entropy_args.auto_chunk_size`), so a chunk's logits take
            about half the memory of ``input``.
        vocab_chunk_size: classes per block. Default: all of them (one block,
            no recomputation); smaller blocks lower the peak further at the cost
            of computing the logits twice.
        softcap: :math:`c > 0`: the logits are :math:`c \tanh(z / c)` (Gemma 2's logit
            soft-capping). Default None (no cap).
        lse_square_scale: :math:`\lambda \ge 0`: each counted row adds the z-loss
            :math:`\lambda\,\mathrm{lse}(z_n)^2` (PaLM), averaged over the counted rows for
            ``'mean'``. Default 0.
        filter_eps: :math:`\epsilon \in (0, 1)`: the first-order backward skips the
            products of each block of classes whose softmax entries are all below
            :math:`\epsilon` for every row of a chunk (Cut Cross-Entropy's gradient
            filtering), an error bounded in :mod:`._filtering`. Class-index targets and 2-d
            heads only. Default None: exact. Second derivatives and transforms stay exact.
        sort_vocab: with ``filter_eps``, process the classes in descending order of their
            average logit over the batch, so the negligible ones share blocks (costs a
            copy of the head). Default False.

    Shape:
        output: scalar, or for ``'none'`` :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots)`.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
        >>> W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
        >>> loss = linear_cross_entropy(x, W, torch.tensor([0, 2]), chunk_size=1)
        >>> loss
        tensor(0.8103, grad_fn=<LinearCrossEntropyFunctionBackward>)
        >>> loss.backward()
        >>> linear_cross_entropy(x, W, torch.tensor([0, 2]), softcap=1.0, lse_square_scale=1e-2)
        tensor(0.9159, grad_fn=<LinearCrossEntropyFunctionBackward>)
    """
    args = prepare(input, linear_weight, target, linear_bias, weight, reduction, ignore_index,
                   label_smoothing, options, chunk_size, vocab_chunk_size, softcap,
                   lse_square_scale, filter_eps, sort_vocab)
    problem = _Problem(*args.tensors)
    settings = Settings(args.reduction, args.ignore_index, args.label_smoothing, args.plan,
                        args.precompute, args.loss_shape, args.out_dtype,
                        Extras(softcap, float(lse_square_scale), filter_eps), sort_vocab,
                        args.rounding, args.whole, args.ignored)
    return apply(LinearCrossEntropyFunction, *problem, settings)[0]
