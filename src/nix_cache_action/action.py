"""The action's main: inputs from the environment, the build, then what GitHub shows of it.

One direction: settings -> engine -> Report -> publishers (JSON report, job summary, step
outputs, commit statuses, annotations). Whatever happens in the build, the publishers run with
what is known, so a failed, cancelled or misconfigured run still leaves its report behind.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from nix_cache_action.engine import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    UNEXPECTED,
    BuildOptions,
    run_job,
)
from nix_cache_action.errors import InputError
from nix_cache_action.github.statuses import Publisher, StatusPublisher
from nix_cache_action.github.workflow_commands import (
    Annotation,
    AnnotationBuffer,
    AnnotationLevel,
    WorkflowCommands,
    configure_logging,
    summary_room,
    write_outputs,
    write_summary,
)
from nix_cache_action.limits import cut
from nix_cache_action.magic_nix_cache import read_daemon_log
from nix_cache_action.nix.commands import Nix
from nix_cache_action.nix.process import Interrupted, Subprocesses, sigterm_interrupts
from nix_cache_action.redaction import Redactor, environment_secrets
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
from nix_cache_action.render.terminal import failed_builds
from nix_cache_action.report import Report, ReportFileError, read_report, write_report
from nix_cache_action.settings import (
    GitHubContext,
    Settings,
    commit_sha,
    fallback_context,
    input_variable,
    load_context,
    load_settings,
    without_inputs,
)
from nix_cache_action.store_path import store_name
from nix_cache_action.verification import Where

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

OUTPUT_DIRECTORY = "nix-cache-action"
REPORT_FILE = "report.json"
LOG_FILE = "nix.log"
# action.yml restores and saves these folders under RUNNER_TEMP/nix-cache-action.
MEMORY_DIRECTORY = "memory"
BASELINE_DIRECTORY = "baseline"
RECORD_FILE = "verified.json"
BASELINE_UNUSABLE = "the baseline report {path} could not be used ({why}); no comparison"
DEBUG_VARIABLE = "RUNNER_DEBUG"
NIX_EXECUTABLE = "nix"
LOG_NOTE = "nix-cache-action: the raw Nix log goes to {path}"
REPORT_NOTE = "nix-cache-action: the JSON report is at {path}"
STATUSES_CANCELLED = "the commit statuses were cut short: the job was cancelled ({signal})"
PUBLISH_FAILED = "could not write {what}: {error}; the verdict and the rest are unaffected"

log = logging.getLogger(__name__)


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

    @property
    def record(self) -> Path:
        """The verification record: restored before the run and saved after it (action.yml)."""
        return self.directory / MEMORY_DIRECTORY / RECORD_FILE

    @property
    def saved_report(self) -> Path:
        """This run's report, saved with the record: the next run's baseline."""
        return self.directory / MEMORY_DIRECTORY / REPORT_FILE

    @property
    def baseline(self) -> Path:
        """The base branch's last report (this branch's for a push), as action.yml restored it."""
        return self.directory / BASELINE_DIRECTORY / REPORT_FILE


def main(
    environ: Mapping[str, str] = os.environ,
    stdout: TextIO | None = None,
    *,
    publisher_factory: Callable[[str, str, str, str], Publisher] = StatusPublisher,
) -> int:
    """Run the action; the exit status is the step's, and follows the verdict.

    `publisher_factory(token, repository, api_url, sha)` makes the commit status publisher.
    """
    # Looked up now rather than as a default argument, so a replaced sys.stdout is honoured.
    stdout = sys.stdout if stdout is None else stdout
    commands = WorkflowCommands(stdout)
    if environ.get(DEBUG_VARIABLE) == "1":  # the runner's "debug logging" switch
        configure_logging(logging.DEBUG)
    # Masked before anything else is printed, even if an input turns out to be wrong: Nix
    # quotes its configuration back, and the report and summary quote Nix.
    secrets = environment_secrets(environ, input_variable("github-token"))
    for secret in sorted(secrets):
        commands.add_mask(secret)
    redactor = Redactor.of(secrets)
    try:
        settings = load_settings(environ)
    except InputError as error:
        return _bad_input(error, environ, commands, redactor)
    paths = Paths.for_context(settings.github)
    try:
        report, status = _run(settings, paths, environ, commands, stdout)
    except Exception as error:
        log.debug("unexpected error", exc_info=True)
        why = cut(UNEXPECTED.format(kind=type(error).__name__, error=error))
        report, status = Report(errors=(why,), stopped=why), EXIT_FAILED
    if status == EXIT_INTERRUPTED:
        # A cancelled job has seconds left: the report first, no commit statuses.
        settings = dataclasses.replace(settings, status_checks=False)
    report = redactor.report(report)
    publish(
        report,
        settings=settings,
        paths=paths,
        commands=commands,
        stdout=stdout,
        publisher_factory=publisher_factory,
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

    baseline, baseline_note = _baseline(paths.baseline)
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
        report = dataclasses.replace(report, notes=(*report.notes, baseline_note))
    report = dataclasses.replace(report, working_directory=_from_workspace(settings))
    # Read last: the daemon uploads while the builds run.
    return dataclasses.replace(report, magic_nix_cache=read_daemon_log(environ)), status


def _from_workspace(settings: Settings) -> str | None:
    """working-directory relative to the checkout, None for the checkout itself."""
    workspace = settings.github.workspace
    if workspace is None:
        return None
    try:
        relative = settings.working_directory.relative_to(workspace.resolve())
    except ValueError:
        return None
    return None if str(relative) == "." else str(relative)


def _baseline(path: Path) -> tuple[Report | None, str | None]:
    """The earlier report action.yml restored, if any; one that cannot be used is a note."""
    if not path.is_file():
        return None, None
    try:
        return read_report(path), None
    except ReportFileError as unusable:
        return None, BASELINE_UNUSABLE.format(path=path, why=unusable.why)


def _bad_input(
    error: InputError,
    environ: Mapping[str, str],
    commands: WorkflowCommands,
    redactor: Redactor,
) -> int:
    """One error naming the input; a report and summary that say why nothing was built."""
    try:
        context = load_context(environ)
    except InputError:
        # The bad value is part of the context itself (GITHUB_REPOSITORY, say): only the
        # runner's own paths are used.
        context = fallback_context(environ)
    message = redactor.text(str(error))
    report = Report(
        errors=(message,), stopped=message, notes=(BAD_INPUT_NOTE.format(name=error.name),)
    )
    commands.error(message, title=BAD_INPUT_TITLE.format(name=error.name))
    paths = Paths.for_context(context)
    failures = Failures()
    failures.attempt("the JSON report", lambda: write_report(report, paths.report))
    summary, output = context.step_summary, context.output
    if summary is not None:
        failures.attempt("the job summary", lambda: _write_summary(summary, report))
    if output is not None:
        failures.attempt(
            "the step outputs", lambda: write_outputs(output, outputs_for(report, paths.report))
        )
    for warning in failures.warnings:
        commands.warning(warning, title=TITLE)
    return EXIT_FAILED


class Failures:
    """What could not be published, each said once as a warning: one publisher failing never
    stops the others, and never changes the exit status."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def attempt(self, what: str, publish_one: Callable[[], None]) -> bool:
        try:
            publish_one()
        except Interrupted:
            raise  # a cancellation is not a failure of this one publisher
        except Exception as error:  # a full disk, a directory, a bad file, a bug
            log.debug("could not publish %s", what, exc_info=True)
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            self.warnings.append(cut(PUBLISH_FAILED.format(what=what, error=reason)))
            return False
        return True


def publish(  # noqa: PLR0913 - one keyword per thing published, each optional in tests
    report: Report,
    *,
    settings: Settings,
    paths: Paths,
    commands: WorkflowCommands,
    stdout: TextIO | None = None,
    publisher_factory: Callable[[str, str, str, str], Publisher] = StatusPublisher,
) -> None:
    """The report, the summary, the step outputs, the annotations, then the commit statuses.

    Each on its own: what fails becomes a warning and the rest still goes out. The statuses
    come last, as they wait on the network: a cancellation in the middle of them has the
    annotations and outputs already written.
    """
    out = sys.stdout if stdout is None else stdout
    context = settings.github
    failures = Failures()
    if failures.attempt("the JSON report", lambda: write_report(report, paths.report)):
        commands.echo(REPORT_NOTE.format(path=paths.report))
    summary, output = context.step_summary, context.output
    if settings.summary and summary is not None:
        failures.attempt("the job summary", lambda: _write_summary(summary, report))
    if output is not None:
        failures.attempt(
            "the step outputs", lambda: write_outputs(output, outputs_for(report, paths.report))
        )
    buffer = AnnotationBuffer()
    if settings.annotations:
        failures.attempt("the annotations", lambda: buffer.extend(annotations_for(report)))
    else:
        # Without annotations, why the run stopped is still said as an error.
        stopped = stopped_annotation(report)
        if stopped is not None:
            buffer.add(stopped)
    _warn(buffer, failures.warnings, settings, commands)
    buffer.flush(commands)
    failures.attempt("the failed builds' logs", lambda: _fold_failed_logs(report, commands))
    warnings: list[str] = []
    failures = Failures()
    try:
        # A cancellation now stops the posting, not the step: the rest is out already.
        with sigterm_interrupts():
            failures.attempt(
                "the commit statuses",
                lambda: warnings.extend(
                    post_statuses(report, settings, commands, publisher_factory)
                ),
            )
    except Interrupted as signal:
        warnings.append(STATUSES_CANCELLED.format(signal=signal))
    _warn(buffer, [*warnings, *failures.warnings], settings, commands)
    buffer.flush(commands)
    out.flush()


def _fold_failed_logs(report: Report, commands: WorkflowCommands) -> None:
    """Each failed build's log in a fold of the step's log, where the annotation points to.
    The lines are the builder's: inside the fold they are printed with commands paused."""
    for build in failed_builds(report):
        with commands.group(f"Log of the failed build {store_name(build.drv)}"), commands.paused():
            for line in build.log_tail:
                commands.echo_raw(line)


def _warn(
    buffer: AnnotationBuffer,
    warnings: Sequence[str],
    settings: Settings,
    commands: WorkflowCommands,
) -> None:
    if settings.annotations:
        for warning in warnings:
            buffer.add(Annotation(AnnotationLevel.WARNING, warning, title=TITLE))
    else:
        for warning in warnings:
            commands.echo(WARNING_LINE.format(warning=warning))


def _write_summary(path: Path, report: Report) -> None:
    # Sized to the room left in the step's summary file: GitHub drops the whole file over its
    # limit, and earlier writers in the same step count against it.
    write_summary(path, render_summary(report, limit=min(SUMMARY_LIMIT, summary_room(path))))


def post_statuses(
    report: Report,
    settings: Settings,
    commands: WorkflowCommands,
    publisher_factory: Callable[[str, str, str, str], Publisher],
) -> list[str]:
    """Post the statuses if asked and possible; what went wrong comes back as warnings."""
    context = settings.github
    if not settings.status_checks or context.repository is None or not report.installables:
        return []
    if not settings.github_token:
        commands.echo(EMPTY_CREDENTIALS_NOTE)
        return []
    try:
        sha = commit_sha(context)
    except InputError as error:
        return [STATUS_SETUP_WARNING.format(reason=error)]
    if sha is None:
        commands.echo(NO_COMMIT_NOTE)
        return []
    statuses = statuses_for(report, context)
    try:
        with publisher_factory(
            settings.github_token, context.repository, context.api_url, sha
        ) as publisher:
            outcome = publisher.publish(statuses)
    except Exception as error:  # noqa: BLE001 - a status is never worth a lost verdict
        return [STATUS_SETUP_WARNING.format(reason=f"{type(error).__name__}: {error}")]
    for name in outcome.posted:
        commands.echo(POSTED_NOTE.format(context=name))
    return list(outcome.warnings)
