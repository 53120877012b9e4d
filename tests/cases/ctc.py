"""Cases of the ctc family (see tests/cases/__init__.py)."""

CASES = []
REJECTIONS = []
EXTREMES = []
