"""Warm runs against real Nix: the verification record (`build --verified`), `--recheck`, a
second run on another machine through a binary cache, `--baseline`, and the budgets.

The numbers come from the outcomes fixture flake (tests/fixtures/flakes/outcomes/flake.nix):
`good` depends on `leaf` (two derivations, one output each), `nondet` differs on every build,
`fixed` is a fixed-output derivation with no inputs, `split` has the outputs out and dev (Nix 2.8
builds only out).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from typing import TYPE_CHECKING, Any

import pytest
from tests.support import http_cache

from nix_cache_action.store_path import store_name

if TYPE_CHECKING:
    from pathlib import Path

    from tests.nix.conftest import CliRun, NixEnv

pytestmark = pytest.mark.nix

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# The CLI knows no commit and no run: the day of the first check is what says which one it was.
NOT_REBUILT = re.compile(r"^verified on (?P<date>\d{4}-\d\d-\d\d), not rebuilt$")


def record(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The verification record's entries by (drv, output); the file must be version 1."""
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1
    entries = {(e["drv"], e["output"]): e for e in data["entries"]}
    assert len(entries) == len(data["entries"]), "one entry per output"
    return entries


def labels(report: dict[str, Any]) -> list[str]:
    return [r["label"] for r in report["runs"]]


def statuses(report: dict[str, Any], status: str) -> list[str]:
    return sorted(store_name(b["drv"]) for b in report["builds"] if b["status"] == status)


def check_of(report: dict[str, Any], installable: str, output: str = "out") -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        c for c in report["checks"] if c["installable"] == installable and c["output"] == output
    ]
    assert len(found) == 1, found
    return found[0]


def said(run: CliRun) -> str:
    return run.stdout + run.stderr


def ok(run: CliRun, status: int = 0) -> dict[str, Any]:
    assert run.returncode == status, said(run)[-3000:]
    return run.report


# --- the same store ---------------------------------------------------------------------------


def test_a_verified_output_is_not_rebuilt_and_recheck_rebuilds_it(nix_env: NixEnv) -> None:
    env = nix_env
    flake = env.flake("outcomes")
    verified = env.root / "verified.json"

    first = ok(env.cli("build", ".#good", "--verified", str(verified), cwd=flake, name="first"))
    assert labels(first) == ["build", "check"]
    assert statuses(first, "built") == ["good", "leaf"]
    assert statuses(first, "checked") == ["good"]
    [installable] = first["installables"]
    [(out, info)] = env.path_info(".#good", flake).items()
    assert installable["nar_hashes"] == {"out": info["narHash"]}
    check = check_of(first, ".#good")
    assert (check["verdict"], check["previously_verified"]) == ("reproducible", None)
    assert first["totals"]["previously_verified"] == 0

    # The record: one entry per output, with the NAR hash the report shows.
    entries = record(verified)
    assert list(entries) == [(installable["drv"], "out")]
    entry = entries[installable["drv"], "out"]
    assert entry["nar_hash"] == check["nar_hash"] == info["narHash"]
    assert entry["verdict"] == "reproducible"
    assert entry["first_copy"] == "built"
    assert entry["nix"] == first["nix"]["text"]
    assert entry["system"] == "x86_64-linux"
    assert (entry["commit"], entry["run_url"]) == (None, None)  # the CLI knows no commit
    assert ISO_UTC.match(entry["checked_at"])

    # Again, on the same store: nothing is rebuilt, the earlier check stands.
    second_run = env.cli("build", ".#good", "--verified", str(verified), cwd=flake, name="second")
    second = ok(second_run)
    assert labels(second) == ["build"]
    assert statuses(second, "checked") == []
    assert statuses(second, "built") == []  # it is in the store already
    totals = second["totals"]
    assert (totals["checked"], totals["reproducible"], totals["previously_verified"]) == (0, 1, 1)
    check = check_of(second, ".#good")
    assert check["verdict"] == "reproducible"
    assert check["previously_verified"] == entry
    assert check["previously_verified"]["checked_at"] == entry["checked_at"]
    assert check["reason"] == f"verified on {entry['checked_at'][:10]}, not rebuilt"
    assert (check["path"], check["nar_hash"], check["first_copy"]) == (
        out,
        entry["nar_hash"],
        "present",
    )
    assert second["verdict"] == "ok"
    assert "verified before, not rebuilt: .#good" in said(second_run)
    assert "not rebuilt" in second_run.summary_path.read_text(encoding="utf-8")
    # A skipped check keeps its entry as it was.
    assert record(verified) == entries

    # --recheck: rebuilt and compared again, whatever the record says; the entry is renewed.
    third = ok(
        env.cli("build", ".#good", "--verified", str(verified), "--recheck", cwd=flake, name="re")
    )
    assert labels(third) == ["build", "check"]
    assert statuses(third, "checked") == ["good"]
    assert third["totals"]["previously_verified"] == 0
    check = check_of(third, ".#good")
    assert (check["verdict"], check["previously_verified"]) == ("reproducible", None)
    assert check["reason"] is None  # checked now: nothing to explain
    renewed = record(verified)[installable["drv"], "out"]
    assert renewed["checked_at"] >= entry["checked_at"]
    assert (renewed["nar_hash"], renewed["first_copy"]) == (entry["nar_hash"], "present")


def test_an_installable_is_rebuilt_unless_every_output_is_verified(nix_env: NixEnv) -> None:
    env = nix_env
    flake = env.flake("outcomes")
    verified = env.root / "verified.json"
    first = ok(env.cli("build", ".#split", "--verified", str(verified), cwd=flake, name="first"))
    [installable] = first["installables"]
    # Nix 2.8 ignores outputsToInstall and builds only out.
    outputs = ["out"] if env.exe.version == "2.8" else ["dev", "out"]
    assert sorted(installable["outputs"]) == outputs
    entries = record(verified)
    assert sorted(entries) == [(installable["drv"], o) for o in outputs]
    for name in outputs:
        assert entries[installable["drv"], name]["nar_hash"] == installable["nar_hashes"][name]

    # The last output's entry is about other bytes now: that output is not verified, and the
    # installable is rebuilt with all its outputs.
    data = json.loads(verified.read_text(encoding="utf-8"))
    stale = next(e for e in data["entries"] if e["output"] == outputs[-1])
    stale["nar_hash"] = "sha256-" + "A" * 43 + "="
    verified.write_text(json.dumps(data), encoding="utf-8")

    second = ok(env.cli("build", ".#split", "--verified", str(verified), cwd=flake, name="again"))
    assert labels(second) == ["build", "check"]
    assert statuses(second, "checked") == ["split"]
    assert second["totals"]["previously_verified"] == 0
    for name in outputs:
        check = check_of(second, ".#split", name)
        assert (check["verdict"], check["previously_verified"]) == ("reproducible", None)
    # The record holds the hash found now again.
    after = record(verified)
    assert (
        after[installable["drv"], outputs[-1]]["nar_hash"] == installable["nar_hashes"][outputs[-1]]
    )


def test_an_output_that_differs_is_checked_again_every_run(nix_env: NixEnv) -> None:
    env = nix_env
    flake = env.flake("outcomes")
    verified = env.root / "verified.json"
    both = (".#good", ".#nondet")
    first = ok(env.cli("build", *both, "--verified", str(verified), cwd=flake, name="1"), 1)
    assert first["verdict"] == "not-reproducible"
    drvs = {i["name"]: i["drv"] for i in first["installables"]}
    nondet = check_of(first, ".#nondet")
    assert nondet["verdict"] == "differs"
    entries = record(verified)
    assert entries[drvs[".#nondet"], "out"]["verdict"] == "differs"
    assert entries[drvs[".#nondet"], "out"]["nar_hash"] == nondet["nar_hash"]
    assert entries[drvs[".#good"], "out"]["verdict"] == "reproducible"

    for name in ("2", "3"):
        run = env.cli("build", *both, "--verified", str(verified), cwd=flake, name=name)
        again = ok(run, 1)
        assert labels(again) == ["build", "check"]
        # Only nondet is rebuilt: good was verified before.
        assert statuses(again, "checked") == ["nondet"]
        [check_run] = [r for r in again["runs"] if r["label"] == "check"]
        assert not any(".#good" in arg or "-good.drv" in arg for arg in check_run["argv"])
        good = check_of(again, ".#good")
        assert good["previously_verified"] is not None
        check = check_of(again, ".#nondet")
        assert check["verdict"] == "differs"
        assert check["previously_verified"] is None
        assert check["nar_hash"] == nondet["nar_hash"]  # the same first copy, in the store
        assert [d["path"] for d in check["differences"]] == ["stamp"]
        assert again["totals"]["previously_verified"] == 1
        assert again["verdict"] == "not-reproducible"
        entry = record(verified)[drvs[".#nondet"], "out"]
        assert entry["verdict"] == "differs"
        assert entry["checked_at"] >= entries[drvs[".#nondet"], "out"]["checked_at"]


def test_an_unreadable_record_is_a_note_and_a_failed_run_still_writes_it(nix_env: NixEnv) -> None:
    env = nix_env
    flake = env.flake("outcomes")
    verified = env.root / "verified.json"
    verified.write_text("{not json", encoding="utf-8")
    run = env.cli("build", ".#good", ".#fails", "--verified", str(verified), cwd=flake)
    report = ok(run, 1)
    assert report["verdict"] == "failed"
    [note] = [n for n in report["notes"] if "verification record" in n]
    assert str(verified) in note
    assert "could not be used" in note
    assert str(verified) in said(run)
    # good was built and checked; fails was not checked, so it has no entry.
    drvs = {i["name"]: i["drv"] for i in report["installables"]}
    entries = record(verified)
    assert list(entries) == [(drvs[".#good"], "out")]
    assert entries[drvs[".#good"], "out"]["nar_hash"] == check_of(report, ".#good")["nar_hash"]


def test_a_record_that_cannot_be_written_is_said_in_the_report(nix_env: NixEnv) -> None:
    env = nix_env
    flake = env.flake("outcomes")
    blocker = env.root / "not-a-directory"
    blocker.write_text("a file where the record's directory should be\n", encoding="utf-8")
    verified = blocker / "verified.json"
    run = env.cli("build", ".#good", "--verified", str(verified), cwd=flake)
    report = ok(run)  # the build and its check stand
    assert report["verdict"] == "ok"
    assert "could not be written" in said(run)
    # The next run will rebuild everything the record should have held: the report and the
    # summary, which are what a reader of a CI run sees, must say so as well as the log.
    written = [n for n in report["notes"] if "could not be written" in n]
    assert len(written) == 1, report["notes"]
    assert str(verified) in written[0]


# --- another machine, through a binary cache ---------------------------------------------------


def test_a_fresh_store_substitutes_a_verified_output_and_does_not_rebuild_it(
    nix_env: NixEnv,
) -> None:
    # Store paths depend on the store directory: the producer and the consumer share one, and
    # the consumer starts with it emptied and a state directory of its own.
    producer = nix_env
    store, tmp_path = producer.store, producer.root
    flake = producer.flake("outcomes")
    verified = tmp_path / "verified.json"
    first = ok(producer.cli("build", ".#good", "--verified", str(verified), cwd=flake))
    [installable] = first["installables"]
    entry = record(verified)[installable["drv"], "out"]
    assert entry["first_copy"] == "built"

    secret = tmp_path / "secret.key"
    secret.write_text(producer.nix("key", "generate-secret", "--key-name", "warm-1").stdout)
    public = producer.nix("key", "convert-secret-to-public", stdin=secret.read_text()).stdout
    cache = tmp_path / "cache"
    producer.nix("copy", "--to", f"file://{cache}?secret-key={secret}", ".#good", cwd=flake)
    shutil.rmtree(store)
    shutil.rmtree(producer.state)

    with http_cache.serve(cache) as url:
        consumer = dataclasses.replace(
            producer,
            root=tmp_path / "consumer",
            substituters=[url],
            public_keys=[public.strip()],
        )
        assert (consumer.store, consumer.state) == (store, tmp_path / "consumer" / "nix-state")
        flake = consumer.flake("outcomes")
        run = consumer.cli("build", ".#good", "--verified", str(verified), cwd=flake)
        report = ok(run)

    totals = report["totals"]
    # good's output holds leaf's text, not its path: its closure is itself alone.
    assert (totals["substituted"], totals["built"], totals["checked"]) == (1, 0, 0)
    assert [store_name(s["path"]) for s in report["substitutions"]] == ["good"]
    assert {s["substituter"] for s in report["substitutions"]} == {url}
    assert labels(report) == ["build"]
    assert totals["previously_verified"] == 1
    [again] = report["installables"]
    assert again["drv"] == installable["drv"]
    assert again["nar_hashes"] == installable["nar_hashes"]
    check = check_of(report, ".#good")
    assert check["verdict"] == "reproducible"
    assert check["previously_verified"] == entry
    assert (check["first_copy"], check["substituter"]) == ("substituted", url)
    match = NOT_REBUILT.match(check["reason"])
    assert match is not None
    assert match["date"] == entry["checked_at"][:10]
    assert "not rebuilt" in run.summary_path.read_text(encoding="utf-8")
    assert record(verified) == {(installable["drv"], "out"): entry}


def test_skip_cached_neither_builds_nor_downloads_what_a_cache_holds_verified(
    nix_env: NixEnv,
) -> None:
    producer = nix_env
    store, tmp_path = producer.store, producer.root
    flake = producer.flake("outcomes")
    verified = tmp_path / "verified.json"
    ok(producer.cli("build", ".#good", ".#nondet", "--verified", str(verified), cwd=flake), 1)
    cache = tmp_path / "cache"
    producer.nix("copy", "--to", f"file://{cache}", ".#good", ".#nondet", cwd=flake)
    shutil.rmtree(store)
    shutil.rmtree(producer.state)

    with http_cache.serve(cache) as url:
        consumer = dataclasses.replace(
            producer,
            root=tmp_path / "consumer",
            substituters=[url],
            extra_config=[*producer.extra_config, "require-sigs = false"],
        )
        flake = consumer.flake("outcomes")
        run = consumer.cli(
            "build", ".#good", ".#nondet", "--verified", str(verified), "--skip-cached", cwd=flake
        )
        report = run.report
    by_name = {i["name"]: i for i in report["installables"]}
    # good: in the cache and verified, so not even fetched; nondet differs, so it is built and
    # checked again (it differs again: exit 1).
    assert run.returncode == 1, run.stderr
    assert by_name[".#good"]["status"] == "cached"
    assert by_name[".#good"]["nar_hashes"]
    assert by_name[".#nondet"]["status"] == "built"
    assert not [s for s in report["substitutions"] if store_name(s["path"]) == "good"]
    good = check_of(report, ".#good")
    assert (good["verdict"], good["previously_verified"] is not None) == ("reproducible", True)
    assert "not downloaded" in good["reason"]
    assert check_of(report, ".#nondet")["verdict"] == "differs"
    assert report["totals"]["previously_verified"] == 1
    # Nothing of good is in the consumer's store.
    assert not [p for p in store.iterdir() if p.name.endswith("-good")]
    # Without a record, --skip-cached is refused and names what it needs.
    refused = consumer.cli("build", ".#good", "--skip-cached", cwd=flake)
    assert refused.returncode == 2
    assert "--skip-cached" in refused.stderr


# --- baseline and budgets ------------------------------------------------------------------------


def test_baseline_and_budgets_on_real_runs(nix_env: NixEnv) -> None:
    env = nix_env
    flake = env.flake("outcomes")
    generous = ["--max-seconds", "600", "--max-build-seconds", "600", "--max-built", "2"]
    generous += ["--min-hit-rate", "0"]
    first_run = env.cli("build", ".#good", *generous, cwd=flake, name="first")
    first = ok(first_run)
    assert first["verdict"] == "ok"
    assert first["budgets"] == {
        "max_seconds": 600,
        "max_build_seconds": 600,
        "max_built": 2,
        "min_hit_rate": 0,
        "exceeded": [],
        "max_per_change": None,
    }
    assert first["seconds"] is not None
    assert first["seconds"] > 0
    assert first["baseline"] is None
    # No cache is configured here: no hit rate (null), as the summary's "n/a" says.
    assert (first["totals"]["built"], first["totals"]["hit_rate"]) == (2, None)

    # good is in the store now; fixed is built cold: 1 of 1 needed paths built.
    budgets = ["--max-built", "0", "--min-hit-rate", "1"]
    baseline = ["--baseline", str(first_run.report_path)]
    second_run = env.cli("build", ".#good", ".#fixed", *baseline, *budgets, cwd=flake, name="2nd")
    second = ok(second_run, 1)
    assert second["verdict"] == "over-budget"
    assert statuses(second, "built") == ["fixed"]
    exceeded = second["budgets"]["exceeded"]
    assert len(exceeded) == 2
    assert re.fullmatch(r"max-built 0: 1 derivation was built: fixed \d+\.\d s", exceeded[0])
    assert re.fullmatch(
        r"min-hit-rate 1: no cache was asked, so 1 of 1 store paths were built: fixed \d+\.\d s",
        exceeded[1],
    )
    compared = second["baseline"]
    assert compared["source"] == str(first_run.report_path)
    before, delta = compared["totals_before"], compared["totals_delta"]
    assert {k: before[k] for k in ("built", "substituted", "failed", "hit_rate")} == {
        "built": 2,
        "substituted": 0,
        "failed": 0,
        "hit_rate": None,
    }
    assert before["build_seconds"] == first["totals"]["build_seconds"]
    assert before["seconds"] == first["seconds"]
    assert {k: delta[k] for k in ("built", "substituted", "failed", "hit_rate")} == {
        "built": -1,
        "substituted": 0,
        "failed": 0,
        "hit_rate": None,
    }
    for figure, now in (
        ("build_seconds", second["totals"]["build_seconds"]),
        ("seconds", second["seconds"]),
    ):
        assert delta[figure] == pytest.approx(now - before[figure], abs=2e-3)
    fixed_drv = next(i["drv"] for i in second["installables"] if i["name"] == ".#fixed")
    assert compared["new_builds"] == [fixed_drv]
    assert compared["slower"] == []
    assert compared["reproducibility_changes"] == []
    assert compared["caches"] == []
    summary = second_run.summary_path.read_text(encoding="utf-8")
    assert "max-built 0" in summary
    assert "min-hit-rate 1" in summary

    # In warn mode a budget gone over is a warning, and the step passes.
    third = ok(
        env.cli(
            "build", ".#split", "--reproducibility", "warn", "--max-built", "0", cwd=flake, name="3"
        ),
    )
    assert third["verdict"] == "warning"
    [message] = third["budgets"]["exceeded"]
    assert re.fullmatch(r"max-built 0: 1 derivation was built: split \d+\.\d s", message)
