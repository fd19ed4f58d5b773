"""The root action's step: the inputs, the build of its installables (or of its leg of a plan),
then what GitHub shows of it.

One direction: settings -> engine -> Report -> publishers. Whatever happens in the build, the
publishers run with what is known, so a failed, cancelled or misconfigured run still leaves its
report behind.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, TextIO

from nix_cache_action import debug, records
from nix_cache_action.engine import (
    UNEXPECTED,
    BuildOptions,
    run_job,
)
from nix_cache_action.errors import EXIT_FAILED, EXIT_INTERRUPTED, InputError
from nix_cache_action.github.workflow_commands import WorkflowCommands
from nix_cache_action.limits import cut
from nix_cache_action.magic_nix_cache import read_daemon_log
from nix_cache_action.nix.commands import Nix
from nix_cache_action.nix.process import Subprocesses
from nix_cache_action.plan_command import PlanFileError, read_plan
from nix_cache_action.render.annotations import TITLE
from nix_cache_action.report import LegInfo, Report, write_report
from nix_cache_action.settings import (
    Settings,
    load_settings,
    relative_to_workspace,
    without_inputs,
)
from nix_cache_action.steps.publish import (
    RECORD_FILE,
    Failures,
    Paths,
    StepIO,
    bad_input,
    publish,
    read_baseline,
)
from nix_cache_action.verification import Where

if TYPE_CHECKING:
    from collections.abc import Mapping

NIX_EXECUTABLE = "nix"
LOG_NOTE = "nix-cache-action: the raw Nix log goes to {path}"
NO_SUCH_LEG = "{leg!r} is not a leg of the plan {path} (its legs: {legs}); pass one of them"


def run_build(environ: Mapping[str, str], io: StepIO) -> int:
    """The build step; the exit status is the step's, and follows the verdict."""
    commands, stdout = io.commands, io.stdout
    try:
        settings = _leg_settings(load_settings(environ))
    except InputError as error:
        return bad_input(error, environ, commands, io.redactor)
    paths = Paths.for_context(settings.github)
    try:
        report, status = _run(settings, paths, environ, commands, stdout)
    except Exception as error:  # noqa: BLE001 - the report says the run stopped
        debug.traceback("unexpected error", error)
        why = cut(UNEXPECTED.format(kind=type(error).__name__, error=error))
        report, status = Report(errors=(why,), stopped=why), EXIT_FAILED
    if status == EXIT_INTERRUPTED:
        # A cancelled job has seconds left: the report first, no commit statuses.
        settings = records.replace(settings, status_checks=False)
    report = io.redactor.report(report)
    publish(
        report,
        settings=settings,
        paths=paths,
        commands=commands,
        stdout=stdout,
        publisher_factory=io.publisher_factory,
    )
    if settings.verify_once:
        # The next run's baseline, saved with the record by action.yml.
        failures = Failures()
        failures.attempt(
            "the report for the next run", lambda: write_report(report, paths.saved_report)
        )
        for warning in failures.warnings:
            commands.warning(warning, title=TITLE)
    return status


def _leg_settings(settings: Settings) -> Settings:
    """With `plan` and `leg`: that leg's installables, from the plan file the plan step made."""
    if settings.plan is None:
        return settings
    try:
        plan = read_plan(settings.plan)
    except PlanFileError as error:
        raise InputError("plan", f"{error}; pass the plan file the plan step wrote") from error
    leg = plan.leg(settings.leg or "")
    if leg is None:
        legs = ", ".join(leg.id for leg in plan.legs) or "none"
        raise InputError("leg", NO_SUCH_LEG.format(leg=settings.leg, path=settings.plan, legs=legs))
    return records.replace(
        settings,
        installables=leg.installables,
        leg_info=LegInfo(id=leg.id, system=leg.system, runner=leg.runner),
    )


def _run(
    settings: Settings,
    paths: Paths,
    environ: Mapping[str, str],
    commands: WorkflowCommands,
    stdout: TextIO,
) -> tuple[Report, int]:
    def say(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    baseline, baseline_note = read_baseline(paths.baseline)
    _record_from_plan(settings, paths)
    context = settings.github
    run_url = (
        f"{context.server_url}/{context.repository}/actions/runs/{context.run_id}"
        if context.repository and context.run_id
        else None
    )
    options = BuildOptions(
        installables=settings.installables,
        reproducibility=settings.reproducibility,
        deep=settings.deep_check,
        fallback=settings.fallback,
        verified=paths.record if settings.verify_once else None,
        skip_cached=settings.skip_cached,
        where=Where(commit=context.sha, run_url=run_url),
        budgets=settings.budgets,
        baseline=baseline,
        baseline_source="the last run of the base branch" if baseline is not None else "",
    )
    # The inputs (the GitHub token among them) are no business of Nix, its builders and hooks,
    # or diffoscope: they get the environment without them.
    env = without_inputs(environ)
    runner = Subprocesses(cwd=settings.working_directory, env=env)
    # Nix's messages quote builders' output: while it runs the runner reads no workflow
    # commands, so a build log cannot add annotations, masks or outputs of its own.
    with commands.paused():
        say(LOG_NOTE.format(path=paths.log))
        report, status = run_job(
            options,
            lambda: Nix.probe(NIX_EXECUTABLE, runner),
            log_path=paths.log,
            say=say,
            env=env,
        )
    if baseline_note is not None:
        report = records.replace(report, notes=(*report.notes, baseline_note))
    report = records.replace(
        report,
        working_directory=relative_to_workspace(settings.working_directory, settings.github),
        leg=settings.leg_info,
    )
    # Read last: the daemon uploads while the builds run.
    return records.replace(report, magic_nix_cache=read_daemon_log(environ)), status


def _record_from_plan(settings: Settings, paths: Paths) -> None:
    """A leg starts from the verification record the plan step shipped beside the plan (the
    whole flake's), and its report's folder keeps what it adds for the aggregate."""
    if settings.plan is None or not settings.verify_once:
        return
    shipped = settings.plan.parent / RECORD_FILE
    if shipped.is_file() and not paths.record.exists():
        paths.record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shipped, paths.record)
