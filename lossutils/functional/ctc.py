r"""Connectionist Temporal Classification: the forward-backward (alpha-beta) algorithm.

Defined in :doc:`/chapters/04_2_likelihoods_and_sequences`.

A target :math:`l = (l_1, \dots, l_L)` is stretched to the extended sequence
:math:`l' = (\varnothing, l_1, \varnothing, l_2, \dots, l_L, \varnothing)` of
length :math:`2L + 1` (:math:`\varnothing` the blank). An alignment walks
through :math:`l'` one frame at a time, staying, stepping by one, or skipping a
blank between two *different* labels. Both recursions run over the whole batch
and every position :math:`s` at once (:mod:`~lossutils.functional._ctc_lattice`:
the sequences side by side in one row); only time is a Python loop, because
frame :math:`t` needs frame :math:`t \mp 1`. They run in log space, as torch's do,
except for plain tensors too short for any probability to underflow: those take
:class:`CTCLinearFunction` (:mod:`~lossutils.functional._ctc_linear`), the same sums on
the probabilities themselves, two operations per frame instead of four.

torch has no second derivative of ``ctc_loss`` (its backward, ``_ctc_loss_backward``,
has none in derivatives.yaml) and no forward-mode derivative: double backward,
``gradgradcheck``, ``jvp``, ``jacfwd`` and ``hessian`` raise torch's errors here too
(:mod:`lossutils._first_order`). ``grad``, ``vmap`` and ``jacrev`` work, as in torch.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _autocast
from .._autograd import apply, fast_path, plain, transformable
from .._first_order import first_order, no_forward_mode
from .._lists import tensor_of
from .._reduction import check_reduction, reduce, reduction_grad
from . import _ctc_checks as checks
from . import _ctc_lattice as lattice
from . import _ctc_linear as linear
from ._ctc_lattice import Lattice

__all__ = ["ctc_loss"]


class Options(NamedTuple):
    """The arguments of :class:`CTCLossFunction` that are not tensors."""

    blank: int
    reduction: str
    zero_infinity: bool
    batched: bool  # log_probs was (T, N, C)
    frames: int  # the longest input length: how many frames the recursions run
    ragged: lattice.Ragged | None  # the lengths and ends as Python ints (plain tensors)
    save: bool  # the forward keeps what the backward needs (the input requires grad)
    plan: linear.Plan | None = None  # the probability-space route's lattice
    per_label: list[int] | None = None  # each target length, at least 1 (plain tensors)


@transformable
class CTCLossFunction(Function):
    r"""CTC negative log-likelihood, :math:`-\log p(l \mid x)`, and torch's gradient of it.

    .. math::
        p(l \mid x) = e^{\alpha_{T-1}(2L)} + e^{\alpha_{T-1}(2L-1)}, \qquad
        \text{loss}_b = -\log p(l \mid x)

    The gradient w.r.t. the log-probabilities :math:`\log y^t_c` (Graves et
    al. 2006, eq. 16), with :math:`\gamma_t(s) = e^{\alpha_t(s) + \beta_t(s) - \log y^t_{l'_s}}
    / p(l \mid x)` the probability that an alignment is at :math:`s` at frame :math:`t`
    (both :math:`\alpha` and :math:`\beta` hold the emission at :math:`t`):

    .. math::
        \frac{\partial\, \text{loss}}{\partial \log y^t_c} = y^t_c -
        \sum_{s:\, l'_s = c} \gamma_t(s)

    times the incoming gradient, for :math:`t < T_b` (0 after). The
    :math:`y^t_c` term is *not* the derivative of the loss w.r.t. its input:
    torch returns the gradient as if ``log_probs`` came out of a log-softmax,
    folding that softmax's Jacobian in (for normalised rows
    :math:`\sum_c` of the above is 0, so the log-softmax backward leaves it
    unchanged). An impossible alignment (loss :math:`\infty`) gives nan, or 0
    with ``zero_infinity``; so does a log-probability of :math:`-\infty`, as in torch.
    Torch has no second or forward-mode derivative of this loss, nor does lossutils.

    In the usual forward and backward, :math:`\alpha` lives in one buffer of
    ``T x width`` (the sequences' own lengths side by side: less than torch's
    ``N x T x (2 max L + 1)``), the backward variables in one row, and the occupations
    of each chunk of frames go into the gradient in one ``index_add_``. The lattice of
    plain tensors is built from Python ints (targets and lengths read once).
    """

    @staticmethod
    def forward(log_probs, masks, indices, ends, input_lengths, target_lengths, options):
        lat = Lattice.unpack(masks, indices, ends)
        inplace = plain(log_probs, masks, indices, ends, input_lengths, target_lengths)
        alpha = (lattice.alpha_in_place if inplace else lattice.alpha_out_of_place)(
            log_probs, lat, options.frames)
        rag = options.ragged
        if rag is None:
            nll = -lattice.log_likelihood(alpha, lat, input_lengths, target_lengths)
        else:
            nll = -lattice.log_likelihood_ragged(alpha, lat.width, rag)
        out = _reduced(nll, target_lengths, options)
        if out is nll or out._base is nll:  # the loss must not be the non-differentiable nll
            nll = nll.clone()
        if not options.save:
            return out, nll, alpha.new_empty(0)
        # the backward reads alpha + nll; torch's last frame keeps only the label's
        # alpha*beta when the last label is the blank itself
        if inplace:  # in blocks, each on one thread (lattice.serial_blocks)
            shift = nll[lat.sample]
            for (block,) in lattice.serial_blocks(alpha):
                block.add_(shift)
        else:
            alpha = alpha + nll[lat.sample]
        if rag is not None and inplace:
            last = [max(f - 1, 0) * lat.width + e for f, e, blank
                    in zip(rag.frames, rag.ends, rag.blank_last, strict=True) if blank]
            if last:
                alpha.view(-1)[torch.tensor(last, device=alpha.device)] = float("-inf")
            return out, nll, alpha
        last = (input_lengths - 1).clamp_min(0) * lat.width + lat.ends
        overwritten = (lat.emission[lat.ends - 1] == lat.emission[lat.ends]) & \
            (target_lengths > 0)
        if inplace:
            alpha.view(-1)[last[overwritten]] = float("-inf")
        else:
            alpha = alpha.reshape(-1).index_put((last,), torch.where(
                overwritten, float("-inf"), alpha.reshape(-1)[last])).view(alpha.shape)
        return out, nll, alpha

    @staticmethod
    def setup_context(ctx, inputs, outputs):
        log_probs, masks, indices, ends, input_lengths, target_lengths, options = inputs
        _, nll, alpha = outputs
        ctx.mark_non_differentiable(nll, alpha)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(log_probs, masks, indices, ends, input_lengths, target_lengths,
                              nll, alpha)
        ctx.options = options

    @staticmethod
    def backward(ctx, grad_output, _nll, _alpha):
        if grad_output is None:
            return None, None, None, None, None, None, None
        log_probs, masks, indices, ends, input_lengths, target_lengths, nll, alpha = \
            ctx.saved_tensors
        options, lat = ctx.options, Lattice.unpack(masks, indices, ends)
        t_all, b, _ = log_probs.shape
        rag = options.ragged
        fast = rag is not None and fast_path(grad_output, log_probs, masks, indices, ends, alpha)
        if fast:
            with torch.no_grad():
                grad = lattice.gradient_in_place(log_probs, alpha, lat,
                                                 _starts(lat, rag), options.frames)
        else:
            grad = lattice.gradient_out_of_place(log_probs, alpha, lat, input_lengths,
                                                 options.frames)
        # the incoming gradient of each sequence's loss, through the reduction ('mean' is
        # the batch mean of each loss divided by its target length); nan for an impossible
        # alignment (0 with zero_infinity), as torch's exp(-inf + inf)
        impossible = nll == float("inf")
        scale = _scale(grad_output, impossible, target_lengths, options if fast else
                       options._replace(per_label=None))
        if fast:  # y - gamma; nan where log y = -inf (torch: exp(-inf + inf)); then scaled
            for block, lp in lattice.serial_blocks(grad, log_probs):
                block.add_(lp, alpha=0).mul_(scale.view(1, b, 1))
            if min(rag.frames) < t_all or options.zero_infinity:
                dropped = _dropped(t_all, input_lengths, impossible, options)
                for block, mask in lattice.serial_blocks(grad, dropped):
                    block.masked_fill_(mask, 0.0)
        else:
            grad = torch.where(_dropped(t_all, input_lengths, impossible, options), 0.0,
                               (grad + 0 * log_probs) * scale.view(1, b, 1))
        return (first_order("_ctc_loss", grad, log_probs, grad_output),
                None, None, None, None, None, None)

    @staticmethod
    def jvp(ctx, *tangents):
        raise no_forward_mode("_ctc_loss")


@transformable
class CTCLinearFunction(Function):
    r""":class:`CTCLossFunction` in probability space (:mod:`._ctc_linear`), for plain
    tensors where no probability can underflow: the same loss and gradient, with two
    operations per frame in each recursion instead of four.

    The forward's rows (:math:`\bar\alpha`, the emissions) and the plan's tensors are
    kept on ``ctx`` and used up by the backward, which overwrites them and frees all but
    one before it allocates the gradient; a second backward through a retained graph
    runs the forward again. Which sequences have no alignment is known from their
    lengths (:attr:`._ctc_linear.Plan.impossible`): their loss is :math:`\infty` (0 with
    ``zero_infinity``) and their gradient nan (0)."""

    @staticmethod
    def forward(log_probs, tensors, options):
        # (the plan's tensors come in a NamedTuple, not as two more tensor arguments:
        # Function.apply then inspects one tensor, not three; neither takes a gradient)
        p = options.plan
        state = linear.alpha(log_probs, tensors, p, options.save)
        nll = state[0].log().neg_()
        if options.zero_infinity and p.impossible:
            nll.index_fill_(0, tensor_of(p.impossible, torch.int64, nll.device), 0.0)
        if options.reduction == "mean":  # the mean of each loss over its target length
            out = (nll / tensors.divisor(p)).sum()
        elif options.reduction == "sum":
            out = nll.sum()
        else:
            out = nll if options.batched else nll.squeeze(0)
        # the backward's state in a list: autograd passes it by untouched
        return out, [*tensors, *state] if options.save else None

    @staticmethod
    def setup_context(ctx, inputs, outputs):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(inputs[0])
        ctx.options, ctx.state = inputs[-1], outputs[1]

    @staticmethod
    def backward(ctx, grad_output, *_):
        if grad_output is None:
            return None, None, None
        (log_probs,), options, state, ctx.state = ctx.saved_tensors, ctx.options, ctx.state, None
        p = options.plan
        if state is None:  # used up by an earlier backward (retain_graph): recompute
            tensors = linear.Tensors.of(p, log_probs.dtype, log_probs.device)
            state = [*tensors, *linear.alpha(log_probs, tensors, p, True)]
            del tensors
        scale = grad_output  # each sequence's incoming gradient, through the reduction
        if options.reduction == "mean":
            scale = grad_output / linear.Tensors(*state[:2]).divisor(p)
        grad = linear.gradient(log_probs, state, p)
        grad.mul_(scale.view(1, -1, 1))
        if min(p.frames) < grad.size(0):  # torch's gradient is 0 past a sequence's end
            for b, frames in enumerate(p.frames):
                if frames < grad.size(0):
                    grad[frames:, b].zero_()
        for b in p.impossible:  # torch: exp(-inf + inf) = nan, or 0 with zero_infinity
            grad[:p.frames[b], b].fill_(0.0 if options.zero_infinity else float("nan"))
        return first_order("_ctc_loss", grad, log_probs, grad_output), None, None

    @staticmethod
    def jvp(ctx, *tangents):
        raise no_forward_mode("_ctc_loss")


def _reduced(nll: Tensor, target_lengths: Tensor, options: Options) -> Tensor:
    """The loss from each sequence's ``nll``: zero_infinity, then the reduction (``'mean'``
    divides each loss by its target length, at least 1, then averages)."""
    res = torch.where(nll == float("inf"), 0.0, nll) if options.zero_infinity else nll
    if options.reduction == "mean":
        res = res / _per_label(target_lengths, options.per_label, res.dtype)
    out = reduce(res, options.reduction)
    if not options.batched and options.reduction == "none":
        out = out.squeeze(0)
    return out


def _scale(grad_output: Tensor, impossible: Tensor, target_lengths: Tensor,
           options: Options) -> Tensor:
    """``(B,)``: the incoming gradient of each sequence's loss, through the reduction; nan
    for an impossible alignment (0 with zero_infinity), as torch's exp(-inf + inf)."""
    b = impossible.size(0)
    scale = reduction_grad(grad_output, options.reduction, b).expand(b)
    if options.reduction == "mean":
        scale = scale / _per_label(target_lengths, options.per_label, scale.dtype)
    return torch.where(impossible, 0.0 if options.zero_infinity else float("nan"), scale)


def _per_label(target_lengths: Tensor, per_label: list[int] | None, dtype) -> Tensor:
    """Each loss's divisor under ``'mean'``: its target length, at least 1."""
    if per_label is None:
        return target_lengths.to(dtype).clamp_min(1)
    return tensor_of(per_label, dtype, target_lengths.device)


def _dropped(t_all: int, input_lengths: Tensor, impossible: Tensor, options: Options) -> Tensor:
    """``(T, B, 1)``: True where the gradient is 0 (past a sequence's frames; with
    ``zero_infinity``, all of an impossible alignment's)."""
    dropped = torch.arange(t_all, device=input_lengths.device).unsqueeze(1) >= input_lengths
    return (dropped | impossible if options.zero_infinity else dropped).unsqueeze(2)


def _starts(lat: Lattice, rag: lattice.Ragged) -> dict[int, Tensor]:
    """Frame -> the interior slots of the last two positions of the sequences whose last
    frame it is (the backward recursion starts there; one position for an empty target)."""
    starts = {}
    for frames, end, labels in zip(rag.frames, rag.ends, rag.labels, strict=True):
        if frames:
            starts.setdefault(frames - 1, []).extend((end - 3, end - 2) if labels else
                                                     (end - 2,))
    return {t: torch.tensor(slots, device=lat.ends.device) for t, slots in starts.items()}


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    r"""Connectionist Temporal Classification loss, like :func:`torch.nn.functional.ctc_loss`.

    ``log_probs`` (T, N, C) or unbatched (T, C); ``targets`` padded (N, S)
    or concatenated (sum of ``target_lengths``); lengths as tensors or
    tuples/lists of ints. ``'mean'`` divides each loss by its target length
    (at least 1), then averages over the batch. See :class:`CTCLossFunction`.

    Unlike torch, a label outside ``[0, C)`` raises ``IndexError``: torch's
    CPU kernel does not check and reads whatever lies past the tensor. Like
    torch, it has no second derivative and no forward-mode derivative (those
    raise torch's errors); ``grad``, ``vmap`` and ``jacrev`` work.

    Examples:
        Two frames, two classes (0 is the blank), each frame 50/50: three alignments
        (``1 1``, ``0 1``, ``1 0``) collapse to the label sequence ``1``, so
        :math:`p = 3/4`:

        >>> log_probs = torch.full((2, 1, 2), 0.5).log()  # (T, N, C)
        >>> ctc_loss(log_probs, torch.tensor([[1]]), (2,), (1,))
        tensor(0.2877)
    """
    reduction = check_reduction(reduction)
    if isinstance(blank, bool) or not hasattr(blank, "__index__"):
        raise TypeError(f"blank must be an int (the blank's class index), "
                        f"got {type(blank).__name__} ({blank!r})")
    blank = operator.index(blank)
    if isinstance(input_lengths, Tensor) != isinstance(target_lengths, Tensor):
        raise TypeError(
            "input_lengths and target_lengths must both be tensors or both be tuples/lists of "
            f"ints: got {type(input_lengths).__name__} and {type(target_lengths).__name__}")
    input_lengths = checks.lengths("input_lengths", input_lengths)
    target_lengths = checks.lengths("target_lengths", target_lengths)
    (log_probs,), _ = _autocast.cast("ctc_loss", log_probs)
    checks.require_float(log_probs)
    batched = log_probs.dim() == 3
    lp = log_probs if batched else log_probs.unsqueeze(1)
    if targets.dtype != torch.int64:  # (a no-op .to still costs a dispatch per call)
        targets = targets.to(torch.int64)
    frames, lengths = checks.check(lp, targets, input_lengths, target_lengths, blank)
    classes = lp.size(2)
    if not lp.is_contiguous():
        lp = lp.contiguous()
    save = log_probs.requires_grad and torch.is_grad_enabled()
    if lengths is not None and frames is not None and \
            plain(lp, targets, input_lengths, target_lengths):
        # plain tensors: the labels read once, the lattice built from Python ints
        labels = checks.label_lists(targets, lengths, classes)
        longest = max(frames, default=0)
        if min(frames, default=0) > 0 and not any(seq and seq[-1] == blank for seq in labels) \
                and linear.fits(lp, longest):
            p = linear.plan(labels, frames, blank, classes)
            options = Options(blank, reduction, zero_infinity, batched, longest, None, save, p)
            return apply(CTCLinearFunction, lp, linear.Tensors.of(p, lp.dtype, lp.device),
                         options)[0]
        packed, rag = lattice.ragged(labels, frames, blank, classes, lp.dtype, lp.device)
        per_label = [max(n, 1) for n in lengths]
    else:
        longest = max(lengths, default=0) if lengths is not None else targets.size(-1)
        labels = checks.label_rows(targets, target_lengths, longest)
        checks.check_labels(labels, target_lengths, blank, classes)
        packed, rag, per_label = (lattice.lattice(labels, target_lengths, blank, classes,
                                                  longest).pack(), None, None)
    options = Options(blank, reduction, zero_infinity, batched,
                      max(frames, default=0) if frames is not None else lp.size(0), rag, save,
                      None, per_label)
    return apply(CTCLossFunction, lp, *packed, input_lengths, target_lengths, options)[0]
