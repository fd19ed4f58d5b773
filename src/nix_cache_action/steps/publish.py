"""What every step of the action publishes, each part on its own: the JSON report, the job
summary, the step outputs, the annotations, then the commit statuses. A part that fails becomes
one warning and the rest still goes out; nothing here changes the exit status.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from nix_cache_action import debug
from nix_cache_action.errors import EXIT_FAILED, InputError
from nix_cache_action.github.workflow_commands import (
    Annotation,
    AnnotationBuffer,
    AnnotationLevel,
    WorkflowCommands,
    summary_room,
    write_outputs,
    write_summary,
)
from nix_cache_action.limits import cut
from nix_cache_action.nix.process import Interrupted, sigterm_interrupts
from nix_cache_action.records import record
from nix_cache_action.redaction import Redactor
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
    CommitStatus,
    statuses_for,
)
from nix_cache_action.render.summary import SUMMARY_LIMIT, render_summary
from nix_cache_action.render.terminal import failed_builds
from nix_cache_action.report import Report, ReportFileError, read_report, write_report
from nix_cache_action.settings import (
    GitHubContext,
    commit_sha,
    fallback_context,
    load_context,
)
from nix_cache_action.store_path import store_name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from nix_cache_action.github.statuses import Publisher

OUTPUT_DIRECTORY = "nix-cache-action"
REPORT_FILE = "report.json"
LOG_FILE = "nix.log"
# action.yml restores and saves these folders under RUNNER_TEMP/nix-cache-action.
MEMORY_DIRECTORY = "memory"
BASELINE_DIRECTORY = "baseline"
RECORD_FILE = "verified.json"
BASELINE_UNUSABLE = "the baseline report {path} could not be used ({why}); no comparison"
REPORT_NOTE = "nix-cache-action: the JSON report is at {path}"
STATUSES_CANCELLED = "the commit statuses were cut short: the job was cancelled ({signal})"
PUBLISH_FAILED = "could not write {what}: {error}; the verdict and the rest are unaffected"


# Report -> the commit statuses to post: one per installable (a build), one for the whole flake
# (the aggregate).
StatusMaker = Callable[[Report, GitHubContext], list[CommitStatus]]


def status_publisher(token: str, repository: str, api_url: str, sha: str) -> Publisher:
    """github.statuses.StatusPublisher, imported when a status is to be posted: PyGithub and
    requests take a tenth of a second to import, which every step would pay before its build
    (and a step that posts no status would pay for nothing)."""
    from nix_cache_action.github.statuses import StatusPublisher  # noqa: PLC0415

    return StatusPublisher(token, repository, api_url, sha)


@record
class StepIO:
    """Where a step's words go: the runner's commands on stdout, the masks already set."""

    commands: WorkflowCommands
    stdout: TextIO
    redactor: Redactor
    # `publisher_factory(token, repository, api_url, sha)` makes the commit status publisher.
    publisher_factory: Callable[[str, str, str, str], Publisher] = status_publisher


class Publishing(Protocol):
    """What publish() needs of a step's settings (the build's and the aggregate's have it)."""

    @property
    def summary(self) -> bool: ...
    @property
    def annotations(self) -> bool: ...
    @property
    def status_checks(self) -> bool: ...
    @property
    def github_token(self) -> str: ...
    @property
    def github(self) -> GitHubContext: ...


@record
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


def read_baseline(path: Path) -> tuple[Report | None, str | None]:
    """The earlier report action.yml restored, if any; one that cannot be used is a note."""
    if not path.is_file():
        return None, None
    try:
        return read_report(path), None
    except ReportFileError as unusable:
        return None, BASELINE_UNUSABLE.format(path=path, why=unusable.why)


def bad_input(
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
        failures.attempt("the job summary", lambda: write_step_summary(summary, report))
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
        except Exception as error:  # noqa: BLE001 - a full disk, a directory, a bad file, a bug
            debug.traceback(f"could not publish {what}", error)
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            self.warnings.append(cut(PUBLISH_FAILED.format(what=what, error=reason)))
            return False
        return True


def publish(  # noqa: PLR0913 - one keyword per thing published, each optional in tests
    report: Report,
    *,
    settings: Publishing,
    paths: Paths,
    commands: WorkflowCommands,
    stdout: TextIO | None = None,
    publisher_factory: Callable[[str, str, str, str], Publisher] = status_publisher,
    statuses: StatusMaker = statuses_for,
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
        failures.attempt("the job summary", lambda: write_step_summary(summary, report))
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
                    post_statuses(report, settings, commands, publisher_factory, statuses)
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
    settings: Publishing,
    commands: WorkflowCommands,
) -> None:
    if settings.annotations:
        for warning in warnings:
            buffer.add(Annotation(AnnotationLevel.WARNING, warning, title=TITLE))
    else:
        for warning in warnings:
            commands.echo(WARNING_LINE.format(warning=warning))


def write_step_summary(path: Path, report: Report) -> None:
    # Sized to the room left in the step's summary file: GitHub drops the whole file over its
    # limit, and earlier writers in the same step count against it.
    write_summary(path, render_summary(report, limit=min(SUMMARY_LIMIT, summary_room(path))))


def post_statuses(
    report: Report,
    settings: Publishing,
    commands: WorkflowCommands,
    publisher_factory: Callable[[str, str, str, str], Publisher],
    statuses_of: StatusMaker = statuses_for,
) -> list[str]:
    """Post the statuses if asked and possible; what went wrong comes back as warnings."""
    context = settings.github
    repository = context.repository
    statuses = statuses_of(report, context) if settings.status_checks and repository else []
    if not statuses or repository is None:
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
    try:
        with publisher_factory(
            settings.github_token, repository, context.api_url, sha
        ) as publisher:
            outcome = publisher.publish(statuses)
    except Exception as error:  # noqa: BLE001 - a status is never worth a lost verdict
        return [STATUS_SETUP_WARNING.format(reason=f"{type(error).__name__}: {error}")]
    for name in outcome.posted:
        commands.echo(POSTED_NOTE.format(context=name))
    return list(outcome.warnings)
