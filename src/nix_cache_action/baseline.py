"""This run against an earlier one: what a reviewer asks of a pull request ("did it make CI
slower, did it break the cache?"), answered from two reports."""

from __future__ import annotations

from nix_cache_action.report import (
    Baseline,
    CacheChange,
    Report,
    SlowerBuild,
    VerdictChange,
    cache_key,
)
from nix_cache_action.store_path import store_name

SLOWER_LISTED = 5
# A build is slower when it took this much longer, and this share longer: timings of the same
# build vary from run to run, and a 0.1 s build taking 0.2 s says nothing.
SLOWER_SECONDS = 1.0
SLOWER_SHARE = 0.25
FIGURES = ("built", "substituted", "failed", "hit_rate", "build_seconds", "seconds")


def figures(report: Report) -> dict[str, float | None]:
    """The figures compared: the totals' counts and rate, and the whole run's wall time."""
    totals = report.totals()
    return {
        "built": totals.built,
        "substituted": totals.substituted,
        "failed": totals.failed,
        "hit_rate": totals.hit_rate,
        "build_seconds": totals.build_seconds,
        "seconds": report.seconds,
    }


def compare(report: Report, earlier: Report, source: str) -> Baseline:
    now, before = figures(report), figures(earlier)
    delta = {
        name: None
        if now[name] is None or before[name] is None
        else round((now[name] or 0) - (before[name] or 0), 4)
        for name in FIGURES
    }
    return Baseline(
        source=source,
        totals_before=before,
        totals_delta=delta,
        new_builds=_new_builds(report, earlier),
        slower=_slower(report, earlier),
        reproducibility_changes=_verdict_changes(report, earlier),
        caches=_cache_changes(report, earlier),
    )


def _new_builds(report: Report, earlier: Report) -> tuple[str, ...]:
    built_before = {b.drv for b in earlier.builds if b.status in ("built", "failed")}
    return tuple(
        dict.fromkeys(
            b.drv
            for b in report.builds
            if b.status in ("built", "failed") and b.drv not in built_before
        )
    )


def _slower(report: Report, earlier: Report) -> tuple[SlowerBuild, ...]:
    # By name: a change anywhere below a derivation gives it a new hash, and its time is still
    # the one to compare.
    before: dict[str, float] = {}
    for build in earlier.builds:
        if build.status == "built" and build.seconds is not None:
            before[store_name(build.drv)] = build.seconds
    found = []
    for build in report.builds:
        name = store_name(build.drv)
        if build.status != "built" or build.seconds is None or name not in before:
            continue
        grown = build.seconds - before[name]
        if grown >= SLOWER_SECONDS and grown >= SLOWER_SHARE * before[name]:
            found.append(SlowerBuild(name, build.seconds, before[name]))
    found.sort(key=lambda s: s.seconds - s.baseline_seconds, reverse=True)
    return tuple(found[:SLOWER_LISTED])


def _verdict_changes(report: Report, earlier: Report) -> tuple[VerdictChange, ...]:
    before = {(c.installable, c.output): c.verdict for c in earlier.checks if c.installable}
    return tuple(
        VerdictChange(check.installable, check.output, before[key], check.verdict)
        for check in report.checks
        if check.installable
        and (key := (check.installable, check.output)) in before
        and before[key] != check.verdict
    )


def _cache_changes(report: Report, earlier: Report) -> tuple[CacheChange, ...]:
    now = {cache_key(row.url): row for row in report.substituters()}
    before = {cache_key(row.url): row for row in earlier.substituters()}
    changes = []
    for key in dict.fromkeys([*now, *before]):
        row, old = now.get(key), before.get(key)
        served, old_served = (row.substituted if row else 0), (old.substituted if old else 0)
        rate, old_rate = (row.hit_rate if row else None), (old.hit_rate if old else None)
        if (served, rate) != (old_served, old_rate):
            url = row.url if row is not None else old.url if old is not None else key
            changes.append(CacheChange(url, served, old_served, rate, old_rate))
    return tuple(changes)


__all__ = ["compare", "figures"]
