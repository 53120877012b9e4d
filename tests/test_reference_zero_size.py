"""The NumPy reference pairs on zero-size inputs, against torch.

Every pair of ``lossutils.reference`` (forward and ``_backward``) on empty
batches (N = 0), no classes (C = 0, where torch accepts it: every target
ignored, or probability targets) and extra dimensions of size 0, for every
reduction: the same shape and values as torch (an empty result, 0 for a sum,
nan for a mean over nothing), and torch's exception type where torch refuses.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossutils.reference as R
from strategies import REDUCTIONS


def _values(shape, seed=0):
    """Floats in (0.1, 0.9): valid probabilities, logits and targets alike."""
    return 0.1 + 0.8 * torch.rand(shape, generator=torch.Generator().manual_seed(seed),
                                  dtype=torch.float64)


def _classes(shape, value):
    return torch.full(shape, value, dtype=torch.long)


def _softmax_cases():
    shapes_dims = [((0,), 0), ((0, 5), 1), ((0, 5), 0), ((3, 0), 1), ((3, 0), 0), ((0, 0), 1),
                   ((2, 0, 3), 2), ((2, 0, 3), 0), ((2, 3, 0), -1), ((0,), None), ((3, 0), None),
                   ((2, 0, 3), None)]
    return [(name, _values(shape), (), {"dim": dim})
            for name in ("softmax", "log_softmax") for shape, dim in shapes_dims]


def _class_target_cases():
    """(input, target) layouts: empty batch, empty extra dim, no classes (all targets ignored,
    or counted ones, which torch refuses), and the 1-d input with no classes."""
    layouts = [((0, 4), _classes((0,), 0)), ((0, 4, 3), _classes((0, 3), 0)),
               ((2, 4, 0), _classes((2, 0), 0)), ((0, 0), _classes((0,), 0)),
               ((2, 0), _classes((2,), -100)), ((2, 0), _classes((2,), 0)),
               ((0,), torch.tensor(-100)), ((2, 0, 3), _classes((2, 3), -100)),
               ((2, 0, 3, 2), _classes((2, 3, 2), -100)),  # 4-d: torch's 2-d kernel takes it
               ((2, 0, 1, 1, 3), _classes((2, 1, 1, 3), -100)), ((0, 0, 3), _classes((0, 3), 0))]
    cases = []
    for name in ("nll_loss", "cross_entropy"):
        for (shape, target), reduction in itertools.product(layouts, REDUCTIONS):
            c = shape[0] if len(shape) == 1 else shape[1]
            for extra in ({}, {"weight": _values((c,), seed=1)}):
                cases.append((name, _values(shape), (target,), {"reduction": reduction, **extra}))
            if name == "cross_entropy":
                cases.append((name, _values(shape), (target,),
                              {"reduction": reduction, "label_smoothing": 0.1}))
    return cases


def _probability_target_cases():
    shapes = [(0, 4), (2, 0), (0, 0), (0, 4, 3), (2, 4, 0), (0,)]
    return [("cross_entropy", _values(shape), (_values(shape, seed=2),),
             {"reduction": reduction, **extra})
            for shape in shapes for reduction in REDUCTIONS
            for extra in ({}, {"label_smoothing": 0.2})]


PAIR_SHAPES = [((0,), (0,)), ((0, 3), (0, 3)), ((3, 0), (3, 0)), ((2, 0, 3), (2, 0, 3)),
               ((0,), (1,)), ((0, 3), (3,))]  # the last two: a broadcast (or refused) target


def _pointwise_cases():
    extras = {
        "l1_loss": [{}], "mse_loss": [{}], "huber_loss": [{}, {"delta": 0.5}],
        "smooth_l1_loss": [{}, {"beta": 0.0}],
        "binary_cross_entropy": [{}, {"weight": _values((3,))}],
        "binary_cross_entropy_with_logits": [{}, {"weight": _values((3,))},
                                             {"pos_weight": _values((3,))}],
        "kl_div": [{}, {"log_target": True}],
    }
    cases = []
    for name, options in extras.items():
        reductions = REDUCTIONS + (("batchmean",) if name == "kl_div" else ())
        for (shape, tshape), reduction, extra in (
                (s, r, e) for s in PAIR_SHAPES for r in reductions for e in options):
            if "weight" in extra or "pos_weight" in extra:
                if shape[-1:] != (3,):
                    continue  # the weights are per column of a (*, 3) input
            cases.append((name, _values(shape), (_values(tshape, seed=3),),
                          {"reduction": reduction, **extra}))
    return cases


CASES = (_softmax_cases() + _class_target_cases() + _probability_target_cases()
         + _pointwise_cases())


def _label(case) -> str:
    name, x, args, kwargs = case
    parts = [f"{k}={tuple(v.shape) if isinstance(v, torch.Tensor) else v}"
             for k, v in kwargs.items()]
    target = [tuple(a.shape) if a.dim() else f"t={a.item()}" for a in args]
    return f"{name}{tuple(x.shape)}{target}" + ",".join(parts)


def _numpy(value):
    return value.numpy() if isinstance(value, torch.Tensor) else value


def _torch(name, x, args, kwargs):
    """torch's value and gradient w.r.t. ``input`` (for a grad_output of ones), or its error."""
    x = x.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broadcast warning of the regression losses
        out = getattr(F, name)(x, *args, **kwargs)
    grad_output = torch.ones_like(out)
    (grad,) = torch.autograd.grad(out, x, grad_output, allow_unused=True)
    return out.detach().numpy(), grad_output.numpy(), (
        np.zeros(x.shape) if grad is None else grad.numpy())


@pytest.mark.parametrize("case", CASES, ids=[_label(c) for c in CASES])
def test_reference_on_zero_size_matches_torch(case):
    name, x, args, kwargs = case
    assert 0 in x.shape or any(0 in a.shape for a in args)
    np_args = [_numpy(a) for a in args]
    np_kwargs = {k: _numpy(v) for k, v in kwargs.items()}
    forward, backward = getattr(R, name), getattr(R, f"{name}_backward")
    try:
        out, grad_output, grad = _torch(name, x, args, kwargs)
    except Exception as err:  # torch refuses: the reference raises the same type
        with pytest.raises(type(err)):
            forward(x.numpy(), *np_args, **np_kwargs)
        return
    with warnings.catch_warnings():
        # ATen's eps / C with C = 0 is inf, and 0 * inf the nan torch returns
        warnings.simplefilter("ignore", RuntimeWarning)
        value = np.asarray(forward(x.numpy(), *np_args, **np_kwargs))
        ref_grad = np.asarray(backward(grad_output, x.numpy(), *np_args, **np_kwargs))
    assert value.shape == out.shape
    np.testing.assert_allclose(value, out, rtol=1e-12, atol=1e-12)  # nan where torch has nan
    assert ref_grad.shape == grad.shape == tuple(x.shape)
    np.testing.assert_allclose(ref_grad, grad, rtol=1e-12, atol=1e-12)


def test_the_table_covers_every_reference_pair_and_each_outcome():
    """Every forward of lossutils.reference has zero-size cases here, and the table reaches an
    empty result, a zero sum, a nan mean and a refusal (so each outcome is tested)."""
    forwards = {n for n in R.__all__ if not n.endswith("_backward")}
    assert forwards == {c[0] for c in CASES}
    outcomes = set()
    for name, x, args, kwargs in CASES:
        try:
            out = _torch(name, x, args, kwargs)[0]
        except Exception:
            outcomes.add("error")
            continue
        outcomes.add("empty" if out.size == 0 else "nan" if np.isnan(out).all() else
                     "zero" if (out == 0).all() else "other")
    assert {"empty", "nan", "zero", "error"} <= outcomes
