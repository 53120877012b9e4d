"""``lossutils.functional``: every loss of ``torch.nn.functional``, rebuilt.

Same names, signatures, defaults, dtypes, shapes, warnings and errors as
torch; each loss is a ``torch.autograd.Function`` with a hand-written backward.
The family modules (``regression``, ``binary``, ...) hold the Functions; this
namespace re-exports the public functions, exactly like torch's.
"""

from .._reexport import reexport

__all__ = reexport(globals(), (
    "softmax", "cross_entropy", "regression", "robust", "binary", "probabilistic", "soft_margin",
    "ranking", "multi_margin", "distance", "triplet", "ctc", "linear_cross_entropy"))
