"""The ledger on logs this project recorded from Nix 2.8 and 2.34 (see tests/logs/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nix_cache_action.ledger import Ledger
from nix_cache_action.ledger.reader import UNREAD_RESULTS
from nix_cache_action.nix.events import OtherResult
from nix_cache_action.render.summary import render_summary
from nix_cache_action.render.terminal import render_terminal
from nix_cache_action.report import Report, Substitution, merge
from nix_cache_action.store_path import store_name

LOGS = Path(__file__).parent.parent / "logs"
VERSIONS = ["2.8", "2.34", "det3.22"]


def ledger_of(name: str, version: str) -> Ledger:
    ledger = Ledger(run="analyze")
    with (LOGS / f"{name}-{version}.log").open("rb") as handle:
        ledger.consume(handle)
    return ledger


def report_of(ledger: Ledger) -> Report:
    return Report(
        substitutions=tuple(ledger.substitutions()),
        builds=tuple(ledger.builds()),
        checks=tuple(ledger.checks()),
        cache_errors=tuple(ledger.cache_errors),
        queried=ledger.queried,
        errors=tuple(ledger.errors),
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_cold_build(version: str) -> None:
    report = report_of(ledger_of("build", version))
    names = sorted(store_name(b.drv) for b in report.builds)
    assert names == ["leaf", "mid", "nondet", "top"]
    assert {b.status for b in report.builds} == {"built"}
    assert {b.reason for b in report.builds} == {"not-in-cache"}
    totals = report.totals()
    # No cache was configured or asked: no rate (0.0 would read as a cache that failed).
    assert (totals.substituted, totals.built, totals.failed, totals.hit_rate) == (0, 4, 0, None)
    assert report.checks == ()
    assert report.errors == ()
    # A recorded log has no times: durations are unknown, not zero.
    assert all(b.seconds is None for b in report.builds)


@pytest.mark.parametrize("version", VERSIONS)
def test_rebuild_gives_verdicts_from_the_log_alone(version: str) -> None:
    report = report_of(ledger_of("rebuild", version))
    verdicts = {store_name(c.drv): c.verdict for c in report.checks}
    assert verdicts == {"nondet": "differs", "top": "reproducible"}
    differs = next(c for c in report.checks if c.verdict == "differs")
    assert differs.output is not None
    assert differs.path is not None
    assert differs.path.endswith("-nondet")
    assert differs.output == "out"
    assert {b.status for b in report.builds} == {"checked"}
    assert report.totals().built == 0  # check rebuilds are not cache misses
    assert report.totals().hit_rate is None


@pytest.mark.parametrize("version", VERSIONS)
def test_failed_build_keeps_its_log_tail(version: str) -> None:
    report = report_of(ledger_of("fail", version))
    (build,) = report.builds
    assert store_name(build.drv) == "fails"
    assert build.status == "failed"
    assert build.log_tail == ("oops",)
    assert build.error is not None
    assert "exit code 3" in build.error
    assert report.totals().failed == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_substitution_from_magic_nix_cache(version: str) -> None:
    report = report_of(ledger_of("substitute", version))
    assert sorted(store_name(s.path) for s in report.substitutions) == ["leaf", "top"]
    (row,) = report.substituters()
    assert row.name == "Magic Nix Cache"
    assert row.url == "http://127.0.0.1:37515"
    assert (row.substituted, row.queried, row.errors, row.hit_rate) == (2, 2, 0, 1.0)
    # The NAR downloads are 128 and 184 bytes (xz); both versions see them.
    assert sorted(s.download_bytes or 0 for s in report.substitutions) == [128, 184]
    if version == "2.34":
        # Only Nix with progress on the copy activity reports the unpacked NAR size.
        assert sorted(s.nar_bytes or 0 for s in report.substitutions) == [120, 176]
    # From a 2.8 log alone the unpacked size is unknown: no total, rather than a wrong 0.
    assert report.totals().nar_bytes == (None if version == "2.8" else 296)
    assert report.totals().download_bytes == 312
    assert row.nar_bytes == report.totals().nar_bytes
    assert report.totals().hit_rate == 1.0


@pytest.mark.parametrize("version", VERSIONS)
def test_cache_answering_418(version: str) -> None:
    report = report_of(ledger_of("cache418", version))
    (error,) = report.cache_errors
    assert error.status == 418
    assert error.substituter == "http://127.0.0.1:37516"
    assert error.url.endswith(".narinfo")
    assert not error.retried
    (row,) = report.substituters()
    assert (row.errors, row.substituted) == (1, 0)
    assert any("HTTP error 418" in e for e in report.errors)


def test_a_caches_seconds_are_wall_time_not_a_sum_of_parallel_copies() -> None:
    a, b = "http://a.example", "http://b.example"
    report = Report(
        substitutions=(
            # From a: 0 to 2 s and 1 to 3 s overlap (3 s of wall time, not 4), 10 to 10.5 s apart.
            Substitution("/nix/store/1-x", a, seconds=2.0, started=0.0),
            Substitution("/nix/store/2-y", a, seconds=2.0, started=1.0),
            Substitution("/nix/store/3-z", a, seconds=0.5, started=10.0),
            # From b, a recorded log's copy: no times, so no figure.
            Substitution("/nix/store/4-w", b),
        )
    )
    seconds = {row.url: row.seconds for row in report.substituters()}
    assert seconds == {a: 3.5, b: None}


def test_asking_the_caches_is_not_evaluation() -> None:
    path = "/nix/store/0aa4gy9rrvmpf9kvl5cn2b0p7x4vcx8a-top"
    cache = "http://cache.example"

    def record(**fields: object) -> bytes:
        return b"@nix " + json.dumps(fields).encode() + b"\n"

    ledger = Ledger(run="build")
    ledger.feed(b"evaluating\n", now=0.0)
    ledger.feed(
        record(action="start", id=1, level=4, parent=0, text="", type=109, fields=[path, cache]),
        now=1.0,
    )
    ledger.feed(record(action="stop", id=1), now=3.0)
    ledger.feed(
        record(action="start", id=2, level=0, parent=0, text="", type=102, fields=[]), now=3.5
    )
    phases = ledger.phases()
    # 3.5 s before realising, 2 of them asking the cache: evaluation is the other 1.5.
    assert (phases.evaluation, phases.cache_query, phases.cache_wait) == (1.5, 2.0, None)
    # No look-up on record (a recorded log, or none made): no figure, rather than 0.
    quiet = Ledger(run="build")
    quiet.feed(b"evaluating\n", now=0.0)
    quiet.feed(
        record(action="start", id=2, level=0, parent=0, text="", type=102, fields=[]), now=1.0
    )
    assert quiet.phases().cache_query is None


def test_feed_feed_lines_and_consume_agree() -> None:
    passed_over = 0
    for log in sorted(LOGS.glob("*.log")):
        fed, batched, consumed = Ledger(run="build"), Ledger(run="build"), Ledger(run="build")
        raw = log.read_bytes().splitlines(keepends=True)
        for line in raw:
            fed.feed(line)
        # As the live reader gets them: a few reads' worth at a time, events in order.
        events = []
        for start in range(0, len(raw), 97):
            events += batched.feed_lines(raw[start : start + 97], None)
        consumed.consume(log.open("rb"))
        expected = report_of(fed).to_json()
        assert report_of(batched).to_json() == expected, log.name
        assert report_of(consumed).to_json() == expected, log.name
        parsed = [e for e in (Ledger(run="build").feed(line) for line in raw) if e is not None]
        # feed_lines passes over the results the report does not read.
        read = [e for e in parsed if not (isinstance(e, OtherResult) and e.type in UNREAD_RESULTS)]
        assert events == read, log.name
        passed_over += len(parsed) - len(read)
    assert passed_over > 0  # the logs hold such results: the check above compared something


def lines(*records: dict[str, object]) -> list[bytes]:
    return [b"@nix " + json.dumps(r).encode() + b"\n" for r in records]


def test_times_phases_and_parallel_union() -> None:
    ledger = Ledger(run="build")
    events = lines(
        {"action": "start", "id": 1, "level": 0, "text": "", "type": 102},
        {
            "action": "start",
            "id": 2,
            "level": 3,
            "text": "building",
            "type": 105,
            "fields": ["/s/aaa-a.drv", "", 1, 1],
        },
        {
            "action": "start",
            "id": 3,
            "level": 3,
            "text": "building",
            "type": 105,
            "fields": ["/s/bbb-b.drv", "", 1, 1],
        },
        {"action": "stop", "id": 2},
        {"action": "stop", "id": 3},
    )
    for now, raw in zip([10.0, 11.0, 12.0, 14.0, 15.0], events, strict=True):
        ledger.feed(raw, now)
    builds = {store_name(b.drv): b for b in ledger.builds()}
    assert builds["a"].seconds == 3.0
    assert builds["b"].seconds == 3.0
    assert builds["b"].started == 2.0
    phases = ledger.phases()
    assert phases.evaluation == 0.0
    assert phases.build == 4.0  # 11..15 overlapping, counted once


def test_interrupted_build_is_cancelled_and_unfinished_substitution_not_counted() -> None:
    ledger = Ledger(run="build")
    ledger.consume(
        lines(
            {
                "action": "start",
                "id": 2,
                "level": 3,
                "text": "building",
                "type": 105,
                "fields": ["/s/aaa-a.drv", "", 1, 1],
            },
            {
                "action": "start",
                "id": 4,
                "level": 0,
                "text": "",
                "type": 108,
                "fields": ["/s/ccc-c", "http://c"],
            },
        )
    )
    (build,) = ledger.builds()
    assert build.status == "cancelled"
    assert build.error == "interrupted before the build finished"
    report = ledger.report()
    assert (report.totals().built, report.totals().cancelled, report.totals().failed) == (0, 1, 0)
    assert report.verdict() == "failed"  # something did not finish: never `ok`
    assert ledger.substitutions() == []
    assert ledger.unfinished_substitutions() == ["/s/ccc-c"]


def test_determinate_build_result_names_its_drv() -> None:
    ledger = Ledger(run="build")
    ledger.consume(
        lines(
            {
                "action": "start",
                "id": 2,
                "level": 3,
                "text": "building",
                "type": 105,
                "fields": ["/nix/store/aaa-a.drv", "", 1, 1],
            },
            {"action": "stop", "id": 2},
            # Sent on another activity (the current one), naming the drv by base name.
            {
                "action": "result",
                "id": 0,
                "type": 110,
                "sid": "s",
                "payload": {
                    "path": {"drvPath": "aaa-a.drv", "outputs": ["*"]},
                    "success": False,
                    "status": "PermanentFailure",
                    "errorMsg": "Cannot build 'aaa-a.drv'.",
                },
            },
        )
    )
    (build,) = ledger.builds()
    assert build.status == "failed"
    assert build.error == "Cannot build 'aaa-a.drv'."


def test_cache_error_explains_the_miss_by_name() -> None:
    ledger = Ledger(run="build")
    ledger.consume(
        lines(
            {
                "action": "start",
                "id": 1,
                "level": 4,
                "text": "",
                "type": 109,
                "fields": ["/s/hhhh-tool-1.0", "http://127.0.0.1:37515"],
            },
            {
                "action": "msg",
                "level": 1,
                "msg": "warning: unable to download "
                "'http://127.0.0.1:37515/hhhh.narinfo': HTTP error 418; retrying in 300 ms",
            },
            {
                "action": "start",
                "id": 2,
                "level": 3,
                "text": "building",
                "type": 105,
                "fields": ["/s/dddd-tool-1.0.drv", "", 1, 1],
            },
            {"action": "stop", "id": 2},
            {
                "action": "start",
                "id": 3,
                "level": 3,
                "text": "building",
                "type": 105,
                "fields": ["/s/eeee-other.drv", "", 1, 1],
            },
            {"action": "stop", "id": 3},
        )
    )
    reasons = {store_name(b.drv): (b.reason, b.reason_detail) for b in ledger.builds()}
    assert reasons["tool-1.0"] == ("cache-error", "http://127.0.0.1:37515 answered HTTP 418")
    assert reasons["other"] == ("not-in-cache", "no configured cache had it")
    (error,) = ledger.cache_errors
    assert error.retried


def test_parallel_nar_downloads_without_parents_stay_unknown() -> None:
    # Nix before 2.18 does not say which copy a download belongs to; with two copies open
    # the bytes cannot be attributed and must not be guessed.
    ledger = Ledger(run="build")
    ledger.consume(
        lines(
            {
                "action": "start",
                "id": 1,
                "level": 0,
                "text": "",
                "type": 108,
                "fields": ["/s/a-a", "c"],
            },
            {
                "action": "start",
                "id": 2,
                "level": 3,
                "text": "",
                "type": 100,
                "fields": ["/s/a-a", "c", "local"],
            },
            {
                "action": "start",
                "id": 3,
                "level": 0,
                "text": "",
                "type": 108,
                "fields": ["/s/b-b", "c"],
            },
            {
                "action": "start",
                "id": 4,
                "level": 3,
                "text": "",
                "type": 100,
                "fields": ["/s/b-b", "c", "local"],
            },
            {
                "action": "start",
                "id": 5,
                "level": 4,
                "text": "",
                "type": 101,
                "fields": ["c/nar/x.nar.xz"],
            },
            {"action": "result", "fields": [99, 99, 0, 0], "id": 5, "type": 105},
            {"action": "stop", "id": 5},
            {"action": "stop", "id": 2},
            {"action": "stop", "id": 1},
            {"action": "stop", "id": 4},
            {"action": "stop", "id": 3},
        )
    )
    assert [s.download_bytes for s in ledger.substitutions()] == [None, None]


def test_merge_rederives_totals() -> None:
    one = report_of(ledger_of("substitute", "2.34"))
    two = report_of(ledger_of("build", "2.34"))
    merged = merge([one, two])
    totals = merged.totals()
    assert (totals.substituted, totals.built) == (2, 4)
    assert totals.hit_rate == round(2 / 6, 4)
    assert merged.queried == {"http://127.0.0.1:37515": 2}
    again = Report.from_json(merged.to_json())
    assert again.to_json() == merged.to_json()


def test_tails_of_old_successful_builds_are_dropped_but_failures_keep_theirs() -> None:
    records: list[dict[str, object]] = []
    for n in range(200):
        drv = f"/s/{n:04d}-b{n}.drv"
        records += [
            {
                "action": "start",
                "id": n,
                "level": 3,
                "text": "building",
                "type": 105,
                "fields": [drv, "", 1, 1],
            },
            {"action": "result", "id": n, "type": 101, "fields": [f"line of {n}"]},
            {"action": "stop", "id": n},
        ]
        if n == 3:
            records.append(
                {
                    "action": "msg",
                    "level": 0,
                    "msg": f"error: builder for '{drv}' failed with exit code 1",
                }
            )
    ledger = Ledger(run="build")
    ledger.consume(lines(*records))
    kept = [state.tail for state in ledger.builds_seen if state.tail]
    assert len(kept) == 64 + 1  # the last 64 stopped, and the failure
    failed = [b for b in ledger.builds() if b.status == "failed"]
    assert [b.log_tail for b in failed] == [("line of 3",)]


def test_determinate_sid_on_every_line_keeps_the_byte_counts() -> None:
    # Determinate Nix 3.20+ adds "sid" to every record; keys are sorted, so it sits between
    # "id" and "type" and the progress fast path must still read the id.
    def rec(**fields: object) -> dict[str, object]:
        return {**fields, "sid": "31d57f8c-5de0-46ca-8684-81f1e61999aa"}

    records = [
        rec(action="start", id=1, level=0, text="", type=108, fields=["/s/a-a", "http://c"]),
        rec(
            action="start",
            id=2,
            level=3,
            text="",
            type=100,
            parent=1,
            fields=["/s/a-a", "http://c", "local"],
        ),
        rec(
            action="start",
            id=3,
            level=4,
            text="",
            type=101,
            parent=2,
            fields=["http://c/nar/x.nar.xz"],
        ),
        rec(action="result", id=3, type=105, fields=[40, 40, 0, 0]),
        rec(action="result", id=2, type=105, fields=[96, 96, 0, 0]),
        rec(action="stop", id=3),
        rec(action="stop", id=2),
        rec(action="stop", id=1),
    ]
    raw = [
        b"@nix " + json.dumps(r, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for r in records
    ]
    assert b'"id":3,"sid":' in raw[3]
    ledger = Ledger(run="build")
    ledger.consume(raw)
    [sub] = ledger.substitutions()
    assert (sub.nar_bytes, sub.download_bytes) == (96, 40)


def test_a_build_whose_outputs_the_store_lacks_is_cancelled_not_built() -> None:
    ledger = Ledger(run="build")
    ledger.consume(
        lines(
            {"action": "start", "id": 2, "level": 3, "text": "building", "type": 105,
             "fields": ["/s/aaa-a.drv", "", 1, 1]},
            {"action": "start", "id": 3, "level": 3, "text": "building", "type": 105,
             "fields": ["/s/bbb-b.drv", "", 1, 1]},
            {"action": "stop", "id": 2},
            {"action": "stop", "id": 3},
        )
    )  # fmt: skip
    ledger.confirm_unbuilt(["/s/bbb-b.drv"])
    statuses = {b.drv: b.status for b in ledger.builds()}
    assert statuses == {"/s/aaa-a.drv": "built", "/s/bbb-b.drv": "cancelled"}
    totals = ledger.report().totals()
    assert (totals.built, totals.cancelled, totals.hit_rate) == (1, 1, None)  # no cache asked


@pytest.mark.parametrize("version", VERSIONS)
def test_a_log_names_its_nix_only_where_it_says_so(version: str) -> None:
    nix = ledger_of("build", version).report().nix
    if version == "det3.22":
        # At -v Determinate Nix opens its log with its version line.
        assert (nix.version, nix.flavour) == ("2.35.2", "determinate")
        assert nix.text == "Nix (Determinate Nix 3.22.2) 2.35.2"
    else:
        assert (nix.version, nix.flavour, nix.text) == (None, None, None)


def test_determinate_retries_of_a_build_activity_are_one_build() -> None:
    # Determinate Nix 3.22 starts and stops the build activity of a derivation each time the
    # goal waits for a build slot; the recorded cold build has two activities for top and
    # nondet. Each is still one build.
    log = (LOGS / "build-det3.22.log").read_bytes()
    assert (
        log.count(b"building '/tmp/nca-record/store/3sf67aw2myg3v13xkfsci3yis6dlghn3-top.drv'") == 2
    )
    report = ledger_of("build", "det3.22").report()
    assert sorted(store_name(b.drv) for b in report.builds) == ["leaf", "mid", "nondet", "top"]
    assert report.totals().built == 4


@pytest.mark.parametrize("version", VERSIONS)
def test_a_nar_download_that_fails_is_a_cache_error_for_its_path_and_no_hit(version: str) -> None:
    # nar500: the cache's narinfos are fine, every NAR answers HTTP 500 (2 attempts), and
    # `fallback = true`.
    report = ledger_of("nar500", version).report()
    assert report.substitutions == ()
    cache = "http://127.0.0.1:37517"
    assert [(e.substituter, e.status) for e in report.cache_errors] == [(cache, 500)] * 2
    assert {store_name(e.path or "") for e in report.cache_errors} == {"leaf"}
    (row,) = report.substituters()
    assert (row.url, row.substituted, row.errors) == (cache, 0, 2)
    reasons = {store_name(b.drv): (b.reason, b.reason_detail) for b in report.builds}
    if version == "2.8":
        # Nix 2.8 gives up at the failed NAR, fallback or not: nothing is built.
        assert reasons == {}
        return
    # Newer Nix builds what it could not fetch: leaf (its NAR failed) and top (its reference
    # leaf could not be fetched) because of the cache; mid, which the cache lacks, as a miss.
    answered = ("cache-error", f"{cache} answered HTTP 500")
    assert reasons == {
        "leaf": answered,
        "top": answered,
        "mid": ("not-in-cache", "no configured cache had it"),
    }
    assert report.totals().hit_rate == 0.0


def test_warnings_are_kept_once_each_and_download_retries_are_cache_errors() -> None:
    dirty = "\x1b[35;1mwarning:\x1b[0m Git tree '/src' is dirty"
    retry = (
        "warning: unable to download 'http://c/nar/x.nar.xz': HTTP error 500; retrying in 258 ms"
    )
    ledger = Ledger(run="build")
    ledger.consume(
        lines(
            {"action": "msg", "level": 1, "msg": dirty},
            {"action": "msg", "level": 1, "msg": dirty},
            {"action": "msg", "level": 1, "msg": retry},
            {"action": "msg", "level": 1, "msg": "warning: ignoring untrusted substituter 'x'"},
        )
    )
    report = ledger.report()
    assert report.warnings == (
        "warning: Git tree '/src' is dirty",
        "warning: ignoring untrusted substituter 'x'",
    )
    assert [e.status for e in report.cache_errors] == [500]
    assert render_terminal(report).count("is dirty") == 1
    assert "### ⚠️ 2 warnings from Nix" in render_summary(report)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_cache_nothing_listens_on_is_a_cache_error_without_a_status(version: str) -> None:
    report = ledger_of("unreachable", version).report()
    dead = "http://127.0.0.1:9"
    assert [(e.substituter, e.status) for e in report.cache_errors] == [(dead, None)] * 2
    assert all("connect" in e.message.lower() for e in report.cache_errors)
    assert report.warnings == ()  # the failed downloads are cache errors, not warnings
    (row,) = report.substituters()
    assert (row.url, row.substituted, row.errors, row.seconds_lost) == (dead, 0, 2, None)
    assert sorted(store_name(b.drv) for b in report.builds) == ["leaf", "mid", "top"]
    assert report.seconds_lost == {}  # a recorded log has no times


@pytest.mark.parametrize("version", VERSIONS)
def test_a_build_nix_stopped_is_cancelled_where_the_log_or_the_store_says_so(
    version: str,
) -> None:
    # cancel: fails-late fails without --keep-going, and Nix stops slow. Determinate Nix sends a
    # result for every build it finishes and none for slow; upstream Nix stops slow's activity
    # as a finished build's, but its builds activity never counts a build done.
    ledger = ledger_of("cancel", version)
    statuses = {store_name(b.drv): b.status for b in ledger.builds()}
    assert statuses == {"fails-late": "failed", "slow": "cancelled"}
    assert ledger.unconfirmed_builds() == 0
    # The same log without progress records: upstream's leaves only the store (BuildJob asks
    # it) to tell a stopped build from a finished one.
    ledger = Ledger(run="analyze")
    lines = (LOGS / f"cancel-{version}.log").read_bytes().splitlines(keepends=True)
    progress = [line for line in lines if line.startswith(b'@nix {"action":"result"')]
    ledger.consume(line for line in lines if line not in progress or b'"type":105}' not in line)
    statuses = {store_name(b.drv): b.status for b in ledger.builds()}
    if version == "det3.22":
        assert statuses == {"fails-late": "failed", "slow": "cancelled"}
        assert ledger.unconfirmed_builds() == 0
    else:
        assert statuses == {"fails-late": "failed", "slow": "built"}
        assert ledger.unconfirmed_builds() == 1  # analyze says it cannot know
    slow = next(b.drv for b in ledger.builds() if store_name(b.drv) == "slow")
    ledger.confirm_unbuilt([slow])
    statuses = {store_name(b.drv): b.status for b in ledger.builds()}
    assert statuses == {"fails-late": "failed", "slow": "cancelled"}
    assert ledger.unconfirmed_builds() == 0
    totals = ledger.report().totals()
    assert (totals.built, totals.failed, totals.cancelled, totals.hit_rate) == (0, 1, 1, None)


@pytest.mark.parametrize("version", ["2.8", "2.34"])
def test_a_goal_nix_names_as_failed_with_no_failure_of_its_own_was_stopped(version: str) -> None:
    """Upstream's closing word when several goals failed, `build of 'a', 'b' failed`, names the
    one that failed and the one it stopped. Without progress counters to go by, the goal with
    no failure of its own is cancelled, and the one that failed stays failed."""
    lines = (LOGS / f"cancel-{version}.log").read_bytes().splitlines(keepends=True)
    kept = [
        line
        for line in lines
        if not (line.startswith(b'@nix {"action":"result"') and b'"type":105}' in line)
    ]
    ledger = Ledger(run="analyze")
    ledger.consume(kept)
    drvs = {store_name(b.drv): b.drv for b in ledger.builds()}
    closing = f"error: build of '{drvs['slow']}', '{drvs['fails-late']}' failed"
    ledger.consume([b"@nix " + json.dumps({"action": "msg", "level": 0, "msg": closing}).encode()])
    statuses = {store_name(b.drv): b.status for b in ledger.builds()}
    assert statuses == {"fails-late": "failed", "slow": "cancelled"}
    assert ledger.unconfirmed_builds() == 0
    # The same words as the only failure said: the goal named first failed (nothing else did).
    alone = Ledger(run="analyze")
    alone.consume(
        kept[
            : next(i for i, ln in enumerate(kept) if b"Cannot build" in ln or b"builder for" in ln)
        ]
    )
    alone.consume([b"@nix " + json.dumps({"action": "msg", "level": 0, "msg": closing}).encode()])
    assert {store_name(b.drv): b.status for b in alone.builds()}["slow"] == "failed"


@pytest.mark.parametrize(
    "line",
    [
        b'@nix {"action":"stop","id":42}\n',
        b'@nix {"action":"stop","id":0}\n',
        b'@nix {"action":"stop","id":042}\n',  # not JSON: text
        b'@nix {"action":"stop","id":-4}\n',
        b'@nix {"action":"stop","id":4_2}\n',  # not JSON: text
        b'@nix {"action":"stop","id": 42}\n',
        b'@nix {"action":"stop","id":42,"sid":1}\n',
        b'@nix {"action":"stop","id":42,"sid":"01a233c1-82fa-7129-8004-046ddc5eb3ca"}\n',
        b'@nix {"action":"stop","id":42,"sid":"a\\"b"}\n',
        b'@nix {"action":"stop","id":42,"sid":"a b"}\n',
        b'@nix {"action":"stop","id":42,"sid":"ab","x":1}\n',
        b'@nix {"action":"stop","id":42,"sid":"\x01"}\n',
        b'@nix {"action":"stop","id":}\n',
    ],
)
def test_a_stop_read_without_the_parser_is_read_as_the_parser_reads_it(line: bytes) -> None:
    batched, fed = Ledger(run="build"), Ledger(run="build")
    assert batched.feed_lines([line], None) == [fed.feed(line)]
    assert report_of(batched).to_json() == report_of(fed).to_json()


def test_a_cut_record_followed_by_results_passed_over_is_not_the_end() -> None:
    cut = b'@nix {"action":"start","id":7,"level":3,"text":"buil'
    expected = b'@nix {"action":"result","fields":[105,3],"id":1,"type":106}\n'
    progress = b'@nix {"action":"result","fields":[1,3,0,0],"id":1,"type":105}\n'
    for last in (expected, progress):
        ledger = Ledger(run="build")
        ledger.feed_lines([cut + b"\n", last], None)
        assert not ledger.ends_cut
    ledger = Ledger(run="build")
    ledger.feed_lines([expected, cut], None)
    assert ledger.ends_cut
