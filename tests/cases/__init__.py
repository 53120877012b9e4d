"""The one case table: a record per loss drives every parity check.

``tests/test_losses.py`` runs, for each :class:`Case` and each option set in
``case.options``: values and gradients (w.r.t. every floating-point tensor
argument listed in ``grad``) against torch in float64 and float32 over
hypothesis-drawn inputs, the module class against torch's, ``gradcheck`` of
lossutils in float64, and -- for cases with ``reference=True`` -- the NumPy
reference forward against torch and its backward against central
differences. Rejections and extreme inputs have their own tables.

``tests/test_capabilities.py`` runs, for the option sets of every case whose
``capabilities`` name them: second derivatives (``gradgradcheck`` and double
backward against torch), every ``torch.func`` transform, CPU autocast and
float16/bfloat16 against torch and a float64 reference, and (``COMPILE``, for
the records that ask) ``torch.compile(fullgraph=True)``. A family turns them on
for all its records with a module constant ``CAPABILITIES = ALL_CAPABILITIES``;
a family without it (not converted yet) gets none of these tests.

Each family of losses keeps its records in its own file here; this module
only concatenates them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch

Sample = tuple[tuple, dict]  # (positional args, tensor keyword args)


@dataclass(frozen=True)
class Case:
    """How to test one loss (or softmax-family function) against torch.

    name: the function's name in ``torch.nn.functional`` and ``lossutils.functional``.
    sample: ``sample(draw, options) -> (args, kwargs)``; ``draw`` is a
        ``strategies.Draw`` (seeded tensors in the working dtype + ``draw(strategy)``).
        ``kwargs`` holds tensor keyword arguments such as ``weight``; the option
        set is passed too so a sample can depend on it.
    options: the option sets (keyword arguments) to test; each is a separate test.
    module: torch.nn class name, or None. It is built as ``Module(**kwargs, **options)``
        and called on ``args``; ``module_options`` renames or drops options
        that the constructor spells differently (a callable ``options -> ctor kwargs``).
    grad: indices of positional args and names of kwargs to differentiate.
    reference: whether ``lossutils.reference.<name>`` / ``<name>_backward`` exist.
    function: the output's ``grad_fn`` must come from a lossutils ``Function``.
    examples: hypothesis examples per (option set, dtype).
    rtol/atol: float32 tolerances (float64 uses 1e-7 / 1e-10 relative/absolute).
    gradcheck_input: see below.
    """

    name: str
    sample: Callable
    options: Sequence[Mapping] = ({},)
    module: str | None = None
    module_options: Callable[[Mapping], Mapping] | None = None
    grad: tuple = (0,)
    reference: bool = False
    function: bool = True
    examples: int = 8
    rtol: float = 1.3e-6
    atol: float = 1e-5
    dtypes: tuple = (torch.float64, torch.float32)
    id_options: Callable[[Mapping], str] | None = None
    # gradcheck differentiates loss(*gradcheck_input(*tensors)) when the loss's
    # gradient is defined for a transformed input (CTC: log-normalised log_probs).
    gradcheck_input: Callable | None = None
    # Which capability tests run (see CAPABILITY_CHECKS); None: the family's CAPABILITIES.
    capabilities: frozenset | None = None
    # check -> why torch itself cannot do it (its test then asserts that torch raises and
    # that lossutils raises the same exception type). Checks: see CAPABILITY_CHECKS.
    torch_cannot: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """An input torch rejects: lossutils must raise the same exception type.

    ``build()`` returns (args, kwargs) for ``name``; ``match`` is a regex the
    lossutils message must contain (the argument's name and the shapes or
    values, stated clearly). ``module``: also check the module class with
    ``module_kwargs``.
    """

    name: str
    build: Callable[[], Sample]
    match: str
    id: str
    module: str | None = None
    module_kwargs: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Extreme:
    """A fixed, numerically hard input: values and gradients must equal torch's,
    nan and inf included (finite where torch's are finite)."""

    name: str
    build: Callable[[], Sample]
    id: str
    options: Mapping = field(default_factory=dict)
    grad: tuple = (0,)
    rtol: float = 1e-6
    atol: float = 1e-8


# The capabilities a case record can turn on, and the checks each one runs.
CAPABILITY_CHECKS = {
    "second": ("gradgradcheck", "second"),  # gradgradcheck; double backward against torch
    "func": ("grad", "vmap", "jacrev", "jacfwd", "hessian"),  # torch.func against torch
    "autocast": ("autocast:bfloat16", "autocast:float16"),  # under torch.autocast("cpu")
    "half": ("half:float16", "half:bfloat16"),  # the dtypes against torch and float64
    # torch.compile(fullgraph=True): no graph break, same values and gradients. Costly (a
    # compilation per test): named by the records that need it, not by ALL_CAPABILITIES.
    "compile": ("compile:eager", "compile:aot_eager"),
}
ALL_CAPABILITIES = frozenset(CAPABILITY_CHECKS) - {"compile"}
COMPILE = ALL_CAPABILITIES | {"compile"}

from . import binary, ctc, linear_cross_entropy, margin, probabilistic, regression, softmax_ce  # noqa: E402

_FAMILIES = (softmax_ce, regression, binary, probabilistic, margin, ctc, linear_cross_entropy)


def _with_family_capabilities(case: Case, family) -> Case:
    if case.capabilities is not None:
        return case
    return replace(case, capabilities=frozenset(getattr(family, "CAPABILITIES", ())))


CASES: list[Case] = [_with_family_capabilities(c, f) for f in _FAMILIES
                     for c in getattr(f, "CASES", [])]
REJECTIONS: list[Rejection] = [r for f in _FAMILIES for r in getattr(f, "REJECTIONS", [])]
EXTREMES: list[Extreme] = [e for f in _FAMILIES for e in getattr(f, "EXTREMES", [])]
