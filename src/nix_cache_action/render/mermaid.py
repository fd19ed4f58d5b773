"""Report -> a Mermaid Gantt chart of builds and downloads, sized to Mermaid's limits.

GitHub renders ```mermaid blocks with Mermaid, which refuses a diagram longer than its
`maxTextSize` (50,000 characters) and shows an error instead: the chart is pruned to fit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from nix_cache_action.records import record
from nix_cache_action.render.format import duration
from nix_cache_action.report import Build, Report, substituter_name
from nix_cache_action.store_path import store_name

# Mermaid's default `maxTextSize`; GitHub does not raise it.
MERMAID_MAX_CHARS = 50_000
# Room left under that limit, in case the renderer adds to the text (a directive, a newline).
MERMAID_MARGIN_CHARS = 500
# More bars than this make a chart taller than anyone scrolls; the longest ones tell the story,
# and one bar per section stands for the rest.
MAX_TIMELINE_TASKS = 40
# Room for the line of a bar standing for the rest of a section (its name and two times).
REST_BAR_CHARS = 80
# About this many axis labels fit the run page's width without running into each other.
TARGET_TICKS = 8
# (interval in seconds, Mermaid's tickInterval, d3's axisFormat): the first whose ticks number
# at most TARGET_TICKS over the chart's span. Each format shows its interval's resolution, so no
# two neighbouring labels read the same.
_TICKS = (
    (0.01, "10millisecond", "%-S.%L s"),
    (0.05, "50millisecond", "%-S.%L s"),
    (0.1, "100millisecond", "%-S.%L s"),
    (0.25, "250millisecond", "%-S.%L s"),
    (0.5, "500millisecond", "%-S.%L s"),
    (1, "1second", "%M:%S"),
    (2, "2second", "%M:%S"),
    (5, "5second", "%M:%S"),
    (10, "10second", "%M:%S"),
    (30, "30second", "%M:%S"),
    (60, "1minute", "%M:%S"),
    (120, "2minute", "%M:%S"),
    (300, "5minute", "%H:%M"),
    (600, "10minute", "%H:%M"),
    (1800, "30minute", "%H:%M"),
    (3600, "1hour", "%H:%M"),
    (7200, "2hour", "%H:%M"),
    (21600, "6hour", "%H:%M"),
)
# A section's name by what it holds and the run it came from: plain words, no run labels.
SECTION_NAMES = {
    ("build", "Builds"): "Builds",
    ("retry", "Builds"): "Builds, once more without the failing cache",
    ("check", "Builds"): "Rebuilds for the reproducibility check",
    ("deep-check", "Builds"): "Rebuilds for the deep check",
}
# Longer names overflow their bars and push the chart wider than the summary's column.
MAX_NAME_CHARS = 60

# Store path names only use these characters; anything else (from a hand-written report) goes.
# Mermaid's Gantt lexer ends a task name at `:`, a statement at `;`, reads `#` as the start of an
# entity and `%` as a comment: none of them is in this set.
_UNSAFE = re.compile(r"[^A-Za-z0-9+._?=-]+")
# Names the Gantt lexer reads as a keyword or a date (Mermaid 11: `gantt\b`, `topAxis\b`,
# `inclusiveEndDates\b`, `\d\d\d\d-\d\d-\d\d\b`, ...) and so drops or misparses.
_KEYWORD = re.compile(
    r"(?:gantt|dateformat|inclusiveenddates|topaxis|axisformat|tickinterval|includes|excludes"
    r"|todaymarker|weekday|weekend|title|acctitle|accdescr|section|click|call|href)"
    r"(?![A-Za-z0-9])|\d{4}-\d\d-\d\d",
    re.IGNORECASE,
)


@record
class GanttTask:
    section: str
    name: str
    start: float  # seconds since the chart's origin
    seconds: float
    critical: bool = False  # drawn in red: a failed build
    # The bar standing for entries left out: its name is this module's own words, spaces kept.
    summary: bool = False


@record
class Gantt:
    source: str  # the diagram, without the ``` fence
    shown: int
    pruned: int  # shorter tasks left out to stay under the limits
    # What stopped the chart growing: Mermaid's size limit ("chars"), the task cap ("tasks").
    cut_by: Literal["chars", "tasks"] | None = None


def task_name(text: str) -> str:
    """A name the Gantt lexer reads as plain text: safe characters only, never a keyword."""
    name = _UNSAFE.sub("_", text).strip("_") or "unnamed"
    if _KEYWORD.match(name):
        name = "_" + name
    if len(name) > MAX_NAME_CHARS:
        name = name[: MAX_NAME_CHARS - 2] + ".."
    return name


def _section_name(text: str) -> str:
    # `section` takes the rest of the line; only a line break could end it early.
    return " ".join(text.split()) or "-"


def timeline_tasks(report: Report) -> list[GanttTask]:
    """Every timed build and download; entries whose start or length is unknown are left out.

    Each run's times count from that run's own start, and the runs of one job follow each other
    (build, then check, then deep-check): each run is shifted to start where the previous one
    ended, so a check's rebuild does not sit on top of the first build.
    """
    per_run: dict[str, list[GanttTask]] = {}
    order = [run.label for run in report.runs]
    for sub in report.substitutions:
        if sub.started is None or sub.seconds is None:
            continue
        # Downloads by cache: which cache the time went to is what a reader asks.
        section = f"Downloads from {substituter_name(sub.substituter)}"
        per_run.setdefault(sub.run, []).append(
            GanttTask(section, store_name(sub.path), sub.started, sub.seconds)
        )
    for build in report.builds:
        if build.started is None or build.seconds is None:
            continue
        per_run.setdefault(build.run, []).append(
            GanttTask(
                _build_section(build),
                report.drv_name(build.drv),
                build.started,
                build.seconds,
                critical=build.status == "failed",
            )
        )
    run_seconds: dict[str, float] = {}
    for run in report.runs:
        if run.seconds is not None:
            run_seconds[run.label] = max(run_seconds.get(run.label, 0.0), run.seconds)
    labels = list(dict.fromkeys([*order, *per_run]))
    tasks: list[GanttTask] = []
    offset = 0.0
    for label in labels:
        entries = per_run.get(label, [])
        if not entries:
            continue
        for task in entries:
            tasks.append(
                GanttTask(task.section, task.name, task.start + offset, task.seconds, task.critical)
            )
        ended = max(task.start + task.seconds for task in entries)
        offset += max(ended, run_seconds.get(label, 0.0))
    return tasks


def _build_section(build: Build) -> str:
    run = "check" if build.status == "checked" and build.run == "build" else build.run
    return SECTION_NAMES.get((run, "Builds"), "Builds")


def _task_line(task: GanttTask) -> str:
    # `dateFormat x` reads Unix milliseconds; counting from 0 puts the run's start at 00:00 on
    # the `%M:%S` axis (in viewers whose time zone is a whole number of hours from UTC).
    start = round(task.start * 1000)
    end = max(start, round((task.start + task.seconds) * 1000))
    tag = "crit, " if task.critical else ""
    name = task.name if task.summary else task_name(task.name)
    return f"    {name} :{tag}{start}, {end}\n"


def axis(span: float) -> tuple[str, str]:
    """Mermaid's (tickInterval, axisFormat) for a chart `span` seconds long."""
    for interval, tick, axis_format in _TICKS:
        if span / interval <= TARGET_TICKS:
            return tick, axis_format
    return _TICKS[-1][1], "%d %H:%M"


def _title(tasks: list[GanttTask]) -> str:
    downloads = any(t.section.startswith("Downloads") for t in tasks)
    builds = any(not t.section.startswith("Downloads") for t in tasks)
    if downloads and builds:
        return "Builds and downloads"
    return "Downloads" if downloads else "Builds"


def _rest_bars(left_out: list[GanttTask]) -> list[GanttTask]:
    """Per section, one bar for the entries the cap left out, from the first to the last."""
    rest: dict[str, list[GanttTask]] = {}
    for task in left_out:
        rest.setdefault(task.section, []).append(task)
    bars = []
    for name, tasks in rest.items():
        first = min(t.start for t in tasks)
        last = max(t.start + t.seconds for t in tasks)
        # Letters, digits, spaces and a dot only: safe for the Gantt lexer as it is.
        longest = duration(max(t.seconds for t in tasks))
        label = f"{len(tasks)} shorter ones of up to {longest}"
        bars.append(GanttTask(name, label, first, last - first, summary=True))
    return bars


def _header(tasks: list[GanttTask], title: str | None) -> str:
    span = max(t.start + t.seconds for t in tasks) - min(t.start for t in tasks)
    tick, axis_format = axis(span)
    return (
        "gantt\n"
        f"    title {_section_name(title or _title(tasks))}\n"
        "    dateFormat x\n"
        f"    axisFormat {axis_format}\n"
        f"    tickInterval {tick}\n"
        # The chart sits at 1970-01-01: a line for today would be drawn far past its right edge.
        "    todayMarker off\n"
    )


def _keep(
    items: list[tuple[GanttTask, str]], budget: int, max_tasks: int | None
) -> tuple[set[int], Literal["chars", "tasks"] | None]:
    """The longest entries that fit, and what stopped them (None: all fit)."""
    # The shortest entries go first; among equals the later ones, so the kept set is stable.
    by_length = sorted(
        range(len(items)), key=lambda i: (-items[i][0].seconds, items[i][0].start, i)
    )
    kept: set[int] = set()
    used = 0
    for index in by_length:
        if max_tasks is not None and len(kept) >= max_tasks:
            return kept, "tasks"
        cost = len(items[index][1])
        if used + cost > budget:
            return kept, "chars"  # everything after it is shorter: never skip ahead
        kept.add(index)
        used += cost
    return kept, None


def render_gantt(
    tasks: Iterable[GanttTask],
    *,
    title: str | None = None,
    max_chars: int = MERMAID_MAX_CHARS - MERMAID_MARGIN_CHARS,
    max_tasks: int | None = None,
) -> Gantt | None:
    """The Gantt source, its longest tasks kept until `max_chars` or `max_tasks` is reached;
    under the task cap, one bar per section stands for the entries left out.

    None when there is nothing timed to draw.
    """
    listed = list(tasks)
    items = [(task, _task_line(task)) for task in listed]
    if not items:
        return None
    header = _header(listed, title)
    sections = list(dict.fromkeys(task.section for task, _ in items))
    section_lines = {name: f"    section {_section_name(name)}\n" for name in sections}
    # Budget for every section header, whether or not pruning empties it, and for a bar of
    # the rest in each: simpler and safe.
    budget = max_chars - len(header) - sum(len(line) for line in section_lines.values())
    budget -= REST_BAR_CHARS * len(sections) if max_tasks is not None else 0
    kept, cut_by = _keep(items, budget, max_tasks)
    if not kept:
        return Gantt(source="", shown=0, pruned=len(items), cut_by=cut_by)
    by_section: dict[str, list[tuple[GanttTask, str]]] = {}
    for index in sorted(kept, key=lambda i: (items[i][0].start, i)):
        task, line = items[index]
        by_section.setdefault(task.section, []).append((task, line))
    if cut_by == "tasks":
        for bar in _rest_bars([task for i, (task, _) in enumerate(items) if i not in kept]):
            by_section.setdefault(bar.section, []).append((bar, _task_line(bar)))
    body = [header]
    for name in sections:
        if name in by_section:
            body.append(section_lines[name])
            body.extend(line for _, line in by_section[name])
    return Gantt(
        source="".join(body), shown=len(kept), pruned=len(items) - len(kept), cut_by=cut_by
    )


def timeline_markdown(gantt: Gantt) -> str:
    """The chart as a ```mermaid block, and a note on what pruning left out."""
    out = []
    if gantt.shown:
        # Task names are sanitised to characters without backticks: a plain fence is safe.
        out.append(f"```mermaid\n{gantt.source}```\n")
    if gantt.pruned:
        why = (
            f"under Mermaid's {MERMAID_MAX_CHARS:,}-character limit"
            if gantt.cut_by == "chars"
            else f"the chart to its {gantt.shown} longest entries"
        )
        entries = ("shorter " if gantt.shown else "") + (
            "entry" if gantt.pruned == 1 else "entries"
        )
        out.append(
            f"{gantt.pruned} {entries} left out to keep {why}; "
            "all of them are in the JSON report.\n"
        )
    return "\n".join(out)


def render_timeline(
    report: Report,
    *,
    max_tasks: int | None = MAX_TIMELINE_TASKS,
    max_chars: int = MERMAID_MAX_CHARS - MERMAID_MARGIN_CHARS,
) -> str:
    """The report's builds and downloads as a Gantt chart in markdown; "" when nothing is timed."""
    gantt = render_gantt(timeline_tasks(report), max_tasks=max_tasks, max_chars=max_chars)
    return "" if gantt is None else timeline_markdown(gantt)
