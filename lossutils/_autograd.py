"""``once_differentiable`` that never lets a second derivative come out wrong.

Every hand-written backward in lossutils is first-order: it computes the
gradient under ``no_grad`` from tensors saved in forward. torch's own
``torch.autograd.function.once_differentiable`` refuses double backward only
when an *incoming gradient* requires grad. The commonest way to ask for a
second derivative -- ``torch.autograd.grad(loss, w, create_graph=True)`` on a
scalar loss -- starts from a constant gradient of 1, so torch's decorator lets
it through, and the second derivative silently misses every term that flows
through the saved inputs (see :doc:`/chapters/02_autograd`).

This version also treats the Function's *inputs* as a reason to guard: when
the backward runs with grad mode on (``create_graph=True``) and any input of
the Function requires grad, the gradients it returns are tied to a node that
raises if anything differentiates them. First derivatives taken with
``create_graph=True`` (``torch.func.grad``, gradient penalties evaluated but
not differentiated) still work; a second derivative raises a clear error
instead of returning a wrong number.
"""

from __future__ import annotations

import functools

import torch
from torch._C import _functions

MESSAGE = (
    b"lossutils' hand-written backward is first-order only: differentiating the "
    b"gradient of a lossutils loss (double backward, Hessian-vector products, "
    b"gradgradcheck) is not implemented. Use torch.nn.functional's loss for second derivatives."
)


def once_differentiable(backward):
    """Run ``backward`` without recording it, and refuse to differentiate its result."""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        with torch.no_grad():
            outputs = backward(ctx, *grad_outputs)
        if not torch.is_grad_enabled():
            return outputs
        tracked = any(ctx.needs_input_grad) or any(
            isinstance(g, torch.Tensor) and g.requires_grad for g in grad_outputs
        )
        if not tracked:
            return outputs
        single = not isinstance(outputs, tuple)
        outputs_ = (outputs,) if single else outputs
        # The guard node also takes the saved tensors that require grad, so a
        # second derivative w.r.t. them reaches it (and raises) instead of
        # reporting them as unused.
        inputs = [t for t in ctx.saved_tensors if isinstance(t, torch.Tensor) and t.requires_grad]
        guard = _functions.DelayedError(MESSAGE, len(outputs_) + len(inputs))

        def alias(t):
            # an alias that requires grad, so the guard node becomes its grad_fn
            if not isinstance(t, torch.Tensor):
                return t
            t = t.detach()
            t.requires_grad = True
            return t

        guarded = guard(*[alias(t) for t in outputs_], *inputs)
        guarded = guarded if isinstance(guarded, tuple) else (guarded,)
        guarded = guarded[: len(outputs_)]
        return guarded[0] if single else guarded

    return wrapper
