r"""The logistic sigmoid and its logarithm, finite for every finite input.

Binary cross-entropy on logits and the soft margin losses never form
:math:`\sigma(x)` before a log: :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`
has no overflow and no cancellation, where :math:`\log(1 / (1 + e^{-x}))`
overflows for :math:`x \ll 0`. Each backward below is written the way the
torch kernel it mirrors computes it, so the two round alike.
"""

from __future__ import annotations

import torch
from torch import Tensor


def log_sigmoid(x: Tensor) -> Tensor:
    r""":math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`.

    >>> log_sigmoid(torch.tensor([-50.0, 0.0, 2.0]))
    tensor([-50.0000,  -0.6931,  -0.1269])
    """
    return x.clamp_max(0) - (-x.abs()).exp().log1p()


def sigmoid(x: Tensor) -> Tensor:
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`, as ``binary_cross_entropy_with_logits``'s
    backward computes it: for :math:`x < -709` (float64) :math:`e^{-x}` is ``inf`` and
    :math:`1 / \infty = 0`, the right limit."""
    return 1 / (1 + torch.exp(-x))


def log_sigmoid_grad(x: Tensor) -> Tensor:
    r""":math:`\frac{d}{dx}\log\sigma(x) = \sigma(-x)`, as torch's ``log_sigmoid_backward``
    computes it: :math:`\frac{e^{-x}}{1 + e^{-x}}` for :math:`x \ge 0`,
    :math:`1 - \frac{e^{x}}{1 + e^{x}}` for :math:`x < 0` (no cancellation either way).

    >>> log_sigmoid_grad(torch.tensor([0.0, 40.0]))
    tensor([5.0000e-01, 4.2484e-18])
    """
    z = (-x.abs()).exp()
    negative = x < 0
    one, sign = torch.where(negative, 1.0, 0.0), torch.where(negative, 1.0, -1.0)
    return one.to(x.dtype) - sign.to(x.dtype) * (z / (1 + z))
