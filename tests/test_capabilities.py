"""Second derivatives, torch.func, autocast and half precision, against torch.

Driven by the one case table (``tests/cases``): for every case whose
``capabilities`` name them (a family turns them on with its ``CAPABILITIES``
constant) and every option set, each check in ``CAPABILITY_CHECKS``:

- ``gradgradcheck``: lossutils' second derivative against finite differences
  (float64, fast mode: a random projection);
- ``second``: double backward of a random projection against torch's, and the
  first derivative recorded (``create_graph=True``, the differentiable backward)
  equal to the plain one (the fast backward);
- ``grad``, ``vmap``, ``jacrev``, ``jacfwd``, ``hessian``: ``torch.func``
  against torch (``vmap`` over a batch of 3 samples of every tensor argument);
- ``autocast:<dtype>``: under ``torch.autocast("cpu", dtype)``, arguments as
  drawn (float32) and cast to the dtype: output and gradient dtypes equal
  torch's, values by the error rule below;
- ``half:<dtype>``: every argument in float16 / bfloat16: dtypes equal torch's,
  values by the error rule;
- ``compile:<backend>``: ``torch.compile(fullgraph=True, backend=...)`` of the
  loss: no graph break, value and gradients equal eager lossutils' and torch's.

The error rule (:func:`assert_within_twice_torch`): against the float64 result
of torch for the same (rounded) argument values, lossutils' largest error is at
most twice torch's plus two units in the last place of the result's dtype at
the result's largest magnitude; it is non-finite only where torch is.

Each test runs on hypothesis' second example: its first is the simplest
possible input (one element, one class), which would check almost nothing.
Where torch itself cannot run a check, the case's ``torch_cannot`` says why:
the test then asserts that torch raises and lossutils raises the same type.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossutils.functional as LF
from cases import CAPABILITY_CHECKS, CASES, Case
from strategies import Draw, batch_of, cast_floating
from test_losses import TOL64, _label

F64, F32 = torch.float64, torch.float32


def _checks_for(case: Case) -> list[str]:
    """The checks a case runs, from its capabilities and the dtypes it is drawn in."""
    needs_grad = {"gradgradcheck", "second", "grad", "jacrev", "jacfwd", "hessian",
                  "compile:eager", "compile:aot_eager"}
    out = []
    for capability in sorted(case.capabilities):
        for check in CAPABILITY_CHECKS[capability]:
            if check in needs_grad and not (case.grad and F64 in case.dtypes):
                continue  # nothing to differentiate, or not drawn in float64 (dtype= casts)
            if check.startswith("autocast") and F32 not in case.dtypes:
                continue  # integer or complex arguments: nothing autocast could cast
            if check.startswith("half") and not {F64, F32} <= set(case.dtypes):
                continue  # a case drawn in fixed dtypes on purpose (mixed dtypes)
            out.append(check)
    return out


PARAMS = [pytest.param(case, options, check, id=f"{check}-{_label(case, options)}")
          for case in CASES for options in case.options for check in _checks_for(case)]


def _second_example(check):
    """Run ``check(data)`` on hypothesis' second example (and on any replay while it
    shrinks a failure): the first is the simplest input there is. Both draw the sample."""
    calls = itertools.count()

    @settings(max_examples=2)
    @given(data=st.data())
    def test(data):
        first = next(calls) == 0
        check(data, skip=first)

    test()


def _flatten(tree) -> list:
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _flatten(item)]
    return [tree]


def _slots(case: Case, args, kwargs) -> list:
    """The keys (positions, keyword names) of the floating-point tensors to differentiate."""
    def value(k):
        return args[k] if isinstance(k, int) else kwargs.get(k)
    return [k for k in case.grad
            if isinstance(value(k), torch.Tensor) and value(k).is_floating_point()]


def _bind(lib, case: Case, options, args, kwargs, keys):
    """``f(*tensors)``: the loss of ``lib`` with the tensors at ``keys`` replaced."""
    def f(*tensors):
        if case.gradcheck_input is not None:
            tensors = case.gradcheck_input(*tensors)
        a, k = list(args), dict(kwargs)
        for key, t in zip(keys, tensors, strict=True):
            if isinstance(key, int):
                a[key] = t
            else:
                k[key] = t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(lib, case.name)(*a, **k, **options)
    return f


def _tensor_keys(args, kwargs) -> list:
    return ([i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
            + [k for k, v in kwargs.items() if isinstance(v, torch.Tensor)])


def _projection(like: torch.Tensor, seed: int, dtype=None) -> torch.Tensor:
    """A fixed random tensor of ``like``'s shape (drawn in float64, then cast)."""
    g = torch.randn(like.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return g.to(dtype or like.dtype)


def _expect(case: Case, check: str, ours, theirs):
    """Run ``theirs()`` and ``ours()``; where torch cannot (``case.torch_cannot``), assert
    that both raise the same type and return None."""
    if check in case.torch_cannot:
        with pytest.raises(Exception) as raised:
            theirs()
        with pytest.raises(type(raised.value)):
            ours()
        return None
    return ours(), theirs()


def _assert_trees_close(ours, theirs, **tol):
    ours, theirs = _flatten(ours), _flatten(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, ((a.dtype, a.shape), (b.dtype, b.shape))
        torch.testing.assert_close(a, b, equal_nan=True, **tol)


# ------------------------------------------------------------------ second derivatives


def _double_backward(f, xs):
    """Output, first derivatives of a projection (recorded), and the second derivatives
    of a projection of those."""
    xs = [x.detach().clone().requires_grad_() for x in xs]
    out = f(*xs)
    firsts = torch.autograd.grad(out, xs, _projection(out, 0), create_graph=True,
                                 allow_unused=True)
    firsts = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, firsts, strict=True)]
    recorded = [(g * _projection(g, i + 1)).sum() for i, g in enumerate(firsts)
                if g.requires_grad]
    seconds = [None] * len(xs)
    if recorded:
        seconds = torch.autograd.grad(sum(recorded), xs, allow_unused=True)
    seconds = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, seconds, strict=True)]
    return out, firsts, seconds


def _check_second(case, options, args, kwargs, check):
    keys = _slots(case, args, kwargs)
    xs = [args[k] if isinstance(k, int) else kwargs[k] for k in keys]
    ours_f, torch_f = (_bind(lib, case, options, args, kwargs, keys) for lib in (LF, F))
    if check == "gradgradcheck":
        def run(f):
            inputs = [x.detach().clone().requires_grad_() for x in xs]
            return torch.autograd.gradgradcheck(f, inputs, fast_mode=True)

        if check in case.torch_cannot:  # both raise, the same type
            _expect(case, check, lambda: run(ours_f), lambda: run(torch_f))
        else:
            assert run(ours_f)
        return
    result = _expect(case, check, lambda: _double_backward(ours_f, xs),
                     lambda: _double_backward(torch_f, xs))
    if result is None:
        return
    (out, firsts, seconds), (out_t, firsts_t, seconds_t) = result
    _assert_trees_close((out, firsts, seconds), (out_t, firsts_t, seconds_t), **TOL64)
    # the differentiable backward (recorded above) and the fast one give the same numbers
    plain = [x.detach().clone().requires_grad_() for x in xs]
    fast = torch.autograd.grad(ours_f(*plain), plain, _projection(out, 0), allow_unused=True)
    for g, p in zip(firsts, fast, strict=True):
        torch.testing.assert_close(g.detach(), torch.zeros_like(g) if p is None else p,
                                   rtol=1e-12, atol=1e-14, equal_nan=True)


# ------------------------------------------------------------------ torch.func


def _transform(check, f, xs, out_like):
    argnums, projection = tuple(range(len(xs))), _projection(out_like, 0)

    def projected(*t):
        return (f(*t) * projection).sum()

    if check == "grad":
        return torch.func.grad(projected, argnums=argnums)(*xs)
    if check == "hessian":
        return torch.func.hessian(projected, argnums=argnums)(*xs)
    return getattr(torch.func, check)(f, argnums=argnums)(*xs)


def _check_func(case, options, args, kwargs, check):
    if check == "vmap":
        keys = _tensor_keys(args, kwargs)
        batched = [batch_of(args[k] if isinstance(k, int) else kwargs[k]) for k in keys]
        fs = [_bind(lib, case, {**options}, args, kwargs, keys) for lib in (LF, F)]
        result = _expect(case, check, lambda: torch.func.vmap(fs[0])(*batched),
                         lambda: torch.func.vmap(fs[1])(*batched))
    else:
        keys = _slots(case, args, kwargs)
        xs = [args[k] if isinstance(k, int) else kwargs[k] for k in keys]
        fs = [_bind(lib, case, options, args, kwargs, keys) for lib in (LF, F)]
        out_like = fs[1](*xs)
        result = _expect(case, check, lambda: _transform(check, fs[0], xs, out_like),
                         lambda: _transform(check, fs[1], xs, out_like))
    if result is not None:
        _assert_trees_close(*result, **TOL64)


# ------------------------------------------------------------------ torch.compile


def _check_compile(case, options, args, kwargs, check):
    backend = check.split(":")[1]
    keys = _slots(case, args, kwargs)
    torch._dynamo.reset()
    compiled = torch.compile(lambda *a, **k: getattr(LF, case.name)(*a, **k, **options),
                             fullgraph=True, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, projection = _run(compiled, args, kwargs, keys)
        eager, _ = _run(lambda *a, **k: getattr(LF, case.name)(*a, **k, **options), args, kwargs,
                        keys, projection)
        want, _ = _run(lambda *a, **k: getattr(F, case.name)(*a, **k, **options), args, kwargs,
                       keys, projection)
    _assert_trees_close(got, eager, **TOL64)
    _assert_trees_close(got, want, **TOL64)


# ------------------------------------------------------------------ autocast and half precision


def _run(fn, args, kwargs, keys, projection=None):
    """Output and the gradients of ``<output, projection>`` w.r.t. the tensors at ``keys``;
    the projection is drawn in float64 and cast to the output's dtype unless given."""
    leaves = {k: (args[k] if isinstance(k, int) else kwargs[k]).detach().clone().requires_grad_()
              for k in keys}
    a = [leaves.get(i, x) for i, x in enumerate(args)]
    k = {key: leaves.get(key, v) for key, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(*a, **k)
    projection = _projection(out, 0, out.dtype) if projection is None else projection
    grads = []
    if leaves and out.requires_grad:
        grads = torch.autograd.grad(out, list(leaves.values()), projection, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g
                 for x, g in zip(leaves.values(), grads, strict=True)]
    return [out.detach(), *grads], projection


def assert_within_twice_torch(ours: torch.Tensor, theirs: torch.Tensor, exact: torch.Tensor):
    """lossutils' largest error against ``exact`` (float64) is at most twice torch's plus
    2 ulp of the result's dtype at its largest magnitude; non-finite only where torch is."""
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape)
    o, t, r = ours.double(), theirs.double(), exact.double()
    finite = r.isfinite()
    assert not (finite & ~o.isfinite() & t.isfinite()).any(), "non-finite where torch is not"
    assert torch.equal(o.isfinite()[~finite], t.isfinite()[~finite])
    both = finite & o.isfinite() & t.isfinite()
    if not both.any():
        return
    err_ours, err_torch = (o - r)[both].abs().max(), (t - r)[both].abs().max()
    floor = 2 * torch.finfo(ours.dtype).eps * r[both].abs().max()
    assert err_ours <= 2 * err_torch + floor, (
        f"lossutils error {err_ours:.3g} > 2 x torch's {err_torch:.3g} + {floor:.3g}")


def _check_precision(case, options, args, kwargs, check):
    kind, name = check.split(":")
    low = getattr(torch, name)
    keys = _slots(case, args, kwargs) if F64 in case.dtypes else []
    variants = [cast_floating((args, kwargs), low)]
    if kind == "autocast":
        variants.insert(0, (args, kwargs))  # float32 arguments under autocast, then low ones

    def lib_fn(lib):
        return lambda *a, **k: getattr(lib, case.name)(*a, **k, **options)

    for a, k in variants:
        def ours(a=a, k=k):
            with torch.autocast("cpu", dtype=low, enabled=kind == "autocast"):
                return _run(lib_fn(LF), a, k, keys)

        def theirs(a=a, k=k):
            with torch.autocast("cpu", dtype=low, enabled=kind == "autocast"):
                return _run(lib_fn(F), a, k, keys)

        result = _expect(case, check, ours, theirs)
        if result is None:
            continue
        (got, _), (want, projection) = result
        exact, _ = _run(lib_fn(F), *cast_floating((a, k), F64), keys, projection.double())
        assert len(got) == len(want) == len(exact)
        for o, t, r in zip(got, want, exact, strict=True):
            assert_within_twice_torch(o, t, r)


def _draw_dtype(case: Case, check: str) -> torch.dtype:
    """float64 to cast to a half dtype and for derivatives; float32 under autocast."""
    if check.startswith("half"):
        return F64
    if check.startswith("autocast"):
        return F32
    return F64 if F64 in case.dtypes else case.dtypes[0]


@pytest.mark.parametrize("case, options, check", PARAMS)
def test_capability_matches_torch(case: Case, options, check):
    def run(data, skip):
        args, kwargs = case.sample(Draw(data, _draw_dtype(case, check)), options)
        if skip:
            return
        if check in CAPABILITY_CHECKS["second"]:
            _check_second(case, options, args, kwargs, check)
        elif check in CAPABILITY_CHECKS["func"]:
            _check_func(case, options, args, kwargs, check)
        elif check in CAPABILITY_CHECKS["compile"]:
            _check_compile(case, options, args, kwargs, check)
        else:
            _check_precision(case, options, args, kwargs, check)

    _second_example(run)


def test_float16_rows_past_65504_elements_stay_finite():
    """A deliberate difference (README, Known differences): torch's CPU float16
    log-softmax along the last dim sums in float16, and a row of 70,000 equal logits
    gives -inf (so does cross_entropy); lossutils sums in float32, like torch's softmax."""
    x = torch.zeros(2, 70_000, dtype=torch.float16)
    exact = -torch.log(torch.tensor(70_000.0, dtype=F64))
    assert torch.isinf(F.log_softmax(x, 1)).all()  # when torch fixes it, drop the README line
    torch.testing.assert_close(LF.log_softmax(x, 1), torch.full_like(x, exact.item()))
    y = torch.zeros(2, dtype=torch.long)
    torch.testing.assert_close(LF.cross_entropy(x, y), (-exact).to(torch.float16))
