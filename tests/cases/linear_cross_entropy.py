"""Cases of the linear_cross_entropy family (see tests/cases/__init__.py)."""

CASES = []
REJECTIONS = []
EXTREMES = []
