"""Report -> the plain-text account printed at the end of a run."""

from __future__ import annotations

from collections.abc import Callable, Container

from nix_cache_action.render.format import (
    baseline_phrase,
    check_name,
    count,
    human_bytes,
    phase_times,
    seconds,
    times_unknown,
    totals_phrase,
    unreachable_caches,
)
from nix_cache_action.render.why import root_causes_terminal
from nix_cache_action.report import Build, LegResult, Report, SubstituterTotals

# The end of a failed build's log, in the terminal: where the error usually is.
TERMINAL_LOG_LINES = 10


def failed_builds(report: Report) -> list[Build]:
    """The failed builds that have a log to show, each once."""
    return [b for b in report.builds if b.status == "failed" and b.log_tail]


def _cache_line(row: SubstituterTotals) -> str:
    # What is not known (a recorded log has no times, Nix 2.8 no unpacked sizes) is left out
    # rather than shown as `?` or `0 B`.
    facts = [count(row.substituted, "path")]
    if row.nar_bytes:
        facts.append(human_bytes(row.nar_bytes))
    if row.seconds is not None:
        facts.append(seconds(row.seconds))
    if row.errors:
        facts.append(count(row.errors, "error"))
    return f"  cache {row.name}: {', '.join(facts)}"


TERMINAL_LEGS = 10


def _leg_line(leg: LegResult) -> str:
    where = " on ".join(part for part in (leg.system, leg.runner) if part)
    if leg.verdict == "missing":
        return f"  leg {leg.id} ({where}): missing, {leg.why}"
    facts = [f"{leg.built} built", f"{leg.substituted} fetched"]
    if leg.seconds is not None:
        facts.append(seconds(leg.seconds))
    return f"  leg {leg.id} ({where}): {leg.verdict}, {', '.join(facts)}"


def render_terminal(report: Report, said: Container[str] = ()) -> str:
    """The account's last lines. `said` is what the live account printed already: an error,
    warning or note it said is not said again."""

    def unsaid(text: str) -> bool:
        return not any(
            f"{who}{kind}{text}" in said
            for who in ("nix-cache-action: ", "")
            for kind in ("", "warning: ", "error: ")
        )

    lines = [f"nix-cache-action: {report.verdict()}"]
    if report.runs or report.builds or report.substitutions or report.stopped is None:
        lines.append(f"  {totals_phrase(report)}")
    timed = phase_times(report.phases)
    if timed:
        lines.append(f"  {', '.join(timed)}")
    elif times_unknown(report):
        lines.append("  times unknown: a log read from a file holds none")
    # Failing and missing legs first (the aggregate sorted them); a few lines, not 256.
    lines.extend(_leg_line(leg) for leg in report.legs[:TERMINAL_LEGS])
    if len(report.legs) > TERMINAL_LEGS:
        rest = report.legs[TERMINAL_LEGS:]
        ok = sum(1 for leg in rest if leg.verdict == "ok")
        lines.append(f"  and {count(len(rest), 'more leg')} ({ok} ok): see the report")
    if report.duplicate_builds:
        lines.append(
            f"  {count(len(report.duplicate_builds), 'derivation')} built in more than one leg"
        )
    rows = report.substituters()
    lines.extend(_cache_line(row) for row in rows)
    lines.extend(f"  {line}" for line in unreachable_caches(report, rows))
    for check in report.checks:
        # Named as everywhere else, by installable or derivation name: a log alone often
        # knows a check's derivation and not its output path, and a line per kind of path
        # would read as two kinds of thing.
        target = check_name(check)
        if check.output and check.output != "out":
            target += f" ({check.output})"
        lines.append(
            f"  check {target}: {check.verdict}" + (f" ({check.reason})" if check.reason else "")
        )
    lines.extend(root_causes_terminal(report))
    for build in failed_builds(report):
        lines.append(
            f"  failed: {report.drv_name(build.drv)}"
            + (f" on {build.machine}" if build.machine else "")
        )
        lines.extend(f"    | {line}" for line in build.log_tail[-TERMINAL_LOG_LINES:])
    lines.extend(_closing(report, unsaid))
    return "\n".join(lines)


def _closing(report: Report, unsaid: Callable[[str], bool]) -> list[str]:
    """Errors, warnings, budgets, the baseline and notes: the last lines of the account."""
    lines: list[str] = []
    errors = [e for e in report.errors if e.strip() and unsaid(e)]
    lines.extend(f"  {error.splitlines()[0]}" for error in errors[:10])
    lines.extend(f"  {w.splitlines()[0]}" for w in report.warnings[:10] if unsaid(w))
    if report.budgets is not None:
        lines.extend(f"  over budget: {message}" for message in report.budgets.exceeded)
    if report.baseline is not None:
        source, said = baseline_phrase(report.baseline)
        lines.append(f"  compared with {source}: {said}")
    lines.extend(f"  note: {note}" for note in report.notes if unsaid(note))
    return lines
