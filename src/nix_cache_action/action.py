"""The action's main: inputs from the environment, the build, then what GitHub shows of it.

One direction: settings -> engine -> Report -> publishers (JSON report, job summary, step
outputs, commit statuses, annotations). Whatever happens in the build, the publishers run with
what is known, so a failed, cancelled or misconfigured run still leaves its report behind.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from nix_cache_action.engine import EXIT_FAILED, EXIT_INTERRUPTED, BuildOptions, run_job
from nix_cache_action.errors import InputError
from nix_cache_action.github.statuses import Publisher, StatusPublisher
from nix_cache_action.github.workflow_commands import (
    Annotation,
    AnnotationBuffer,
    AnnotationLevel,
    WorkflowCommands,
    summary_room,
    write_outputs,
    write_summary,
)
from nix_cache_action.magic_nix_cache import read_daemon_log
from nix_cache_action.nix.commands import Nix
from nix_cache_action.nix.process import Subprocesses
from nix_cache_action.render.annotations import (
    BAD_INPUT_NOTE,
    BAD_INPUT_TITLE,
    TITLE,
    WARNING_LINE,
    annotations_for,
    stopped_annotation,
)
from nix_cache_action.render.outputs import outputs_for
from nix_cache_action.render.statuses import (
    EMPTY_CREDENTIALS_NOTE,
    NO_COMMIT_NOTE,
    POSTED_NOTE,
    STATUS_SETUP_WARNING,
    statuses_for,
)
from nix_cache_action.render.summary import SUMMARY_LIMIT, render_summary
from nix_cache_action.report import Report, write_report
from nix_cache_action.settings import (
    GitHubContext,
    Settings,
    commit_sha,
    input_variable,
    load_context,
    load_settings,
    without_inputs,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

OUTPUT_DIRECTORY = "nix-cache-action"
REPORT_FILE = "report.json"
LOG_FILE = "nix.log"
NIX_EXECUTABLE = "nix"
LOG_NOTE = "nix-cache-action: the raw Nix log goes to {path}"
REPORT_NOTE = "nix-cache-action: the JSON report is at {path}"


@dataclass(frozen=True)
class Paths:
    """Where the report and the raw Nix log go: under RUNNER_TEMP, as GitHub's own tools do."""

    directory: Path

    @classmethod
    def for_context(cls, context: GitHubContext) -> Paths:
        base = context.runner_temp or Path(tempfile.gettempdir())
        return cls(base / OUTPUT_DIRECTORY)

    @property
    def report(self) -> Path:
        return self.directory / REPORT_FILE

    @property
    def log(self) -> Path:
        return self.directory / LOG_FILE


def main(
    environ: Mapping[str, str] = os.environ,
    stdout: TextIO | None = None,
    *,
    publisher_factory: Callable[[str, str, str, str], Publisher] = StatusPublisher,
) -> int:
    """Run the action; the exit status is the step's.

    `publisher_factory(token, repository, api_url, sha)` makes the commit status publisher.
    """
    # Looked up now rather than as a default argument, so a replaced sys.stdout is honoured.
    stdout = sys.stdout if stdout is None else stdout
    commands = WorkflowCommands(stdout)
    # Masked before anything else is printed, even if another input turns out to be wrong.
    commands.add_mask(environ.get(input_variable("github-token"), "").strip())
    try:
        settings = load_settings(environ)
    except InputError as error:
        return _bad_input(error, environ, commands)

    def say(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    paths = Paths.for_context(settings.github)
    options = BuildOptions(
        installables=settings.installables,
        reproducibility=settings.reproducibility,
        deep=settings.deep_check,
        fallback=settings.fallback,
    )
    # The inputs (the GitHub token among them) are no business of Nix, its builders and hooks,
    # or diffoscope: they get the environment without them.
    env = without_inputs(environ)
    runner = Subprocesses(cwd=settings.working_directory, env=env)
    say(LOG_NOTE.format(path=paths.log))
    # Nix's messages quote builders' output: while it runs the runner reads no workflow
    # commands, so a build log cannot add annotations, masks or outputs of its own.
    with commands.paused():
        report, status = run_job(
            options,
            lambda: Nix.probe(NIX_EXECUTABLE, runner),
            log_path=paths.log,
            say=say,
            env=env,
        )
    # Read last: the daemon uploads while the builds run.
    report = dataclasses.replace(report, magic_nix_cache=read_daemon_log(environ))
    if status == EXIT_INTERRUPTED:
        # A cancelled job has seconds left: the report first, no commit statuses.
        settings = dataclasses.replace(settings, status_checks=False)
    publish(
        report,
        settings=settings,
        paths=paths,
        commands=commands,
        stdout=stdout,
        publisher_factory=publisher_factory,
    )
    return status


def _bad_input(error: InputError, environ: Mapping[str, str], commands: WorkflowCommands) -> int:
    """One error naming the input; a report and summary that say why nothing was built."""
    try:
        context = load_context(environ)
    except InputError:
        # The bad value is part of the context itself (GITHUB_REPOSITORY, say): nothing of it
        # can be trusted, so the report goes to the temporary directory and no summary is
        # written.
        context = GitHubContext()
    report = Report(errors=(str(error),), notes=(BAD_INPUT_NOTE.format(name=error.name),))
    commands.error(str(error), title=BAD_INPUT_TITLE.format(name=error.name))
    paths = Paths.for_context(context)
    write_report(report, paths.report)
    if context.step_summary is not None:
        _write_summary(context.step_summary, report)
    if context.output is not None:
        write_outputs(context.output, outputs_for(report, paths.report))
    return EXIT_FAILED


def publish(  # noqa: PLR0913 - one keyword per thing published, each optional in tests
    report: Report,
    *,
    settings: Settings,
    paths: Paths,
    commands: WorkflowCommands,
    stdout: TextIO | None = None,
    publisher_factory: Callable[[str, str, str, str], Publisher] = StatusPublisher,
) -> None:
    """The report, the summary, the step outputs, the commit statuses and the annotations."""
    out = sys.stdout if stdout is None else stdout
    context = settings.github
    write_report(report, paths.report)
    out.write(REPORT_NOTE.format(path=paths.report) + "\n")
    if settings.summary and context.step_summary is not None:
        _write_summary(context.step_summary, report)
    if context.output is not None:
        write_outputs(context.output, outputs_for(report, paths.report))
    warnings = post_statuses(report, settings, out, publisher_factory)
    buffer = AnnotationBuffer()
    if settings.annotations:
        for annotation in annotations_for(report):
            buffer.add(annotation)
        for warning in warnings:
            buffer.add(Annotation(AnnotationLevel.WARNING, warning, title=TITLE))
    else:
        # Without annotations, why the run stopped is still said as an error.
        stopped = stopped_annotation(report)
        if stopped is not None:
            buffer.add(stopped)
        out.writelines(WARNING_LINE.format(warning=w) + "\n" for w in warnings)
    buffer.flush(commands)


def _write_summary(path: Path, report: Report) -> None:
    # Sized to the room left in the step's summary file: GitHub drops the whole file over its
    # limit, and earlier writers in the same step count against it.
    write_summary(path, render_summary(report, limit=min(SUMMARY_LIMIT, summary_room(path))))


def post_statuses(
    report: Report,
    settings: Settings,
    out: TextIO,
    publisher_factory: Callable[[str, str, str, str], Publisher],
) -> list[str]:
    """Post the statuses if asked and possible; what went wrong comes back as warnings."""
    context = settings.github
    if not settings.status_checks or context.repository is None or not report.installables:
        return []
    if not settings.github_token:
        out.write(EMPTY_CREDENTIALS_NOTE + "\n")
        return []
    try:
        sha = commit_sha(context)
    except InputError as error:
        return [STATUS_SETUP_WARNING.format(reason=error)]
    if sha is None:
        out.write(NO_COMMIT_NOTE + "\n")
        return []
    statuses = statuses_for(report, context)
    try:
        with publisher_factory(
            settings.github_token, context.repository, context.api_url, sha
        ) as publisher:
            outcome = publisher.publish(statuses)
    except Exception as error:  # noqa: BLE001 - a status is never worth a lost verdict
        return [STATUS_SETUP_WARNING.format(reason=f"{type(error).__name__}: {error}")]
    out.writelines(POSTED_NOTE.format(context=name) + "\n" for name in outcome.posted)
    return list(outcome.warnings)
