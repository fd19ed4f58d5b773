"""Wall time covered by spans that may overlap: Nix copies and builds several paths at once, and
a sum of their times can exceed the whole run's. Shared by the ledger (live activities) and the
report (a cache's copies), which cannot import each other's modules."""

from __future__ import annotations

from collections.abc import Iterable


def covered(spans: Iterable[tuple[float, float]]) -> float | None:
    """Seconds covered by the (start, end) spans, each moment once; None when there are none."""
    ordered = sorted(spans)
    if not ordered:
        return None
    total = 0.0
    start, end = ordered[0]
    for begin, finish in ordered[1:]:
        if begin > end:
            total += end - start
            start, end = begin, finish
        else:
            end = max(end, finish)
    return total + (end - start)


__all__ = ["covered"]
