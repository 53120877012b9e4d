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

import inspect

import torch
from torch import Tensor
from torch._functorch.utils import unwrap_dead_wrappers
from torch._subclasses.fake_tensor import is_fake
from torch.autograd import Function

from . import _autocast


def compiling() -> bool:
    """True while ``torch.compile`` traces the code (public API)."""
    return torch.compiler.is_compiling()


# Private APIs, kept to this module: torch.func's transforms (vmap, grad, jvp, jacrev, ...)
# hand a Function wrapped tensors (BatchedTensor, TensorWrapper), and torch offers no public
# test for them, nor for a FakeTensor (torch._subclasses), nor a way to run a Function without
# torch.autograd.Function.apply's per-call signature binding (below, :func:`apply`).
_is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_is_functional = torch._is_functional_tensor
_transforms_active = torch._C._are_functorch_transforms_active
_autocast_on = torch._C._is_any_autocast_enabled
# A tensor of exactly these types, neither functorch-wrapped nor functional, is no FakeTensor:
# the common case, answered without is_fake's walk over subclasses.
_PLAIN_TYPES = (Tensor, torch.nn.Parameter)


def _functorch_wrapped(t) -> bool:
    # Neither a wrapped tensor nor a FakeTensor can take part in the fast paths' in-place
    # writes into fresh buffers and slices, nor in data-dependent checks (has_values).
    return isinstance(t, Tensor) and _is_wrapped(t)


def _fake(t: Tensor) -> bool:
    if type(t) in _PLAIN_TYPES and not _is_functional(t) and not _is_wrapped(t):
        return False
    return is_fake(t)


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
    return not compiling() and t.device.type != "meta" and not _fake(unwrap(t))


def plain(*tensors) -> bool:
    """True when ``tensors`` are ordinary eager tensors: not traced by ``torch.compile``,
    not wrapped by a ``torch.func`` transform, not FakeTensors. Fast paths (in-place
    writes into fresh buffers, ``out=`` into slices, loops over blocks of rows) run only
    then."""
    if compiling():
        return False
    for t in tensors:
        # _fake's test inline, _is_wrapped asked once: this runs several times per loss call
        if isinstance(t, Tensor) and (_is_wrapped(t) or (
                (type(t) not in _PLAIN_TYPES or _is_functional(t)) and is_fake(t))):
            return False
    return True


def fast_path(*tensors) -> bool:
    """True in a backward nothing records: grad mode off (``create_graph=False``, the
    usual ``loss.backward()``) and :func:`plain` tensors. Otherwise the backward must
    run its differentiable form."""
    return not torch.is_grad_enabled() and plain(*tensors)


def _eager_arity(cls: type[Function]) -> int | None:
    """How many positional arguments ``cls.forward`` takes when binding them to its
    signature changes nothing (no defaults to fill, no keyword-only parameters): then
    :func:`apply` may skip ``Function.apply``'s binding. ``None`` otherwise."""
    params = inspect.signature(cls.forward).parameters.values()
    kinds = {p.kind for p in params}
    if kinds - {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD}:
        return None
    return len(params)


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
    # torch.autograd.Function.apply binds the arguments to forward's signature on every
    # call (inspect.signature: tens of microseconds, more than a tiny loss's arithmetic),
    # then, with no torch.func transform active, hands them to the C++ apply of
    # torch._C._FunctionBase. With every argument given there is nothing to bind: eager
    # calls go straight to that C++ apply (the same one, bound to cls).
    _EAGER[cls] = (super(Function, cls).apply, _eager_arity(cls))
    return cls


_EAGER: dict[type, tuple] = {}


def _unwrap_dead(args: tuple) -> tuple:
    """``unwrap_dead_wrappers(args)``, which rebuilds the tuple, only when an argument is
    wrapped at all (with no transform active, every wrapped tensor is a dead one): the
    common case costs a test per argument."""
    for a in args:
        if isinstance(a, Tensor) and _is_wrapped(a):
            return unwrap_dead_wrappers(args)
    return args


def apply(cls: type[Function], *args):
    """``cls.apply(*args)`` with autocast off for the arguments' device, as torch runs an
    op once its autocast wrapper has cast the arguments (the public function has done that
    already, :func:`lossutils._autocast.cast`); while ``torch.compile`` traces, the twin of
    ``cls`` without ``jvp``.

    In plain eager mode (no autocast, no ``torch.func`` transform, not compiling) it costs
    a dictionary lookup: the per-call work of ``Function.apply`` that changes nothing
    then (binding the arguments to ``forward``'s signature) is skipped."""
    if not compiling() and not _autocast_on() and not _transforms_active():
        eager, arity = _EAGER.get(cls, (None, None))
        if arity == len(args):
            # what Function.apply does before the C++ apply, less the binding: a tensor
            # wrapper left over from a finished transform is unwrapped
            return eager(*_unwrap_dead(args))
    with _autocast.disabled(*args):
        return cls.compile_safe_apply(*args)

