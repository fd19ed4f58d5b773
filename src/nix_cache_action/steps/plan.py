"""plan/action.yml's step: the plan of the whole flake, its matrix as a step output, the plan
file (and the verification record it was made with) in a folder the action uploads.

A plan that cannot be made still leaves a plan file holding why: the aggregate fails the run
with that reason, so a broken flake never passes for want of legs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from nix_cache_action.discovery import PlanOptions, check_patterns
from nix_cache_action.errors import EXIT_FAILED, InputError
from nix_cache_action.github.workflow_commands import write_outputs, write_summary
from nix_cache_action.nix.commands import Nix
from nix_cache_action.nix.process import Subprocesses
from nix_cache_action.plan import Plan, parse_runners
from nix_cache_action.plan_command import make_plan, write_plan
from nix_cache_action.records import replace
from nix_cache_action.render.annotations import BAD_INPUT_TITLE, TITLE
from nix_cache_action.render.plan import plan_headline, render_plan_summary, render_plan_terminal
from nix_cache_action.settings import (
    GitHubContext,
    fallback_context,
    load_context,
    load_plan_settings,
    relative_to_workspace,
    without_inputs,
)
from nix_cache_action.steps.publish import RECORD_FILE, Failures, Paths, StepIO

if TYPE_CHECKING:
    from collections.abc import Mapping

PLAN_DIRECTORY = "plan"
PLAN_FILE = "plan.json"
NIX_EXECUTABLE = "nix"
# The names plan/action.yml declares, in its order.
PLAN_OUTPUT_NAMES = (
    "matrix",
    "legs",
    "plan",
    "directory",
    "to-build",
    "cached",
    "verified",
    "errors",
)
EVALUATION_ERRORS_SHOWN = 10
# Set by plan/action.yml: the name of the flake's record in the Actions cache.
MEMORY_SCOPE_VARIABLE = "NIX_CACHE_ACTION_MEMORY_SCOPE"


def plan_directory(paths: Paths) -> Path:
    return paths.directory / PLAN_DIRECTORY


def run_plan(environ: Mapping[str, str], io: StepIO) -> int:
    commands = io.commands
    try:
        settings = load_plan_settings(environ)
        check_patterns(settings.selection)
        runners = parse_runners(settings.runners)
    except (InputError, ValueError) as error:
        name = error.name if isinstance(error, InputError) else "runners"
        message = io.redactor.text(
            str(error) if isinstance(error, InputError) else f"runners: {error}"
        )
        commands.error(message, title=BAD_INPUT_TITLE.format(name=name))
        try:
            context = load_context(environ)
        except InputError:
            context = fallback_context(environ)
        plan = Plan(flake=".", systems=(), selection=(), errors=(message,))
        # Said once above, under the input's name: not again as an evaluation error.
        _publish(plan, context, None, io, annotate_errors=False)
        return EXIT_FAILED
    paths = Paths.for_context(settings.github)
    options = PlanOptions(
        flake=settings.flake,
        selection=settings.selection,
        systems=settings.systems,
        max_per_leg=settings.max_per_leg,
        runners=tuple(runners.items()),
        working_directory=relative_to_workspace(settings.working_directory, settings.github),
    )
    runner = Subprocesses(cwd=settings.working_directory, env=without_inputs(environ))
    record = paths.record if settings.verify_once and paths.record.is_file() else None

    def say(text: str) -> None:
        io.stdout.write(text + "\n")
        io.stdout.flush()

    with commands.paused():  # Nix's messages quote the flake: no workflow commands in them
        plan = make_plan(options, lambda: Nix.probe(NIX_EXECUTABLE, runner), record, say)
    plan = replace(plan, memory_scope=environ.get(MEMORY_SCOPE_VARIABLE, "").strip() or None)
    _publish(plan, settings.github, record, io, summary=settings.summary)
    # Evaluation errors of some attributes are the aggregate's to fail on, with the legs' work;
    # no plan at all stops here.
    return EXIT_FAILED if plan.errors and not plan.attributes else 0


def _publish(  # noqa: PLR0913 - what is published, and two switches
    plan: Plan,
    context: GitHubContext,
    record: Path | None,
    io: StepIO,
    *,
    summary: bool = True,
    annotate_errors: bool = True,
) -> None:
    commands = io.commands
    directory = plan_directory(Paths.for_context(context))
    failures = Failures()
    failures.attempt("the plan file", lambda: write_plan(plan, directory / PLAN_FILE, io.redactor))
    if record is not None:
        # Shipped with the plan: each leg starts from the whole flake's record.
        failures.attempt("the verification record", lambda: _copy(record, directory / RECORD_FILE))
    matrix, note = plan.matrix()
    if note is not None:
        plan = replace(plan, notes=(*plan.notes, note))
    counts = plan.counts()
    outputs = {
        "matrix": json.dumps(matrix, separators=(",", ":")),
        "legs": str(len(plan.legs)),
        "plan": str(directory / PLAN_FILE),
        "directory": str(directory),
        "to-build": str(counts["to-build"]),
        "cached": str(counts["cached"]),
        "verified": str(counts["verified"]),
        "errors": str(len(plan.errors)),
    }
    step_output = context.output
    if step_output is not None:
        failures.attempt("the step outputs", lambda: write_outputs(step_output, outputs))
    step_summary = context.step_summary
    if summary and step_summary is not None:
        failures.attempt(
            "the job summary",
            lambda: write_summary(step_summary, io.redactor.text(render_plan_summary(plan))),
        )
    with commands.paused():
        io.stdout.write(io.redactor.text(render_plan_terminal(plan)) + "\n")
    commands.notice(plan_headline(plan), title="nix-cache-action plan")
    for error in plan.errors[:EVALUATION_ERRORS_SHOWN] if annotate_errors else ():
        commands.error(io.redactor.text(error), title="nix-cache-action: did not evaluate")
    for warning in failures.warnings:
        commands.warning(warning, title=TITLE)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


__all__ = ["PLAN_FILE", "PLAN_OUTPUT_NAMES", "plan_directory", "run_plan"]
