"""The action's main: inputs from the environment, the build, then what GitHub shows of it.

One direction: settings -> engine -> Report -> publishers (JSON report, job summary, step
outputs, commit statuses, annotations). Whatever happens in the build, the publishers run with
what is known, so a failed, cancelled or misconfigured run still leaves its report behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from nix_cache_action.engine import BuildOptions, Session, run_build
from nix_cache_action.errors import InputError, NixCacheActionError
from nix_cache_action.github.statuses import (
    CommitStatus,
    PublishOutcome,
    StatusPublisher,
    status_for,
)
from nix_cache_action.github.workflow_commands import (
    Annotation,
    AnnotationBuffer,
    AnnotationLevel,
    WorkflowCommands,
    write_outputs,
    write_summary,
)
from nix_cache_action.ledger import store_name
from nix_cache_action.nix.runner import Interrupted, Nix, sigterm_interrupts, without_inputs
from nix_cache_action.render.summary import render_summary
from nix_cache_action.report import Check, Installable, Report, substituter_name, write_report
from nix_cache_action.settings import (
    GitHubContext,
    Settings,
    commit_sha,
    input_variable,
    load_context,
    load_settings,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

    from typing_extensions import Self

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

OUTPUT_DIRECTORY = "nix-cache-action"
REPORT_FILE = "report.json"
LOG_FILE = "nix.log"
NIX_EXECUTABLE = "nix"
# An annotation is one line in the checks list; the whole story is in the summary and report.
ANNOTATION_LOG_LINES = 5
ANNOTATION_FILES_LISTED = 5
OUTPUT_NAMES = (
    "reproducible",
    "hit-rate",
    "substituted",
    "built",
    "failed",
    "build-seconds",
    "out-paths",
    "nar-hashes",
    "report",
)

TITLE = "nix-cache-action"
VERDICT_TITLES = {
    "ok": "nix-cache-action: all built, no output differs",
    "failed": "nix-cache-action: failed",
    "not-reproducible": "nix-cache-action: not reproducible",
    "warning": "nix-cache-action: not reproducible (reproducibility: warn)",
}
BAD_INPUT_TITLE = "nix-cache-action: input {name}"
BAD_INPUT_NOTE = (
    "Nothing was built: the input {name} could not be used. Fix the value in the workflow's"
    " `with:` block and run the job again."
)
FATAL_TITLE = "nix-cache-action stopped"
INTERRUPTED_MESSAGE = (
    "The run was cancelled ({signal}); Nix was stopped. The report and summary hold what was"
    " known by then; run the job again for a verdict."
)
STATUS_SETUP_WARNING = (
    "Commit statuses not posted: {reason}. The build verdict stands; the job summary and the"
    " JSON report have it."
)
EMPTY_CREDENTIALS_NOTE = "nix-cache-action: commit statuses skipped: github-token is empty"
NO_COMMIT_NOTE = "nix-cache-action: commit statuses skipped: the run names no commit (GITHUB_SHA)"
REPRODUCE_HINT = (
    "Reproduce locally: nix build {installable} && nix build --rebuild --keep-failed"
    " {installable}, then diffoscope {output} {output}.check"
)


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


class Publisher(Protocol):
    """What the action needs of StatusPublisher; tests pass their own."""

    def publish(self, statuses: Iterable[CommitStatus]) -> PublishOutcome: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


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

    paths = Paths.for_context(settings.github)
    session = Session(
        options=BuildOptions(
            installables=settings.installables,
            reproducibility=settings.reproducibility.value,
            deep=settings.deep_check,
        )
    )
    fatal: str | None = None
    exit_status: int | None = None
    try:
        with sigterm_interrupts():
            try:
                _build(settings, session, paths, stdout, without_inputs(environ))
            except Interrupted as stop:
                fatal = INTERRUPTED_MESSAGE.format(signal=stop)
                exit_status = EXIT_INTERRUPTED
                # A cancelled job has seconds left: the report first, no commit statuses.
                settings = dataclasses.replace(settings, status_checks=False)
            except NixCacheActionError as error:
                fatal = str(error)
                exit_status = EXIT_FAILED
    finally:
        # Whatever happened above (an unexpected exception too), GitHub gets what is known.
        session.stopped = fatal
        report = session.report()
        if fatal is not None:
            report = dataclasses.replace(report, errors=(*report.errors, fatal))
        buffer = AnnotationBuffer()
        if fatal is not None:
            buffer.add(Annotation(AnnotationLevel.ERROR, fatal, title=FATAL_TITLE))
        publish(
            report,
            settings=settings,
            paths=paths,
            commands=commands,
            buffer=buffer,
            stdout=stdout,
            publisher_factory=publisher_factory,
        )
    return report.exit_status() if exit_status is None else exit_status


def _build(
    settings: Settings, session: Session, paths: Paths, stdout: TextIO, env: dict[str, str]
) -> None:
    def say(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    paths.directory.mkdir(parents=True, exist_ok=True)
    say(f"nix-cache-action: the raw Nix log goes to {paths.log}")
    # Nix's messages quote builders' output; between these two lines the runner reads no
    # workflow commands, so a build log cannot add annotations, masks or outputs of its own.
    resume = f"nix-cache-action-{secrets.token_hex(16)}"
    stdout.write(f"::stop-commands::{resume}\n")
    try:
        # The inputs (the GitHub token among them) are no business of Nix, its builders and
        # hooks, or diffoscope: Nix gets the environment without them.
        nix = Nix(NIX_EXECUTABLE, cwd=settings.working_directory, env=env)
        with paths.log.open("wb") as raw_log:
            run_build(nix, session, raw_log=raw_log, say=say)
    finally:
        stdout.write(f"::{resume}::\n")
        stdout.flush()


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
        write_summary(context.step_summary, render_summary(report))
    if context.output is not None:
        write_outputs(context.output, outputs_for(report, paths.report))
    return EXIT_FAILED


def publish(  # noqa: PLR0913 - one keyword per thing published, each optional in tests
    report: Report,
    *,
    settings: Settings,
    paths: Paths,
    commands: WorkflowCommands,
    buffer: AnnotationBuffer | None = None,
    stdout: TextIO | None = None,
    publisher_factory: Callable[[str, str, str, str], Publisher] = StatusPublisher,
) -> None:
    """The report, the summary, the step outputs, the commit statuses and the annotations."""
    buffer = AnnotationBuffer() if buffer is None else buffer
    out = sys.stdout if stdout is None else stdout
    context = settings.github
    write_report(report, paths.report)
    out.write(f"nix-cache-action: the JSON report is at {paths.report}\n")
    if settings.summary and context.step_summary is not None:
        write_summary(context.step_summary, render_summary(report))
    if context.output is not None:
        write_outputs(context.output, outputs_for(report, paths.report))
    warnings = post_statuses(report, settings, out, publisher_factory)
    if settings.annotations:
        for annotation in annotations_for(report):
            buffer.add(annotation)
        for warning in warnings:
            buffer.add(Annotation(AnnotationLevel.WARNING, warning, title=TITLE))
    else:
        for warning in warnings:
            out.write(f"nix-cache-action: warning: {warning}\n")
    buffer.flush(commands)


# --- step outputs -------------------------------------------------------------------------


def outputs_for(report: Report, report_path: Path) -> dict[str, str]:
    """Every output the action declares, as strings; empty where a figure is unknown."""
    totals = report.totals()
    compared = [c for c in report.checks if c.verdict != "not-checked"]
    reproducible = "" if not compared else "false" if totals.differs else "true"
    outputs = {
        "reproducible": reproducible,
        "hit-rate": _number(totals.hit_rate),
        "substituted": str(totals.substituted),
        "built": str(totals.built),
        "failed": str(totals.failed),
        "build-seconds": _number(totals.build_seconds),
        "out-paths": _json({i.name: i.outputs for i in report.installables}),
        "nar-hashes": _json({i.name: i.nar_hashes for i in report.installables}),
        "report": str(report_path),
    }
    assert tuple(outputs) == OUTPUT_NAMES  # noqa: S101 - action.yml declares exactly these
    return outputs


def _number(value: float | None) -> str:
    return "" if value is None else str(value)


def _json(value: object) -> str:
    # One line: easy to pass on with fromJSON() and to read in a log.
    return json.dumps(value, separators=(",", ":"))


# --- annotations --------------------------------------------------------------------------


def annotations_for(report: Report) -> list[Annotation]:
    """The headline notice, then an error per differing output and per failed installable."""
    verdict = report.verdict()
    found = [Annotation(AnnotationLevel.NOTICE, figures(report), title=VERDICT_TITLES[verdict])]
    # In warn mode a difference is reported, not failed on: a warning, as the exit status says.
    level = (
        AnnotationLevel.ERROR if report.reproducibility_mode == "fail" else AnnotationLevel.WARNING
    )
    found.extend(
        Annotation(level, _difference_message(check), title=_check_title(check))
        for check in report.checks
        if check.verdict == "differs"
    )
    found.extend(
        Annotation(AnnotationLevel.ERROR, _failure_message(report, item), title=item.name)
        for item in report.installables
        if item.status != "built"
    )
    # Failed derivations that no failed installable's message names (a dependency shared by
    # installables that all failed, say) still get their own error.
    named = " ".join(item.error or "" for item in report.installables)
    own = {item.drv for item in report.installables}
    found.extend(
        Annotation(
            AnnotationLevel.ERROR,
            _build_message(build.error, build.log_tail),
            title=store_name(build.drv),
        )
        for build in report.builds
        if build.status == "failed" and build.drv not in own and build.drv not in named
    )
    return found


def figures(report: Report) -> str:
    totals = report.totals()
    hit_rate = "n/a" if totals.hit_rate is None else f"{totals.hit_rate:.0%}"
    seconds = "n/a" if totals.build_seconds is None else f"{totals.build_seconds:.1f} s"
    parts = [
        (
            f"{totals.substituted} store paths substituted, {totals.built} built,"
            f" {totals.failed} failed (cache hit rate {hit_rate}, build time {seconds})"
        ),
    ]
    if report.checks:
        parts.append(
            f"rebuild check: {totals.reproducible} reproducible, {totals.differs} differ,"
            f" {totals.not_checked} not checked"
        )
    elif report.reproducibility_mode == "off":
        parts.append("rebuild check: off")
    return "; ".join(parts)


def _check_title(check: Check) -> str:
    if check.installable:
        return check.installable
    return f"{store_name(check.drv)} (deep check)"


def _difference_message(check: Check) -> str:
    output = check.output or store_name(check.drv)
    if check.first_copy == "substituted" and check.substituter:
        against = f"the copy from {substituter_name(check.substituter)}"
    elif check.first_copy == "built":
        against = "the first build on this runner"
    else:
        against = "the copy already in the store"
    rebuilt, first = check.check_nar_hash or "unknown", check.nar_hash or "unknown"
    headline = (
        f"{output} is not reproducible: the rebuild (NAR hash {rebuilt}) differs from {against}"
        f" ({first})."
    )
    lines = [headline]
    if check.differences:
        shown = [d.path or "(the output itself)" for d in check.differences]
        more = len(shown) - ANNOTATION_FILES_LISTED
        listed = ", ".join(shown[:ANNOTATION_FILES_LISTED])
        if more > 0 or check.differences_truncated:
            listed += ", and more"
        lines.append(f"Files that differ: {listed}.")
    if check.installable and check.output:
        lines.append(REPRODUCE_HINT.format(installable=check.installable, output=check.output))
    return "\n".join(lines)


def _failure_message(report: Report, item: Installable) -> str:
    own = next((b for b in report.builds if b.status == "failed" and b.drv == item.drv), None)
    message = item.error or ("could not be evaluated" if item.status == "error" else "failed")
    if own is None:
        return message
    return _build_message(message, own.log_tail)


def _build_message(message: str | None, log_tail: tuple[str, ...]) -> str:
    text = message or "the build failed"
    tail = [line for line in log_tail if line.strip()][-ANNOTATION_LOG_LINES:]
    if tail:
        text += "\nLast lines of the build log:\n" + "\n".join(tail)
    return text


# --- commit statuses ----------------------------------------------------------------------


def statuses_for(report: Report, context: GitHubContext) -> list[CommitStatus]:
    """One status per installable: its own verdict, the run's hit rate and time."""
    totals = report.totals()
    seconds = _wall_seconds(report)
    target_url = (
        f"{context.server_url}/{context.repository}/actions/runs/{context.run_id}"
        if context.repository and context.run_id
        else None
    )
    statuses = []
    for item in report.installables:
        verdict = _installable_verdict(report, item.name)
        failed = item.status != "built"
        status = status_for(
            item.name, verdict=verdict, hit_rate=totals.hit_rate, seconds=seconds, failed=failed
        )
        if verdict == "differs" and not failed and report.reproducibility_mode != "fail":
            # reproducibility: warn passes the job; a red status would block the pull request
            # all the same. The description still says NOT reproducible.
            status = dataclasses.replace(status, state="success")
        statuses.append(dataclasses.replace(status, target_url=target_url))
    return statuses


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
    out.writelines(f"nix-cache-action: commit status posted: {name}\n" for name in outcome.posted)
    return list(outcome.warnings)


def _installable_verdict(report: Report, name: str) -> str:
    checks = [c for c in report.checks if c.installable == name and not c.deep]
    if any(c.verdict == "differs" for c in checks):
        return "differs"
    if checks and all(c.verdict == "reproducible" for c in checks):
        return "reproducible"
    return "not-checked"


def _wall_seconds(report: Report) -> float | None:
    # The Nix runs only: phases.evaluation overlaps the build run's own seconds.
    known = [r.seconds for r in report.runs if r.seconds is not None]
    return sum(known) if known else None


__all__ = [
    "OUTPUT_NAMES",
    "Paths",
    "annotations_for",
    "figures",
    "main",
    "outputs_for",
    "publish",
    "statuses_for",
]
