"""The plain-text account at the end of a run: what the terminal says of times and earlier
checks."""

from __future__ import annotations

from nix_cache_action.render.terminal import render_terminal
from nix_cache_action.report import (
    Check,
    Phases,
    Report,
    Run,
    Substitution,
    Verification,
)

TOP = "/nix/store/0aa4gy9rrvmpf9kvl5cn2b0p7x4vcx8a-top"
DRV = "/nix/store/1bb4gy9rrvmpf9kvl5cn2b0p7x4vcx8a-top.drv"
CACHE = "http://cache.example.org"


def warm_report(earlier: Verification) -> Report:
    """A warm run: one path fetched, nothing built, its output verified by an earlier run."""
    return Report(
        substitutions=(Substitution(TOP, CACHE, seconds=0.2, started=0.1),),
        checks=(
            Check(
                drv=DRV,
                output="out",
                path=TOP,
                verdict="reproducible",
                reason=f"verified {earlier.when()}, not rebuilt",
                installable=".#default",
                previously_verified=earlier,
            ),
        ),
        runs=(Run(label="build", seconds=0.4),),
        phases=Phases(evaluation=0.05, download=0.2, cache_query=0.03),
    )


def earlier_check(run_url: str | None = None, commit: str | None = None) -> Verification:
    return Verification(
        drv=DRV,
        output="out",
        nar_hash="sha256-AAAA",
        verdict="reproducible",
        checked_at="2026-11-30T08:15:00Z",
        commit=commit,
        run_url=run_url,
    )


def test_phases_that_did_not_happen_are_left_out_not_shown_as_unknown() -> None:
    text = render_terminal(warm_report(earlier_check()))

    assert "  evaluation 50 ms, download 200 ms, asking caches 30 ms\n" in text + "\n"
    assert "?" not in text  # nothing was built or checked: no `build ?`, no `check ?`


def test_a_log_read_from_a_file_says_its_times_are_unknown_once() -> None:
    report = Report(substitutions=(Substitution(TOP, CACHE),), runs=(Run(label="analyze"),))

    text = render_terminal(report)

    assert "times unknown: a log read from a file holds none" in text
    assert "?" not in text  # no cache time of `?` either
    assert "  cache cache.example.org: 1 path\n" in text + "\n"  # no `0 B`, no `?`


def test_an_earlier_check_is_named_by_its_day_and_its_run() -> None:
    run = "https://github.com/owner/repo/actions/runs/42"

    in_a_run = render_terminal(warm_report(earlier_check(run_url=run, commit="c0ffee" * 7)))
    at_a_commit = render_terminal(warm_report(earlier_check(commit="c0ffee" * 7)))
    on_a_laptop = render_terminal(warm_report(earlier_check()))

    check = "  check .#default: reproducible (verified on 2026-11-30{}, not rebuilt)"
    assert check.format(f" in {run}") in in_a_run
    assert check.format(" at commit c0ffeec0ffee") in at_a_commit
    assert check.format("") in on_a_laptop
