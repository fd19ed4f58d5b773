"""`--baseline`: this run against an earlier one (baseline.py), each part with numbers known by
construction from reports built by hand, and `merge --baseline` on recorded logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nix_cache_action.baseline import compare
from nix_cache_action.cli import main
from nix_cache_action.report import (
    Baseline,
    Build,
    CacheChange,
    Check,
    Report,
    SlowerBuild,
    Substitution,
    VerdictChange,
)
from nix_cache_action.schema import schema_errors

LOGS = Path(__file__).parent.parent / "logs"
CACHE = "https://cache.example.org"
MAGIC = "http://127.0.0.1:37515"


def drv(name: str, version: str = "a") -> str:
    """A derivation path: the same name with another hash for another `version`."""
    return f"/nix/store/{version * 32}-{name}.drv"


def built(name: str, seconds: float | None = None, version: str = "a", **more: Any) -> Build:
    return Build(
        drv=drv(name, version), status=more.pop("status", "built"), seconds=seconds, **more
    )


def subs(count: int, cache: str = CACHE, first: int = 0) -> tuple[Substitution, ...]:
    return tuple(
        Substitution(path=f"/nix/store/{i:032d}-dep-{i}", substituter=cache)
        for i in range(first, first + count)
    )


# --- the totals ---------------------------------------------------------------------------------


def test_the_totals_before_and_their_change() -> None:
    earlier = Report(
        builds=(
            built("a", 2.0),
            built("b", 3.0),
            built("c", 1.0),
            built("d", 4.0, status="failed"),
        ),
        substitutions=subs(1),
        seconds=60.0,
    )
    now = Report(
        builds=(built("a", 1.5), built("e", 0.5, status="checked", reason=None)),
        substitutions=subs(3),
        seconds=42.5,
    )
    baseline = compare(now, earlier, "base/report.json")

    assert baseline.source == "base/report.json"
    # Earlier: 3 built, 1 substituted, 1 failed; hit rate 1/4; 10 s in builds (failed ones too).
    assert baseline.totals_before == {
        "built": 3,
        "substituted": 1,
        "failed": 1,
        "hit_rate": 0.25,
        "build_seconds": 10.0,
        "seconds": 60.0,
    }
    # Now: 1 built, 3 substituted, none failed; hit rate 3/4; 1.5 s (a check is no build).
    assert baseline.totals_delta == {
        "built": -2,
        "substituted": 2,
        "failed": -1,
        "hit_rate": 0.5,
        "build_seconds": -8.5,
        "seconds": -17.5,
    }


def test_a_figure_unknown_on_either_side_has_no_change() -> None:
    # The earlier run needed nothing (no hit rate), recorded no times and no wall time.
    earlier = Report()
    now = Report(builds=(built("a", 2.0),), seconds=9.0)
    baseline = compare(now, earlier, "x")
    assert baseline.totals_before == {
        "built": 0,
        "substituted": 0,
        "failed": 0,
        "hit_rate": None,
        "build_seconds": None,
        "seconds": None,
    }
    assert baseline.totals_delta == {
        "built": 1,
        "substituted": 0,
        "failed": 0,
        "hit_rate": None,
        "build_seconds": None,
        "seconds": None,
    }
    # And the other way round.
    assert compare(earlier, now, "x").totals_delta["seconds"] is None


def test_the_same_report_has_no_change_at_all() -> None:
    report = Report(
        builds=(built("a", 2.0), built("b", 30.0)),
        substitutions=subs(2),
        checks=(
            Check(drv=drv("a"), output="out", path=None, verdict="reproducible", installable=".#a"),
        ),
        queried={CACHE: 4},
        seconds=50.0,
    )
    baseline = compare(report, report, "same")
    assert set(baseline.totals_delta.values()) == {0}
    assert baseline.new_builds == ()
    assert baseline.slower == ()
    assert baseline.reproducibility_changes == ()
    assert baseline.caches == ()


# --- new builds ---------------------------------------------------------------------------------


def test_new_builds_are_the_builds_and_failures_the_earlier_run_did_not_build() -> None:
    earlier = Report(
        builds=(
            built("kept"),
            built("failed-before", status="failed"),
            built("checked-before", status="checked", reason=None),
            built("changed", version="a"),
        )
    )
    now = Report(
        builds=(
            built("kept"),  # built both times: not new
            built("failed-before"),  # failed before, built now: not new
            built("checked-before"),  # only rebuilt for the check before: new
            built("changed", version="b"),  # another hash: a new derivation
            built("broken", status="failed"),  # failing now counts as well
            built("only-checked", status="checked", reason=None),  # a check is no build
            built("cancelled", status="cancelled"),
            built("broken", status="failed"),  # twice in the log: once here
        )
    )
    assert compare(now, earlier, "x").new_builds == (
        drv("checked-before"),
        drv("changed", "b"),
        drv("broken"),
    )


def test_what_the_earlier_run_substituted_is_new_when_built_now() -> None:
    dep = "/nix/store/" + "e" * 32 + "-dep"
    earlier = Report(substitutions=(Substitution(path=dep, substituter=CACHE),))
    now = Report(builds=(Build(drv="/nix/store/" + "e" * 32 + "-dep.drv", status="built"),))
    assert compare(now, earlier, "x").new_builds == ("/nix/store/" + "e" * 32 + "-dep.drv",)


# --- slower builds -----------------------------------------------------------------------------


def test_a_build_is_slower_by_one_second_and_a_quarter_under_any_hash() -> None:
    earlier = Report(
        builds=(
            built("doubled", 2.0),
            built("slightly", 10.0),
            built("tiny", 0.1),
            built("quarter", 4.0),
            built("faster", 20.0),
            built("failed-now", 1.0),
            built("untimed", 3.0),
            built("checked", 1.0, status="checked", reason=None),
            built("failed-before", 1.0, status="failed"),
        )
    )
    now = Report(
        builds=(
            built("doubled", 3.0, version="b"),  # +1 s, +50%: slower
            built("slightly", 11.0, version="b"),  # +1 s, but only +10%
            built("tiny", 0.9, version="b"),  # +800%, but under a second
            built("quarter", 5.0, version="b"),  # +1 s, +25% exactly: slower
            built("faster", 5.0, version="b"),
            built("failed-now", 9.0, version="b", status="failed"),
            built("untimed", None, version="b"),
            built("checked", 9.0, version="b"),  # rebuilt for a check before: nothing to compare
            built("failed-before", 9.0, version="b"),  # no time of a finished build before
            built("new", 100.0, version="b"),
        )
    )
    assert compare(now, earlier, "x").slower == (
        SlowerBuild("doubled", 3.0, 2.0),
        SlowerBuild("quarter", 5.0, 4.0),
    )


def test_the_five_most_slowed_down_builds_are_listed_most_first() -> None:
    grown = [3.0, 9.0, 1.0, 7.0, 5.0, 2.0, 8.0]  # seconds more than 1 s each took before
    earlier = Report(builds=tuple(built(f"p{i}", 1.0) for i in range(len(grown))))
    now = Report(builds=tuple(built(f"p{i}", 1.0 + g, version="b") for i, g in enumerate(grown)))
    slower = compare(now, earlier, "x").slower
    assert [s.name for s in slower] == ["p1", "p6", "p3", "p4", "p0"]
    assert [s.seconds - s.baseline_seconds for s in slower] == [9.0, 8.0, 7.0, 5.0, 3.0]


# --- reproducibility changes ---------------------------------------------------------------------


def verdict(installable: str | None, output: str | None, value: Any, **more: Any) -> Check:
    return Check(
        drv=drv(installable or "deep"),
        output=output,
        path=None,
        verdict=value,
        installable=installable,
        **more,
    )


def test_reproducibility_changes_by_installable_and_output() -> None:
    earlier = Report(
        checks=(
            verdict(".#split", "out", "reproducible"),
            verdict(".#split", "dev", "reproducible"),
            verdict(".#nondet", "out", "differs"),
            verdict(".#off", "out", "not-checked"),
            verdict(".#gone", "out", "reproducible"),
            verdict(None, "out", "reproducible", deep=True),
        )
    )
    now = Report(
        checks=(
            verdict(".#split", "out", "reproducible"),  # the same
            verdict(".#split", "dev", "differs"),  # broke
            verdict(".#nondet", "out", "reproducible"),  # fixed
            verdict(".#off", "out", "reproducible"),  # checked now
            verdict(".#new", "out", "differs"),  # nothing to compare with
            verdict(None, "out", "differs", deep=True),  # a deep check has no installable
        )
    )
    assert compare(now, earlier, "x").reproducibility_changes == (
        VerdictChange(".#split", "dev", "reproducible", "differs"),
        VerdictChange(".#nondet", "out", "differs", "reproducible"),
        VerdictChange(".#off", "out", "not-checked", "reproducible"),
    )


# --- caches -----------------------------------------------------------------------------------


def test_cache_changes_in_paths_served_and_hit_rate() -> None:
    steady = "https://steady.example.org"
    earlier = Report(
        substitutions=subs(4) + subs(2, MAGIC, first=10) + subs(1, steady, first=20),
        queried={CACHE: 8, MAGIC: 2, steady: 1},
    )
    now = Report(
        substitutions=subs(2, f"{CACHE}?trusted=1") + subs(1, steady, first=20),
        queried={f"{CACHE}?trusted=1": 8, steady: 1, "https://new.example.org": 3},
    )
    changes = compare(now, earlier, "x").caches
    # One cache however it is written (`?trusted=1` or not); the unchanged one is left out, and
    # a cache on one side only is compared with nothing.
    assert changes == (
        CacheChange(f"{CACHE}?trusted=1", 2, 4, 0.25, 0.5),
        CacheChange("https://new.example.org", 0, 0, 0.0, None),
        CacheChange(MAGIC, 0, 2, None, 1.0),
    )


# --- JSON and the CLI -----------------------------------------------------------------------------


def test_a_baseline_survives_the_report_json() -> None:
    earlier = Report(
        builds=(built("slow", 2.0), built("old", 1.0)),
        substitutions=subs(2),
        checks=(verdict(".#slow", "out", "differs"),),
        queried={CACHE: 2},
        seconds=10.0,
    )
    now = Report(
        builds=(built("slow", 4.0, version="b"), built("fresh", 1.0)),
        checks=(verdict(".#slow", "out", "reproducible"),),
        queried={CACHE: 2},
        seconds=12.0,
    )
    report = Report(
        builds=now.builds,
        checks=now.checks,
        queried=now.queried,
        seconds=now.seconds,
        baseline=compare(now, earlier, "earlier.json"),
    )
    assert report.baseline == Baseline(
        source="earlier.json",
        totals_before={
            "built": 2,
            "substituted": 2,
            "failed": 0,
            "hit_rate": 0.5,
            "build_seconds": 3.0,
            "seconds": 10.0,
        },
        totals_delta={
            "built": 0,
            "substituted": -2,
            "failed": 0,
            "hit_rate": -0.5,
            "build_seconds": 2.0,
            "seconds": 2.0,
        },
        new_builds=(drv("slow", "b"), drv("fresh")),
        slower=(SlowerBuild("slow", 4.0, 2.0),),
        reproducibility_changes=(VerdictChange(".#slow", "out", "differs", "reproducible"),),
        caches=(CacheChange(CACHE, 0, 2, 0.0, 1.0),),
    )
    data = report.to_json()
    assert schema_errors(data) == []
    assert Report.from_json(json.loads(json.dumps(data))).baseline == report.baseline


def analyzed(log: str, path: Path) -> Path:
    assert main(["analyze", str(LOGS / log), "--report", str(path)]) == 0
    return path


def test_merge_compares_with_a_baseline_report(tmp_path: Path) -> None:
    # The base branch's run substituted two paths; this one substituted the same and built 4.
    base = analyzed("substitute-2.34.log", tmp_path / "base.json")
    one = analyzed("substitute-2.34.log", tmp_path / "1.json")
    two = analyzed("build-2.34.log", tmp_path / "2.json")
    out = tmp_path / "merged.json"
    assert main(["merge", str(one), str(two), "--baseline", str(base), "--report", str(out)]) == 0
    merged = json.loads(out.read_text(encoding="utf-8"))
    assert schema_errors(merged) == []
    baseline = merged["baseline"]
    assert baseline["source"] == str(base)
    assert baseline["totals_before"] == {
        "built": 0,
        "substituted": 2,
        "failed": 0,
        "hit_rate": 1.0,
        "build_seconds": None,
        "seconds": None,
    }
    assert baseline["totals_delta"] == {
        "built": 4,
        "substituted": 0,
        "failed": 0,
        "hit_rate": round(2 / 6 - 1, 4),
        "build_seconds": None,
        "seconds": None,
    }
    two_builds = json.loads(two.read_text(encoding="utf-8"))["builds"]
    assert baseline["new_builds"] == [b["drv"] for b in two_builds]
    assert [n.rsplit("-", 1)[-1] for n in baseline["new_builds"]] == [
        "leaf.drv",
        "mid.drv",
        "nondet.drv",
        "top.drv",
    ]
    assert baseline["slower"] == []
    assert baseline["reproducibility_changes"] == []
    assert baseline["caches"] == []  # Magic Nix Cache served the same 2 of 2 paths
    assert merged["budgets"] is None
    assert merged["verdict"] == "ok"


def test_analyze_compares_with_a_baseline_report(tmp_path: Path) -> None:
    base = analyzed("build-2.34.log", tmp_path / "base.json")
    out = tmp_path / "now.json"
    argv = ["analyze", str(LOGS / "substitute-2.34.log"), "--baseline", str(base)]
    assert main([*argv, "--report", str(out)]) == 0
    baseline = json.loads(out.read_text(encoding="utf-8"))["baseline"]
    assert baseline["totals_delta"]["built"] == -4
    assert baseline["totals_delta"]["substituted"] == 2
    # The base run asked no cache: it had no hit rate, so there is no change in it to give.
    assert baseline["totals_delta"]["hit_rate"] is None
    assert baseline["new_builds"] == []
    [cache] = baseline["caches"]
    assert (cache["url"], cache["served"], cache["baseline_served"]) == (MAGIC, 2, 0)
    assert (cache["hit_rate"], cache["baseline_hit_rate"]) == (1.0, None)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        pytest.param("{oops", "is not JSON", id="not-json"),
        pytest.param('{"schema_version": 99}', "schema_version 99", id="another-schema"),
    ],
)
def test_an_unusable_baseline_is_a_usage_error_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, said: str
) -> None:
    bad = tmp_path / "base.json"
    bad.write_text(content, encoding="utf-8")
    one = analyzed("substitute-2.34.log", tmp_path / "1.json")
    capsys.readouterr()
    assert main(["merge", str(one), "--baseline", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "--baseline" in err
    assert said in err
    assert str(bad) in err


def test_a_report_read_back_has_the_totals_it_was_written_with() -> None:
    # The JSON keeps each build's seconds to 0.1 ms: 20 builds of 0.14 ms are 0.1 ms each there.
    # A total of the unrounded parts (2.8 ms, so 0.003) then differed from the file's (0.002).
    builds = tuple(
        Build(drv=f"/nix/store/{i:032d}-b{i}.drv", status="built", seconds=0.00014)
        for i in range(20)
    )
    report = Report(builds=builds)
    again = Report.from_json(json.loads(json.dumps(report.to_json())))
    assert again.totals() == report.totals()
    assert compare(report, again, "earlier.json").totals_delta["build_seconds"] == 0
