"""Cases of the probabilistic family (see tests/cases/__init__.py)."""

CASES = []
REJECTIONS = []
EXTREMES = []
