"""Budgets as gates: the design's targets (a cached run in two minutes, nothing rebuilt that a
cache has) turned into limits a run can fail on. Each message names the budget, the figure and
the worst offenders, so that the fix starts from the message."""

from __future__ import annotations

from nix_cache_action import records
from nix_cache_action.report import Budgets, Build, Report
from nix_cache_action.store_path import store_name

OFFENDERS_LISTED = 5
NOT_JUDGED = "{budget} was not judged: {why}, so neither a pass nor a failure is claimed"
NO_TIMES = "the report has no times (a log read from a file holds none)"
NO_ROOT_CAUSES = "the report has no root causes (the built derivations could not be read)"


def judged(report: Report, budgets: Budgets) -> Report:
    """`report` held to `budgets`: with them on record, a message per budget gone over, and a
    note per budget whose figure is unknown (never a silent pass)."""
    if budgets == Budgets():
        return report
    # An aggregate keeps what its legs went over (each leg's own budgets), and adds the run's.
    earlier = report.budgets.exceeded if report.budgets is not None else ()
    exceeded = (*earlier, *over_budget(report, budgets))
    notes = (*report.notes, *unjudged(report, budgets))
    return records.replace(report, budgets=records.replace(budgets, exceeded=exceeded), notes=notes)


def unjudged(report: Report, budgets: Budgets) -> list[str]:
    """The budgets whose figure this report does not have. A hit rate or a build time of a run
    that needed nothing is no unknown: nothing missed, nothing took time."""
    found = []
    if budgets.max_seconds is not None and report.seconds is None:
        budget = f"max-seconds {_number(budgets.max_seconds)}"
        found.append(NOT_JUDGED.format(budget=budget, why=NO_TIMES))
    totals = report.totals()
    if budgets.max_build_seconds is not None and totals.built and totals.build_seconds is None:
        budget = f"max-build-seconds {_number(budgets.max_build_seconds)}"
        found.append(NOT_JUDGED.format(budget=budget, why=NO_TIMES))
    if budgets.max_per_change is not None and totals.built and report.why is None:
        budget = f"max-per-change {budgets.max_per_change}"
        found.append(NOT_JUDGED.format(budget=budget, why=NO_ROOT_CAUSES))
    return found


def over_budget(report: Report, budgets: Budgets) -> tuple[str, ...]:
    totals = report.totals()
    built = sorted(
        (b for b in report.builds if b.status == "built"),
        key=lambda b: -(b.seconds or 0.0),
    )
    found = []
    seconds, build_seconds, rate = report.seconds, totals.build_seconds, totals.hit_rate
    if budgets.max_seconds is not None and seconds is not None and seconds > budgets.max_seconds:
        found.append(
            f"max-seconds {_number(budgets.max_seconds)}: the run took {_number(seconds)} s"
            + _slowest(built)
        )
    limit = budgets.max_build_seconds
    if limit is not None and build_seconds is not None and build_seconds > limit:
        found.append(
            f"max-build-seconds {_number(limit)}: builds took {_number(build_seconds)} s in all"
            + _slowest(built)
        )
    if budgets.max_built is not None and totals.built > budgets.max_built:
        word = "derivation was" if totals.built == 1 else "derivations were"
        found.append(f"max-built {budgets.max_built}: {totals.built} {word} built: {_names(built)}")
    if budgets.min_hit_rate is not None and rate is not None and rate < budgets.min_hit_rate:
        needed = totals.substituted + totals.built
        found.append(
            f"min-hit-rate {_number(budgets.min_hit_rate)}: the hit rate was {_number(rate)}"
            f" ({totals.built} of {needed} store paths were built, not substituted):"
            f" {_names(built)}"
        )
    if budgets.min_hit_rate and rate is None and totals.built:
        # No cache was configured or asked: every path needed was built, which no rate
        # above 0 allows.
        found.append(
            f"min-hit-rate {_number(budgets.min_hit_rate)}: no cache was asked, so"
            f" {totals.built} of {totals.built} store paths were built: {_names(built)}"
        )
    found.extend(_over_per_change(report, budgets.max_per_change))
    return tuple(found)


def _over_per_change(report: Report, limit: int | None) -> list[str]:
    """A root cause that, with what depends on it, made more builds than `limit`."""
    if limit is None or report.why is None:
        return []
    heavy = [c for c in report.why.root_causes if c.caused + 1 > limit]
    if not heavy:
        return []
    named = ", ".join(
        f"{store_name(c.drv)} ({c.caused + 1} with it)" for c in heavy[:OFFENDERS_LISTED]
    )
    more = f" and {len(heavy) - OFFENDERS_LISTED} more" if len(heavy) > OFFENDERS_LISTED else ""
    said = f"max-per-change {limit}: one change made more derivations be built than that"
    return [f"{said}: {named}{more}"]


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"


def _names(builds: list[Build]) -> str:
    shown = [
        store_name(b.drv) + ("" if b.seconds is None else f" {b.seconds:.1f} s")
        for b in builds[:OFFENDERS_LISTED]
    ]
    more = len(builds) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _slowest(builds: list[Build]) -> str:
    timed = [b for b in builds if b.seconds is not None]
    return f"; slowest builds: {_names(timed)}" if timed else ""


__all__ = ["judged", "over_budget", "unjudged"]
