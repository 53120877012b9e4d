"""The losses whose first derivative torch cannot differentiate, refused as torch refuses.

torch defines no derivative of ``multi_margin_loss_backward``,
``multilabel_margin_loss_backward`` or ``_ctc_loss_backward`` (derivatives.yaml
lists none), nor a forward-mode derivative of the three losses: a second
derivative through them (double backward, ``gradgradcheck``, a Hessian) raises
``RuntimeError``, and ``torch.func.jvp`` / ``jacfwd`` / ``hessian`` raise
``NotImplementedError``. lossutils, a drop-in for torch, raises the same
errors rather than return a second derivative torch would refuse.

:func:`first_order` is what such a Function's ``backward`` returns through:
its result, unchanged, but recorded (when anything is recorded) as the output
of a node whose own backward raises torch's error. :func:`no_forward_mode` is
the error of its ``jvp``. Defined in :doc:`/chapters/02_2_function`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function


def _message(op: str) -> str:
    return (f"derivative for aten::{op}_backward is not implemented: torch defines no second "
            f"derivative of {op}, and lossutils, a drop-in for it, refuses it too")


class _NotDifferentiable(Function):
    """The identity on a first derivative, whose own derivative raises torch's error."""

    generate_vmap_rule = True

    @staticmethod
    def forward(grad, op, *inputs):
        return grad.view_as(grad)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.op = inputs[1]

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_message(ctx.op))

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError(_message(ctx.op))


def first_order(op: str, grad: Tensor | None, *inputs: Tensor | None) -> Tensor | None:
    """``grad`` (a first derivative of ``op`` computed from ``inputs``), recorded as the
    output of a node that refuses to be differentiated, when grad mode is on and a tensor
    among ``grad`` and ``inputs`` requires grad (``create_graph=True``, or a ``torch.func``
    transform); otherwise ``grad`` itself."""
    if grad is None or not torch.is_grad_enabled():
        return grad
    tracked = [t for t in (grad, *inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not tracked:
        return grad
    return _NotDifferentiable.apply(grad, op, *tracked)


def no_forward_mode(op: str) -> NotImplementedError:
    """torch's refusal of forward-mode AD (``jvp``, ``jacfwd``, ``hessian``) through ``op``."""
    return NotImplementedError(
        f"Trying to use forward AD with {op} that does not support it because it has not been "
        f"implemented yet: torch has no forward-mode derivative of {op}, and lossutils, a "
        f"drop-in for it, refuses it too")
