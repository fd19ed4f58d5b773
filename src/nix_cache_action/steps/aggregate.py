"""aggregate/action.yml's step: every leg's report (the artifacts the legs uploaded) and the
plan, added up into one report, one summary, one commit status for the whole flake, a JUnit
file, and the merged verification record and report that the next run starts from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nix_cache_action import debug, records
from nix_cache_action.aggregate import aggregate
from nix_cache_action.baseline import compare
from nix_cache_action.budgets import judged
from nix_cache_action.engine import UNEXPECTED
from nix_cache_action.errors import InputError
from nix_cache_action.files import write_text
from nix_cache_action.github.workflow_commands import write_outputs
from nix_cache_action.leg_reports import collect_leg_reports
from nix_cache_action.limits import cut
from nix_cache_action.plan import Plan
from nix_cache_action.plan_command import PlanFileError, read_plan
from nix_cache_action.render.annotations import TITLE
from nix_cache_action.render.junit import render_junit
from nix_cache_action.render.statuses import flake_status
from nix_cache_action.report import Report, write_report
from nix_cache_action.settings import AggregateSettings, load_aggregate_settings
from nix_cache_action.steps.publish import (
    RECORD_FILE,
    Failures,
    Paths,
    StepIO,
    bad_input,
    publish,
    read_baseline,
)
from nix_cache_action.verification import load_record, merge_records

if TYPE_CHECKING:
    from collections.abc import Mapping

JUNIT_FILE = "junit.xml"
PLAN_MISSING = (
    "there is no plan at {path} ({why}): the plan step failed before it wrote one, or its"
    " artifact was not downloaded; see the plan job's log"
)
AGGREGATE_OUTPUT_NAMES = ("verdict", "junit", "legs", "missing-legs")


def run_aggregate(environ: Mapping[str, str], io: StepIO) -> int:
    commands = io.commands
    try:
        settings = load_aggregate_settings(environ)
    except InputError as error:
        return bad_input(error, environ, commands, io.redactor)
    paths = Paths.for_context(settings.github)
    try:
        report = _aggregated(settings, paths)
    except Exception as error:  # noqa: BLE001 - the report says the run stopped
        debug.traceback("unexpected error", error)
        why = cut(UNEXPECTED.format(kind=type(error).__name__, error=error))
        report = Report(errors=(why,), stopped=why)
    report = io.redactor.report(report)
    publish(
        report,
        settings=settings,
        paths=paths,
        commands=commands,
        stdout=io.stdout,
        publisher_factory=io.publisher_factory,
        statuses=flake_status,
    )
    failures = Failures()
    junit = paths.directory / JUNIT_FILE
    if settings.junit:
        failures.attempt("the JUnit file", lambda: write_text(junit, render_junit(report)))
    output = settings.github.output
    if output is not None:
        extra = {
            "verdict": report.verdict(),
            "junit": str(junit) if settings.junit else "",
            "legs": str(len(report.legs)),
            "missing-legs": " ".join(leg.id for leg in report.legs if leg.verdict == "missing"),
        }
        failures.attempt("the step outputs", lambda: write_outputs(output, extra))
    if settings.verify_once:
        # What the next run starts from, saved by aggregate/action.yml: the flake's record
        # (the plan's and every leg's, merged) and this report as the baseline.
        failures.attempt("the merged record", lambda: _save_record(settings, paths))
        failures.attempt(
            "the report for the next run", lambda: write_report(report, paths.saved_report)
        )
    for warning in failures.warnings:
        commands.warning(warning, title=TITLE)
    return report.exit_status()


def _aggregated(settings: AggregateSettings, paths: Paths) -> Report:
    plan, stopped = _plan(settings.plan)
    legs, notes = collect_leg_reports([settings.reports] if settings.reports else [])
    report = aggregate(plan, legs)
    if stopped is not None:
        report = records.replace(report, stopped=stopped, errors=(*report.errors, stopped))
    report = records.replace(report, notes=(*report.notes, *notes))
    baseline, baseline_note = read_baseline(paths.baseline)
    if baseline is not None:
        report = records.replace(
            report, baseline=compare(report, baseline, "the last run of the base branch")
        )
    if baseline_note is not None:
        report = records.replace(report, notes=(*report.notes, baseline_note))
    # max-seconds is judged against the critical path: the report's seconds are the slowest
    # leg's.
    return judged(report, settings.budgets)


def _plan(path: Path | None) -> tuple[Plan | None, str | None]:
    if path is None:
        return None, None
    try:
        return read_plan(path), None
    except PlanFileError as error:
        return None, PLAN_MISSING.format(path=path, why=error)


def _save_record(settings: AggregateSettings, paths: Paths) -> None:
    sources: list[Path] = []
    if settings.plan is not None:
        sources.append(settings.plan.parent / RECORD_FILE)
    if settings.reports is not None and settings.reports.is_dir():
        sources.extend(sorted(settings.reports.rglob(RECORD_FILE)))
    records = [load_record(source)[0] for source in sources if source.is_file()]
    merge_records(records).save(paths.record)


__all__ = ["AGGREGATE_OUTPUT_NAMES", "JUNIT_FILE", "run_aggregate"]
