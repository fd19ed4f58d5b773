"""Budgets as gates (budgets.py): each budget over, at and under its limit and on an unknown
figure, what its message says, and the verdict and exit status it gives in each mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nix_cache_action.budgets import judged, over_budget
from nix_cache_action.cli import main
from nix_cache_action.render.summary import render_summary
from nix_cache_action.render.terminal import render_terminal
from nix_cache_action.report import Budgets, Build, Check, Report, Substitution
from nix_cache_action.schema import schema_errors

LOGS = Path(__file__).parent.parent / "logs"


def build(name: str, seconds: float | None, status: Any = "built") -> Build:
    return Build(drv=f"/nix/store/{'a' * 32}-{name}.drv", status=status, seconds=seconds)


def subs(count: int) -> tuple[Substitution, ...]:
    return tuple(
        Substitution(path=f"/nix/store/{i:032d}-dep", substituter="https://c.example.org")
        for i in range(count)
    )


# Three builds (9.5 s in all, and a failed one of 0.5 s) and one substitution: hit rate 1/4.
REPORT = Report(
    builds=(
        build("small", 0.5),
        build("big", 6.0),
        build("medium", 3.0),
        build("broken", 0.5, status="failed"),
        build("top", 40.0, status="checked"),  # a rebuild for the check is no build
    ),
    substitutions=subs(1),
    seconds=75.0,
)
WORK = Report(builds=REPORT.builds[:3], substitutions=REPORT.substitutions, seconds=75.0)


# --- each budget ------------------------------------------------------------------------------


def test_max_seconds_names_the_run_time_and_the_slowest_builds() -> None:
    assert over_budget(WORK, Budgets(max_seconds=60)) == (
        "max-seconds 60: the run took 75 s; slowest builds: big 6.0 s, medium 3.0 s, small 0.5 s",
    )
    assert over_budget(WORK, Budgets(max_seconds=75)) == ()  # at the limit is within it
    assert over_budget(WORK, Budgets(max_seconds=600)) == ()
    # Without a measured wall time (a report from a log) it is not judged.
    assert over_budget(Report(builds=WORK.builds), Budgets(max_seconds=1)) == ()


def test_max_seconds_without_timed_builds_names_none() -> None:
    report = Report(builds=(build("a", None),), seconds=12.5)
    assert over_budget(report, Budgets(max_seconds=2.5)) == (
        "max-seconds 2.5: the run took 12.5 s",
    )


def test_max_build_seconds_adds_up_the_builds() -> None:
    # 0.5 + 6 + 3 built, 0.5 failed: 10 s; the check's 40 s are not a build.
    assert over_budget(REPORT, Budgets(max_build_seconds=9.5)) == (
        (
            "max-build-seconds 9.5: builds took 10 s in all;"
            " slowest builds: big 6.0 s, medium 3.0 s, small 0.5 s"
        ),
    )
    assert over_budget(REPORT, Budgets(max_build_seconds=10)) == ()
    untimed = Report(builds=(build("a", None), build("b", None)))
    assert untimed.totals().build_seconds is None
    assert over_budget(untimed, Budgets(max_build_seconds=0)) == ()


def test_max_built_counts_and_names_the_builds() -> None:
    assert over_budget(WORK, Budgets(max_built=2)) == (
        "max-built 2: 3 derivations were built: big 6.0 s, medium 3.0 s, small 0.5 s",
    )
    assert over_budget(WORK, Budgets(max_built=3)) == ()
    one = Report(builds=(build("only", None),))
    assert over_budget(one, Budgets(max_built=0)) == ("max-built 0: 1 derivation was built: only",)
    # Nothing built: max-built 0 holds (a fully cached run).
    assert over_budget(Report(substitutions=subs(3)), Budgets(max_built=0)) == ()


def test_max_built_lists_five_and_counts_the_rest() -> None:
    many = Report(builds=tuple(build(f"p{i}", float(i)) for i in range(8)))
    assert over_budget(many, Budgets(max_built=5)) == (
        (
            "max-built 5: 8 derivations were built:"
            " p7 7.0 s, p6 6.0 s, p5 5.0 s, p4 4.0 s, p3 3.0 s and 3 more"
        ),
    )


def test_min_hit_rate_says_the_rate_and_what_was_built() -> None:
    assert WORK.totals().hit_rate == 0.25
    assert over_budget(WORK, Budgets(min_hit_rate=0.9)) == (
        (
            "min-hit-rate 0.9: the hit rate was 0.25 (3 of 4 store paths were built, not"
            " substituted): big 6.0 s, medium 3.0 s, small 0.5 s"
        ),
    )
    assert over_budget(WORK, Budgets(min_hit_rate=0.25)) == ()
    assert over_budget(WORK, Budgets(min_hit_rate=0)) == ()
    cold = Report(builds=(build("a", 1.0),), configured_substituters=("https://c.example.org",))
    assert over_budget(cold, Budgets(min_hit_rate=1)) == (
        (
            "min-hit-rate 1: the hit rate was 0 (1 of 1 store paths were built, not"
            " substituted): a 1.0 s"
        ),
    )
    # No cache at all: no rate, yet every path was built, which no minimum above 0 allows.
    uncached = Report(builds=(build("a", 1.0),))
    assert uncached.totals().hit_rate is None
    assert over_budget(uncached, Budgets(min_hit_rate=0.5)) == (
        "min-hit-rate 0.5: no cache was asked, so 1 of 1 store paths were built: a 1.0 s",
    )
    assert over_budget(uncached, Budgets(min_hit_rate=0)) == ()
    # Nothing was needed at all: no hit rate, nothing to judge.
    assert Report().totals().hit_rate is None
    assert over_budget(Report(), Budgets(min_hit_rate=1)) == ()


def test_every_budget_gone_over_has_its_message_in_a_fixed_order() -> None:
    everything = Budgets(max_seconds=1, max_build_seconds=1, max_built=0, min_hit_rate=1)
    found = over_budget(WORK, everything)
    assert [m.split(":", 1)[0] for m in found] == [
        "max-seconds 1",
        "max-build-seconds 1",
        "max-built 0",
        "min-hit-rate 1",
    ]


# --- on the report: verdict and exit status -------------------------------------------------------


def test_no_budget_leaves_the_report_as_it_was() -> None:
    assert judged(WORK, Budgets()) is WORK
    assert WORK.budgets is None


def test_budgets_kept_are_on_record_and_the_verdict_stays_ok() -> None:
    budgets = Budgets(max_seconds=600, max_build_seconds=600, max_built=10, min_hit_rate=0.1)
    report = judged(WORK, budgets)
    assert report.budgets == budgets
    assert report.budgets.exceeded == ()
    assert (report.verdict(), report.exit_status()) == ("ok", 0)
    data = report.to_json()
    assert schema_errors(data) == []
    assert data["budgets"] == {
        "max_seconds": 600,
        "max_build_seconds": 600,
        "max_built": 10,
        "min_hit_rate": 0.1,
        "exceeded": [],
        "max_per_change": None,
    }


@pytest.mark.parametrize(
    ("mode", "verdict", "status"),
    [
        ("fail", "over-budget", 1),
        ("warn", "warning", 0),
        # README: "Over any budget the step fails (verdict `over-budget`; with
        # `reproducibility: warn` it is a warning)": a budget is no reproducibility check, and
        # turning the check off does not turn the budgets into warnings.
        ("off", "over-budget", 1),
    ],
)
def test_a_budget_gone_over_fails_in_fail_mode_and_warns_in_warn_mode(
    mode: Any,
    verdict: str,
    status: int,
) -> None:
    report = judged(
        Report(builds=WORK.builds, reproducibility_mode=mode), Budgets(max_built=1, max_seconds=9)
    )
    assert report.budgets is not None
    assert report.budgets.exceeded == (
        "max-built 1: 3 derivations were built: big 6.0 s, medium 3.0 s, small 0.5 s",
    )
    assert (report.verdict(), report.exit_status()) == (verdict, status)
    data = report.to_json()
    assert schema_errors(data) == []
    assert data["verdict"] == verdict
    assert data["budgets"]["exceeded"] == list(report.budgets.exceeded)
    assert Report.from_json(json.loads(json.dumps(data))).budgets == report.budgets


def test_a_failure_or_a_difference_comes_before_a_budget() -> None:
    budgets = Budgets(max_built=0)
    failed = judged(REPORT, budgets)  # `broken` failed
    assert failed.budgets is not None
    assert failed.budgets.exceeded
    assert failed.verdict() == "failed"
    differs = Check(drv=REPORT.builds[1].drv, output="out", path=None, verdict="differs")
    not_reproducible = judged(Report(builds=WORK.builds, checks=(differs,)), budgets)
    assert not_reproducible.verdict() == "not-reproducible"


@pytest.mark.parametrize("mode", ["fail", "warn"])
def test_the_summary_and_the_terminal_name_the_budget_gone_over(
    mode: Any,
) -> None:
    report = judged(Report(builds=WORK.builds, reproducibility_mode=mode), Budgets(max_built=1))
    terminal = render_terminal(report)
    assert terminal.startswith(f"nix-cache-action: {report.verdict()}")
    summary = render_summary(report)  # must not fail on the `over-budget` verdict
    assert "max-built 1" in summary
    assert "3 derivations were built" in summary
    # Nothing differed: the summary must not say a rebuild did.
    assert "different bytes" not in summary


# --- the CLI ----------------------------------------------------------------------------------


def test_analyze_max_built_0_on_a_log_with_four_builds_is_over_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    status = main(
        ["analyze", str(LOGS / "build-2.34.log"), "--max-built", "0", "--report", str(out)]
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    assert status == 1
    assert report["verdict"] == "over-budget"
    assert report["totals"]["built"] == 4
    assert report["budgets"]["max_built"] == 0
    assert report["budgets"]["exceeded"] == [
        "max-built 0: 4 derivations were built: leaf, mid, nondet, top"
    ]
    said = capsys.readouterr()
    assert "over-budget" in said.out + said.err


def test_analyze_max_built_0_writes_its_summary(tmp_path: Path) -> None:
    out, summary = tmp_path / "r.json", tmp_path / "s.md"
    argv = ["analyze", str(LOGS / "build-2.34.log"), "--max-built", "0"]
    status = main([*argv, "--report", str(out), "--summary", str(summary)])
    assert status == 1
    assert json.loads(out.read_text(encoding="utf-8"))["verdict"] == "over-budget"
    assert "max-built 0" in summary.read_text(encoding="utf-8")


def test_analyze_in_warn_mode_passes_over_budget_with_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["analyze", str(LOGS / "build-2.34.log"), "--reproducibility", "warn"]
    assert main([*argv, "--max-built", "3", "--report", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["verdict"] == "warning"
    assert report["budgets"]["exceeded"] == [
        "max-built 3: 4 derivations were built: leaf, mid, nondet, top"
    ]


def test_analyze_budgets_on_figures_a_log_does_not_have_are_not_judged(tmp_path: Path) -> None:
    # A log read from a file has no times (--timing auto): no wall time, no build seconds.
    out = tmp_path / "r.json"
    argv = ["analyze", str(LOGS / "substitute-2.34.log"), "--max-seconds", "0"]
    argv += ["--max-build-seconds", "0", "--min-hit-rate", "1", "--max-built", "0"]
    assert main([*argv, "--report", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["verdict"] == "ok"
    assert report["seconds"] is None
    assert report["budgets"]["exceeded"] == []
    assert report["budgets"]["min_hit_rate"] == 1
    # Said, not passed in silence. Nothing was built, so 0 build seconds is a figure, not a gap.
    assert [n for n in report["notes"] if "was not judged" in n] == [
        (
            "max-seconds 0 was not judged: the report has no times (a log read from a file holds"
            " none), so neither a pass nor a failure is claimed"
        )
    ]


def test_build_seconds_of_builds_without_times_are_not_judged() -> None:
    builds = (Build(drv="/nix/store/0aa4gy9rrvmpf9kvl5cn2b0p7x4vcx8a-top.drv", status="built"),)
    report = judged(Report(builds=builds), Budgets(max_build_seconds=10, max_built=5))
    assert report.budgets is not None
    assert report.budgets.exceeded == ()
    assert report.notes == (
        (
            "max-build-seconds 10 was not judged: the report has no times (a log read from a file"
            " holds none), so neither a pass nor a failure is claimed"
        ),
    )
    timed = (Build(drv=builds[0].drv, status="built", seconds=1.0),)
    assert judged(Report(builds=timed), Budgets(max_build_seconds=10)).notes == ()


def test_merge_holds_the_merged_report_to_the_budgets(tmp_path: Path) -> None:
    one, two, out = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "m.json"
    assert main(["analyze", str(LOGS / "substitute-2.34.log"), "--report", str(one)]) == 0
    assert main(["analyze", str(LOGS / "build-2.34.log"), "--report", str(two)]) == 0
    argv = ["merge", str(one), str(two), "--min-hit-rate", "0.5", "--report", str(out)]
    assert main(argv) == 1
    merged = json.loads(out.read_text(encoding="utf-8"))
    assert merged["verdict"] == "over-budget"
    assert merged["budgets"]["exceeded"] == [
        (
            "min-hit-rate 0.5: the hit rate was 0.3333 (4 of 6 store paths were built, not"
            " substituted): leaf, mid, nondet, top"
        )
    ]


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--max-built", "-1", "below 0"),
        ("--max-built", "many", "not a number"),
        ("--max-seconds", "-5", "below 0"),
        ("--min-hit-rate", "1.5", "not from 0 to 1"),
        ("--min-hit-rate", "90%", "not a number"),
    ],
)
def test_a_budget_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], option: str, value: str, said: str
) -> None:
    assert main(["analyze", str(LOGS / "build-2.34.log"), option, value]) == 2
    err = capsys.readouterr().err
    assert option in err
    assert said in err
