"""Every loss against torch, driven by the one case table in ``tests/cases``.

For each case and option set: values and gradients against torch in float64
(tight) and float32 (ordinary tolerances) over hypothesis-drawn inputs; the
module class against torch's; ``gradcheck`` of lossutils in float64; the NumPy
reference against torch and central differences. Then every rejection and
every extreme input in the other two tables.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossutils.functional as LF
import lossutils.nn as LN
import lossutils.reference as R
from cases import CASES, EXTREMES, REJECTIONS, Case
from strategies import Draw

TOL64 = dict(rtol=1e-7, atol=1e-10)


def _ident(options) -> str:
    def short(v):
        if callable(v):
            return getattr(v, "__name__", type(v).__name__)
        if isinstance(v, torch.Tensor):
            return f"tensor{tuple(v.shape)}"
        return repr(v)

    return ",".join(f"{k}={short(v)}" for k, v in options.items()) or "defaults"


def _label(case: Case, options) -> str:
    label = case.id_options(options) if case.id_options else _ident(options)
    return f"{case.name}[{label}]"


PARAMS = [pytest.param(case, options, id=_label(case, options))
          for case in CASES for options in case.options]
# Each option set in the dtypes its case is run for (a case drawn in one dtype on purpose,
# e.g. mixed float32/float64 arguments, is not generated for the other).
DTYPE_IDS = {torch.float64: "f64", torch.float32: "f32"}
TYPED_PARAMS = [pytest.param(case, options, dtype, id=f"{DTYPE_IDS[dtype]}-{_label(case, options)}")
                for dtype in DTYPE_IDS for case in CASES for options in case.options
                if dtype in case.dtypes]
# Gradient tests need something to differentiate: cases without a differentiable
# argument (integer and complex inputs, a mix torch cannot differentiate) are left out.
GRADIENT_PARAMS = [p for p in PARAMS if p.values[0].grad]


def _copy(args, kwargs, grad):
    """Fresh leaves for one run; the ones in ``grad`` require grad."""

    def leaf(x, key):
        if not isinstance(x, torch.Tensor):
            return x
        x = x.detach().clone()
        return x.requires_grad_(key in grad and x.is_floating_point())

    args = [leaf(a, i) for i, a in enumerate(args)]
    kwargs = {k: leaf(v, k) for k, v in kwargs.items()}
    wrt = [args[k] if isinstance(k, int) else kwargs[k] for k in grad]
    return args, kwargs, [t for t in wrt if isinstance(t, torch.Tensor) and t.requires_grad]


def run(fn, args, kwargs, grad, grad_seed=0):
    """Call ``fn``; return (output, gradients of a random projection, warnings)."""
    args, kwargs, wrt = _copy(args, kwargs, grad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
        grads = []
        if out.requires_grad:
            g = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed),
                            dtype=out.dtype)
            grads = torch.autograd.grad(out, wrt, g, allow_unused=True)
            grads = [torch.zeros_like(t) if d is None else d
                     for t, d in zip(wrt, grads, strict=True)]
    return out, grads, sorted({str(w.message) for w in caught})


def assert_same(ours, theirs, rtol, atol):
    out, grads, warns = ours
    out_t, grads_t, warns_t = theirs
    got, want = (out.dtype, out.shape), (out_t.dtype, out_t.shape)
    assert got == want, (got, want)
    torch.testing.assert_close(out, out_t, rtol=rtol, atol=atol, equal_nan=True)
    assert len(grads) == len(grads_t)
    for g, g_t in zip(grads, grads_t, strict=True):
        torch.testing.assert_close(g, g_t, rtol=rtol, atol=atol, equal_nan=True)
    assert warns == warns_t


def _tolerance(case: Case, dtype):
    return TOL64 if dtype == torch.float64 else dict(rtol=case.rtol, atol=case.atol)


def _is_lossutils_node(out):
    node = out.grad_fn
    function = getattr(type(node), "_forward_cls", type(None))
    return node is not None and function.__module__.startswith("lossutils")


@pytest.mark.parametrize("case, options, dtype", TYPED_PARAMS)
def test_functional_matches_torch(case: Case, options, dtype):
    @settings(max_examples=case.examples)
    @given(data=st.data())
    def check(data):
        args, kwargs = case.sample(Draw(data, dtype), options)
        ours = run(lambda *a, **k: getattr(LF, case.name)(*a, **k, **options), args, kwargs,
                   case.grad)
        theirs = run(lambda *a, **k: getattr(F, case.name)(*a, **k, **options), args, kwargs,
                     case.grad)
        assert_same(ours, theirs, **_tolerance(case, dtype))
        if case.function and ours[0].requires_grad:
            assert _is_lossutils_node(ours[0]), f"{case.name}: output not from a lossutils Function"

    check()


@pytest.mark.parametrize("case, options", [p for p in PARAMS if p.values[0].module])
def test_module_matches_torch(case: Case, options):
    ctor_options = case.module_options(options) if case.module_options else options
    # tensor kwargs (weight, pos_weight) are constructor arguments of the module

    @settings(max_examples=3)
    @given(data=st.data())
    def check(data):
        args, kwargs = case.sample(Draw(data, torch.float64), options)
        with warnings.catch_warnings():
            # legacy-flag warnings are compared in the functional test
            warnings.simplefilter("ignore")
            ours_mod = getattr(LN, case.module)(**kwargs, **ctor_options)
            theirs_mod = getattr(torch.nn, case.module)(**kwargs, **ctor_options)
        assert isinstance(ours_mod, LN._Loss) or case.name in ("softmax", "log_softmax")
        assert not isinstance(ours_mod, torch.nn.modules.loss._Loss)
        assert list(ours_mod.state_dict()) == list(theirs_mod.state_dict())
        assert repr(ours_mod) == repr(theirs_mod)
        # tensor kwargs (weight, ...) live in the module as buffers: differentiate the
        # positional args
        grad = tuple(k for k in case.grad if isinstance(k, int))
        ours = run(ours_mod, args, {}, grad)
        theirs = run(theirs_mod, args, {}, grad)
        assert_same(ours, theirs, **TOL64)

    check()


@pytest.mark.parametrize("case, options", GRADIENT_PARAMS)
def test_gradcheck(case: Case, options):
    @settings(max_examples=2)
    @given(data=st.data())
    def check(data):
        args, kwargs = case.sample(Draw(data, torch.float64), options)
        args, kwargs, wrt = _copy(args, kwargs, case.grad)
        assert wrt, f"{case.name}: nothing to differentiate among {case.grad}"
        slots = [i for i, a in enumerate(args) if a is not None and any(a is w for w in wrt)]
        keys = [k for k, v in kwargs.items() if any(v is w for w in wrt)]

        def f(*tensors):
            if case.gradcheck_input is not None:
                tensors = case.gradcheck_input(*tensors)
            a, k = list(args), dict(kwargs)
            for i, t in zip(slots, tensors[:len(slots)], strict=True):
                a[i] = t
            for key, t in zip(keys, tensors[len(slots):], strict=True):
                k[key] = t
            return getattr(LF, case.name)(*a, **k, **options)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert torch.autograd.gradcheck(f, [args[i] for i in slots] + [kwargs[k] for k in keys])

    check()


def _numpy(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x


def _central_differences(f, x, grad_output, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = np.sum(grad_output * (f(up) - f(down))) / (2 * h)
    return g


REFERENCE = [p for p in PARAMS if p.values[0].reference
             and not {"size_average", "reduce"} & set(p.values[1])]


@pytest.mark.parametrize("case, options", REFERENCE)
def test_reference_matches_torch_and_central_differences(case: Case, options):
    @settings(max_examples=4)
    @given(data=st.data())
    def check(data):
        args, kwargs = case.sample(Draw(data, torch.float64), options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out_t, (g_t, *_), _ = run(lambda *a, **k: getattr(F, case.name)(*a, **k, **options),
                                      args, kwargs, (0,))
        np_args = [_numpy(a) for a in args]
        np_kwargs = {k: _numpy(v) for k, v in {**kwargs, **options}.items()}
        forward = getattr(R, case.name)
        backward = getattr(R, f"{case.name}_backward")
        value = forward(*np_args, **np_kwargs)
        np.testing.assert_allclose(value, out_t.detach().numpy(), rtol=1e-7, atol=1e-10)
        grad_output = torch.randn(out_t.shape, generator=torch.Generator().manual_seed(0),
                                  dtype=torch.float64).numpy()
        grad = backward(grad_output, *np_args, **np_kwargs)
        assert grad.shape == np_args[0].shape
        np.testing.assert_allclose(grad, g_t.numpy(), rtol=1e-7, atol=1e-10)
        numeric = _central_differences(lambda x: forward(x, *np_args[1:], **np_kwargs), np_args[0],
                                       grad_output)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)

    check()


@pytest.mark.parametrize("rejection", REJECTIONS, ids=[f"{r.name}[{r.id}]" for r in REJECTIONS])
def test_rejects_what_torch_rejects(rejection):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args, kwargs = rejection.build()
        with pytest.raises(Exception) as theirs:
            getattr(F, rejection.name)(*args, **kwargs)
        args, kwargs = rejection.build()
        with pytest.raises(type(theirs.value), match=rejection.match):
            getattr(LF, rejection.name)(*args, **kwargs)
        if rejection.module:
            args, _ = rejection.build()
            with pytest.raises(Exception) as theirs:
                getattr(torch.nn, rejection.module)(**rejection.module_kwargs)(*args)
            args, _ = rejection.build()
            with pytest.raises(type(theirs.value), match=rejection.match):
                getattr(LN, rejection.module)(**rejection.module_kwargs)(*args)


@pytest.mark.parametrize("extreme", EXTREMES, ids=[f"{e.name}[{e.id}]" for e in EXTREMES])
def test_extreme_inputs_match_torch(extreme):
    args, kwargs = extreme.build()
    ours = run(lambda *a, **k: getattr(LF, extreme.name)(*a, **k, **extreme.options), args, kwargs,
               extreme.grad)
    theirs = run(lambda *a, **k: getattr(F, extreme.name)(*a, **k, **extreme.options), args, kwargs,
                 extreme.grad)
    for a, b in zip([ours[0], *ours[1]], [theirs[0], *theirs[1]], strict=True):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b)), (a, b)
    assert_same(ours, theirs, rtol=extreme.rtol, atol=extreme.atol)


