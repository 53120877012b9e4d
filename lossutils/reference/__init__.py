"""``lossutils.reference``: NumPy versions of the core losses, forward and backward.

``<name>(input, target, **kw)`` mirrors ATen's ``<op>`` and
``<name>_backward(grad_output, input, target, **kw)`` its ``<op>_backward``:
the gradient of the loss w.r.t. ``input``, written out in NumPy so that it
can be read line by line and checked against central differences.
"""

from .binary import *  # noqa: F403
from .kl import *  # noqa: F403
from .regression import *  # noqa: F403
from .softmax_ce import *  # noqa: F403
from . import binary, kl, regression, softmax_ce

__all__ = sorted(name for m in (binary, kl, regression, softmax_ce) for name in m.__all__)
