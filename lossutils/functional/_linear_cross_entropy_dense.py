r"""Linear cross-entropy in whole-tensor, differentiable ops: the form autograd can record.

:class:`~lossutils.functional.linear_cross_entropy.LinearCrossEntropyFunction`
runs its chunked, in-place passes (:mod:`._chunk_passes`) for the usual
``loss.backward()``. When its backward is itself recorded
(``create_graph=True``: second derivatives, ``gradgradcheck``,
``torch.func.hessian``), or a ``torch.func`` transform runs it, it runs the
same formulas here instead, on whole ``(N, C, D)`` logits: the hand-written
first derivative, in ordinary tensor ops of the inputs *and* of
``grad_output``, so that autograd differentiates it. The logits are
recomputed from the inputs and :math:`\log q` by
:func:`~lossutils.functional.softmax.log_probabilities`, whose detached
maximum is exact at every order.

With :math:`u = x W^\top + b`, :math:`z = c \tanh(u / c)` (soft-cap :math:`c`,
or :math:`z = u`), :math:`q_n = \mathrm{softmax}(z_n)`, the target row
:math:`p_n` and :math:`P_n = \sum_c p_{nc}`, :math:`r_n` and :math:`\rho_n` the
reduction's weights of the row's cross-entropy and z-loss
:math:`\lambda\,\mathrm{lse}_n^2`:

.. math::
    \frac{\partial L}{\partial u_{nc}} = \bigl(\kappa_n q_{nc} - r_n p_{nc}\bigr)
        \bigl(1 - \tanh^2(u_{nc}/c)\bigr), \qquad
    \kappa_n = r_n P_n + 2 \lambda \rho_n \mathrm{lse}_n,

then :math:`\partial L/\partial x = G W`, :math:`\partial L/\partial W = G^\top x`,
:math:`\partial L/\partial b = \sum_n G_n`; for probability targets
:math:`\partial L/\partial t_{nc} = -(1-\varepsilon) w_c r_n \log q_{nc}` and
:math:`\partial L/\partial w_c = -\sum_n r_n t'_{nc} \log q_{nc}`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .._precision import opmath, upcast
from .softmax import log_probabilities


class Rows(NamedTuple):
    """What every formula reads, as ``(N, C, D)`` tensors (``D = 1`` without positions)."""

    u: Tensor  # x W^T + b
    z: Tensor  # the logits: u, or c tanh(u / c)
    log_q: Tensor
    lse: Tensor  # (N, 1, D)
    p: Tensor  # the target rows
    valid: Tensor  # (N, 1, D): the rows that count


def _as_ncd(W: Tensor, b: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``W`` as ``(C, D, F)`` and ``b`` as ``(C, D)``."""
    if W.dim() == 2:
        return W.unsqueeze(1), None if b is None else b.unsqueeze(1)
    return W, b


def compute_dtype(problem) -> torch.dtype:
    """The logits' dtype: float32 for float16/bfloat16 arguments, else the input's (a wider
    probability target widens the loss, not the logits, as in torch)."""
    return opmath(problem.x.dtype)


def _affine(x: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
    """:math:`u = x W^\\top + b` as ``(N, C, D)``."""
    W3, b2 = _as_ncd(W, b)
    u = torch.einsum("nf,cdf->ncd", x, W3)
    return u if b2 is None else u + b2


def _rounded(t: Tensor, settings) -> Tensor:
    """``t`` rounded where torch's composition rounds it (linear's half-precision output and
    the gradient that comes back to it), kept in the compute dtype; differentiably."""
    return t if settings.rounding is None else t.to(settings.rounding).to(t.dtype)


def rows(problem, settings) -> Rows:
    """The logits, :math:`\\log q`, lse and target rows of the whole problem."""
    dtype = compute_dtype(problem)
    x, W, b = (upcast(t, dtype) for t in problem[:3])
    target, weight = (upcast(t) if t is not None and t.is_floating_point() else t
                      for t in problem[3:])
    u = _rounded(_affine(x, W, b), settings)
    cap = settings.extras.softcap
    z = u if cap is None else cap * torch.tanh(u / cap)
    log_q = log_probabilities(z, 1)
    m = z.amax(1, keepdim=True).detach()
    lse = m + (z - m).exp().sum(1, keepdim=True).log()
    p, valid = _target_rows(target, weight, settings, z)
    return Rows(u, z, log_q, lse, p, valid)


def _target_rows(target: Tensor, weight: Tensor | None, settings, z: Tensor):
    """The target rows :math:`p` ``(N, C, D)`` and the counted rows ``(N, 1, D)``."""
    n, c, d = z.shape
    eps = settings.label_smoothing
    w = None if weight is None else weight.reshape(1, c, 1)
    if target.is_floating_point():
        t = target.reshape(n, c, d)
        p = t * (1 - eps) + eps / c
        return (p if w is None else p * w), torch.ones(n, 1, d, dtype=torch.bool)
    y = target.reshape(n, 1, d)
    valid = y != settings.ignore_index
    index = torch.where(valid, y, 0)
    w_y = torch.ones(index.shape, dtype=z.dtype) if weight is None else weight[index]
    p = torch.zeros_like(z).scatter(1, index, torch.where(valid, (1 - eps) * w_y, 0))
    if eps:
        p = p + valid.to(z.dtype) * (eps / c) * (1 if w is None else w)
    return p, valid


def _cross_entropy_rows(r: Rows, target: Tensor) -> Tensor:
    r""":math:`l_n = \sum_c p_{nc} (\mathrm{lse}_n - z_{nc})`, ``(N, 1, D)``; for class indices
    as torch computes it (a gathered logit, no :math:`0 \cdot (-\infty)` from other classes)."""
    if target.is_floating_point():
        return -(r.p * r.log_q).sum(1, keepdim=True)
    picked = torch.where(r.p != 0, r.p * r.log_q, 0)
    return torch.where(r.valid, -picked.sum(1, keepdim=True), 0)


def denominators(problem, settings, r: Rows) -> tuple[Tensor | float, Tensor | float]:
    """What ``'mean'`` divides the cross-entropies and the z-losses by (1 for ``'sum'``)."""
    if settings.reduction != "mean":
        return 1.0, 1.0
    target = problem.target
    if target.is_floating_point():  # rows x positions, weights or not (torch's rule)
        count = float(r.valid.numel())
        return count, count
    counted = r.valid.sum().to(r.z.dtype)
    if problem.weight is None:
        return counted, counted
    y = torch.where(r.valid, target.reshape(r.valid.shape), 0)
    return torch.where(r.valid, problem.weight[y].to(r.z.dtype), 0).sum(), counted


def forward(problem, settings) -> tuple[Tensor, Tensor]:
    """The loss (reduced, or ``(N, D)`` rows for ``'none'``) and every row's lse ``(N, D)``."""
    r = rows(problem, settings)
    ce = _cross_entropy_rows(r, problem.target)
    lam = settings.extras.lse_square_scale
    zl = torch.where(r.valid, lam * r.lse * r.lse, 0) if lam else None
    lse = r.lse.squeeze(1)
    if settings.reduction == "none":
        return (ce if zl is None else ce + zl).squeeze(1), lse
    ce_den, z_den = denominators(problem, settings, r)
    loss = ce.sum() / ce_den
    return (loss if zl is None else loss + zl.sum() / z_den), lse


def _row_weights(problem, settings, r: Rows, grad_output: Tensor) -> tuple[Tensor, Tensor]:
    """:math:`r_n` and :math:`\\rho_n` ``(N, 1, D)``, zero on the rows that do not count."""
    g = upcast(grad_output)
    if settings.reduction == "none":
        g = g.reshape(r.valid.shape)
        weights = g, g
    else:
        ce_den, z_den = denominators(problem, settings, r)
        weights = g / ce_den, g / z_den
    # where, not a product: an all-ignored 'mean' has grad_output / 0 = inf; its gradient is 0
    return tuple(torch.where(r.valid, w, 0) for w in weights)


class Slopes(NamedTuple):
    """Derivatives of the reduced loss (or of each row, for a tangent) w.r.t. ``u``, the
    probability targets and (per row) the class weights, ``(N, C, D)`` each."""

    u: Tensor
    target: Tensor | None
    weight: Tensor | None


def slopes(problem, settings, r: Rows, ce_weight: Tensor, z_weight: Tensor) -> Slopes:
    """:math:`\\partial L/\\partial u`, :math:`\\partial L/\\partial t` and the terms of
    :math:`\\partial L/\\partial w` for the row weights :math:`r`, :math:`\\rho`."""
    q = r.log_q.exp()
    kappa = ce_weight * r.p.sum(1, keepdim=True)
    lam = settings.extras.lse_square_scale
    if lam:
        kappa = kappa + 2 * lam * z_weight * r.lse
    g = kappa * q - ce_weight * r.p
    cap = settings.extras.softcap
    if cap is not None:
        g = g * (1 - (r.z / cap) ** 2)
    target, weight = problem.target, problem.weight
    if not target.is_floating_point():
        return Slopes(g, None, None)
    eps, c = settings.label_smoothing, r.z.shape[1]
    w = 1 if weight is None else upcast(weight).reshape(1, c, 1)
    t = upcast(target).reshape(r.z.shape)
    return Slopes(g, -(1 - eps) * ce_weight * w * r.log_q,
                  -ce_weight * (t * (1 - eps) + eps / c) * r.log_q)


def backward(problem, settings, grad_output: Tensor, needs) -> tuple:
    """Every wanted gradient (None where not), in differentiable ops."""
    x, W, b, target, weight = problem
    r = rows(problem, settings)
    s = slopes(problem, settings, r, *_row_weights(problem, settings, r, grad_output))
    W3, _ = _as_ncd(upcast(W, r.z.dtype), None)
    s = s._replace(u=_rounded(s.u.to(r.z.dtype), settings))
    gx = torch.einsum("ncd,cdf->nf", s.u, W3) if needs[0] else None
    gW = torch.einsum("ncd,nf->cdf", s.u, upcast(x, r.z.dtype)).reshape(W.shape) \
        if needs[1] else None
    gb = s.u.sum(0).reshape(b.shape) if b is not None and needs[2] else None
    gt = s.target.reshape(target.shape) if s.target is not None and needs[3] else None
    gw = s.weight.sum((0, 2)) if s.weight is not None and weight is not None and needs[4] \
        else None
    return gx, gW, gb, gt, gw


def jvp(problem, settings, tangents) -> Tensor:
    """The loss's tangent for the tangents of ``(input, linear_weight, linear_bias, target,
    weight)`` (None: zero)."""
    x, W, b, target, weight = problem
    r = rows(problem, settings)
    one = torch.ones((), dtype=r.z.dtype)
    s = slopes(problem, settings, r, *_row_weights(problem, settings, r, one.expand(
        r.valid.shape) if settings.reduction == "none" else one))
    dtype = r.z.dtype
    dx, dW, db = (None if t is None else upcast(t, dtype) for t in tangents[:3])
    dt, dw = (None if t is None else upcast(t) for t in tangents[3:])
    du = 0
    if dx is not None:
        du = du + _affine(dx, upcast(W, dtype), None)
    if dW is not None:
        du = du + _affine(upcast(x, dtype), dW, None)
    if db is not None:
        du = du + _as_ncd(W, db)[1].unsqueeze(0)
    terms = (s.u * du).sum(1) if not isinstance(du, int) else torch.zeros_like(r.lse.squeeze(1))
    if dt is not None and s.target is not None:
        terms = terms + (s.target * dt.reshape(r.z.shape)).sum(1)
    if dw is not None and s.weight is not None:
        terms = terms + (s.weight * dw.reshape(1, -1, 1)).sum(1)
    return terms if settings.reduction == "none" else terms.sum()
