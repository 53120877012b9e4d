"""What the docstring examples of lossutils may assume (``pytest --doctest-modules lossutils``).

Like torch's own docstrings, the examples use ``torch`` (and ``math``)
without importing them; every other name is the module's own.
"""

import math

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _doctest_globals(doctest_namespace):
    doctest_namespace.update(torch=torch, math=math)
