"""The legs of a matrix added back up (aggregate.py): legs that never reported, failing legs,
derivations built twice, the critical path, what only the plan knows (evaluation errors, the
attributes left out as verified); the legs' part of the summary (render/legs.py), the JUnit file
(render/junit.py), and the reports read from downloaded artifacts (leg_reports.py). Every report
is built by hand, so each figure is known by construction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree as ET

from nix_cache_action.aggregate import (
    CRITICAL_LEGS,
    LEFT_OUT_REASON,
    MISSING_WHY,
    NO_PLAN,
    PLAN_STOPPED,
    UNPLANNED,
    LegReport,
    aggregate,
    critical_path,
)
from nix_cache_action.leg_reports import NOTHING_FOUND, collect_leg_reports
from nix_cache_action.plan import Attribute, Leg, Plan
from nix_cache_action.render.junit import render_junit
from nix_cache_action.render.legs import legs_section
from nix_cache_action.render.summary import headline, render_summary
from nix_cache_action.report import (
    Build,
    Check,
    DuplicateBuild,
    Installable,
    LegInfo,
    LegResult,
    Report,
    Substitution,
    Verification,
    write_report,
)
from nix_cache_action.schema import schema_errors

LINUX = "x86_64-linux"
DARWIN = "aarch64-darwin"
CACHE = "https://cache.example.org"


def drv(name: str) -> str:
    return f"/nix/store/{'d' * 32}-{name}.drv"


def out(name: str, output: str = "out") -> str:
    suffix = "" if output == "out" else f"-{output}"
    return f"/nix/store/{'o' * 32}-{name}{suffix}"


def name_of(installable: str) -> str:
    """`.#packages.x86_64-linux.a` -> `a`."""
    return installable.rsplit(".", 1)[-1]


def installable_of(name: str, system: str = LINUX) -> str:
    return f".#packages.{system}.{name}"


# Three legs: two on Linux, one on Darwin.
LEG_1 = Leg("x86_64-linux-1", LINUX, "ubuntu-latest", (installable_of("a"), installable_of("b")))
LEG_2 = Leg("x86_64-linux-2", LINUX, "ubuntu-latest", (installable_of("c"),))
LEG_3 = Leg("aarch64-darwin-1", DARWIN, "macos-latest", (installable_of("d", DARWIN),))


def plan_of(
    legs: Sequence[Leg] = (LEG_1, LEG_2, LEG_3),
    *,
    extra: Sequence[Attribute] = (),
    errors: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> Plan:
    """A plan whose attributes are its legs' installables, to build, and `extra`."""
    attributes = [
        Attribute(
            attr=("packages", leg.system, name_of(item)),
            installable=item,
            system=leg.system,
            state="to-build",
            drv=drv(name_of(item)),
            outputs={"out": out(name_of(item))},
            leg=leg.id,
        )
        for leg in legs
        for item in leg.installables
    ]
    return Plan(
        flake=".",
        systems=(LINUX, DARWIN),
        selection=("packages",),
        attributes=(*attributes, *extra),
        legs=tuple(legs),
        runners={LINUX: "ubuntu-latest", DARWIN: "macos-latest"},
        notes=tuple(notes),
        errors=tuple(errors),
    )


def leg_report(  # noqa: PLR0913 - each keyword is one way a leg can have gone
    leg: Leg,
    *,
    seconds: float | None = 60.0,
    failed: Sequence[str] = (),
    extra_builds: Sequence[Build] = (),
    substitutions: Sequence[Substitution] = (),
    with_leg: bool = True,
) -> Report:
    """A leg's report: each of its installables built (or `failed`) and checked reproducible."""
    installables = []
    builds = list(extra_builds)
    checks = []
    for item in leg.installables:
        name = name_of(item)
        status: Literal["built", "failed"] = "failed" if name in failed else "built"
        installables.append(
            Installable(
                name=item,
                drv=drv(name),
                outputs={"out": out(name)},
                status=status,
                error=f"build of {drv(name)} failed" if status == "failed" else None,
            )
        )
        builds.append(
            Build(
                drv=drv(name),
                status=status,
                seconds=1.5,
                log_tail=("error: builder failed",) if status == "failed" else (),
            )
        )
        if status == "built":
            checks.append(
                Check(drv=drv(name), output="out", path=out(name), verdict="reproducible")
            )
    return Report(
        installables=tuple(installables),
        builds=tuple(builds),
        checks=tuple(checks),
        substitutions=tuple(substitutions),
        seconds=seconds,
        leg=LegInfo(leg.id, leg.system, leg.runner) if with_leg else None,
    )


def verification(output: str) -> Verification:
    return Verification(
        drv=drv("lib"),
        output=output,
        nar_hash=f"sha256-{output}",
        verdict="reproducible",
        checked_at="2026-03-01T12:00:00Z",
        run_url="https://github.com/o/r/actions/runs/7",
    )


VERIFIED_LIB = Attribute(
    attr=("packages", LINUX, "lib"),
    installable=installable_of("lib"),
    system=LINUX,
    state="verified",
    drv=drv("lib"),
    outputs={"out": out("lib"), "dev": out("lib", "dev")},
    nar_hashes={"out": "sha256-out", "dev": "sha256-dev"},
    verified={"out": verification("out"), "dev": verification("dev")},
)
BROKEN = Attribute(
    attr=("packages", LINUX, "broken"),
    installable=installable_of("broken"),
    system=LINUX,
    state="error",
    error="error: undefined variable 'lib'",
)


def an_aggregate() -> Report:
    """Leg 2 never reported; legs 1 and 3 built, both `shared` twice."""
    shared = Build(drv=drv("shared"), status="built", seconds=3.0)
    return aggregate(
        plan_of(),
        [
            LegReport("x86_64-linux-1", leg_report(LEG_1, seconds=90.0, extra_builds=[shared])),
            LegReport("aarch64-darwin-1", leg_report(LEG_3, seconds=30.0, extra_builds=[shared])),
        ],
    )


# --- legs that never reported -------------------------------------------------------------------


def test_a_leg_that_never_reported_fails_the_aggregate() -> None:
    report = an_aggregate()
    assert report.verdict() == "failed"
    missing = [leg for leg in report.legs if leg.verdict == "missing"]
    assert missing == [
        LegResult(
            id="x86_64-linux-2",
            system=LINUX,
            runner="ubuntu-latest",
            verdict="missing",
            installables=1,
            why=MISSING_WHY,
            names=(installable_of("c"),),
        )
    ]
    # Its installables count as failed, each naming the leg.
    (lost,) = [i for i in report.installables if i.name == installable_of("c")]
    assert lost.status == "error"
    assert lost.error is not None
    assert "x86_64-linux-2" in lost.error
    assert "never reported" in lost.error
    # The legs that did report are there too, each once.
    assert sorted(leg.id for leg in report.legs) == [
        "aarch64-darwin-1",
        "x86_64-linux-1",
        "x86_64-linux-2",
    ]


def test_every_leg_reported_and_ok_is_ok() -> None:
    report = aggregate(
        plan_of(), [LegReport(leg.id, leg_report(leg)) for leg in (LEG_1, LEG_2, LEG_3)]
    )
    assert report.verdict() == "ok"
    assert [leg.verdict for leg in report.legs] == ["ok", "ok", "ok"]
    assert len(report.installables) == 4
    assert all(i.status == "built" for i in report.installables)
    # Equally slow legs in the order of their ids.
    assert [leg.id for leg in report.legs] == [
        "aarch64-darwin-1",
        "x86_64-linux-1",
        "x86_64-linux-2",
    ]
    assert report.legs[1].built == 2  # x86_64-linux-1: a and b
    assert report.duplicate_builds == ()


def test_a_failed_leg_fails_the_aggregate_and_comes_first() -> None:
    report = aggregate(
        plan_of(),
        [
            LegReport(LEG_1.id, leg_report(LEG_1, seconds=100.0)),
            LegReport(LEG_2.id, leg_report(LEG_2, seconds=10.0, failed=["c"])),
            LegReport(LEG_3.id, leg_report(LEG_3, seconds=50.0)),
        ],
    )
    assert report.verdict() == "failed"
    # Failing legs first, then the rest from the slowest.
    assert [(leg.id, leg.verdict) for leg in report.legs] == [
        ("x86_64-linux-2", "failed"),
        ("x86_64-linux-1", "ok"),
        ("aarch64-darwin-1", "ok"),
    ]
    assert report.legs[0].failed == 1


def test_missing_legs_come_before_failed_ones() -> None:
    report = aggregate(
        plan_of(),
        [
            LegReport(LEG_1.id, leg_report(LEG_1, failed=["a"])),
            LegReport(LEG_3.id, leg_report(LEG_3, seconds=500.0)),
        ],
    )
    assert [leg.verdict for leg in report.legs] == ["missing", "failed", "ok"]


# --- derivations built twice, the critical path ---------------------------------------------------


def test_a_derivation_built_in_two_legs_is_a_duplicate() -> None:
    shared = Build(drv=drv("shared"), status="built", seconds=3.0)
    fetched = Build(drv=drv("fetched"), status="built", seconds=2.0)
    report = aggregate(
        plan_of(),
        [
            LegReport(LEG_1.id, leg_report(LEG_1, extra_builds=[shared, fetched])),
            # Leg 2 substituted what leg 1 built: that is the cache working, not a duplicate.
            LegReport(
                LEG_2.id,
                leg_report(
                    LEG_2,
                    extra_builds=[shared],
                    substitutions=[Substitution(path=out("fetched"), substituter=CACHE)],
                ),
            ),
            # A rebuild for the check is no build either.
            LegReport(
                LEG_3.id,
                leg_report(
                    LEG_3,
                    extra_builds=[Build(drv=drv("fetched"), status="checked", reason=None)],
                ),
            ),
        ],
    )
    assert report.duplicate_builds == (
        DuplicateBuild(drv=drv("shared"), legs=("x86_64-linux-1", "x86_64-linux-2")),
    )


def test_the_aggregates_wall_time_is_its_longest_leg() -> None:
    report = an_aggregate()
    assert report.seconds == 90.0  # legs run side by side: 90 s, not 90 + 30
    assert [leg.id for leg in critical_path(report.legs)] == ["x86_64-linux-1", "aarch64-darwin-1"]


def test_the_critical_path_is_the_slowest_legs() -> None:
    legs = [
        LegResult(id=f"l{i}", system=LINUX, runner="r", verdict="ok", seconds=float(s))
        for i, s in enumerate([10, 50, 30, 70, 20])
    ]
    untimed = LegResult(id="m", system=LINUX, runner="r", verdict="missing")
    slowest = critical_path([*legs, untimed])
    assert CRITICAL_LEGS == 3
    assert [leg.id for leg in slowest] == ["l3", "l1", "l2"]
    assert critical_path([untimed]) == []


# --- what only the plan knows ---------------------------------------------------------------------


def test_attributes_that_did_not_evaluate_are_errors() -> None:
    plan = plan_of([LEG_1], extra=[BROKEN])
    report = aggregate(plan, [LegReport(LEG_1.id, leg_report(LEG_1))])
    assert (
        Installable(
            name=installable_of("broken"), status="error", error="error: undefined variable 'lib'"
        )
        in report.installables
    )
    assert report.verdict() == "failed"
    assert report.stopped is None  # the plan was made; one attribute of it failed


def test_a_flake_that_did_not_evaluate_stops_the_aggregate() -> None:
    error = "error: syntax error, unexpected '}' at flake.nix:12"
    plan = plan_of([], errors=[error])
    assert plan.attributes == ()
    report = aggregate(plan, [])
    assert report.stopped == PLAN_STOPPED.format(error=error)
    assert error in report.errors
    assert report.verdict() == "failed"
    assert report.legs == ()


def test_verified_attributes_are_cached_and_reproducible() -> None:
    plan = plan_of([LEG_1], extra=[VERIFIED_LIB])
    report = aggregate(plan, [LegReport(LEG_1.id, leg_report(LEG_1))])
    (lib,) = [i for i in report.installables if i.name == installable_of("lib")]
    assert lib == Installable(
        name=installable_of("lib"),
        drv=drv("lib"),
        outputs={"out": out("lib"), "dev": out("lib", "dev")},
        status="cached",
        nar_hashes={"out": "sha256-out", "dev": "sha256-dev"},
    )
    left = [c for c in report.checks if c.installable == installable_of("lib")]
    assert [(c.output, c.path, c.verdict) for c in left] == [
        ("dev", out("lib", "dev"), "reproducible"),
        ("out", out("lib"), "reproducible"),
    ]
    assert [c.previously_verified for c in left] == [verification("dev"), verification("out")]
    assert left[1].nar_hash == "sha256-out"
    assert left[1].reason == LEFT_OUT_REASON.format(
        when="on 2026-03-01 in https://github.com/o/r/actions/runs/7"
    )
    assert report.totals().previously_verified == 2
    assert report.verdict() == "ok"


def test_a_plan_with_nothing_to_build_is_ok() -> None:
    plan = plan_of([], extra=[VERIFIED_LIB])
    report = aggregate(plan, [])
    assert report.verdict() == "ok"
    assert report.legs == ()
    assert headline(report) == "nothing to build: 2 outputs cached and verified"


# --- which leg a report is for ------------------------------------------------------------------


def test_a_report_without_a_leg_is_named_by_its_source() -> None:
    reports = [
        LegReport(LEG_1.id, leg_report(LEG_1)),
        LegReport("x86_64-linux-2", leg_report(LEG_2, with_leg=False)),
        LegReport(LEG_3.id, leg_report(LEG_3)),
    ]
    report = aggregate(plan_of(), reports)
    assert report.verdict() == "ok"
    (leg_2,) = [leg for leg in report.legs if leg.id == "x86_64-linux-2"]
    assert leg_2.verdict == "ok"
    # The report did not say its system or runner; the plan does.
    assert (leg_2.system, leg_2.runner) == (LINUX, "ubuntu-latest")


def test_a_report_for_a_leg_the_plan_lacks_is_counted_and_noted() -> None:
    stranger = Leg("riscv64-linux-1", "riscv64-linux", "riscv-box", (".#packages.riscv64-linux.r",))
    reports = [
        LegReport(LEG_1.id, leg_report(LEG_1)),
        LegReport(LEG_2.id, leg_report(LEG_2)),
        LegReport(LEG_3.id, leg_report(LEG_3)),
        LegReport("artifact", leg_report(stranger, failed=["r"])),
    ]
    report = aggregate(plan_of(), reports)
    assert UNPLANNED.format(count=1, legs="riscv64-linux-1") in report.notes
    # Counted all the same: its failure fails the aggregate.
    assert report.legs[0].id == "riscv64-linux-1"
    assert report.legs[0].verdict == "failed"
    assert report.verdict() == "failed"


def test_without_a_plan_only_the_reports_count() -> None:
    report = aggregate(None, [LegReport(LEG_1.id, leg_report(LEG_1))])
    assert NO_PLAN in report.notes
    assert [leg.id for leg in report.legs] == ["x86_64-linux-1"]
    assert report.verdict() == "ok"


def test_the_plans_notes_are_kept() -> None:
    report = aggregate(plan_of([LEG_1], notes=["legs were widened"]), [])
    assert "legs were widened" in report.notes


# --- the JSON report ----------------------------------------------------------------------------


def test_the_aggregate_is_a_valid_report_and_round_trips() -> None:
    plan = plan_of(extra=[VERIFIED_LIB, BROKEN])
    shared = Build(drv=drv("shared"), status="built", seconds=3.0)
    report = aggregate(
        plan,
        [
            LegReport(LEG_1.id, leg_report(LEG_1, extra_builds=[shared])),
            LegReport(LEG_3.id, leg_report(LEG_3, extra_builds=[shared], failed=["d"])),
        ],
    )
    # Every part the aggregate adds is in it: missing legs, duplicates, verified checks.
    assert any(leg.verdict == "missing" for leg in report.legs)
    assert report.duplicate_builds
    assert any(c.previously_verified is not None for c in report.checks)
    data = json.loads(json.dumps(report.to_json()))
    assert schema_errors(data) == []
    assert data["verdict"] == "failed"
    assert Report.from_json(data) == report


# --- the legs in the summary --------------------------------------------------------------------


def test_no_legs_section_for_a_single_run() -> None:
    assert legs_section(leg_report(LEG_1)) == ""


def test_the_legs_section() -> None:
    report = an_aggregate()
    text = legs_section(report)
    assert text.startswith("### 3 legs\n")
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + 3  # header, rule, one row per leg
    assert "`x86_64-linux-2`" in table_lines[2]  # the missing leg first
    assert "❌ never reported" in table_lines[2]
    # Each leg says what it builds: the last part of its installables' paths.
    assert table_lines[2].startswith("| `x86_64-linux-2` c |")
    assert "❌ Leg `x86_64-linux-2` (ubuntu-latest) never reported" in text
    assert "its 1 installable counts as failed" in text
    assert "**Slowest leg:** `x86_64-linux-1`" in text
    assert "<summary>1 derivation built in more than one leg (1 extra build" in text
    assert "- `shared` in `aarch64-darwin-1`, `x86_64-linux-1`" in text


def test_the_legs_section_without_duplicates_says_so() -> None:
    report = aggregate(
        plan_of(), [LegReport(leg.id, leg_report(leg)) for leg in (LEG_1, LEG_2, LEG_3)]
    )
    text = legs_section(report)
    assert "No derivation was built in more than one leg." in text
    assert "never reported" not in text


def test_the_summary_shows_the_legs_before_the_outputs() -> None:
    summary = render_summary(an_aggregate())
    assert "### 3 legs" in summary
    assert "### Outputs" in summary
    assert summary.index("### 3 legs") < summary.index("### Outputs")


# --- JUnit --------------------------------------------------------------------------------------


def parse(xml: str) -> ET.Element:
    suites = ET.fromstring(xml)  # noqa: S314 - XML this test made
    assert suites.tag == "testsuites"
    (suite,) = list(suites)
    return suite


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in suite.iter("testcase")}


def test_junit_one_testcase_per_output() -> None:
    failed_drv = drv("a")
    report = Report(
        installables=(
            Installable(
                name=installable_of("a"),
                drv=failed_drv,
                outputs={"out": out("a")},
                status="failed",
                error="build of a failed",
            ),
            Installable(
                name=installable_of("broken"), status="error", error="error: undefined variable"
            ),
            Installable(name=installable_of("c"), drv=drv("c"), outputs={"out": out("c")}),
            Installable(name=installable_of("d"), drv=drv("d"), outputs={"out": out("d")}),
            Installable(
                name=installable_of("e"),
                drv=drv("e"),
                outputs={"out": out("e"), "dev": out("e", "dev")},
            ),
            Installable(name=installable_of("f"), drv=drv("f"), outputs={"out": out("f")}),
        ),
        builds=(
            Build(
                drv=failed_drv,
                status="failed",
                log_tail=("compiling main.c", "main.c:3: error: expected ';'"),
            ),
        ),
        checks=(
            Check(
                drv=drv("c"), output="out", path=out("c"), verdict="differs", reason="bytes differ"
            ),
            Check(
                drv=drv("d"),
                output="out",
                path=out("d"),
                verdict="not-checked",
                reason="the check was off",
            ),
            Check(drv=drv("e"), output="out", path=out("e"), verdict="reproducible"),
            Check(drv=drv("e"), output="dev", path=out("e", "dev"), verdict="reproducible"),
        ),
        seconds=12.5,
    )
    suite = parse(render_junit(report))
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "7",
        "failures": "2",
        "errors": "1",
        "skipped": "2",
        "time": "12.500",
    }
    found = cases(suite)
    assert set(found) == {
        installable_of("a"),
        installable_of("broken"),
        installable_of("c"),
        installable_of("d"),
        installable_of("e"),
        installable_of("e") + "^dev",
        installable_of("f"),
    }
    assert all(case.attrib["classname"] == LINUX for case in found.values())
    # A failed build: a failure with the log tail.
    (failure,) = list(found[installable_of("a")])
    assert failure.tag == "failure"
    assert failure.attrib["message"] == "build of a failed"
    assert failure.text is not None
    assert "main.c:3: error: expected ';'" in failure.text
    # An evaluation error: an error.
    (error,) = list(found[installable_of("broken")])
    assert (error.tag, error.attrib["message"]) == ("error", "error: undefined variable")
    # A differing output: a failure that says so.
    (differs,) = list(found[installable_of("c")])
    assert differs.tag == "failure"
    assert "not reproducible" in differs.attrib["message"]
    assert out("c") in differs.attrib["message"]
    # Not checked: skipped, with the reason; no check at all: skipped too.
    (skipped,) = list(found[installable_of("d")])
    assert (skipped.tag, skipped.attrib["message"]) == ("skipped", "the check was off")
    assert [child.tag for child in found[installable_of("f")]] == ["skipped"]
    # Reproducible: a pass, with no child.
    assert list(found[installable_of("e")]) == []
    assert list(found[installable_of("e") + "^dev"]) == []


def test_junit_a_leg_that_never_reported_is_an_error() -> None:
    suite = parse(render_junit(an_aggregate()))
    found = cases(suite)
    (error,) = list(found[installable_of("c")])
    assert error.tag == "error"
    assert "x86_64-linux-2" in error.attrib["message"]
    assert suite.attrib["errors"] == "1"
    assert suite.attrib["failures"] == "0"
    assert suite.attrib["tests"] == "4"  # a, b and d built; c never


def test_junit_control_characters_do_not_break_the_xml() -> None:
    report = Report(
        installables=(
            Installable(
                name=installable_of("a"),
                drv=drv("a"),
                outputs={"out": out("a")},
                status="failed",
                error="failed \x1b[31mhere\x1b[0m",
            ),
        ),
        builds=(
            Build(
                drv=drv("a"),
                status="failed",
                log_tail=("\x1b[31mred\x1b[0m\x00\x07\x08 bell", "tab\there"),
            ),
        ),
    )
    suite = parse(render_junit(report))
    (failure,) = list(cases(suite)[installable_of("a")])
    assert failure.text is not None
    assert "[31mred[0m bell" in failure.text
    assert "tab\there" in failure.text
    assert "\x1b" not in failure.text
    assert failure.attrib["message"] == "failed [31mhere[0m"


def test_junit_without_a_system_in_the_name() -> None:
    report = Report(installables=(Installable(name=".#hydraJobs.x", outputs={"out": out("x")}),))
    suite = parse(render_junit(report))
    assert cases(suite)[".#hydraJobs.x"].attrib["classname"] == ""
    assert "time" not in suite.attrib  # no wall time measured


# --- the legs' reports from artifacts -------------------------------------------------------------


def test_reports_are_read_from_artifact_folders(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    first, third = leg_report(LEG_1), leg_report(LEG_3, with_leg=False)
    write_report(first, artifacts / "x86_64-linux-1" / "report.json")
    write_report(third, artifacts / "aarch64-darwin-1" / "report.json")
    legs, notes = collect_leg_reports([artifacts])
    assert notes == []
    assert [(leg.source, leg.report) for leg in legs] == [
        ("aarch64-darwin-1", third),
        ("x86_64-linux-1", first),
    ]
    # The folder names the leg of a report that does not say it.
    report = aggregate(plan_of(), legs)
    assert [(leg.id, leg.verdict) for leg in report.legs] == [
        ("x86_64-linux-2", "missing"),
        ("aarch64-darwin-1", "ok"),
        ("x86_64-linux-1", "ok"),
    ]


def test_a_broken_report_file_is_a_note(tmp_path: Path) -> None:
    write_report(leg_report(LEG_1), tmp_path / "x86_64-linux-1" / "report.json")
    broken = tmp_path / "x86_64-linux-2" / "report.json"
    broken.parent.mkdir()
    broken.write_text("{ not json", encoding="utf-8")
    legs, notes = collect_leg_reports([tmp_path])
    assert [leg.source for leg in legs] == ["x86_64-linux-1"]
    assert len(notes) == 1
    assert str(broken) in notes[0]
    assert "is not JSON" in notes[0]
    # Its leg then counts as one that never reported.
    report = aggregate(plan_of([LEG_1, LEG_2]), legs)
    assert [(leg.id, leg.verdict) for leg in report.legs] == [
        ("x86_64-linux-2", "missing"),
        ("x86_64-linux-1", "ok"),
    ]


def test_a_folder_without_a_report_is_a_note(tmp_path: Path) -> None:
    empty = tmp_path / "x86_64-linux-1"
    (empty / "logs").mkdir(parents=True)
    (empty / "logs" / "build.log").write_text("nothing\n", encoding="utf-8")
    legs, notes = collect_leg_reports([empty])
    assert legs == []
    assert notes == [NOTHING_FOUND.format(path=empty, file="report.json")]
