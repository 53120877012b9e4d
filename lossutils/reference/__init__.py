"""``lossutils.reference``: NumPy versions of the core losses, forward and backward.

``<name>(input, target, **kw)`` mirrors ATen's ``<op>`` and
``<name>_backward(grad_output, input, target, **kw)`` its ``<op>_backward``:
the gradient of the loss w.r.t. ``input``, written out in NumPy so that it
can be read line by line and checked against central differences.
"""

from .._reexport import reexport

__all__ = reexport(globals(), ("softmax_ce", "regression", "binary", "kl"))
