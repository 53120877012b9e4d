"""What lossutils does differently on the torch releases it supports (2.13 and later).

lossutils is exact to the torch it runs with. Where torch changed a
behaviour between releases, the switch lives here, once, named for what
changed, so a loss file asks a question instead of comparing versions.
"""

from __future__ import annotations

import torch
from torch import Tensor

# torch 2.14 (pytorch/pytorch#191142): scalar-bound clamp / clamp_min / clamp_max
# pass no gradient at the bound (the minimum-norm subgradient, as relu does);
# 2.13 passed it (subgradient 1).
CLAMP_BOUNDARY_PASSES_GRADIENT = torch.__version__ < (2, 14)

# torch 2.14: linear_cross_entropy's chunked path also takes probability
# targets (reduction 'mean'/'sum', target dtype == input dtype, no grad on target).
CHUNKED_PROBABILITY_TARGETS = torch.__version__ >= (2, 14)


def hinge_active(u: Tensor, fast: bool = False) -> Tensor:
    """Where ``u.clamp_min(0)`` passes its gradient: 1 there, 0 elsewhere (NaN included),
    in ``u``'s dtype.

    ``u >= 0`` on torch 2.13, ``u > 0`` from torch 2.14. ``fast`` (plain eager tensors
    only, see :func:`lossutils._autograd.plain`): the comparison writes its 0s and 1s
    straight into a tensor of ``u``'s dtype, without a bool tensor in between (on CPU, a
    bool tensor and its conversion cost several times a float pass).

    >>> hinge_active(torch.tensor([-1.0, 2.0, float("nan")]))
    tensor([0., 1., 0.])
    """
    compare = torch.ge if CLAMP_BOUNDARY_PASSES_GRADIENT else torch.gt
    if fast:
        return compare(u, 0, out=torch.empty_like(u))
    return compare(u, 0).to(u.dtype)
