"""The job summary as GitHub shows it: rendered by cmark-gfm, GitHub's own markdown renderer.

Each test builds a Report like the ones a run produces (Magic Nix Cache on its fixed address,
cache.nixos.org, a failed build, a differing rebuild) and asserts on the HTML, not on markdown
source, so a broken table or an unclosed fence fails here as it would on GitHub.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from nix_cache_action import records
from nix_cache_action.limits import GITHUB_SUMMARY_LIMIT
from nix_cache_action.magic_nix_cache import read_daemon_log
from nix_cache_action.render.markdown import code, escape_text, fenced
from nix_cache_action.render.mermaid import MAX_TIMELINE_TASKS
from nix_cache_action.render.summary import (
    SUMMARY_LIMIT,
    explain_cache_error,
    headline,
    render_summary,
)
from nix_cache_action.report import (
    Build,
    CacheError,
    Check,
    FileDifference,
    Installable,
    MagicNixCache,
    Mode,
    NixInfo,
    Phases,
    Report,
    Run,
    Substitution,
    Verification,
)

MNC = "http://127.0.0.1:37515?trusted=1&compression=zstd"
NIXOS = "https://cache.nixos.org"


def _path(letter: str, name: str) -> str:
    return f"/nix/store/{letter * 32}-{name}"


HELLO_DRV = _path("a", "hello-2.12.1.drv")
HELLO = _path("b", "hello-2.12.1")
APP_DRV = _path("c", "my-app-0.3.0.drv")
APP = _path("d", "my-app-0.3.0")
BROKEN_DRV = _path("f", "broken-tool-1.0.drv")
GLIBC = _path("g", "glibc-2.39-52")
BASH = _path("h", "bash-5.2p37")

LOG_TAIL = (
    "building",
    "cc -O2 -c foo.c",
    "foo.c:3:10: fatal error: <missing.h> & friends: No such file or directory",
    "| a table-looking line |",
    "make: *** [Makefile:12: all] Error 1",
)
DIFFOSCOPE = (
    f"--- {APP}\n+++ {APP}.check\n├── bin/my-app\n│ -built at 1700000000\n│ +built at 1700000042\n"
)


def _report(**changes: object) -> Report:
    report = Report(
        substitutions=(
            Substitution(GLIBC, NIXOS, 30_000_000, 7_000_000, 2.5, 0.4, "build"),
            Substitution(BASH, NIXOS, 1_500_000, 400_000, 0.3, 0.5, "build"),
            Substitution(HELLO, MNC, 270_000, 90_000, 0.2, 3.1, "build"),
        ),
        builds=(
            Build(
                APP_DRV,
                "built",
                42.0,
                3.5,
                "cache-error",
                "Magic Nix Cache answered HTTP 418",
                run="build",
            ),
            Build(
                BROKEN_DRV,
                "failed",
                7.2,
                3.6,
                "not-in-cache",
                "no configured cache had it",
                error=f"error: builder for '{BROKEN_DRV}' failed with exit code 2;\n  last lines:",
                log_tail=LOG_TAIL,
                run="build",
            ),
            Build(
                APP_DRV,
                "checked",
                40.0,
                1.0,
                None,
                "rebuilt to check reproducibility",
                run="check",
            ),
            Build(
                HELLO_DRV,
                "checked",
                5.0,
                41.0,
                None,
                "rebuilt to check reproducibility",
                run="check",
            ),
        ),
        checks=(
            Check(
                HELLO_DRV,
                "out",
                HELLO,
                "reproducible",
                nar_hash="sha256-hELLo0000000000000000000000000000000000000=",
                check_nar_hash="sha256-hELLo0000000000000000000000000000000000000=",
                first_copy="substituted",
                substituter=MNC,
                installable=".#hello",
                run="check",
            ),
            Check(
                APP_DRV,
                "out",
                APP,
                "differs",
                nar_hash="sha256-fIRST000000000000000000000000000000000000=",
                check_nar_hash="sha256-rEBUILD0000000000000000000000000000000000=",
                first_copy="built",
                installable=".#my-app",
                differences=(
                    FileDifference(
                        "bin/my-app", "content", 1000, 1004, "0123abcd" * 8, "fedc9876" * 8
                    ),
                    FileDifference("share/build-id", "only-in-rebuild", None, 16, None, "ab" * 32),
                ),
                diffoscope=DIFFOSCOPE,
                run="check",
            ),
        ),
        installables=(
            Installable(
                ".#hello",
                HELLO_DRV,
                {"out": HELLO},
                nar_hashes={"out": "sha256-hELLo0000000000000000000000000000000000000="},
            ),
            Installable(
                ".#my-app",
                APP_DRV,
                {"out": APP},
                nar_hashes={"out": "sha256-fIRST000000000000000000000000000000000000="},
            ),
            Installable(
                ".#broken-tool", BROKEN_DRV, status="failed", error=f"building {BROKEN_DRV} failed"
            ),
        ),
        cache_errors=(
            CacheError(
                MNC,
                f"http://127.0.0.1:37515/{'d' * 32}.narinfo",
                418,
                f"warning: error: unable to download 'http://127.0.0.1:37515/{'d' * 32}.narinfo': "
                "HTTP error 418",
            ),
        ),
        runs=(Run("build", seconds=45.0), Run("check", seconds=47.0)),
        phases=Phases(evaluation=1.2, download=3.0, build=45.0, check=47.0),
        nix=NixInfo("2.26.3", "nix"),
        queried={MNC: 3, NIXOS: 3},
        errors=(f"error: builder for '{BROKEN_DRV}' failed with exit code 2",),
    )
    return records.replace(report, **changes)  # type: ignore[arg-type]


def _good_report() -> Report:
    """One output, substituted from Magic Nix Cache and rebuilt identically."""
    base = _report()
    return records.replace(
        base,
        builds=(base.builds[3],),
        checks=(base.checks[0],),
        installables=(base.installables[0],),
        cache_errors=(),
        errors=(),
    )


# --- reading GitHub's HTML ----------------------------------------------------------------------


def _html(markdown: str) -> str:
    # Unsafe: GitHub keeps <details> and <summary>; cmark-gfm's safe mode would drop all HTML.
    return str(
        cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    )


class _Tables(HTMLParser):
    """Every <table> as rows of cell texts; the first row is the header."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, _attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in {"td", "th"}:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _table_with(html: str, *header: str) -> list[list[str]]:
    """The one table whose header row starts with `header`."""
    found = [t for t in _tables(html) if t and t[0][: len(header)] == list(header)]
    assert len(found) == 1, [t[0] for t in _tables(html)]
    return found[0]


def _headings(html: str) -> list[str]:
    return [
        unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<h[2-4]>(.*?)</h[2-4]>", html)
    ]


def _details(html: str) -> dict[str, str]:
    """<summary> text -> the HTML between it and </details>."""
    blocks = re.findall(r"<details><summary>(.*?)</summary>(.*?)</details>", html, re.DOTALL)
    return {unescape(summary): body for summary, body in blocks}


def _code_blocks(html: str, lang: str | None = None) -> list[str]:
    attr = f' lang="{lang}"' if lang else ""
    blocks = re.findall(rf"<pre{attr}><code>(.*?)</code></pre>", html, re.DOTALL)
    return [unescape(b) for b in blocks]


# --- the verdict and the order ------------------------------------------------------------------


def test_the_verdict_comes_first_and_failures_before_successes() -> None:
    html = _html(render_summary(_report()))

    headings = _headings(html)
    assert html.startswith("<h2>")
    assert headings[0] == (
        "❌ nix-cache-action: 2 outputs (1 built, 1 from a cache), 1 installable failed,"
        " 1 not reproducible, 1 reproducible, 1 cache error"
    )
    # Every output's verdict first (the Outputs table fits the first screen), then the details
    # of the failures and differences, then the caches.
    order = [headings.index(h) for h in ("Outputs", "❌ Failed", "❌ Not reproducible", "Caches")]
    assert order == sorted(order)
    assert headings.index("Outputs") == 1
    assert headings.index("⚠️ 1 cache error") < headings.index("Caches")


@pytest.mark.parametrize(
    ("mode", "icon", "says"),
    [("fail", "❌", "this step fails"), ("warn", "⚠️", "passes with a warning")],
)
def test_a_difference_fails_or_warns_by_the_mode(mode: Mode, icon: str, says: str) -> None:
    base = _report()
    report = records.replace(
        base,
        builds=base.builds[2:],
        installables=base.installables[:2],
        cache_errors=(),
        errors=(),
        reproducibility_mode=mode,
    )

    html = _html(render_summary(report))

    assert (
        _headings(html)[0]
        == f"{icon} nix-cache-action: 2 outputs (1 from a cache, 1 already in the store),"
        " 1 not reproducible, 1 reproducible"
    )
    assert says in html
    assert f"{icon} Not reproducible" in _headings(html)


def test_the_verdict_line_says_which_checks_ran_now_and_which_an_earlier_run_did() -> None:
    report = _good_report()
    check = report.checks[0]
    earlier = Verification(
        drv=check.drv,
        output="out",
        nar_hash="sha256-AAAA",
        verdict="reproducible",
        checked_at="2026-11-30T08:15:00Z",
    )
    now_only = _html(render_summary(report))
    assert "Nothing failed, and every output was checked: 1 rebuilt and compared." in now_only
    both = records.replace(
        report,
        checks=(check, records.replace(check, output="dev", previously_verified=earlier)),
    )
    assert (
        "every output was checked: 1 rebuilt and compared, 1 verified by an earlier run,"
        " not rebuilt." in _html(render_summary(both))
    )


def test_all_good_says_so_in_one_line() -> None:
    report = _good_report()

    # Substituted, not built: a warm run must not read as one that built it.
    assert headline(report) == "1 output from a cache, all reproducible"
    html = _html(render_summary(report))
    assert _headings(html)[0] == "✅ nix-cache-action: 1 output from a cache, all reproducible"
    assert not any(h.startswith(("❌", "⚠️")) for h in _headings(html))


def test_an_empty_report_has_nothing_to_build_and_no_chart() -> None:
    html = _html(render_summary(Report()))

    assert _headings(html)[0] == "✅ nix-cache-action: nothing to build"
    assert '<pre lang="mermaid">' not in html


# --- per installable -----------------------------------------------------------------------------


def test_outputs_table_puts_the_verdict_second_and_the_full_paths_in_a_fold() -> None:
    html = _html(render_summary(_report()))
    rows = _table_with(html, "Installable")

    assert rows[0] == ["Installable", "Reproducibility", "narHash"]
    assert len(rows) == 4  # header, the failed installable, then the two outputs
    assert rows[1][0] == ".#broken-tool"
    assert rows[1][1].startswith("❌ building ")
    assert rows[2] == [
        ".#my-app",
        "❌ differs; compared with the copy built on the same machine",
        "sha256-fIRST00000…",
    ]
    assert rows[3][1] == (
        "✅ reproducible; compared with the copy from Magic Nix Cache (cross-machine)"
    )
    # The whole store path and hash, one click away.
    assert "Store paths and full NAR hashes" in html
    assert APP in html
    assert HELLO in html
    assert "sha256-fIRST000000000000000000000000000000000000=" in html


def test_a_long_installable_name_is_shortened_in_the_table_and_whole_in_the_fold() -> None:
    name = ".#packages.x86_64-linux." + "very-long-attribute-name-" * 4 + "end"
    report = _good_report()
    report = records.replace(
        report,
        installables=(records.replace(report.installables[0], name=name),),
        checks=(records.replace(report.checks[0], installable=name),),
    )
    html = _html(render_summary(report))
    cell = _table_with(html, "Installable")[1][0]
    assert len(cell) <= 48
    assert cell.endswith("end")
    assert name in html


def test_a_pipe_in_an_installable_name_keeps_the_table_whole() -> None:
    name = '.#packages.x86_64-linux."odd|name"'
    report = _good_report()
    report = records.replace(
        report,
        installables=(records.replace(report.installables[0], name=name),),
        checks=(records.replace(report.checks[0], installable=name),),
    )

    rows = _table_with(_html(render_summary(report)), "Installable")

    assert [len(row) for row in rows] == [3, 3]
    assert rows[1][0] == name


def test_markup_in_user_text_stays_text() -> None:
    report = _good_report()
    report = records.replace(
        report, notes=("saw <script>alert(1)</script> & *stars* [link](x)\nsecond line",)
    )

    html = _html(render_summary(report))

    assert "<script>" not in html
    assert (
        "<li>saw &lt;script&gt;alert(1)&lt;/script&gt; &amp; *stars* [link](x) second line</li>"
        in html
    )


# --- caches -------------------------------------------------------------------------------------


def test_an_unknown_size_is_said_to_be_unknown_never_zero() -> None:
    # A log of Nix 2.8 read from a file: its copies carry no unpacked size.
    report = Report(substitutions=(Substitution(HELLO, MNC, None, 90_000, None, None, "build"),))
    html = _html(render_summary(report))
    [_, row] = _table_with(html, "Cache", "Paths")
    assert row[1:4] == ["1", "?", "87.9 KiB"]
    assert "size unpacked unknown, 87.9 KiB downloaded" in html
    assert "0 B" not in html


def test_cache_table_has_a_row_per_substituter_and_a_totals_line() -> None:
    html = _html(render_summary(_report()))
    rows = _table_with(html, "Cache", "Paths")

    assert rows[0] == [
        *("Cache", "Paths", "Unpacked", "Downloaded", "Seconds", "Errors", "Lost", "Hit rate")
    ]
    assert rows[1] == [
        "cache.nixos.org",  # its name is its URL: said once
        "2",
        "30.0 MiB",
        "7.1 MiB",
        "2.5 s",  # its two copies overlap (0.4 to 2.9 s, 0.5 to 0.8 s): wall time, not 2.8
        "0",
        "-",  # no error, nothing lost
        "66.7% of 3",  # served 2 of the 3 paths asked of it
    ]
    assert rows[2] == [
        "Magic Nix Cache (http://127.0.0.1:37515)",
        "1",
        "263.7 KiB",
        "87.9 KiB",
        "200 ms",
        "1",
        "?",  # an error, and no times known for it
        "33.3% of 3",
    ]
    assert len(rows) == 3
    # 3 substituted, 1 built here (the check rebuilds and the failure do not count).
    assert "3 store paths substituted, 1 built, 1 failed, cache hit rate 75.0%" in html


def test_cache_errors_say_what_418_and_5xx_mean() -> None:
    base = _report()
    errors = (
        *base.cache_errors,
        CacheError(NIXOS, f"{NIXOS}/{'e' * 32}.narinfo", 503, "HTTP error 503 | <gateway>"),
        CacheError(NIXOS, f"{NIXOS}/{'f' * 32}.narinfo", 503, "HTTP error 503"),
    )
    html = _html(render_summary(records.replace(base, cache_errors=errors)))
    error_rows = _table_with(html, "Cache", "HTTP status")

    assert len(error_rows) == 3
    assert error_rows[1][:3] == ["Magic Nix Cache", "418", "1"]
    assert "GitHub throttled Magic Nix Cache" in error_rows[1][3]
    assert error_rows[2][:3] == ["cache.nixos.org", "503", "2"]
    assert "down or failing" in error_rows[2][3]
    assert error_rows[2][5] == "HTTP error 503 | <gateway>"


@pytest.mark.parametrize(
    ("name", "status", "meaning"),
    [
        ("Magic Nix Cache", 418, "GitHub throttled"),
        ("Magic Nix Cache", 502, "GitHub's cache service is down"),
        ("cache.nixos.org", 500, "the cache is down"),
        ("cache.nixos.org", 403, "refused access"),
        ("cache.nixos.org", None, "no HTTP answer"),
    ],
)
def test_explain_cache_error(name: str, status: int | None, meaning: str) -> None:
    what, fix = explain_cache_error(name, status)

    assert meaning in what
    assert fix


# --- why things were built, and how long they took -----------------------------------------


def test_misses_are_grouped_by_reason_with_bounded_lists() -> None:
    many = tuple(
        Build(
            _path("k", f"lib{i:02d}-1.0.drv"),
            "built",
            float(i),
            None,
            "not-in-cache",
            "no configured cache had it",
        )
        for i in range(40)
    )
    report = _report(builds=(*_report().builds, *many))

    html = _html(render_summary(report))
    details = _details(html)

    # Built or failed: the misses the totals count; the 2 check rebuilds are listed apart.
    assert "Why 42 derivations had to be built" in _headings(html)
    assert "Not misses:" in html
    assert "<li><strong>Cache error</strong> (Magic Nix Cache answered HTTP 418): 1</li>" in html
    assert "<li><strong>Rebuilt to check reproducibility</strong>: 2</li>" in html
    assert (
        "<code>my-app-0.3.0</code> (42 s)"
        in details["Cache error: Magic Nix Cache answered HTTP 418 (1)"]
    )
    not_cached = details["Not in any cache: no configured cache had it (41)"]
    assert not_cached.count("<li>") == 26  # 25 names and the line that counts the rest
    assert "<li>and 16 more (all of them are in the JSON report)</li>" in not_cached
    assert "❌ failed" in not_cached  # broken-tool is among them, marked


def test_slowest_builds_are_the_top_ten_with_known_times() -> None:
    builds = tuple(
        Build(_path("m", f"pkg{i:02d}.drv"), "built", float(i) if i % 4 else None, None)
        for i in range(30)
    )
    rows = _table_with(_html(render_summary(Report(builds=builds))), "Derivation")

    assert rows[0] == ["Derivation", "Status", "Seconds", "Why it was built"]
    assert len(rows) == 11
    assert [row[0] for row in rows[1:4]] == ["pkg29", "pkg27", "pkg26"]  # 28 has no time
    assert rows[1][2] == "29 s"


# --- failures and their fixes ----------------------------------------------------------------


def test_a_failed_build_shows_the_fix_and_its_log_tail_folded() -> None:
    html = _html(render_summary(_report()))

    assert f"nix log {BROKEN_DRV}\n" in _code_blocks(html, "sh")
    tail = _details(html)["Last 5 lines of the log of broken-tool-1.0"]
    assert _code_blocks(tail) == ["\n".join(LOG_TAIL) + "\n"]
    # The error that names the failed drv is shown with the build, not again under "errors".
    assert not any(h.endswith("error") for h in _headings(html) if h.startswith("❌ 1"))


def test_a_log_with_backtick_fences_cannot_close_its_block() -> None:
    tail = ("before", "`````", "```python", "after </details>")
    report = _report(builds=(records.replace(_report().builds[1], log_tail=tail),))

    blocks = _code_blocks(
        _details(_html(render_summary(report)))["Last 4 lines of the log of broken-tool-1.0"]
    )

    assert blocks == ["before\n`````\n```python\nafter </details>\n"]


def test_a_differing_output_shows_how_to_reproduce_it() -> None:
    html = _html(render_summary(_report()))

    assert (
        f"nix build '.#my-app' --rebuild --keep-failed\ndiffoscope {APP} {APP}.check\n"
    ) in _code_blocks(html, "sh")
    rows = _table_with(html, "File")
    assert rows == [
        ["File", "Change", "Size", "Size (rebuild)", "sha256", "sha256 (rebuild)"],
        ["bin/my-app", "content differs", "1000 B", "1004 B", "0123abcd0123", "fedc9876fedc"],
        ["share/build-id", "only in the rebuild", "-", "16 B", "-", "abababababab"],
    ]
    assert _code_blocks(_details(html)["diffoscope: my-app-0.3.0"], "diff") == [DIFFOSCOPE]
    assert "sha256-rEBUILD0000000000000000000000000000000000=" in html


def test_a_differing_dependency_is_rebuilt_by_its_drv() -> None:
    check = records.replace(_report().checks[1], installable=None, deep=True)

    html = _html(render_summary(_report(checks=(check,))))

    assert f"nix build '{APP_DRV}^*' --rebuild --keep-failed\n" in "".join(_code_blocks(html, "sh"))
    assert "(a dependency, rebuilt by the deep check)" in html


def test_errors_not_tied_to_a_build_are_shown() -> None:
    report = _report(
        errors=("error: flake 'path:/src' does not provide attribute 'packages.x86_64-linux.nope'",)
    )

    html = _html(render_summary(report))

    assert "❌ 1 error" in _headings(html)
    assert _code_blocks(html)[0] == f"{report.errors[0]}\n"


# --- the timeline ----------------------------------------------------------------------------


def test_the_timeline_is_a_mermaid_gantt_block() -> None:
    html = _html(render_summary(_report()))

    charts = _code_blocks(html, "mermaid")
    assert len(charts) == 1
    chart = charts[0]
    assert chart.startswith("gantt\n")
    assert "    dateFormat x\n    axisFormat %M:%S\n" in chart
    assert "    glibc-2.39-52 :400, 2900\n" in chart
    assert "    broken-tool-1.0 :crit, 3600, 10800\n" in chart
    # The check run starts where the build run ended (45.5 s: the app build ran to 45.5 s).
    assert "    hello-2.12.1 :86500, 91500\n" in chart


def test_nothing_timed_means_no_chart() -> None:
    base = _report()
    report = records.replace(
        base,
        substitutions=tuple(records.replace(s, started=None) for s in base.substitutions),
        builds=tuple(records.replace(b, seconds=None) for b in base.builds),
    )

    html = _html(render_summary(report))

    assert '<pre lang="mermaid">' not in html
    assert "Timeline" not in _headings(html)


def test_a_busy_timeline_keeps_the_longest_bars_and_says_so() -> None:
    subs = tuple(
        Substitution(_path("n", f"dep-{i}"), MNC, 10, 10, float(i % 500) / 10, float(i) / 100)
        for i in range(2_000)
    )

    html = _html(render_summary(Report(substitutions=subs)))

    chart = _code_blocks(html, "mermaid")[0]
    assert chart.count("    dep-") == MAX_TIMELINE_TASKS
    rest = 2_000 - MAX_TIMELINE_TASKS
    assert f"{rest} shorter ones of up to " in chart  # one bar for the rest
    assert (
        f"{rest} shorter entries left out to keep the chart to its {MAX_TIMELINE_TASKS} longest"
        " entries" in html
    )


# --- size ---------------------------------------------------------------------------------------


def _huge_report() -> Report:
    base = _report()
    subs = tuple(
        Substitution(
            _path("p", f"pkg-{i}"),
            MNC if i % 3 else NIXOS,
            1000 * i,
            500 * i,
            (i % 997) / 100,
            i / 1000,
        )
        for i in range(50_000)
    )
    failed = tuple(
        Build(
            _path("q", f"broken-{i}.drv"),
            "failed",
            1.0,
            2.0,
            error="error: boom",
            log_tail=("x" * 5000,) * 40,
        )
        for i in range(200)
    )
    differing = tuple(
        records.replace(
            base.checks[1], path=_path("r", f"app-{i}"), diffoscope="│ -a\n│ +b\n" * 4000
        )
        for i in range(40)
    )
    return records.replace(
        base,
        substitutions=subs,
        builds=(*base.builds, *failed),
        checks=(*base.checks, *differing),
    )


def test_a_small_report_is_not_cut() -> None:
    markdown = render_summary(_report())

    assert "This summary was cut" not in markdown
    assert "<details><summary>diffoscope: my-app-0.3.0</summary>" in markdown


def test_a_huge_report_fits_githubs_limit_and_says_what_was_cut() -> None:
    markdown = render_summary(_huge_report())
    html = _html(markdown)

    assert len(markdown.encode("utf-8")) <= SUMMARY_LIMIT < GITHUB_SUMMARY_LIMIT
    assert _headings(html)[0].startswith(
        "❌ nix-cache-action: 2 outputs (1 built, 1 already in the store), 1 installable failed"
    )
    assert "<strong>This summary was cut</strong>" in html
    assert "Shortened or left out: diffoscope reports, build log tails (shortened)." in html
    assert not any(s.startswith("diffoscope:") for s in _details(html))
    # 25 failed builds keep their tails, each cut to 20 lines (broken-tool-1.0 only has 5).
    tails = [s for s in _details(html) if s.startswith("Last ")]
    assert len(tails) == 25
    assert sum(s.startswith("Last 20 lines") for s in tails) == 24
    chart = _code_blocks(html, "mermaid")[0]
    assert len(chart) < 50_000
    assert "The whole report is in the JSON report." in html


def test_a_tight_limit_drops_log_tails_and_shortens_lists() -> None:
    markdown = render_summary(_huge_report(), limit=20_000)
    html = _html(markdown)

    assert len(markdown.encode("utf-8")) <= 20_000
    assert (
        "Shortened or left out: diffoscope reports, build log tails, "
        "long lists and tables (shortened)." in html
    )
    assert not any(s.startswith("Last ") for s in _details(html))
    assert "And 196 more failed builds: <code>broken-4</code>, <code>broken-5</code>," in html
    assert _table_with(html, "Installable")  # the outputs table survives


@pytest.mark.parametrize("limit", [3_000, 300, 10])
def test_even_a_tiny_limit_is_never_exceeded(limit: int) -> None:
    markdown = render_summary(_huge_report(), limit=limit)

    assert len(markdown.encode("utf-8")) <= limit
    if limit >= 300:
        assert "This summary was cut" in markdown


# --- escaping helpers --------------------------------------------------------------------------


def test_escape_text_neutralises_markdown_and_html() -> None:
    assert escape_text("a|b *c* <d> & e\nf") == "a\\|b \\*c\\* &lt;d&gt; &amp; e f"


def test_code_spans_hold_backticks_and_pipes() -> None:
    markdown = "| h |\n|---|\n| " + code("x `` y | z", in_table=True) + " |\n"

    assert _tables(_html(markdown)) == [[["h"], ["x `` y | z"]]]


def test_fenced_uses_a_longer_fence_than_the_content() -> None:
    assert fenced("a\n````\nb").startswith("`````\n")
    assert fenced("plain", "sh") == "```sh\nplain\n```\n"


def test_builds_are_counted_per_machine_when_there_is_more_than_one() -> None:
    remote = "ssh-ng://builder.example"
    report = Report(
        builds=(
            Build(_path("a", "x.drv"), "built", 2.0, machine=remote),
            Build(_path("b", "y.drv"), "failed", 1.5, machine=remote),
            Build(_path("c", "z.drv"), "built", 0.5),
        )
    )
    html = _html(render_summary(report))
    assert "Builds by machine" in html
    rows = _table_with(html, "Machine")
    assert rows[1:] == [[remote, "1", "1", "0", "3.5 s"], ["this machine", "1", "0", "0", "500 ms"]]
    # One machine: nothing to split.
    alone = Report(builds=report.builds[:2])
    assert "Builds by machine" not in render_summary(alone)


def test_a_cache_that_never_answered_is_said_in_one_line() -> None:
    dead = "http://127.0.0.1:9"
    report = Report(
        cache_errors=(
            CacheError(dead, f"{dead}/nix-cache-info", None, "warning: unable to download"),
        ),
        seconds_lost={dead: 4.25},
    )
    html = _html(render_summary(report))
    assert "127.0.0.1:9 could not be reached: 4.2 s lost, nothing came from it" in html
    rows = _table_with(html, "Cache", "Paths")
    assert rows[1][6] == "4.2 s"


def test_magic_nix_cache_uploads_and_throttling_are_said(tmp_path: Path) -> None:
    # A stand-in for Magic Nix Cache's daemon log (the daemon itself cannot run here), with the
    # two lines the daemon writes.
    daemon = tmp_path / "mnc"
    daemon.mkdir()
    (daemon / "daemon.log").write_text(
        "INFO GitHub Action cache is enabled\n"
        "INFO Uploaded '/nix/store/aaa-x' to the GitHub Action Cache\n"
        "INFO Uploaded '/nix/store/bbb-y' to the GitHub Action Cache\n"
        "INFO Uploaded '/nix/store/aaa-x' to the GitHub Action Cache\n"
        "ERROR GitHub Actions Cache throttled Magic Nix Cache. Not trying to use it again on "
        "this run.\n",
        encoding="utf-8",
    )
    magic = read_daemon_log({"MAGIC_NIX_CACHE_DAEMONDIR": str(daemon)})
    assert magic == MagicNixCache(str(daemon / "daemon.log"), uploaded=2, throttled=True)
    html = _html(render_summary(Report(magic_nix_cache=magic)))
    assert "Magic Nix Cache uploaded 2 store paths to the GitHub Actions cache" in html
    assert "since 2026-01-16 a repository may create about 200 cache entries a minute" in html
    # No daemon, or a daemon directory without a log: nothing is claimed.
    assert read_daemon_log({}) is None
    assert read_daemon_log({"MAGIC_NIX_CACHE_DAEMONDIR": str(tmp_path / "none")}) is None


def test_times_a_recorded_log_lacks_are_unknown_and_said_once() -> None:
    build = Build(_path("a", "app.drv"), "built")
    markdown = render_summary(Report(builds=(build,)))
    assert markdown.count("unknown, as a log read from a file holds none") == 1
    timed = Report(builds=(build,), runs=(Run("build", seconds=1.0),))
    assert "holds none" not in render_summary(timed)


def test_a_cache_that_never_answered_in_a_log_without_times_says_the_time_is_unknown() -> None:
    dead = "http://127.0.0.1:9"
    report = Report(
        cache_errors=(
            CacheError(dead, f"{dead}/nix-cache-info", None, "warning: unable to download"),
        ),
    )
    html = _html(render_summary(report))
    assert "127.0.0.1:9 could not be reached: the time it cost is unknown" in html
    assert "unknown lost" not in html


def test_the_headline_says_how_many_derivations_stand_behind_the_outputs_built() -> None:
    top, dep = _path("t", "top.drv"), _path("d", "dep.drv")
    report = Report(
        installables=(Installable(".#top", top, {"out": _path("t", "top")}, "built"),),
        builds=(Build(dep, "built", 1.0), Build(top, "built", 1.0)),
    )
    assert headline(report) == "1 output built (2 derivations built in all)"
    alone = Report(installables=report.installables, builds=report.builds[1:])
    assert headline(alone) == "1 output built"


def test_two_derivations_of_one_name_are_told_apart_only_where_names_collide() -> None:
    old, new, other = _path("a", "mid-9.drv"), _path("b", "mid-9.drv"), _path("c", "leaf.drv")
    report = Report(
        builds=(
            Build(old, "built", 3.0),
            Build(new, "failed", 2.0, error="builder failed"),
            Build(other, "built", 1.0),
        )
    )
    assert report.drv_name(old) == f"mid-9 ({'a' * 7})"
    assert report.drv_name(new) == f"mid-9 ({'b' * 7})"
    assert report.drv_name(other) == "leaf"
    markdown = render_summary(report)
    html = _html(markdown)
    names = [row[0] for row in _table_with(html, "Derivation")[1:]]
    assert names == [f"mid-9 ({'a' * 7})", f"mid-9 ({'b' * 7})", "leaf"]
    assert "`mid-9 (bbbbbbb)`" in markdown  # the failed build's section names it so too
