"""Data-dependent input checks under torch.func transforms and torch.compile.

A class index out of range is found by looking at the values: under ``vmap``
lossutils reads them beneath the batch wrapper (every sample at once) and
raises torch's ``IndexError``; while ``torch.compile`` traces, the check becomes
an assertion in the graph (no graph break) that raises when the graph runs.
A probability outside [0, 1] (binary_cross_entropy) is found the same way.
"""

from __future__ import annotations

import pytest
import torch

import lossutils.functional as LF


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_vmap_checks_every_sample_once(name):
    x = torch.randn(3, 4, 5)
    good = torch.randint(0, 5, (3, 4))
    assert torch.func.vmap(getattr(LF, name))(x, good).shape == (3,)
    bad = good.clone()
    bad[2, 1] = 7  # the third sample only
    with pytest.raises(IndexError, match=r"Target 7 is out of bounds.*\[0, 4\]"):
        torch.func.vmap(getattr(LF, name))(x, bad)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_compiled_check_asserts_in_the_graph(name):
    torch._dynamo.reset()
    loss = torch.compile(getattr(LF, name), fullgraph=True, backend="aot_eager")
    x = torch.randn(4, 5, requires_grad=True)
    assert loss(x, torch.tensor([0, 1, 4, -100])).requires_grad
    with pytest.raises(RuntimeError, match=rf"{name}: a class index is out of bounds \[0, 4\]"):
        loss(x, torch.tensor([0, 1, 5, 2]))


def test_vmap_checks_every_probability_once():
    x, y = torch.rand(3, 4, 5) * 0.9, torch.rand(3, 4, 5)
    assert torch.func.vmap(LF.binary_cross_entropy)(x, y).shape == (3,)
    bad = y.clone()
    bad[2, 1, 3] = 1.5  # the third sample only
    with pytest.raises(RuntimeError, match=r"all elements of target should be between 0 and 1, "
                                           r"got 1.5 in target"):
        torch.func.vmap(LF.binary_cross_entropy)(x, bad)


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compiled_probability_check_asserts_in_the_graph(backend):
    torch._dynamo.reset()
    loss = torch.compile(LF.binary_cross_entropy, fullgraph=True, backend=backend)
    x = (torch.rand(4, 5) * 0.9).requires_grad_()
    assert loss(x, torch.rand(4, 5)).requires_grad
    with pytest.raises(RuntimeError, match=r"all elements of input should be between 0 and 1"):
        loss(x.detach() + 1, torch.rand(4, 5))
    with pytest.raises(RuntimeError, match=r"all elements of target should be between 0 and 1"):
        loss(x, torch.full((4, 5), float("nan")))



def test_a_tensor_left_over_from_a_finished_transform_is_unwrapped():
    # lossutils._autograd.apply unwraps it as Function.apply does, testing first whether any
    # argument is wrapped at all; the loss of its values is torch's
    from lossutils._autograd import _unwrap_dead

    leaked = []

    def f(x):
        leaked.append(x)
        return (x * x).sum()

    x, target = torch.randn(3, 4), torch.randn(3, 4)
    torch.func.grad(f)(x)
    dead = leaked[0]
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    assert wrapped(dead)
    args = (target, dead, None, "mean")
    unwrapped = _unwrap_dead(args)
    assert unwrapped[0] is target and not wrapped(unwrapped[1]) and unwrapped[2:] == (None, "mean")
    plain_args = (x, target, None, "mean")
    assert _unwrap_dead(plain_args) is plain_args  # nothing wrapped: the tuple as it is
    torch.testing.assert_close(LF.huber_loss(dead, target),
                               torch.nn.functional.huber_loss(x, target), rtol=1e-6, atol=0)
