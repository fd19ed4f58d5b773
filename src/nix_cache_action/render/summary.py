"""Report -> the markdown of the GitHub job summary, written once at the end of a step.

Pure functions that return markdown. GitHub drops a step's whole summary when it is over
1024 KiB, so `render_summary` shrinks it (diffoscope texts go first, then log tails, then long
lists) until it fits, and says so. Everything it leaves out is in the JSON report.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence

from nix_cache_action import __version__
from nix_cache_action.limits import GITHUB_SUMMARY_LIMIT, utf8
from nix_cache_action.records import record, replace
from nix_cache_action.render.format import (
    HIT_RATE_DEFINITION,
    baseline_phrase,
    bounded,
    clip,
    count,
    first_copy_phrase,
    first_line,
    human_bytes,
    percent,
    phase_times,
    reproduce_commands,
    seconds,
    shorten,
    times_unknown,
    totals_phrase,
    unreachable_caches,
)
from nix_cache_action.render.legs import legs_headline, legs_section
from nix_cache_action.render.markdown import code, details, escape_text, fenced, table
from nix_cache_action.render.mermaid import (
    MAX_TIMELINE_TASKS,
    Gantt,
    render_gantt,
    timeline_markdown,
    timeline_tasks,
)
from nix_cache_action.render.why import root_causes_markdown
from nix_cache_action.report import (
    Baseline,
    Build,
    CacheError,
    Check,
    FileDifference,
    Installable,
    MissReason,
    Report,
    SubstituterTotals,
    Totals,
    first_copy_of,
    substituter_name,
    sum_known,
)
from nix_cache_action.store_path import store_name

# This renderer is the one guard of GITHUB_SUMMARY_LIMIT: the writer sizes `limit` to the room
# left in the step's file, and the margin keeps clear of the limit itself.
SUMMARY_LIMIT = GITHUB_SUMMARY_LIMIT - 16 * 1024

# Per-item bounds that hold at every size: one pathological log line or diffoscope report must
# not crowd out everything else.
MAX_LOG_TAIL_LINES = 100
MAX_LOG_LINE_CHARS = 2_000
MAX_DIFFOSCOPE_CHARS = 60_000
MAX_ERRORS_SHOWN = 10
SLOWEST_BUILDS = 10

ICONS = {"ok": "✅", "failed": "❌", "not-reproducible": "❌", "over-budget": "❌", "warning": "⚠️"}
NOT_CHECKED = "⚪"

_REASONS: dict[MissReason, str] = {
    "cache-error": "Cache error",
    "not-in-cache": "Not in any cache",
}
CHECK_REBUILD = "Rebuilt to check reproducibility"
CANCELLED = "Cancelled: Nix stopped them before they finished"
LEG_LOG = "Its whole log is in its leg's job log; on that leg's runner:"
_REASON_ORDER = (*_REASONS.values(), CHECK_REBUILD, CANCELLED)
_KINDS = {
    "content": "content differs",
    "only-in-first": "only in the first copy",
    "only-in-rebuild": "only in the rebuild",
    "type": "file type differs",
}


# --- how much to show -------------------------------------------------------------------------


@record
class _Detail:
    diffoscope_chars: int = MAX_DIFFOSCOPE_CHARS  # 0: no diffoscope reports
    log_lines: int = MAX_LOG_TAIL_LINES  # 0: no log tails
    log_line_chars: int = MAX_LOG_LINE_CHARS
    list_items: int = 25
    table_rows: int = 100
    text_chars: int = 2_000
    timeline: bool = True
    minimal: bool = False  # the verdict and the totals only


_FULL = _Detail()
_NO_DIFFOSCOPE = replace(_FULL, diffoscope_chars=0)
_SHORT_LISTS = replace(_NO_DIFFOSCOPE, log_lines=0, list_items=5, table_rows=15)
# Each level drops a little more, in the order of what readers miss least: diffoscope reports
# (the differing-files table stays), then log tails (`nix log` gives the whole log), then lists.
_LEVELS = (
    _FULL,
    replace(_FULL, diffoscope_chars=5_000),
    _NO_DIFFOSCOPE,
    replace(_NO_DIFFOSCOPE, log_lines=20, log_line_chars=300),
    replace(_NO_DIFFOSCOPE, log_lines=0),
    replace(_SHORT_LISTS, text_chars=300),
    replace(_SHORT_LISTS, text_chars=300, timeline=False),
    replace(_SHORT_LISTS, text_chars=200, timeline=False, minimal=True),
)


@record
class _Facts:
    """What every level needs, derived once (a report may hold 100,000 substitutions)."""

    report: Report
    totals: Totals
    substituters: tuple[SubstituterTotals, ...]
    gantt: Gantt | None


# --- the summary --------------------------------------------------------------------------------


def render_summary(report: Report, *, limit: int = SUMMARY_LIMIT) -> str:
    """The job summary: at most `limit` bytes of UTF-8, cut down (and saying so) when needed."""
    facts = _Facts(
        report=report,
        totals=report.totals(),
        substituters=report.substituters(),
        # An aggregate draws no timeline (see _timeline_section): not worked out either.
        gantt=None
        if report.legs
        else render_gantt(timeline_tasks(report), max_tasks=MAX_TIMELINE_TASKS),
    )
    text = ""
    for level in _LEVELS:
        text = _render(facts, level, limit)
        if _size(text) <= limit:
            return text
    # Even the verdict alone is too big for `limit` (a tiny limit, or a huge error message):
    # cut bytes, keeping a whole character, and end with the note.
    note = f"\n\n{_cut_note([], limit)}"
    room = max(0, limit - _size(note))
    head = utf8(text)[:room].decode("utf-8", errors="ignore")
    return utf8(head + note)[:limit].decode("utf-8", errors="ignore")


def _legs(facts: _Facts, detail: _Detail) -> str:
    """An aggregate's legs (render/legs.py); nothing for a single run."""
    return legs_section(facts.report, max_rows=detail.table_rows)


def _size(text: str) -> int:
    return len(utf8(text))


def _render(facts: _Facts, detail: _Detail, limit: int) -> str:
    report = facts.report
    cut = _what_was_cut(facts, detail)
    parts = [_verdict_section(facts)]
    if cut:
        parts.append(_cut_note(cut, limit))
    if detail.minimal:
        parts.append(_totals_line(facts))
        parts.append(_footer(report))
        return "\n".join(part.rstrip("\n") + "\n" for part in parts)
    # The verdict of every output first: the table fits the first screen, the details of the
    # failures and differences follow it.
    sections: list[Callable[[_Facts, _Detail], str]] = [
        _legs,
        _outputs_section,
        _errors_section,
        _failed_section,
        _not_reproducible_section,
        _cache_errors_section,
        _warnings_section,
        _caches_section,
        _misses_section,
        _machines_section,
        _slowest_section,
        _timeline_section,
        _notes_section,
    ]
    parts.extend(section(facts, detail) for section in sections)
    parts.append(_footer(report))
    # A blank line between sections, so none runs on into the list or table before it.
    return "\n".join(part.rstrip("\n") + "\n" for part in parts if part)


def _what_was_cut(facts: _Facts, detail: _Detail) -> list[str]:
    report = facts.report
    cut = []
    if detail.minimal:
        return ["everything but the verdict and the totals"]
    chars = detail.diffoscope_chars
    if any(len(c.diffoscope or "") > chars for c in report.checks):
        cut.append("diffoscope reports" + (" (shortened)" if chars else ""))
    lines, line_chars = detail.log_lines, detail.log_line_chars
    if any(
        len(b.log_tail) > lines or any(len(line) > line_chars for line in b.log_tail)
        for b in report.builds
    ):
        cut.append("build log tails" + (" (shortened)" if lines else ""))
    if detail.list_items < _FULL.list_items:
        cut.append("long lists and tables (shortened)")
    if not detail.timeline and facts.gantt is not None:
        cut.append("the timeline")
    return cut


def _cut_note(cut: list[str], limit: int) -> str:
    left_out = f" Shortened or left out: {', '.join(cut)}." if cut else ""
    return (
        f"> **This summary was cut** to stay under {limit:,} bytes (GitHub drops a step's "
        f"whole job summary over {GITHUB_SUMMARY_LIMIT // 1024} KiB).{left_out} "
        "The whole report is in the JSON report.\n"
    )


def headline(report: Report) -> str:
    """One sentence for the verdict, e.g. `2 outputs built, 1 not reproducible`."""
    if report.legs:
        return legs_headline(report)
    totals = report.totals()
    if (
        report.installables
        and all(i.status == "cached" for i in report.installables)
        and not report.builds
        and not report.substitutions
    ):
        outputs = sum(len(i.outputs) for i in report.installables)
        return f"nothing to build: {count(outputs, 'output')} cached and verified"
    parts = [*_build_counts(report, totals), *_check_counts(report, totals)]
    if not parts and report.errors:
        parts.append(count(len(report.errors), "error"))
    if totals.cache_errors:
        parts.append(count(totals.cache_errors, "cache error"))
    return ", ".join(parts) or "nothing to build"


def headline_of_outputs(report: Report) -> str:
    """What the outputs came to, for an aggregate whose headline counts legs."""
    totals = report.totals()
    parts = [*_build_counts(report, totals), *_check_counts(report, totals)]
    return "Across them: " + (", ".join(parts) or "nothing built")


def _build_counts(report: Report, totals: Totals) -> list[str]:
    parts = []
    outputs = sum(len(i.outputs) for i in report.installables if i.status == "built")
    cached = sum(len(i.outputs) for i in report.installables if i.status == "cached")
    failed_installables = sum(1 for i in report.installables if not i.succeeded)
    if outputs:
        parts.append(_outputs_phrase(report, outputs))
    elif not report.installables and totals.built:
        parts.append(f"{count(totals.built, 'derivation')} built")
    if cached:
        parts.append(f"{count(cached, 'output')} in a cache and verified")
    if failed_installables:
        parts.append(f"{count(failed_installables, 'installable')} failed")
    elif totals.failed:
        parts.append(f"{count(totals.failed, 'build')} failed")
    return parts


def _outputs_phrase(report: Report, outputs: int) -> str:
    """`2 outputs built`, `1 output from a cache`, `3 outputs (1 built, 2 from a cache)`: a warm
    run that fetched everything must not read as one that built it."""
    fetched = {s.path for s in report.substitutions}
    built = {b.drv for b in report.builds if b.status == "built"}
    words = {"built": "built", "substituted": "from a cache", "present": "already in the store"}
    ways = dict.fromkeys(words, 0)
    for item in report.installables:
        if item.status == "built":
            for path in item.outputs.values():
                ways[first_copy_of(path, item.drv, fetched, built)] += 1
    said = [(n, words[way]) for way, n in ways.items() if n]
    # The totals count derivations (dependencies too), the headline outputs: where the two
    # differ, say both, so "2 outputs built" never stands over "4 built" unexplained.
    in_all = (
        f"{count(len(built), 'derivation')} built in all"
        if built and len(built) != ways["built"]
        else ""
    )
    if len(said) == 1:
        return f"{count(outputs, 'output')} {said[0][1]}" + (f" ({in_all})" if in_all else "")
    ways_said = ", ".join(f"{n} {way}" for n, way in said)
    return f"{count(outputs, 'output')} ({ways_said}{f'; {in_all}' if in_all else ''})"


def _check_counts(report: Report, totals: Totals) -> list[str]:
    parts = []
    checks = len(report.checks)
    if totals.differs:
        parts.append(f"{totals.differs} not reproducible")
    if checks and totals.reproducible == checks:
        parts.append("all reproducible")
    elif totals.reproducible:
        parts.append(f"{totals.reproducible} reproducible")
    if totals.not_checked and totals.not_checked < checks:
        parts.append(f"{totals.not_checked} not checked")
    return parts


def _verdict_section(facts: _Facts) -> str:
    report = facts.report
    verdict = report.verdict()
    lines = [f"## {ICONS[verdict]} nix-cache-action: {escape_text(headline(report))}", ""]
    mode = report.reproducibility_mode
    if report.incomplete:
        lines.append(
            "The log ends in the middle of a run (activities that never stopped): it does not"
            " show all that happened."
        )
    elif verdict == "failed" and report.legs:
        lines.append(
            "Not everything was built: the legs that failed come first in the table below, the"
            f" failures themselves after it. {escape_text(headline_of_outputs(report))}."
        )
    elif verdict == "failed":
        lines.append("Not everything was built: the failures come first below.")
    elif verdict == "not-reproducible":
        lines.append(
            f"A rebuild gave different bytes, and the reproducibility mode is `{mode}`: "
            "this step fails."
        )
    elif verdict == "over-budget":
        lines.append("Nothing failed, but the run went over a budget: this step fails.")
    elif verdict == "warning" and not any(c.verdict == "differs" for c in report.checks):
        lines.append(
            f"Over budget; the reproducibility mode is `{mode}`, so this step passes with a"
            " warning."
        )
    elif verdict == "warning":
        lines.append(
            f"A rebuild gave different bytes; the reproducibility mode is `{mode}`, "
            "so this step passes with a warning."
        )
    else:
        lines.append(_built_line(report))
    if report.budgets is not None and report.budgets.exceeded:
        lines += ["", *(f"- ⏱️ Over budget: {escape_text(m)}" for m in report.budgets.exceeded)]
    if report.baseline is not None:
        lines += ["", baseline_line(report.baseline)]
    return "\n".join(lines) + "\n"


def baseline_line(baseline: Baseline) -> str:
    source, said = baseline_phrase(baseline)
    return f"**Compared with {escape_text(source)}:** {escape_text(said)}."


def _built_line(report: Report) -> str:
    """ "Checked" only when every output was compared, and how: rebuilt now, or verified by an
    earlier run (a warm run rebuilds nothing and must not read as if it had)."""
    unchecked = sum(1 for c in report.checks if c.verdict == "not-checked")
    if not report.checks:
        return "Nothing failed."
    if report.reproducibility_mode == "off":
        return "Nothing failed; the reproducibility check is off."
    if unchecked:
        return (
            f"Nothing failed; {count(unchecked, 'output')} could not be checked"
            " (the reasons are in the outputs table)."
        )
    earlier = sum(1 for c in report.checks if c.previously_verified is not None)
    now = len(report.checks) - earlier
    how = [f"{now} rebuilt and compared"] * bool(now)
    how += [f"{earlier} verified by an earlier run, not rebuilt"] * bool(earlier)
    return f"Nothing failed, and every output was checked: {', '.join(how)}."


# --- failures -----------------------------------------------------------------------------------


def _errors_section(facts: _Facts, detail: _Detail) -> str:
    report = facts.report
    # Errors that name a failed build or a differing output are shown there, with their fix.
    shown_elsewhere = {b.drv for b in report.builds if b.status == "failed"}
    shown_elsewhere |= {c.drv for c in report.checks if c.verdict == "differs"}
    errors = [e for e in report.errors if not any(drv in e for drv in shown_elsewhere)]
    if not errors:
        return ""
    limit = min(MAX_ERRORS_SHOWN, detail.list_items)
    out = [f"### ❌ {count(len(errors), 'error')}", ""]
    out.append(fenced(clip(errors[0], detail.text_chars)))
    rest = errors[1:limit]
    if rest:
        body = "\n".join(fenced(clip(e, detail.text_chars)) for e in rest)
        out.append(details(f"{count(len(rest), 'more error')}", body))
    if len(errors) > limit:
        out.append(f"And {len(errors) - limit} more in the JSON report.\n")
    return "\n".join(out)


def _failed_section(facts: _Facts, detail: _Detail) -> str:
    report = facts.report
    builds = [b for b in report.builds if b.status == "failed"]
    # An installable whose error is a failed build's is said once, with that build.
    installables = [
        i
        for i in report.installables
        if not i.succeeded and not any(b.drv in (i.error or "") for b in builds)
    ]
    if not installables and not builds:
        return ""
    out = ["### ❌ Failed", ""]
    if installables:
        items = [_failed_installable(i, detail) for i in installables]
        out.extend(f"- {item}" for item in bounded(items, detail.list_items, "more installables"))
        out.append("")
    shown = builds[: detail.list_items]
    for build in shown:
        out.append(_failed_build(report, build, detail, in_a_leg=bool(report.legs)))
    if len(builds) > len(shown):
        rest = builds[len(shown) :]
        names = [code(report.drv_name(b.drv)) for b in rest[: 2 * detail.list_items]]
        etc = ", …" if len(rest) > len(names) else ""
        out.append(f"And {count(len(rest), 'more failed build')}: {', '.join(names)}{etc}.\n")
    return "\n".join(out)


def _failed_installable(item: Installable, detail: _Detail) -> str:
    why = escape_text(clip(first_line(item.error or "failed"), detail.text_chars))
    return f"{code(item.name)}: {why}"


def _build_error(error: str, drv: str | None) -> str:
    """Nix's message of a failed build in one line: its first, and the reason Nix 2.19+ gives
    on a line of its own ("Cannot build X.\nReason: builder failed ..."); the drv, named
    elsewhere in full, by its name."""
    why = first_line(error)
    reason = next((ln.strip() for ln in error.splitlines() if ln.strip().startswith("Reason:")), "")
    why = f"{why} {reason}".strip()
    if drv:
        why = why.replace(f"'{drv}'", store_name(drv)).replace(drv, store_name(drv))
    return why


def _failed_build(report: Report, build: Build, detail: _Detail, *, in_a_leg: bool = False) -> str:
    name = report.drv_name(build.drv)
    took = f" after {seconds(build.seconds)}" if build.seconds is not None else ""
    where = f" on {code(build.machine)}" if build.machine else ""
    # The drv is named once, in code; Nix's message repeats it in quotes.
    why = _build_error(build.error or "", build.drv)
    out = [
        f"#### ❌ {code(name)}",
        "",
        f"{code(build.drv)} failed{took}{where}"
        + (f": {escape_text(clip(why, detail.text_chars))}" if why else "."),
        "",
        # An aggregate's builds ran on the legs' runners: the log is in that leg's job.
        "Its whole log is in its leg's job log; on that runner:"
        if in_a_leg
        else "Read its whole log:",
        "",
        fenced(f"nix log {shlex.quote(build.drv)}", "sh"),
    ]
    if build.log_tail and detail.log_lines:
        lines = build.log_tail[-detail.log_lines :]
        text = "\n".join(clip(line.rstrip("\r\n"), detail.log_line_chars) for line in lines)
        out.append(details(f"Last {count(len(lines), 'line')} of the log of {name}", fenced(text)))
    return "\n".join(out)


def _not_reproducible_section(facts: _Facts, detail: _Detail) -> str:
    report = facts.report
    differing = [c for c in report.checks if c.verdict == "differs"]
    if not differing:
        return ""
    icon = ICONS[report.verdict()] if report.verdict() != "failed" else ICONS["not-reproducible"]
    out = [f"### {icon} Not reproducible", ""]
    shown = differing[: detail.list_items]
    where = facts.report.working_directory
    out.extend(_differing_check(check, detail, where) for check in shown)
    if len(differing) > len(shown):
        more = len(differing) - len(shown)
        out.append(f"And {count(more, 'more output')} that differed, in the JSON report.\n")
    return "\n".join(out)


def _differing_check(check: Check, detail: _Detail, working_directory: str | None) -> str:
    output = check.path or check.drv
    title = check.installable or store_name(output)
    first = check.nar_hash or "?"
    rebuild = check.check_nar_hash or "?"
    out = [
        f"#### {code(title)}"
        + (" (a dependency, rebuilt by the deep check)" if check.deep else ""),
        "",
        f"{code(output)} {_comparison(check)}.",
        "",
        f"- first copy: narHash {code(first)}",
        f"- rebuild: narHash {code(rebuild)}",
        "",
        "Reproduce it locally, then compare the two copies:",
        "",
        fenced("\n".join(reproduce_commands(check, working_directory)), "sh"),
    ]
    if check.differences:
        out.append(
            _differences_table(check.differences, detail, truncated=check.differences_truncated)
        )
    if check.diffoscope and detail.diffoscope_chars:
        text = clip(check.diffoscope, detail.diffoscope_chars)
        # diffoscope writes a unified diff: GitHub colours a `diff` block line by line.
        out.append(details(f"diffoscope: {store_name(output)}", fenced(text, "diff")))
    return "\n".join(out)


def _comparison(check: Check) -> str:
    return f"compared with {escape_text(first_copy_phrase(check))}"


def _differences_table(
    differences: Sequence[FileDifference], detail: _Detail, *, truncated: bool
) -> str:
    rows = [
        [
            code(d.path, in_table=True) if d.path else "(the output itself)",
            _KINDS.get(d.kind, escape_text(d.kind)),
            human_bytes(d.size) if d.size is not None else "-",
            human_bytes(d.check_size) if d.check_size is not None else "-",
            code(d.sha256[:12], in_table=True) if d.sha256 else "-",
            code(d.check_sha256[:12], in_table=True) if d.check_sha256 else "-",
        ]
        for d in differences[: detail.table_rows]
    ]
    header = ["File", "Change", "Size", "Size (rebuild)", "sha256", "sha256 (rebuild)"]
    text = table(header, rows, "llrrll")
    more = len(differences) - len(rows)
    if more or truncated:
        text += f"\nAnd {'more' if truncated else more} files differ (see the JSON report).\n"
    return text


# Since 2026-01-16 GitHub lets each repository create about 200 cache entries a minute; Magic
# Nix Cache makes one per store path, answers Nix with 418 for any error of the cache API, and on
# a 429 stops using the cache for the rest of the run.
MAGIC_THROTTLED = (
    (
        "GitHub throttled Magic Nix Cache: since 2026-01-16 a repository may create about 200"
        " cache entries a minute, and it makes one per store path; it answers Nix with 418, and"
        " Nix stops asking it for the rest of the run"
    ),
    (
        "Nothing is lost: Nix built what it could not fetch. Re-run later; to stay under the"
        " rate, build fewer or smaller closures per job, or use a binary cache of your own"
        " (Cachix, attic, an S3 bucket) instead of or beside Magic Nix Cache"
    ),
)
MAGIC_UPLOADED = "Magic Nix Cache uploaded {uploaded} to the GitHub Actions cache during this step."


def explain_cache_error(name: str, status: int | None) -> tuple[str, str]:
    """What an HTTP status from a cache means, and what to do about it."""
    magic = name == "Magic Nix Cache"
    if status in {418, 429} and magic:
        return MAGIC_THROTTLED
    if status is None:
        return (
            "no HTTP answer (connection refused, time-out or DNS)",
            "Check that the cache is reachable from the runner and its URL is right",
        )
    if status in {401, 403}:
        return (
            "the cache refused access",
            "Check the credentials (netrc-file, access-tokens) and the cache's permissions",
        )
    if status == 429:
        return ("the cache rate-limited this runner", "Re-run later, or ask less of it per run")
    if status >= 500:
        what = "Magic Nix Cache's daemon or GitHub's cache service" if magic else "the cache"
        return (
            f"{what} is down or failing (server error)",
            "Nix built what it could not fetch; re-run when the cache is back, or check its status",
        )
    return ("the cache answered with an error", "See the message; the JSON report has each URL")


def _cache_errors_section(facts: _Facts, detail: _Detail) -> str:
    errors = facts.report.cache_errors
    if not errors:
        return ""
    groups: dict[tuple[str, int | None], list[CacheError]] = {}
    for error in errors:
        groups.setdefault((error.substituter, error.status), []).append(error)
    rows = []
    for (url, status), items in list(groups.items())[: detail.table_rows]:
        name = substituter_name(url)
        meaning, fix = explain_cache_error(name, status)
        example = escape_text(clip(items[0].message, min(detail.text_chars, 200)))
        rows.append(
            [
                escape_text(name),
                str(status) if status is not None else "-",
                str(len(items)),
                escape_text(meaning),
                escape_text(fix),
                example,
            ]
        )
    header = ["Cache", "HTTP status", "Errors", "What it means", "What to do", "First message"]
    out = [f"### ⚠️ {count(len(errors), 'cache error')}", "", table(header, rows, "lrrlll")]
    if len(groups) > len(rows):
        out.append(f"And {len(groups) - len(rows)} more kinds of error in the JSON report.\n")
    return "\n".join(out)


def _warnings_section(facts: _Facts, detail: _Detail) -> str:
    warnings = facts.report.warnings
    if not warnings:
        return ""
    items = [
        escape_text(clip(first_line(w).removeprefix("warning:").strip(), detail.text_chars))
        for w in warnings
    ]
    listed = bounded(items, detail.list_items, "more in the JSON report")
    return "\n".join(
        [f"### ⚠️ {count(len(warnings), 'warning')} from Nix", "", *(f"- {i}" for i in listed)]
    )


# --- what was built, and from where ---------------------------------------------------------


def _outputs_section(facts: _Facts, detail: _Detail) -> str:
    """One row per installable output, the verdict second and the hash short, so that the
    table fits the run page (about 900 px); the full paths and hashes are in a fold."""
    report = facts.report
    rows: list[tuple[int, list[str]]] = []
    full: list[str] = []
    by_path = {c.path: c for c in report.checks if c.path}
    seen: set[str] = set()
    for item in report.installables:
        if not item.succeeded and not item.outputs:
            why = escape_text(clip(_build_error(item.error or item.status, item.drv), 120))
            rows.append((0, [_target(item.name, None), f"❌ {why}", "-"]))
            continue
        for out_name, path in item.outputs.items():
            check = by_path.get(path)
            seen.add(path)
            nar_hash = item.nar_hashes.get(out_name) or (check.nar_hash if check else None)
            rows.append(
                (
                    _severity(check),
                    [
                        _target(item.name, out_name),
                        _check_cell(check, report),
                        _short_hash(nar_hash),
                    ],
                )
            )
            full.append(_full_line(item.name, out_name, path, nar_hash))
    failed_rows = {i.name for i in report.installables if not i.succeeded and not i.outputs}
    for check in report.checks:
        if check.path in seen or (check.path is None and check.installable in failed_rows):
            continue  # an installable that failed has its row, with why, already
        name = check.installable or ("dependency" if check.deep else store_name(check.drv))
        nar_hash = check.nar_hash
        rows.append(
            (
                _severity(check),
                [_target(name, check.output), _check_cell(check, report), _short_hash(nar_hash)],
            )
        )
        full.append(_full_line(name, check.output, check.path, nar_hash))
    if not rows:
        return ""
    rows.sort(key=lambda row: row[0])  # stable: failures first, otherwise as built
    shown = [cells for _, cells in rows[: detail.table_rows]]
    header = ["Installable", "Reproducibility", "narHash"]
    out = ["### Outputs", "", table(header, shown)]
    if len(rows) > len(shown):
        out.append(f"And {count(len(rows) - len(shown), 'more output')} in the JSON report.\n")
    if full:
        listed = bounded(full, detail.list_items, "more in the JSON report")
        out.append(details("Store paths and full NAR hashes", "\n".join(listed)))
    return "\n".join(out)


# Characters of an installable's name in the Outputs table; the fold below has it whole.
TARGET_CHARS = 48
# Characters of a NAR hash's digest shown in the table: enough to tell two apart by eye.
SHORT_HASH_CHARS = 10


def _target(name: str, output: str | None) -> str:
    shown = shorten(name, TARGET_CHARS)
    return code(shown, in_table=True) + (
        f" ({escape_text(output)})" if output and output != "out" else ""
    )


def _short_hash(nar_hash: str | None) -> str:
    if not nar_hash:
        return "?"
    kind, _, digest = nar_hash.partition("-")
    shown = f"{kind}-{digest[:SHORT_HASH_CHARS]}…" if digest else nar_hash[:SHORT_HASH_CHARS]
    return code(shown, in_table=True)


def _full_line(name: str, output: str | None, path: str | None, nar_hash: str | None) -> str:
    which = f" ({escape_text(output)})" if output and output != "out" else ""
    hash_text = code(nar_hash) if nar_hash else "narHash unknown"
    # A log alone may not name the output's path: say so, never put the .drv in its place.
    where = code(path) if path else "store path unknown"
    return f"- {code(name)}{which}: {where}, {hash_text}"


def _severity(check: Check | None) -> int:
    if check is None:
        return 2
    return {"differs": 1, "not-checked": 2}.get(check.verdict, 3)


def _check_cell(check: Check | None, report: Report) -> str:
    if check is None:
        return f"{NOT_CHECKED} not checked"
    if check.verdict == "differs":
        # Only the `fail` mode fails the step on a difference; the others only warn.
        icon = ICONS["not-reproducible" if report.reproducibility_mode == "fail" else "warning"]
        return f"{icon} differs; {_comparison(check)}"
    if check.verdict == "reproducible" and check.previously_verified is not None:
        return f"✅ reproducible; verified {check.previously_verified.when()}, not rebuilt"
    if check.verdict == "reproducible":
        return f"✅ reproducible; {_comparison(check)}"
    why = f": {escape_text(clip(check.reason, 200))}" if check.reason else ""
    return f"{NOT_CHECKED} not checked{why}"


def _cache_cell(row: SubstituterTotals) -> str:
    """The cache's name, and its URL where the name does not already say it (a label such as
    Magic Nix Cache, a path after the host): never `host (http://host)`."""
    bare = row.url.split("?", 1)[0]
    if row.name == bare or row.name == bare.split("://", 1)[-1].rstrip("/"):
        return escape_text(row.name)
    return f"{escape_text(row.name)} ({code(bare, in_table=True)})"


def _caches_section(facts: _Facts, _: _Detail) -> str:
    rows = [
        [
            _cache_cell(s),
            str(s.substituted),
            human_bytes(s.nar_bytes),
            human_bytes(s.download_bytes),
            seconds(s.seconds),
            str(s.errors),
            seconds(s.seconds_lost) if s.errors else "-",
            # Served ÷ asked, with what it was asked: a rate of 0 of 0 is no failure.
            f"{percent(s.hit_rate)} of {s.queried}" if s.queried else percent(s.hit_rate),
        ]
        for s in facts.substituters
    ]
    out = ["### Caches", ""]
    out.extend(
        f"- ⚠️ {escape_text(line)}" for line in unreachable_caches(facts.report, facts.substituters)
    )
    magic = facts.report.magic_nix_cache
    if magic is not None:
        out.append(f"- {MAGIC_UPLOADED.format(uploaded=count(magic.uploaded, 'store path'))}")
        if magic.throttled:
            meaning, fix = MAGIC_THROTTLED
            out.append(f"- ⚠️ {escape_text(meaning)}. {escape_text(fix)}.")
    if len(out) > 2:
        out.append("")
    if rows:
        header = [
            "Cache",
            "Paths",
            "Unpacked",
            "Downloaded",
            "Seconds",
            "Errors",
            "Lost",
            "Hit rate",
        ]
        out.append(table(header, rows, "lrrrrrrr"))
        out.append("A cache's hit rate: paths it served ÷ the paths asked of it (of N).\n")
    out.append(_totals_line(facts))
    return "\n".join(out)


def _size_phrase(size: int | None, what: str) -> str:
    return f"{human_bytes(size)} {what}" if size is not None else f"size {what} unknown"


def _totals_line(facts: _Facts) -> str:
    totals = facts.totals
    phases = facts.report.phases
    line = (
        f"**All caches:** {escape_text(totals_phrase(facts.report))}"
        f"{f' ({HIT_RATE_DEFINITION})' if facts.report.caches_asked() else ''}; "
        f"{_size_phrase(totals.nar_bytes, 'unpacked')}, "
        f"{_size_phrase(totals.download_bytes, 'downloaded')}; "
        f"{count(totals.cache_errors, 'cache error')}."
    )
    timed = phase_times(phases)
    if timed and facts.report.legs:
        # Each leg's wall time per phase, added up: legs ran side by side, so this is work done,
        # not time waited (the legs table has each leg's time).
        line += f" Time in all legs together: {', '.join(timed)}."
    elif timed:
        line += f" Time: {', '.join(timed)}."
    elif times_unknown(facts.report):
        # Said once here; the tables show `?` for each time.
        line += " Times (`?` below): unknown, as a log read from a file holds none."
    return line + "\n"


def _misses_section(facts: _Facts, detail: _Detail) -> str:
    """Why each derivation had to be built (its cache miss), from the same builds the totals
    count; rebuilds for the check and builds Nix cancelled are listed apart, as not misses."""
    builds = facts.report.builds
    if not builds:
        return ""
    misses = [b for b in builds if b.status in {"built", "failed"}]
    apart = [b for b in builds if b.status not in {"built", "failed"}]
    out = [
        f"### Why {count(len(misses), 'derivation', 'derivations')} had to be built"
        if misses
        else "### Rebuilds",
        "",
    ]
    # The few that changed at the root lead; what every miss was, folded, follows.
    leading = root_causes_markdown(facts.report) if misses else ""
    if leading:
        out += [leading.rstrip("\n"), ""]
    folded: list[str] = []
    for label, members in _grouped(misses):
        out.append(_group_line(label, members))
        folded.append(_group_fold(facts.report, label, members, detail))
    if apart:
        if misses:
            out.append("")
            out.append("Not misses:")
            out.append("")
        for label, members in _grouped(apart):
            out.append(_group_line(label, members))
            folded.append(_group_fold(facts.report, label, members, detail))
    out.append("")
    out.extend(folded)
    return "\n".join(out)


def _grouped(builds: Sequence[Build]) -> list[tuple[tuple[str, str], list[Build]]]:
    groups: dict[tuple[str, str], list[Build]] = {}
    for build in builds:
        label = _reason_label(build)
        # The ledger's detail for check rebuilds only repeats the label.
        given = build.reason_detail
        why = "" if given.lower() == label.lower() or build.status == "cancelled" else given
        groups.setdefault((label, why), []).append(build)
    return sorted(groups.items(), key=lambda item: _REASON_ORDER.index(item[0][0]))


def _group_line(label: tuple[str, str], members: Sequence[Build]) -> str:
    name, why = label
    because = f" ({escape_text(clip(why, 300))})" if why else ""
    return f"- **{escape_text(name)}**{because}: {len(members)}"


def _group_fold(
    report: Report, label: tuple[str, str], members: Sequence[Build], detail: _Detail
) -> str:
    name, why = label

    def item(b: Build) -> str:
        return (
            code(report.drv_name(b.drv))
            + (f" ({seconds(b.seconds)})" if b.seconds is not None else "")
            + (" ❌ failed" if b.status == "failed" else "")
        )

    # Only what is shown is rendered: an aggregate's group holds tens of thousands.
    limit = detail.list_items
    shown = [item(b) for b in members[:limit]]
    if len(members) > limit:
        shown.append(f"and {len(members) - limit} more (all of them are in the JSON report)")
    summary = f"{name}" + (f": {clip(why, 120)}" if why else "") + f" ({len(members)})"
    return details(summary, "\n".join(f"- {item}" for item in shown))


THIS_MACHINE = "this machine"


def _machines_section(facts: _Facts, detail: _Detail) -> str:
    """Builds per machine, when they ran on more than one (remote builders)."""
    by_machine: dict[str, list[Build]] = {}
    for build in facts.report.builds:
        by_machine.setdefault(build.machine or THIS_MACHINE, []).append(build)
    if len(by_machine) < 2:
        return ""
    rows = [
        [
            escape_text(machine) if machine == THIS_MACHINE else code(machine, in_table=True),
            str(sum(1 for b in builds if b.status == "built")),
            str(sum(1 for b in builds if b.status == "failed")),
            str(sum(1 for b in builds if b.status == "checked")),
            seconds(sum_known([b.seconds for b in builds])),
        ]
        for machine, builds in list(by_machine.items())[: detail.table_rows]
    ]
    header = ["Machine", "Built", "Failed", "Checked", "Seconds"]
    return "\n".join(["### Builds by machine", "", table(header, rows, "lrrrr")])


def _reason_label(build: Build) -> str:
    if build.status == "cancelled":
        return CANCELLED
    return CHECK_REBUILD if build.reason is None else _REASONS[build.reason]


def _slowest_section(facts: _Facts, detail: _Detail) -> str:
    timed = [b for b in facts.report.builds if b.seconds is not None]
    if not timed:
        return ""
    timed.sort(key=lambda b: -(b.seconds or 0.0))
    rows = [
        [
            code(facts.report.drv_name(b.drv), in_table=True),
            escape_text(b.status),
            seconds(b.seconds),
            escape_text(_reason_label(b)),
        ]
        for b in timed[: min(SLOWEST_BUILDS, detail.table_rows)]
    ]
    header = ["Derivation", "Status", "Seconds", "Why it was built"]
    return "\n".join([f"### Slowest {count(len(rows), 'build')}", "", table(header, rows, "llrl")])


def _timeline_section(facts: _Facts, detail: _Detail) -> str:
    # An aggregate's legs ran on other machines, each timed from its own start: one axis for
    # all of them would draw a timeline that never happened (_Facts leaves it out). The legs
    # table has their times.
    if facts.gantt is None or not detail.timeline:
        return ""
    return "### Timeline\n\n" + timeline_markdown(facts.gantt)


def _notes_section(facts: _Facts, detail: _Detail) -> str:
    notes = facts.report.notes
    if not notes:
        return ""
    items = [escape_text(clip(note, detail.text_chars)) for note in notes]
    return "\n".join(["### Notes", "", *(f"- {n}" for n in bounded(items, detail.list_items))])


def _footer(report: Report) -> str:
    nix = report.nix
    version = " ".join(v for v in (nix.version, f"({nix.flavour})" if nix.flavour else None) if v)
    on = f" · Nix {escape_text(version)}" if version else ""
    if nix.text:
        on = f" · {escape_text(nix.text)}"
    return (
        f"<sub>nix-cache-action {escape_text(__version__)}{on} · reproducibility mode "
        f"{escape_text(report.reproducibility_mode)}</sub>\n"
    )
