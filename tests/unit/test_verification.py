"""The verification record (verification.py): its file, which entries spare a rebuild, what a run
adds to it, its bound, and every way a file can be unusable (a warning and an empty record).

Everything here is built by hand: no Nix, no engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nix_cache_action import verification
from nix_cache_action.records import asdict, replace
from nix_cache_action.report import Check, Report, Verification
from nix_cache_action.schema import schema_errors
from nix_cache_action.verification import (
    RECORD_VERSION,
    VerificationRecord,
    Where,
    load_record,
    verification_from_json,
)

GOOD = "/nix/store/" + "a" * 32 + "-good.drv"
SPLIT = "/nix/store/" + "b" * 32 + "-split.drv"
NONDET = "/nix/store/" + "c" * 32 + "-nondet.drv"
HASH = "sha256-" + "A" * 43 + "="
OTHER_HASH = "sha256-" + "B" * 43 + "="
EARLIER = "2024-05-01T10:00:00Z"
NOW = "2025-01-02T03:04:05Z"
WHERE = Where(
    commit="0123abcd", run_url="https://github.com/o/r/actions/runs/1", nix="nix (Nix) 2.34.8"
)


def entry(
    drv: str = GOOD,
    output: str = "out",
    nar_hash: str = HASH,
    verdict: Any = "reproducible",
    checked_at: str = EARLIER,
    **more: Any,
) -> Verification:
    return Verification(
        drv=drv, output=output, nar_hash=nar_hash, verdict=verdict, checked_at=checked_at, **more
    )


def check(
    drv: str = GOOD,
    output: str | None = "out",
    verdict: Any = "reproducible",
    nar_hash: str | None = HASH,
    **more: Any,
) -> Check:
    path = None if output is None else f"/nix/store/{'d' * 32}-{output}"
    return Check(drv=drv, output=output, path=path, verdict=verdict, nar_hash=nar_hash, **more)


def entries_of(record: VerificationRecord) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["drv"], e["output"]): e for e in record.to_json()["entries"]}


# --- the file -------------------------------------------------------------------------------


def test_a_saved_record_loads_back_the_same(tmp_path: Path) -> None:
    full = entry(
        drv=SPLIT,
        output="dev",
        nar_hash=OTHER_HASH,
        verdict="differs",
        checked_at=NOW,
        commit="0123abcd",
        run_url="https://example.invalid/run/7",
        nix="nix (Nix) 2.8.0",
        system="x86_64-linux",
        first_copy="substituted",
    )
    record = VerificationRecord([entry(), full])
    path = tmp_path / "deeper" / "record.json"
    record.save(path)

    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["version"] == RECORD_VERSION == 1
    assert on_disk["entries"] == [asdict(entry()), asdict(full)]

    loaded, warning = load_record(path)
    assert warning is None
    assert len(loaded) == 2
    assert loaded.to_json() == record.to_json()
    assert verification_from_json(asdict(full)) == full
    # Optional fields may be left out of a hand-written entry.
    bare = {k: v for k, v in asdict(entry()).items() if k in ("drv", "output", "nar_hash")}
    assert verification_from_json({**bare, "verdict": "reproducible", "checked_at": EARLIER}) == (
        entry()
    )


def test_one_entry_per_output_the_last_one_given() -> None:
    record = VerificationRecord([entry(nar_hash=OTHER_HASH), entry(), entry(output="dev")])
    assert len(record) == 2
    assert record.reproducible(GOOD, "out", HASH) == entry()
    assert record.reproducible(GOOD, "out", OTHER_HASH) is None


# --- which entries spare a rebuild ------------------------------------------------------------


def test_a_reproducible_entry_with_the_same_drv_output_and_hash_spares_the_rebuild() -> None:
    record = VerificationRecord([entry(), entry(drv=SPLIT, output="dev")])
    assert record.reproducible(GOOD, "out", HASH) == entry()
    assert record.reproducible(SPLIT, "dev", HASH) == entry(drv=SPLIT, output="dev")


@pytest.mark.parametrize(
    ("held", "asked"),
    [
        pytest.param(entry(), (GOOD, "out", OTHER_HASH), id="another-nar-hash"),
        pytest.param(entry(), (GOOD, "out", None), id="hash-unknown-now"),
        pytest.param(entry(verdict="differs"), (GOOD, "out", HASH), id="differs"),
        pytest.param(entry(verdict="not-checked"), (GOOD, "out", HASH), id="not-checked"),
        pytest.param(entry(), (SPLIT, "out", HASH), id="another-drv"),
        pytest.param(entry(), (GOOD, "dev", HASH), id="another-output"),
    ],
)
def test_no_rebuild_is_spared_without_a_matching_reproducible_entry(
    held: Verification, asked: tuple[str, str, str | None]
) -> None:
    assert VerificationRecord([held]).reproducible(*asked) is None


def test_an_empty_record_spares_nothing() -> None:
    assert len(VerificationRecord()) == 0
    assert VerificationRecord().reproducible(GOOD, "out", HASH) is None


# --- what a run adds ----------------------------------------------------------------------------


def test_measured_checks_are_recorded_with_the_time_the_where_and_the_first_copy() -> None:
    checks = [
        check(first_copy="substituted"),
        check(drv=NONDET, verdict="differs", nar_hash=OTHER_HASH, first_copy="built"),
    ]
    where = replace(WHERE, system="x86_64-linux")
    updated = VerificationRecord().with_checks(checks, where, NOW)

    assert len(updated) == 2
    assert updated.reproducible(GOOD, "out", HASH) == Verification(
        drv=GOOD,
        output="out",
        nar_hash=HASH,
        verdict="reproducible",
        checked_at=NOW,
        commit="0123abcd",
        run_url="https://github.com/o/r/actions/runs/1",
        nix="nix (Nix) 2.34.8",
        system="x86_64-linux",
        first_copy="substituted",
    )
    # A difference is recorded too, and never spares a rebuild.
    differs = entries_of(updated)[NONDET, "out"]
    assert (differs["verdict"], differs["nar_hash"], differs["first_copy"]) == (
        "differs",
        OTHER_HASH,
        "built",
    )
    assert updated.reproducible(NONDET, "out", OTHER_HASH) is None


def test_only_measured_verdicts_with_an_output_and_a_hash_are_recorded() -> None:
    checks = [
        check(verdict="not-checked", reason="reproducibility is off"),
        check(drv=SPLIT, nar_hash=None),  # its hash could not be read
        check(drv=NONDET, output=None, verdict="differs"),  # a deep check of an unknown output
    ]
    assert len(VerificationRecord().with_checks(checks, WHERE, NOW)) == 0


def test_a_check_skipped_as_verified_keeps_its_old_entry() -> None:
    old = entry(commit="old-commit", nix="nix (Nix) 2.8.0", first_copy="built")
    skipped = check(
        reason=f"verified on {EARLIER[:10]}, not rebuilt",
        previously_verified=old,
        first_copy="substituted",
        run="build",
    )
    updated = VerificationRecord([old]).with_checks([skipped], WHERE, NOW)
    assert updated.to_json() == VerificationRecord([old]).to_json()
    assert updated.reproducible(GOOD, "out", HASH) == old  # checked_at is still the first check's


def test_a_new_verdict_replaces_the_old_entry_and_the_old_record_is_unchanged() -> None:
    record = VerificationRecord([entry()])
    # The same output rebuilt again (--recheck), now differing: the rebuild is the news.
    updated = record.with_checks([check(verdict="differs")], WHERE, NOW)
    assert len(updated) == 1
    assert entries_of(updated)[GOOD, "out"]["verdict"] == "differs"
    assert entries_of(updated)[GOOD, "out"]["checked_at"] == NOW
    assert updated.reproducible(GOOD, "out", HASH) is None
    assert record.reproducible(GOOD, "out", HASH) == entry()
    # A new NAR hash (another build of the same drv) replaces the entry as well.
    rebuilt = record.with_checks([check(nar_hash=OTHER_HASH)], WHERE, NOW)
    assert rebuilt.reproducible(GOOD, "out", OTHER_HASH) is not None
    assert rebuilt.reproducible(GOOD, "out", HASH) is None


def test_the_record_is_bounded_and_the_oldest_entries_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification, "RECORD_LIMIT", 3)
    drvs = [f"/nix/store/{str(i) * 32}-old-{i}.drv" for i in range(4)]
    # Given out of order: age is what counts, not the order in the file.
    days = ["2024-01-03", "2024-01-01", "2024-01-04", "2024-01-02"]
    old = [entry(drv=d, checked_at=f"{day}T00:00:00Z") for d, day in zip(drvs, days, strict=True)]
    updated = VerificationRecord(old).with_checks([check()], WHERE, NOW)

    assert len(updated) == 3
    kept = {drv for drv, _ in entries_of(updated)}
    # The new check and the two newest old ones (01-04, 01-03); 01-02 and 01-01 are dropped.
    assert kept == {GOOD, drvs[2], drvs[0]}
    saved = updated.to_json()["entries"]
    assert [e["checked_at"] for e in saved] == sorted(
        (e["checked_at"] for e in saved), reverse=True
    )


def test_the_default_bound_is_thousands_of_entries() -> None:
    assert verification.RECORD_LIMIT >= 1000
    many = [entry(drv=f"/nix/store/{i:032d}-p.drv") for i in range(verification.RECORD_LIMIT)]
    updated = VerificationRecord(many).with_checks([check()], WHERE, NOW)
    assert len(updated) == verification.RECORD_LIMIT
    assert updated.reproducible(GOOD, "out", HASH) is not None


# --- unusable files -----------------------------------------------------------------------------


def test_a_missing_record_is_an_empty_one_without_a_warning(tmp_path: Path) -> None:
    record, warning = load_record(tmp_path / "none-yet.json")
    assert warning is None
    assert len(record) == 0


def good_entry_json() -> dict[str, Any]:
    return asdict(entry())


@pytest.mark.parametrize(
    ("content", "why"),
    [
        pytest.param(b"{not json", "Expecting property name", id="invalid-json"),
        pytest.param(b"", "Expecting value", id="empty-file"),
        pytest.param(b"\xff\xfe\x00garbage", "", id="not-utf8"),
        pytest.param(b"[]", "not a record of version 1 (version None)", id="a-list"),
        pytest.param(b'{"entries": []}', "(version None)", id="no-version"),
        pytest.param(
            json.dumps({"version": 2, "entries": []}).encode(),
            "not a record of version 1 (version 2)",
            id="wrong-version",
        ),
        pytest.param(
            json.dumps({"version": "1", "entries": []}).encode(), "(version '1')", id="version-text"
        ),
        pytest.param(json.dumps({"version": 1}).encode(), "a bad entry", id="no-entries"),
        pytest.param(
            json.dumps({"version": 1, "entries": 5}).encode(), "a bad entry", id="entries-number"
        ),
        pytest.param(
            json.dumps({"version": 1, "entries": ["x"]}).encode(), "a bad entry", id="entry-text"
        ),
        pytest.param(
            json.dumps({"version": 1, "entries": [{**good_entry_json(), "verdict": "fine"}]}),
            "'fine'",
            id="unknown-verdict",
        ),
        pytest.param(
            json.dumps({"version": 1, "entries": [{**good_entry_json(), "first_copy": "stolen"}]}),
            "'stolen'",
            id="unknown-first-copy",
        ),
        pytest.param(
            json.dumps(
                {
                    "version": 1,
                    "entries": [{k: v for k, v in good_entry_json().items() if k != "drv"}],
                }
            ),
            "a bad entry",
            id="missing-drv",
        ),
        pytest.param(
            json.dumps({"version": 1, "entries": [{**good_entry_json(), "nar_hash": None}]}),
            "nar_hash must be a string",
            id="nar-hash-null",
        ),
        pytest.param(
            json.dumps({"version": 1, "entries": [{**good_entry_json(), "commit": 7}]}),
            "strings or null",
            id="commit-number",
        ),
        pytest.param(
            # One good entry and one bad: the whole file is set aside, not half of it.
            json.dumps(
                {"version": 1, "entries": [good_entry_json(), {**good_entry_json(), "output": 1}]}
            ),
            "output must be a string",
            id="one-bad-of-two",
        ),
    ],
)
def test_an_unusable_record_is_a_warning_naming_the_path_and_an_empty_record(
    tmp_path: Path, content: bytes | str, why: str
) -> None:
    path = tmp_path / "record.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    record, warning = load_record(path)
    assert len(record) == 0
    assert warning is not None
    assert str(path) in warning
    assert why in warning
    assert "could not be used" in warning
    assert "written afresh" in warning


def test_a_record_that_is_a_directory_is_a_warning(tmp_path: Path) -> None:
    record, warning = load_record(tmp_path)
    assert len(record) == 0
    assert warning is not None
    assert str(tmp_path) in warning
    assert "Is a directory" in warning


# --- in the report ------------------------------------------------------------------------------


def test_a_check_verified_before_is_counted_and_survives_the_report_json() -> None:
    old = entry(first_copy="built", system="x86_64-linux")
    skipped = check(
        reason=f"verified on {EARLIER[:10]}, not rebuilt",
        previously_verified=old,
        installable=".#good",
        first_copy="substituted",
        run="build",
    )
    report = Report(checks=(skipped, check(drv=NONDET, verdict="differs", installable=".#n")))
    totals = report.totals()
    assert (totals.reproducible, totals.differs, totals.previously_verified) == (1, 1, 1)
    data = report.to_json()
    assert schema_errors(data) == []
    assert data["totals"]["previously_verified"] == 1
    assert data["checks"][0]["previously_verified"] == asdict(old)
    assert data["checks"][1]["previously_verified"] is None
    assert Report.from_json(json.loads(json.dumps(data))).checks == report.checks
