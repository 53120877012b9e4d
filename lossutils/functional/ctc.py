"""(filled in by the ctc work)."""

__all__: list[str] = []
