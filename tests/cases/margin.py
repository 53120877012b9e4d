"""Cases of the margin family (see tests/cases/__init__.py)."""

CASES = []
REJECTIONS = []
EXTREMES = []
