"""The legs of a matrix added back up into one report (pure): `merge` grown to know the plan.

Every leg's report is merged (totals re-derived, caches across all legs). The plan adds what no
leg reports: the attributes that did not evaluate, the ones left out as cached and verified
(each with the earlier check that verified it), and the legs that never reported, named, with
their installables failed. A leg that never reported can never give a green aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence

from nix_cache_action import records
from nix_cache_action.plan import Leg, Plan
from nix_cache_action.records import record
from nix_cache_action.report import (
    Budgets,
    Check,
    DuplicateBuild,
    Installable,
    LegInfo,
    LegResult,
    Report,
    merge,
)

MISSING_WHY = (
    "no report came: cancelled, timed out, or stopped before its report was uploaded; its"
    " installables count as failed"
)
NOT_BUILT = "not built: its leg {leg} never reported"
UNPLANNED = (
    "{count} of the reports belong to no leg of the plan ({legs}); they are counted all the same"
)
TWICE = "{count} reports claimed the same leg as another ({legs}); each is counted"
NO_PLAN = (
    "no plan was given: a leg that never reported cannot be named, so this verdict covers only"
    " the reports that came"
)
NOTHING = (
    "no leg's report came, and no plan names the legs: there is nothing to add up. Pass the"
    " legs' report files, or the folder their artifacts were downloaded to, and the plan"
)
PLAN_STOPPED = "the plan could not be made: {error}"
LEFT_OUT_REASON = "in a cache and verified {when}; left out of the matrix, not built"
# The slowest legs the summary names as the critical path.
CRITICAL_LEGS = 3
# A leg's installables kept by name in the report (the count is kept whole).
LEG_NAMES_KEPT = 10


@record
class LegReport:
    """One leg's report and where it came from (the file, or the artifact's name)."""

    source: str
    report: Report


def aggregate(plan: Plan | None, legs: Sequence[LegReport]) -> Report:
    """One report for the whole run."""
    notes: list[str] = []
    planned = {leg.id: leg for leg in plan.legs} if plan is not None else {}
    by_leg: dict[str, list[Report]] = {}
    for item in legs:
        leg_id = item.report.leg.id if item.report.leg is not None else item.source
        by_leg.setdefault(leg_id, []).append(item.report)
    unplanned = [leg_id for leg_id in by_leg if plan is not None and leg_id not in planned]
    if unplanned:
        notes.append(UNPLANNED.format(count=len(unplanned), legs=", ".join(sorted(unplanned))))
    repeated = sorted(k for k, v in by_leg.items() if len(_distinct(v)) > 1)
    if repeated:
        notes.append(TWICE.format(count=len(repeated), legs=", ".join(repeated)))
    merged = merge([item.report for item in legs])
    results = [
        _result(leg_id, report, planned.get(leg_id))
        for leg_id, reports in by_leg.items()
        for report in _distinct(reports)
    ]
    if plan is None and not legs:
        # Not `ok`: an aggregate of nothing would pass a matrix whose every leg was lost.
        added = _FromPlan(errors=(NOTHING,), stopped=NOTHING)
    elif plan is None:
        notes.append(NO_PLAN)
        added = _FromPlan()
    else:
        added = _from_plan(plan, set(by_leg))
        notes.extend(plan.notes)
    exceeded = tuple(
        f"leg {leg_id}: {message}"
        for leg_id, reports in by_leg.items()
        for report in _distinct(reports)
        if report.budgets is not None
        for message in report.budgets.exceeded
    )
    return records.replace(
        merged,
        budgets=Budgets(exceeded=exceeded) if exceeded else None,
        installables=(*merged.installables, *added.installables),
        checks=(*merged.checks, *added.checks),
        errors=(*merged.errors, *added.errors),
        stopped=merged.stopped or added.stopped,
        notes=(*merged.notes, *notes),
        legs=tuple(sorted([*results, *added.missing], key=_leg_order)),
        duplicate_builds=_duplicates(by_leg),
        leg=None,
        working_directory=merged.working_directory
        or (plan.working_directory if plan is not None else None),
    )


@record
class _FromPlan:
    """What only the plan knows: legs that never reported, errors, what was left out."""

    installables: tuple[Installable, ...] = ()
    checks: tuple[Check, ...] = ()
    errors: tuple[str, ...] = ()
    missing: tuple[LegResult, ...] = ()
    stopped: str | None = None


def _from_plan(plan: Plan, reported: set[str]) -> _FromPlan:
    installables: list[Installable] = []
    missing: list[LegResult] = []
    for leg in plan.legs:
        if leg.id in reported:
            continue
        missing.append(
            LegResult(
                id=leg.id,
                system=leg.system,
                runner=leg.runner,
                verdict="missing",
                installables=len(leg.installables),
                why=MISSING_WHY,
                names=leg.installables[:LEG_NAMES_KEPT],
            )
        )
        installables.extend(
            Installable(name=name, status="error", error=NOT_BUILT.format(leg=leg.id))
            for name in leg.installables
        )
    left_installables, left_checks = _left_out(plan)
    installables.extend(left_installables)
    # The plan's error starts with the installable, which the Installable names already.
    installables.extend(
        Installable(
            name=a.installable,
            status="error",
            error=(a.error or "").removeprefix(f"{a.installable}: ") or None,
        )
        for a in plan.attributes
        if a.state == "error"
    )
    stopped = (
        PLAN_STOPPED.format(error=plan.errors[0]) if plan.errors and not plan.attributes else None
    )
    return _FromPlan(
        installables=tuple(installables),
        checks=tuple(left_checks),
        errors=plan.errors,
        missing=tuple(missing),
        stopped=stopped,
    )


def _distinct(reports: list[Report]) -> list[Report]:
    """The same report twice (an artifact downloaded twice) counts once."""
    unique: list[Report] = []
    for report in reports:
        if report not in unique:
            unique.append(report)
    return unique


def _result(leg_id: str, report: Report, planned: Leg | None) -> LegResult:
    totals = report.totals()
    info = report.leg or LegInfo(id=leg_id)
    system = info.system or (planned.system if planned is not None else None)
    runner = info.runner or (planned.runner if planned is not None else None)
    return LegResult(
        id=leg_id,
        system=system,
        runner=runner,
        verdict=report.verdict(),
        nix=report.nix.text or report.nix.version,
        seconds=report.seconds,
        built=totals.built,
        substituted=totals.substituted,
        failed=totals.failed,
        # A leg that asked no cache has no hit rate: 0% would say every cache missed.
        hit_rate=totals.hit_rate if _asked_a_cache(report) else None,
        installables=len(report.installables),
        names=tuple(i.name for i in report.installables[:LEG_NAMES_KEPT]),
    )


def _asked_a_cache(report: Report) -> bool:
    return bool(report.queried or report.configured_substituters or report.substitutions)


_SEVERITY = {"missing": 0, "failed": 1, "not-reproducible": 2, "over-budget": 3, "warning": 4}


def _leg_order(leg: LegResult) -> tuple[int, float, str]:
    """Failing legs first, then the slowest."""
    return (_SEVERITY.get(leg.verdict, 5), -(leg.seconds or 0.0), leg.id)


def critical_path(legs: Sequence[LegResult]) -> list[LegResult]:
    """The slowest legs: the matrix is done when the slowest is."""
    timed = [leg for leg in legs if leg.seconds is not None]
    return sorted(timed, key=lambda leg: -(leg.seconds or 0.0))[:CRITICAL_LEGS]


def _duplicates(by_leg: dict[str, list[Report]]) -> tuple[DuplicateBuild, ...]:
    built_in: dict[str, set[str]] = {}
    for leg_id, reports in by_leg.items():
        for report in reports:
            for build in report.builds:
                if build.status == "built":
                    built_in.setdefault(build.drv, set()).add(leg_id)
    return tuple(
        DuplicateBuild(drv=drv, legs=tuple(sorted(legs)))
        for drv, legs in sorted(built_in.items())
        if len(legs) > 1
    )


def _left_out(plan: Plan) -> tuple[list[Installable], list[Check]]:
    """The attributes no leg built because they were cached and verified, with their checks."""
    installables: list[Installable] = []
    checks: list[Check] = []
    for attribute in plan.attributes:
        if attribute.state != "verified":
            continue
        installables.append(
            Installable(
                name=attribute.installable,
                drv=attribute.drv,
                outputs=dict(attribute.outputs),
                status="cached",
                nar_hashes=dict(attribute.nar_hashes),
            )
        )
        checks.extend(
            Check(
                drv=attribute.drv or "",
                output=output,
                path=attribute.outputs.get(output),
                verdict="reproducible",
                reason=LEFT_OUT_REASON.format(when=earlier.when()),
                nar_hash=attribute.nar_hashes.get(output),
                installable=attribute.installable,
                previously_verified=earlier,
                run="plan",
            )
            for output, earlier in sorted(attribute.verified.items())
        )
    return installables, checks


__all__ = ["CRITICAL_LEGS", "LegReport", "aggregate", "critical_path"]
