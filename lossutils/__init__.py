"""lossutils: every ``torch.nn`` loss rebuilt from elementary tensor ops.

Each loss is a ``torch.autograd.Function`` whose backward is written by hand
(its formula is in its docstring) and checked against torch, value and
gradient, by the test-suite. The namespaces mirror torch's:

* :mod:`lossutils.functional` -- ``torch.nn.functional``'s losses and softmax family;
* :mod:`lossutils.nn` -- the loss module classes;
* :mod:`lossutils.reference` -- NumPy forward/backward pairs of the core losses.

``import lossutils`` needs neither a display nor ipywidgets.
"""

from . import functional, nn, reference

__version__ = "0.1.0"
__all__ = ["functional", "nn", "reference", "__version__"]
