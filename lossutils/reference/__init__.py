"""``lossutils.reference``: NumPy versions of the core losses, forward and backward.

``<name>(input, target, **kw)`` mirrors ATen's ``<op>`` and
``<name>_backward(grad_output, input, target, **kw)`` its ``<op>_backward``:
the gradient of the loss w.r.t. ``input``, written out in NumPy so that it
can be read line by line and checked against central differences.
"""

import importlib as _importlib

_FAMILIES = ("softmax_ce", "regression", "binary", "kl")
_modules = [_importlib.import_module(f"{__name__}.{family}") for family in _FAMILIES]
__all__ = sorted(name for module in _modules for name in module.__all__)
globals().update({name: getattr(module, name) for module in _modules for name in module.__all__})
del _importlib, _modules
