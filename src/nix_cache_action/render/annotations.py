"""Report -> annotations: the headline notice, an error per differing output and failed build.

Each is one entry in the run's checks list, so it says what happened and the next step in a few
lines; the whole story is in the summary and the report.
"""

from __future__ import annotations

from nix_cache_action.github.workflow_commands import Annotation, AnnotationLevel
from nix_cache_action.render.format import (
    check_name,
    first_copy_phrase,
    reproduce_commands,
    seconds,
    totals_phrase,
)
from nix_cache_action.report import Check, Installable, Report
from nix_cache_action.reproducibility import BUILD_FAILED, REPRODUCIBILITY_OFF
from nix_cache_action.store_path import store_name

ANNOTATION_LOG_LINES = 5
ANNOTATION_FILES_LISTED = 5

TITLE = "nix-cache-action"
VERDICT_TITLES = {
    "ok": "nix-cache-action: all built, no output differs",
    "failed": "nix-cache-action: failed",
    "not-reproducible": "nix-cache-action: not reproducible",
    "over-budget": "nix-cache-action: over budget",
    "warning": "nix-cache-action: not reproducible (reproducibility: warn)",
}
STOPPED_TITLE = "nix-cache-action stopped"
BAD_INPUT_TITLE = "nix-cache-action: input {name}"
BAD_INPUT_NOTE = (
    "Nothing was built: the input {name} could not be used. Fix the value in the workflow's"
    " `with:` block and run the job again."
)
WARNING_LINE = "nix-cache-action: warning: {warning}"


NOT_CHECKED_MESSAGE = (
    "{output} was built but not checked for reproducibility: {why}. It passes, unverified;"
    " run again to check it"
)
EXPECTED_UNCHECKED = frozenset({REPRODUCIBILITY_OFF, BUILD_FAILED})


def annotations_for(report: Report) -> list[Annotation]:
    """Why the run stopped, if it did; the headline notice; then an error per differing output
    and per failed installable or build."""
    stopped = stopped_annotation(report)
    found = [] if stopped is None else [stopped]
    verdict = report.verdict()
    found.append(Annotation(AnnotationLevel.NOTICE, figures(report), title=VERDICT_TITLES[verdict]))
    # In warn mode a difference is reported, not failed on: a warning, as the exit status says.
    level = (
        AnnotationLevel.ERROR if report.reproducibility_mode == "fail" else AnnotationLevel.WARNING
    )
    found.extend(
        Annotation(
            level,
            _difference_message(check, report.working_directory),
            title=check_name(check),
        )
        for check in report.checks
        if check.verdict == "differs"
    )
    found.extend(
        Annotation(AnnotationLevel.ERROR, _failure_message(report, item), title=item.name)
        for item in report.installables
        if not item.succeeded
    )
    # A check that could not run (the rebuild killed, refused, cut short) leaves the output
    # unverified: a reader of the run page sees it, not only the summary's reader.
    found.extend(
        Annotation(
            AnnotationLevel.WARNING,
            NOT_CHECKED_MESSAGE.format(output=check.path or check.drv, why=check.reason),
            title=check_name(check),
        )
        for check in report.checks
        if check.verdict == "not-checked" and check.reason not in EXPECTED_UNCHECKED
    )
    # Failed derivations that no failed installable's message names (a dependency shared by
    # installables that all failed, say) still get their own error.
    named = " ".join(item.error or "" for item in report.installables)
    own = {item.drv for item in report.installables}
    found.extend(
        Annotation(
            AnnotationLevel.ERROR,
            _build_message(build.error, build.log_tail),
            title=report.drv_name(build.drv),
        )
        for build in report.builds
        if build.status == "failed" and build.drv not in own and build.drv not in named
    )
    return found


def stopped_annotation(report: Report) -> Annotation | None:
    if report.stopped is None:
        return None
    return Annotation(AnnotationLevel.ERROR, report.stopped, title=STOPPED_TITLE)


def figures(report: Report) -> str:
    totals = report.totals()
    parts = [f"{totals_phrase(report)}, build time {seconds(totals.build_seconds)}"]
    if report.checks:
        parts.append(
            f"rebuild check: {totals.reproducible} reproducible, {totals.differs} differ,"
            f" {totals.not_checked} not checked"
        )
    elif report.reproducibility_mode == "off":
        parts.append("rebuild check: off")
    return "; ".join(parts)


def _difference_message(check: Check, working_directory: str | None) -> str:
    path = check.path or store_name(check.drv)
    rebuilt, first = check.check_nar_hash or "unknown", check.nar_hash or "unknown"
    headline = (
        f"{path} is not reproducible: the rebuild (NAR hash {rebuilt}) differs from"
        f" {first_copy_phrase(check)} ({first})."
    )
    lines = [headline]
    if check.differences:
        shown = [d.path or "(the output itself)" for d in check.differences]
        listed = ", ".join(shown[:ANNOTATION_FILES_LISTED])
        if len(shown) > ANNOTATION_FILES_LISTED or check.differences_truncated:
            listed += ", and more"
        lines.append(f"Files that differ: {listed}.")
    build, compare = reproduce_commands(check, working_directory)
    lines.append(f"Reproduce locally: {build}, then {compare}")
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
