"""What every lossutils ``Function`` shares: the choice between its fast and its
differentiable code, the transform rules, and how it is applied.

A lossutils loss is a ``torch.autograd.Function`` whose first derivative is
written by hand. Its ``backward`` is made of ordinary differentiable tensor
ops, so that under ``create_graph=True`` autograd records it and a second
derivative (double backward, ``torch.func.hessian``, ``gradgradcheck``) comes
out right -- the derivative of the hand-written formula, through every tensor
it reads. Where a loss has a faster in-place form, it may run that instead
when nothing can record it (:func:`fast_path`); both forms give the same
numbers (``tests/test_capabilities.py`` checks it).

The :func:`transformable` decorator gives a Function what ``torch.func`` and
``torch.compile`` need from it (see CONTRIBUTING.md, "Second derivatives,
torch.func, autocast and half precision"): ``generate_vmap_rule`` (``vmap``
runs the Function's own forward, backward and ``jvp`` per sample) and a twin
without the ``jvp`` staticmethod for ``torch.compile``, which cannot trace a
custom ``jvp`` (Dynamo: "Unsupported custom jvp"). :func:`apply` picks the
twin while compiling. Defined in :doc:`/chapters/02_2_function`.
"""

from __future__ import annotations

import functools

import torch
from torch._C import _functions
from torch._subclasses.fake_tensor import is_fake
from torch.autograd import Function

from . import _autocast


def compiling() -> bool:
    """True while ``torch.compile`` traces the code (public API)."""
    return torch.compiler.is_compiling()


def _functorch_wrapped(t) -> bool:
    # Private APIs, kept to this module: torch.func's transforms (vmap, grad, jvp,
    # jacrev, ...) hand a Function wrapped tensors (BatchedTensor, TensorWrapper), and
    # torch offers no public test for them, nor for a FakeTensor (torch._subclasses).
    # Neither can take part in the fast paths' in-place writes into fresh buffers and
    # slices, nor in data-dependent checks (has_values).
    return isinstance(t, torch.Tensor) and torch._C._functorch.is_functorch_wrapped_tensor(t)


def unwrap(t: torch.Tensor) -> torch.Tensor:
    """The plain tensor under every ``torch.func`` wrapper of ``t`` (for a BatchedTensor:
    every sample's values, the batch dimension included). Values only, never for math."""
    while _functorch_wrapped(t):
        t = torch._C._functorch.get_unwrapped(t)
    return t


def has_values(t) -> bool:
    """Whether ``t``'s values can be read now, for a data-dependent check: not while
    ``torch.compile`` traces, nor for a tensor without data (``meta``, or a FakeTensor,
    which stands in for one while tracing or when a device is only simulated). A tensor
    wrapped by ``torch.func`` has values: :func:`unwrap` them."""
    return not compiling() and t.device.type != "meta" and not is_fake(unwrap(t))


def plain(*tensors) -> bool:
    """True when ``tensors`` are ordinary eager tensors: not traced by ``torch.compile``,
    not wrapped by a ``torch.func`` transform, not FakeTensors. Fast paths (in-place
    writes into fresh buffers, ``out=`` into slices, loops over blocks of rows) run only
    then."""
    return not compiling() and not any(
        _functorch_wrapped(t) or (isinstance(t, torch.Tensor) and is_fake(t)) for t in tensors)


def fast_path(*tensors) -> bool:
    """True in a backward nothing records: grad mode off (``create_graph=False``, the
    usual ``loss.backward()``) and :func:`plain` tensors. Otherwise the backward must
    run its differentiable form."""
    return not torch.is_grad_enabled() and plain(*tensors)


def transformable(cls: type[Function]) -> type[Function]:
    """Class decorator: ``generate_vmap_rule = True``, and a twin of ``cls`` without its
    ``jvp`` (what ``torch.compile`` can trace), which :func:`apply` picks while compiling."""
    cls.generate_vmap_rule = True
    twin = type(cls.__name__, (cls,), {
        "jvp": Function.jvp, "backward": cls.__dict__["backward"], "__doc__": cls.__doc__,
        "__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.traceable",
    })

    def pick(*args):
        # Dynamo traces a staticmethod of a Function and this closure, but not a class
        # attribute or a dict lookup that names the twin: hence a function per class.
        return (twin if compiling() else cls).apply(*args)

    cls.compile_safe_apply = staticmethod(pick)
    return cls


def apply(cls: type[Function], *args):
    """``cls.apply(*args)`` with autocast off for the arguments' device, as torch runs an
    op once its autocast wrapper has cast the arguments (the public function has done that
    already, :func:`lossutils._autocast.cast`); while ``torch.compile`` traces, the twin of
    ``cls`` without ``jvp``."""
    with _autocast.disabled(*args):
        return cls.compile_safe_apply(*args)


# ---------------------------------------------------------------------------------------
# TEMPORARY: the first-order guard of the families not converted yet (issue 16). A
# converted family's backward is differentiable and no longer imports it; delete this
# section when the last family (distance, triplet, ranking,
# soft_margin, multi_margin, ctc, linear_cross_entropy, distributed) is converted.
# ---------------------------------------------------------------------------------------

MESSAGE = (
    b"lossutils' hand-written backward is first-order only: differentiating the "
    b"gradient of a lossutils loss (double backward, Hessian-vector products, "
    b"gradgradcheck) is not implemented. Use torch.nn.functional's loss for second derivatives."
)


def once_differentiable(backward):
    """Run ``backward`` without recording it, and refuse to differentiate its result.

    torch's own ``torch.autograd.function.once_differentiable`` refuses double
    backward only when an *incoming gradient* requires grad; a scalar loss's
    ``create_graph=True`` starts from a constant 1, so torch's decorator lets a
    second derivative through that misses every term flowing through the saved
    inputs (see :doc:`/chapters/02_2_function`). This version also guards when an
    input of the Function requires grad: a second derivative raises instead.
    """

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
