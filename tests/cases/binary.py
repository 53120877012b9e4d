"""Cases of the binary family (see tests/cases/__init__.py)."""

CASES = []
REJECTIONS = []
EXTREMES = []
