"""The ledger on recorded logs of what goes wrong in the field (see tests/logs/README.md): caches
that throttle (429), fail (500), serve corrupt NARs or are not there next to a good one, a remote
builder over ssh, and an interrupted build. The counts are known from how record.sh made each
log; where the ledger gets one wrong the test says what is right and is marked xfail."""

from __future__ import annotations

from pathlib import Path

import pytest

from nix_cache_action.ledger import Ledger
from nix_cache_action.report import Report
from nix_cache_action.store_path import store_name

LOGS = Path(__file__).parent.parent / "logs"
VERSIONS = ["2.8", "2.34", "det3.22"]
MAGIC_NIX_CACHE = "http://127.0.0.1:37515"
DEAD = "http://127.0.0.1:9"


def ledger_of(name: str, version: str) -> Ledger:
    ledger = Ledger(run="analyze")
    with (LOGS / f"{name}-{version}.log").open("rb") as handle:
        ledger.consume(handle)
    return ledger


def report_of(name: str, version: str) -> Report:
    return ledger_of(name, version).report()


# --- a cache answering every narinfo with an HTTP error -------------------------------------


@pytest.mark.parametrize(
    ("name", "cache", "status"),
    [
        ("cache429", "http://127.0.0.1:37518", 429),
        ("narinfo500", "http://127.0.0.1:37519", 500),
    ],
)
@pytest.mark.parametrize("version", VERSIONS)
def test_a_narinfo_error_is_the_caches_and_nix_gives_up(
    name: str, cache: str, status: int, version: str
) -> None:
    # Both with 2 download attempts and without `fallback`: the first narinfo (top's) fails
    # twice, and every version stops there; a transient HTTP error on a narinfo is fatal
    # without fallback, so nothing is substituted and nothing is built.
    report = report_of(name, version)
    assert report.substitutions == ()
    assert report.builds == ()
    assert [(e.substituter, e.status, e.retried) for e in report.cache_errors] == [
        (cache, status, True),
        (cache, status, False),
    ]
    assert all(
        e.url.startswith(f"{cache}/") and e.url.endswith(".narinfo") for e in report.cache_errors
    )
    assert not any(e.substituter.endswith("/nar") for e in report.cache_errors)
    (row,) = report.substituters()
    assert (row.url, row.substituted, row.queried, row.errors, row.hit_rate) == (
        cache,
        0,
        1,
        2,
        0.0,
    )
    totals = report.totals()
    assert (totals.substituted, totals.built, totals.failed, totals.cache_errors) == (0, 0, 0, 2)
    assert totals.hit_rate is None  # nothing was fetched or built: no rate to give
    assert report.warnings == ()  # the retried download is a cache error, not a warning
    (error,) = report.errors
    assert error.startswith("error: unable to download")
    assert f"HTTP error {status}" in error
    assert report.verdict() == "failed"


# --- a cache whose NARs do not decompress -----------------------------------------------------

CORRUPT = "http://127.0.0.1:37520"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_corrupt_nar_is_built_instead(version: str) -> None:
    # `fallback = true`: Nix tries leaf's NAR twice, cannot unpack it ("Failed to open
    # archive"), then builds all three.
    report = report_of("corrupt", version)
    assert sorted(store_name(b.drv) for b in report.builds) == ["leaf", "mid", "top"]
    assert {b.status for b in report.builds} == {"built"}
    assert report.totals().built == 3
    # Each failed copy is a cache error of that cache, not an error of the run.
    archive = [e for e in report.cache_errors if "Failed to open archive" in e.message]
    assert len(archive) == 2
    assert not [e for e in report.errors if "Failed to open archive" in e]


@pytest.mark.parametrize(
    "version",
    VERSIONS,
)
def test_a_corrupt_nar_is_no_hit(version: str) -> None:
    report = report_of("corrupt", version)
    assert report.substitutions == ()
    totals = report.totals()
    assert (totals.substituted, totals.built, totals.hit_rate) == (0, 3, 0.0)
    (row,) = report.substituters()
    assert (row.url, row.substituted, row.queried, row.hit_rate) == (CORRUPT, 0, 3, 0.0)


@pytest.mark.parametrize(
    "version",
    VERSIONS,
)
def test_a_corrupt_nar_is_a_cache_error_for_its_path(version: str) -> None:
    report = report_of("corrupt", version)
    errors = report.cache_errors
    assert [(e.substituter, e.status) for e in errors] == [(CORRUPT, None)] * 2
    assert [store_name(e.path or "") for e in errors] == ["leaf", "leaf"]
    assert all(e.url.startswith(f"{CORRUPT}/nar/") for e in errors)
    (row,) = report.substituters()
    assert row.errors == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_a_corrupt_nar_makes_its_builds_the_caches_fault(version: str) -> None:
    report = report_of("corrupt", version)
    builds = {store_name(b.drv): b for b in report.builds}
    reasons = {name: b.reason for name, b in builds.items()}
    if version == "2.8":
        # 2.8 never says that top waited on leaf ("some references ... could not be
        # realised" came later): its log cannot tell top's miss from one the cache lacked.
        assert reasons == {"leaf": "cache-error", "top": "not-in-cache", "mid": "not-in-cache"}
        assert "could not be reached" not in builds["leaf"].reason_detail
        return
    assert reasons == {"leaf": "cache-error", "top": "cache-error", "mid": "not-in-cache"}
    # The cache answered, with bytes that do not unpack: it was reachable.
    assert "could not be reached" not in builds["leaf"].reason_detail
    assert "could not be reached" not in builds["top"].reason_detail


# --- a dead cache before a good one -----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_dead_cache_before_a_good_one(version: str) -> None:
    report = report_of("deadgood", version)
    # Every NAR comes from the good cache, as in substitute-V.log.
    assert sorted(store_name(s.path) for s in report.substitutions) == ["leaf", "top"]
    assert {s.substituter for s in report.substitutions} == {MAGIC_NIX_CACHE}
    assert sorted(s.download_bytes or 0 for s in report.substitutions) == [128, 184]
    assert report.builds == ()
    # The dead cache: its nix-cache-info, twice (2 download attempts), with no HTTP status.
    errors = report.cache_errors
    assert [(e.substituter, e.status, e.retried) for e in errors] == [
        (DEAD, None, True),
        (DEAD, None, False),
    ]
    assert {e.url for e in errors} == {f"{DEAD}/nix-cache-info"}
    rows = {row.url: row for row in report.substituters()}
    assert set(rows) == {DEAD, MAGIC_NIX_CACHE}
    dead, good = rows[DEAD], rows[MAGIC_NIX_CACHE]
    assert (dead.substituted, dead.queried, dead.errors, dead.hit_rate) == (0, 0, 2, None)
    assert (good.name, good.substituted, good.queried, good.errors, good.hit_rate) == (
        "Magic Nix Cache",
        2,
        2,
        0,
        1.0,
    )
    totals = report.totals()
    assert (totals.substituted, totals.built, totals.hit_rate, totals.cache_errors) == (
        2,
        0,
        1.0,
        2,
    )
    assert report.errors == ()
    assert report.warnings == ()
    assert report.verdict() == "ok"


# --- a remote builder -------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_builds_on_a_remote_builder(version: str) -> None:
    report = report_of("remote", version)
    # Nix logs a remote build as its own activity and the builder's nested in it: one build.
    builds = {store_name(b.drv): b for b in report.builds}
    assert len(report.builds) == len(builds) == 3
    assert {name: b.status for name, b in builds.items()} == {
        "leaf": "built",
        "mid": "built",
        "fails": "failed",
    }
    assert {b.machine for b in report.builds} == {"ssh-ng://nca-builder"}
    assert all(b.drv.startswith("/nix/store/") for b in report.builds)  # the chroot store's
    assert builds["fails"].log_tail == ("oops",)
    assert builds["fails"].error is not None
    assert "fails.drv" in builds["fails"].error
    assert builds["leaf"].error is None
    assert builds["mid"].error is None
    totals = report.totals()
    assert (totals.substituted, totals.built, totals.failed, totals.cancelled) == (0, 2, 1, 0)
    assert report.cache_errors == ()
    assert report.verdict() == "failed"


# --- an interrupted build ---------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_an_interrupted_run_is_no_success(version: str) -> None:
    report = report_of("interrupt", version)
    (build,) = report.builds
    assert store_name(build.drv) == "slow"
    assert "error: interrupted by the user" in report.errors
    assert not report.succeeded()
    assert report.verdict() == "failed"


@pytest.mark.parametrize("version", VERSIONS)
def test_an_interrupted_build_is_cancelled_where_the_log_can_tell(version: str) -> None:
    # SIGINT 'slow started' into a 30-second build: it never finished. Determinate Nix sends a
    # result for each build it finishes, and none for slow (its stop record comes after
    # "shutting down" on the same line); upstream Nix stops slow's activity as a finished
    # build's, and its builds activity never counts it done.
    ledger = ledger_of("interrupt", version)
    report = ledger.report()
    (build,) = report.builds
    totals = report.totals()
    assert build.status == "cancelled"
    assert (totals.built, totals.cancelled, totals.hit_rate) == (0, 1, None)
    assert ledger.unconfirmed_builds() == 0
    if version == "det3.22":
        assert build.log_tail == ("slow started",)
    assert report.verdict() == "failed"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_cache_turned_off_before_it_was_asked_is_the_reason_not_no_cache(version: str) -> None:
    """The only cache (127.0.0.1:9) cannot be reached from the first request: Nix turns it off
    and asks no cache for any path. Each build says so, naming the cache, rather than "no cache
    was asked for it", which reads as if none were configured."""
    report = report_of("unreachable", version)
    misses = [b for b in report.builds if b.status == "built"]
    assert misses
    for build in misses:
        assert build.reason == "cache-error"
        assert "127.0.0.1:9" in build.reason_detail
        assert "no cache was asked" not in build.reason_detail
