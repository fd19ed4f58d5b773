"""Moments and spans on a monotonic clock that a recorded log does not have."""

from __future__ import annotations

from collections.abc import Sequence

from nix_cache_action.intervals import covered
from nix_cache_action.records import record


@record(slots=True)
class Stopped:
    """An activity that has stopped; `at` is None when the log carries no times."""

    at: float | None


def span(start: float | None, stop: Stopped | float | None) -> float | None:
    end = stop.at if isinstance(stop, Stopped) else stop
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def since(origin: float | None, moment: float | None) -> float | None:
    if origin is None or moment is None:
        return None
    return moment - origin


def union(intervals: Sequence[tuple[float | None, Stopped | None]]) -> float | None:
    """Wall time covered by possibly overlapping intervals (parallel downloads count once)."""
    return covered(
        (a, b.at) for a, b in intervals if a is not None and b is not None and b.at is not None
    )
