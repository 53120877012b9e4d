"""Losses across the processes of a ``torch.distributed`` group.

* :func:`vocab_parallel_cross_entropy` -- linear + cross-entropy with the
  vocabulary rows of the output weight sharded over the ranks (Megatron's
  vocabulary-parallel cross-entropy), exact to
  :func:`lossutils.functional.linear_cross_entropy` on the unsharded weight;
* :func:`shard_bounds` -- the contiguous split of a vocabulary over the ranks;
* :func:`run_on_gloo` -- run a function on fresh CPU processes that form a
  gloo group on loopback (how the tests and benchmarks start them);
* :class:`CollectiveLog` -- record every collective issued, with its bytes.

``import lossutils`` does not import this package: ``import lossutils.distributed``.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from .comm_log import CollectiveLog
from .launch import run_on_gloo
from .vocab_parallel import (
    VocabParallelCrossEntropyFunction,
    shard_bounds,
    vocab_parallel_cross_entropy,
)

__all__ = [
    "CollectiveLog",
    "VocabParallelCrossEntropyFunction",
    "run_on_gloo",
    "shard_bounds",
    "vocab_parallel_cross_entropy",
]
