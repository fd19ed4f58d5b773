"""The Gantt timeline: what Mermaid's lexer accepts, and staying under its 50,000 characters.

The task-name rules come from Mermaid 11's Gantt grammar (a task name ends at `:`; `#` starts an
entity, `;` ends a statement, `%` a comment; `gantt-1.0` or `2024-01-01-x` at the start of a line
read as a keyword or a date). They were checked by parsing the output with Mermaid 11 in Node.
"""

from __future__ import annotations

import itertools
import re

import cmarkgfm
import pytest

from nix_cache_action.render.mermaid import (
    MAX_NAME_CHARS,
    MAX_TIMELINE_TASKS,
    MERMAID_MAX_CHARS,
    TARGET_TICKS,
    GanttTask,
    axis,
    render_gantt,
    render_timeline,
    task_name,
    timeline_markdown,
    timeline_tasks,
)
from nix_cache_action.report import Build, Report, Run, Substitution

MNC = "http://127.0.0.1:37515?trusted=1&compression=zstd"
NIXOS = "https://cache.nixos.org"
TASK_LINE = re.compile(r"^    (?P<name>[^:\n]+) :(?P<crit>crit, )?(?P<start>\d+), (?P<end>\d+)$")


def _path(letter: str, name: str) -> str:
    return f"/nix/store/{letter * 32}-{name}"


def _tasks(source: str) -> list[tuple[str, int, int, bool]]:
    """(name, start ms, end ms, critical) of every task line; asserts every other line is known."""
    tasks = []
    for line in source.splitlines()[1:]:
        match = TASK_LINE.match(line)
        if match is None:
            assert line.startswith(
                (
                    "    title ",
                    "    dateFormat ",
                    "    axisFormat ",
                    "    tickInterval ",
                    "    todayMarker ",
                    "    section ",
                )
            ), line
            continue
        tasks.append(
            (match["name"], int(match["start"]), int(match["end"]), match["crit"] is not None)
        )
    return tasks


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("hello-2.12.1", "hello-2.12.1"),
        ("python3.11-a?b=c+d_e", "python3.11-a?b=c+d_e"),
        ("evil: 1000, 2000", "evil_1000_2000"),  # `:` would end the name and start the data
        ("a#b;c%d", "a_b_c_d"),
        ("line\nbreak", "line_break"),
        ("```", "unnamed"),
        ("gantt-1.0", "_gantt-1.0"),  # read as the `gantt` keyword otherwise
        ("2024-01-01-snapshot", "_2024-01-01-snapshot"),  # read as a date otherwise
        ("topAxis-2", "_topAxis-2"),
        ("sectionize", "sectionize"),  # a keyword only as a whole word
    ],
)
def test_task_names_are_safe_for_the_gantt_lexer(text: str, name: str) -> None:
    assert task_name(text) == name


def test_long_task_names_are_clipped() -> None:
    name = task_name("x" * 300)

    assert len(name) == MAX_NAME_CHARS
    assert name.endswith("..")


# --- the chart ----------------------------------------------------------------------------------


def test_the_chart_uses_millisecond_timestamps_and_a_minutes_axis() -> None:
    gantt = render_gantt(
        [
            GanttTask("Downloads", "glibc-2.39-52", 0.4, 2.5),
            GanttTask("Builds", "broken-1.0", 3.6, 7.2, critical=True),
        ]
    )

    assert gantt is not None
    assert gantt.source == (
        "gantt\n"
        "    title Builds and downloads\n"
        "    dateFormat x\n"
        "    axisFormat %M:%S\n"
        # 10.4 s in all: a label every 2 s, minutes and seconds.
        "    tickInterval 2second\n"
        "    todayMarker off\n"
        "    section Downloads\n"
        "    glibc-2.39-52 :400, 2900\n"
        "    section Builds\n"
        "    broken-1.0 :crit, 3600, 10800\n"
    )
    assert (gantt.shown, gantt.pruned, gantt.cut_by) == (2, 0, None)


def test_nothing_to_draw_is_none() -> None:
    assert render_gantt([]) is None
    assert render_timeline(Report()) == ""


def test_entries_with_unknown_times_are_left_out() -> None:
    report = Report(
        substitutions=(
            Substitution(_path("a", "timed"), NIXOS, seconds=1.0, started=0.0),
            Substitution(_path("b", "no-start"), NIXOS, seconds=1.0, started=None),
            Substitution(_path("c", "no-length"), NIXOS, seconds=None, started=2.0),
        ),
        builds=(
            Build(_path("d", "built.drv"), "built", seconds=4.0, started=1.0),
            Build(_path("e", "unknown.drv"), "built", seconds=None, started=None),
        ),
    )

    tasks = timeline_tasks(report)

    assert [(t.section, t.name) for t in tasks] == [
        ("Downloads from cache.nixos.org", "timed"),
        ("Builds", "built"),
    ]


def test_a_later_run_starts_where_the_earlier_one_ended() -> None:
    report = Report(
        substitutions=(
            Substitution(_path("a", "dep"), MNC, seconds=2.0, started=0.5, run="build"),
        ),
        builds=(
            Build(_path("b", "app.drv"), "built", seconds=30.0, started=3.0, run="build"),
            Build(_path("b", "app.drv"), "checked", seconds=28.0, started=0.5, run="check"),
            Build(_path("c", "lib.drv"), "failed", seconds=1.0, started=0.0, run="build"),
        ),
        runs=(Run("build", seconds=40.0), Run("check", seconds=30.0)),
    )

    tasks = timeline_tasks(report)

    assert [(t.section, t.name, t.start, t.critical) for t in tasks] == [
        ("Downloads from Magic Nix Cache", "dep", 0.5, False),
        ("Builds", "app", 3.0, False),
        ("Builds", "lib", 0.0, True),
        # The build run took 40 s (longer than its last entry): the check run starts there.
        ("Rebuilds for the reproducibility check", "app", 40.5, False),
    ]


def test_one_run_needs_no_run_label_in_its_sections() -> None:
    report = Report(builds=(Build(_path("a", "x.drv"), "built", 1.0, 0.0, run="build"),))

    assert [t.section for t in timeline_tasks(report)] == ["Builds"]


# --- pruning -------------------------------------------------------------------------------------


def _many_substitutions(count: int) -> Report:
    # Distinct lengths (count / 100 s down to 0.01 s) so "the shortest" is well defined.
    return Report(
        substitutions=tuple(
            Substitution(
                _path("p", f"python3.12-some-rather-long-package-name-{i}"),
                MNC,
                seconds=(i + 1) / 100,
                started=(i % 600) / 10,
            )
            for i in range(count)
        )
    )


def test_a_huge_timeline_is_pruned_under_mermaids_limit_shortest_first() -> None:
    report = _many_substitutions(50_000)

    gantt = render_gantt(timeline_tasks(report), max_tasks=None)

    assert gantt is not None
    assert len(gantt.source) < MERMAID_MAX_CHARS
    assert gantt.cut_by == "chars"
    assert gantt.shown + gantt.pruned == 50_000
    assert 500 < gantt.shown < 1_000  # about 60 characters a line
    kept = _tasks(gantt.source)
    assert len(kept) == gantt.shown
    # The kept ones are exactly the longest: 50,000 * 10 ms down to the shortest kept.
    lengths = sorted((end - start for _, start, end, _ in kept), reverse=True)
    assert lengths == [10 * (50_000 - i) for i in range(gantt.shown)]


def test_the_note_says_how_many_were_pruned() -> None:
    markdown = render_timeline(_many_substitutions(50_000), max_tasks=None)
    html = cmarkgfm.github_flavored_markdown_to_html(markdown)

    chart = re.search(r'<pre lang="mermaid"><code>(.*?)</code></pre>', html, re.DOTALL)
    assert chart is not None
    assert len(chart[1]) < MERMAID_MAX_CHARS
    shown = len(_tasks(chart[1]))
    assert (
        f"{50_000 - shown} shorter entries left out to keep under Mermaid's 50,000-character "
        "limit; all of them are in the JSON report." in html
    )


def test_the_task_cap_keeps_the_longest_and_says_so() -> None:
    markdown = render_timeline(_many_substitutions(1_000))

    assert markdown.count("    python3.12-") == MAX_TIMELINE_TASKS
    assert "    python3.12-some-rather-long-package-name-999 :" in markdown
    assert f"name-{999 - MAX_TIMELINE_TASKS} :" not in markdown
    rest = 1_000 - MAX_TIMELINE_TASKS
    assert (
        f"{rest} shorter entries left out to keep the chart to its {MAX_TIMELINE_TASKS} longest"
        " entries" in markdown
    )
    # One bar stands for the rest, from the first of them to the last.
    assert f"    {rest} shorter ones of up to 9.6 s :0, " in markdown


@pytest.mark.parametrize("span", [0.05, 0.3, 1.0, 4.0, 10.4, 59.0, 130.0, 600.0, 3000.0, 9000.0])
def test_no_two_neighbouring_axis_labels_read_the_same(span: float) -> None:
    tick, axis_format = axis(span)
    seconds = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}
    number = int(re.match(r"\d+", tick)[0])  # type: ignore[index]
    interval = number * seconds[tick[len(str(number)) :]]
    labels = [_format(i * interval, axis_format) for i in range(int(span / interval) + 2)]
    assert len(labels) <= TARGET_TICKS + 2
    assert all(a != b for a, b in itertools.pairwise(labels)), labels


def _format(at: float, axis_format: str) -> str:
    """d3's time format for the few directives the axis uses, at `at` seconds after 0."""
    millis = round(at * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    values = {
        "%H": f"{hours:02d}",
        "%M": f"{minutes:02d}",
        "%S": f"{secs:02d}",
        "%L": f"{millis:03d}",
        "%d": "01",
    }
    for directive, value in values.items():
        axis_format = axis_format.replace(directive, value)
    return axis_format


def test_the_title_says_what_is_drawn() -> None:
    builds = render_gantt([GanttTask("Builds", "app", 0.0, 1.0)])
    assert builds is not None
    assert "    title Builds\n" in builds.source


def test_a_limit_too_small_for_any_task_draws_no_chart_but_says_why() -> None:
    gantt = render_gantt([GanttTask("Builds", "app", 0.0, 1.0)], max_chars=50)

    assert gantt is not None
    assert (gantt.shown, gantt.pruned, gantt.source) == (0, 1, "")
    markdown = timeline_markdown(gantt)
    assert "```" not in markdown
    assert markdown.startswith("1 entry left out to keep under Mermaid's")
