"""Cases of the softmax_ce family (see tests/cases/__init__.py)."""

CASES = []
REJECTIONS = []
EXTREMES = []
