"""`nix-cache-action build` against real Nix, no caches: counts, verdicts, hashes, failures.

The numbers come from the fixture flakes' construction (tests/fixtures/flakes/*/flake.nix):
the dag has 30 nodes and a top, each built once; `nondet` differs in exactly one file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nix_cache_action.store_path import store_name

if TYPE_CHECKING:
    from tests.nix.conftest import NixEnv

pytestmark = pytest.mark.nix

DAG_NODES = [f"node-{layer}-{k}" for layer in range(5) for k in range(6)]
DAG_NAMES = sorted([*DAG_NODES, "dag-top"])  # 31 derivations
FAILS_LINES = ["fails: step one", "fails: step two", "fails: giving up"]


def names(builds: list[dict[str, Any]], status: str, run: str | None = None) -> list[str]:
    return sorted(
        store_name(b["drv"])
        for b in builds
        if b["status"] == status and (run is None or b["run"] == run)
    )


def only(items: list[dict[str, Any]], **match: object) -> dict[str, Any]:
    found = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one item with {match}, found {found}"
    return found[0]


def test_cold_build_of_the_dag_builds_every_derivation_once(nix_env: NixEnv) -> None:
    flake = nix_env.flake("dag")
    run = nix_env.cli("build", ".#default", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report

    totals = report["totals"]
    assert totals["built"] == 31
    assert totals["substituted"] == 0
    assert totals["failed"] == 0
    assert totals["checked"] == 1
    assert (totals["reproducible"], totals["differs"], totals["not_checked"]) == (1, 0, 0)
    assert totals["hit_rate"] is None  # no cache configured: no rate, as the summary says
    assert report["verdict"] == "ok"
    assert report["schema_version"] == 1
    assert report["substituters"] == []
    # One entry per derivation, whatever number of activities Nix opened for it.
    assert len(report["builds"]) == len({(b["drv"], b["status"]) for b in report["builds"]}) == 32
    expected = {
        "2.8": ("2.8.0", "nix", "nix (Nix) 2.8.0"),
        "2.34": ("2.34.8", "nix", "nix (Nix) 2.34.8"),
        "det3.22": ("2.35.2", "determinate", "nix (Determinate Nix 3.22.2) 2.35.2"),
    }[nix_env.exe.version]
    assert tuple(report["nix"].values()) == expected
    assert report["substitutions"] == []
    assert report["errors"] == []

    assert names(report["builds"], "built") == DAG_NAMES
    built = [b for b in report["builds"] if b["status"] == "built"]
    assert {b["reason"] for b in built} == {"not-in-cache"}
    assert names(report["builds"], "checked") == ["dag-top"]

    [(out, info)] = nix_env.path_info(".#default", flake).items()
    assert info["narHash"].startswith("sha256-")
    [installable] = report["installables"]
    assert installable["name"] == ".#default"
    assert installable["status"] == "built"
    assert installable["outputs"] == {"out": out}
    assert installable["nar_hashes"] == {"out": info["narHash"]}

    [check] = report["checks"]
    assert check["verdict"] == "reproducible"
    assert check["path"] == out
    assert check["first_copy"] == "built"
    assert check["substituter"] is None
    assert check["nar_hash"] == info["narHash"]
    assert check["check_nar_hash"] is None  # Nix compared them itself: no rebuild hash claimed

    # Both Nix runs, each a clean internal-json stream (every line an @nix record).
    assert [(r["label"], r["exit_status"], r["plain_lines"]) for r in report["runs"]] == [
        ("build", 0, 0),
        ("check", 0, 0),
    ]
    assert {r["log_path"] for r in report["runs"]} == {str(run.log_path.resolve())}
    log = run.log_path.read_text(encoding="utf-8")
    assert log.count("building '") >= 31
    assert "checking outputs of '" in log
    assert run.summary_path.read_text(encoding="utf-8").strip()


def test_deep_rebuilds_every_intermediate_derivation(nix_env: NixEnv) -> None:
    flake = nix_env.flake("dag")
    run = nix_env.cli("build", ".#default", "--deep", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report

    assert report["totals"]["built"] == 31
    assert report["totals"]["checked"] == 31
    assert report["totals"]["reproducible"] == 31
    assert names(report["builds"], "checked", run="check") == ["dag-top"]
    assert names(report["builds"], "checked", run="deep-check") == sorted(DAG_NODES)
    deep = [c for c in report["checks"] if c["deep"]]
    assert sorted(store_name(c["drv"]) for c in deep) == sorted(DAG_NODES)
    assert {(c["verdict"], c["first_copy"]) for c in deep} == {("reproducible", "built")}
    # Each deep check names its output and carries its NAR hash, as top-level ones do.
    for check in deep:
        assert store_name(check["path"]) == store_name(check["drv"])
        assert check["nar_hash"].startswith("sha256-")
        assert check["check_nar_hash"] is None
    assert [r["label"] for r in report["runs"]] == ["build", "check", "deep-check"]


def test_fixed_output_and_two_output_derivations_check_reproducible(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#fixed", ".#split", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    assert names(report["builds"], "built") == ["fixed", "split"]
    assert names(report["builds"], "checked") == ["fixed", "split"]

    [(fixed_out, fixed_info)] = nix_env.path_info(".#fixed", flake).items()
    assert Path(fixed_out).read_text(encoding="utf-8") == "hello"
    fixed = only(report["checks"], installable=".#fixed")
    assert fixed["verdict"] == "reproducible"
    assert fixed["path"] == fixed_out
    assert fixed["nar_hash"] == fixed_info["narHash"]
    assert fixed["check_nar_hash"] is None

    split = only(report["installables"], name=".#split")
    split_checks = {c["path"]: c for c in report["checks"] if c["installable"] == ".#split"}
    if nix_env.exe.version == "2.8":
        # Nix 2.8 builds only `out` of a flake package; meta.outputsToInstall is ignored.
        assert sorted(split["outputs"]) == ["out"]
    else:
        assert sorted(split["outputs"]) == ["dev", "out"]
        assert Path(split["outputs"]["dev"]).read_text(encoding="utf-8") == "headers\n"
    assert sorted(split_checks) == sorted(split["outputs"].values())
    assert {c["verdict"] for c in split_checks.values()} == {"reproducible"}
    assert report["totals"]["reproducible"] == 1 + len(split["outputs"])


def test_nondeterministic_output_differs_and_fails_the_run(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#nondet", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report
    assert report["verdict"] == "not-reproducible"
    assert report["totals"]["differs"] == 1
    assert report["totals"]["reproducible"] == 0

    [(out, info)] = nix_env.path_info(".#nondet", flake).items()
    [check] = report["checks"]
    assert check["verdict"] == "differs"
    assert check["path"] == out
    assert check["first_copy"] == "built"
    assert check["nar_hash"] == info["narHash"]
    assert check["check_nar_hash"].startswith("sha256-")
    assert check["nar_hash"] != check["check_nar_hash"]
    # --keep-failed kept the rebuilt copy next to the output; its hash is what the report says.
    rehash = nix_env.nix("hash", "path", f"{out}.check").stdout.strip()
    assert check["check_nar_hash"] == rehash
    # Only the timestamp differs: `date +%s%N` and a newline are 20 bytes on both sides.
    assert [(d["path"], d["kind"], d["size"], d["check_size"]) for d in check["differences"]] == [
        ("stamp", "content", 49, 49)
    ]
    assert check["differences"][0]["sha256"] != check["differences"][0]["check_sha256"]
    assert check["differences_truncated"] is False
    # Nix's own "may not be deterministic" error is the verdict, not a run error.
    assert report["errors"] == []


def test_nondeterministic_output_only_warns_in_warn_mode(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#nondet", "--reproducibility", "warn", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    assert report["verdict"] == "warning"
    assert report["reproducibility_mode"] == "warn"
    [check] = report["checks"]
    assert check["verdict"] == "differs"
    assert [d["path"] for d in check["differences"]] == ["stamp"]


def test_reproducibility_off_rebuilds_nothing(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#nondet", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    assert report["verdict"] == "ok"
    assert [r["label"] for r in report["runs"]] == ["build"]
    assert names(report["builds"], "checked") == []
    assert report["totals"]["checked"] == 0
    [check] = report["checks"]
    assert check["verdict"] == "not-checked"
    assert check["reason"] == "reproducibility is off"
    assert "checking outputs of" not in run.log_path.read_text(encoding="utf-8")


def test_failing_build_is_reported_and_keep_going_builds_the_rest(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#fails", ".#good", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report  # written even though the run failed
    assert report["verdict"] == "failed"

    fails_drv = only(report["installables"], name=".#fails")["drv"]
    failed = only(report["builds"], drv=fails_drv)
    assert failed["status"] == "failed"
    assert failed["log_tail"] == FAILS_LINES
    assert fails_drv in failed["error"]
    assert "exit code 3" in " ".join(report["errors"])

    fails = only(report["installables"], name=".#fails")
    assert fails["status"] == "failed"
    assert fails["outputs"] == {}
    assert fails_drv in fails["error"]
    assert only(report["checks"], installable=".#fails")["verdict"] == "not-checked"

    # --keep-going: the other installable of the same run was still built, then checked.
    good = only(report["installables"], name=".#good")
    assert good["status"] == "built"
    assert only(report["checks"], installable=".#good")["verdict"] == "reproducible"
    assert names(report["builds"], "built") == ["good", "leaf"]
    assert names(report["builds"], "failed") == ["fails"]
    assert names(report["builds"], "checked") == ["good"]
    totals = report["totals"]
    assert (totals["built"], totals["failed"], totals["checked"]) == (2, 1, 1)


def test_analyze_reads_the_verdicts_from_the_build_log_alone(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    build = nix_env.cli("build", ".#good", ".#nondet", cwd=flake)
    assert build.returncode == 1, build.stderr
    installables = {i["name"]: i for i in build.report["installables"]}

    done = subprocess.run(
        [sys.executable, "-m", "nix_cache_action", "analyze", str(build.log_path), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=flake,
        env=nix_env.environ(),
        timeout=60,
    )
    assert done.returncode == 1, done.stderr  # one output differs, mode fail
    report = json.loads(done.stdout)
    verdicts = {c["drv"]: c["verdict"] for c in report["checks"]}
    assert verdicts == {
        installables[".#good"]["drv"]: "reproducible",
        installables[".#nondet"]["drv"]: "differs",
    }
    differs = only(report["checks"], verdict="differs")
    assert differs["path"] == installables[".#nondet"]["outputs"]["out"]
    assert differs["output"] == "out"
    assert names(report["builds"], "built") == ["good", "leaf", "nondet"]
    assert names(report["builds"], "checked") == ["good", "nondet"]
    assert report["runs"][0]["plain_lines"] == 0
    assert report["notes"] == []


def test_a_build_nix_stops_after_another_fails_is_cancelled(nix_env: NixEnv) -> None:
    marker = f"nca-slow-{uuid.uuid4().hex[:12]}"
    nix_env.sandbox = False  # its builder runs a copy of the host's /bin/sleep
    flake = nix_env.flake("cancel", {"@MARKER@": marker})
    nix_env.extra_config.append("max-jobs = 2")  # both builds run at once
    started = time.monotonic()
    run = nix_env.cli("build", "--no-keep-going", ".#fails", ".#slow", cwd=flake)
    took = time.monotonic() - started
    assert run.returncode == 1, run.stderr
    assert took < 25, f"Nix did not stop the slow build ({took:.1f} s)"
    report = run.report
    assert names(report["builds"], "failed") == ["fails"]
    assert names(report["builds"], "cancelled") == ["slow"]
    totals = report["totals"]
    assert (totals["built"], totals["failed"], totals["cancelled"]) == (0, 1, 1)
    assert totals["hit_rate"] is None  # nothing built, nothing substituted: no miss either
    # The argv had no --keep-going.
    assert "--keep-going" not in report["runs"][0]["argv"]
    assert report["verdict"] == "failed"


def test_nix_warnings_are_kept_and_shown(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(flake)]
    for args in (["init", "-q"], ["add", "flake.nix"], ["commit", "-q", "-m", "x"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    (flake / "untracked-change").write_text("x\n", encoding="utf-8")
    with (flake / "flake.nix").open("a", encoding="utf-8") as handle:
        handle.write("\n")  # a tracked file changed: the Git tree is dirty
    run = nix_env.cli("build", ".#good", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    # Upstream says "is dirty", Determinate Nix "has uncommitted changes".
    said = "has uncommitted changes" if nix_env.exe.version == "det3.22" else "is dirty"
    [dirty] = [w for w in run.report["warnings"] if said in w]
    assert dirty.startswith("warning: Git tree")
    assert "\x1b" not in dirty
    assert dirty.splitlines()[0] in run.stderr  # the terminal says it
    summary = run.summary_path.read_text(encoding="utf-8")
    assert "warning from Nix" in summary
    assert said in summary


def test_a_build_on_a_remote_builder_is_one_build_with_its_machine(remote_env: NixEnv) -> None:
    env = remote_env
    assert env.builder is not None
    flake = env.flake("remote", {"@MARKER@": uuid.uuid4().hex})
    # Newer Nix does not send --rebuild builds to remote builders (max-jobs = 0 here): no check.
    run = env.cli("build", ".#mid", ".#fails", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report
    machine = f"ssh-ng://{env.builder.HOST}"
    # Nix logs a remote build as the build activity and one nested in it: still one build.
    builds = {store_name(b["drv"]): b for b in report["builds"]}
    assert len(report["builds"]) == len(builds) == 3
    assert {name: b["status"] for name, b in builds.items()} == {
        "leaf": "built",
        "mid": "built",
        "fails": "failed",
    }
    assert {b["machine"] for b in builds.values()} == {machine}
    assert builds["fails"]["log_tail"] == ["oops"]
    assert all(b["seconds"] is not None for b in builds.values())
    totals = report["totals"]
    assert (totals["built"], totals["failed"]) == (2, 1)
    assert only(report["installables"], name=".#mid")["status"] == "built"
    assert only(report["installables"], name=".#fails")["status"] == "failed"


def test_with_every_build_remote_the_check_rebuilds_here(remote_env: NixEnv) -> None:
    """max-jobs = 0 and a remote builder: Nix would refuse a local `--rebuild` ("local builds
    are disabled"). The check run alone gets one local job and no builders, so the output
    built remotely is rebuilt on this machine and compared: a check across two machines."""
    env = remote_env
    assert env.builder is not None
    flake = env.flake("remote", {"@MARKER@": uuid.uuid4().hex})
    run = env.cli("build", ".#mid", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    machine = f"ssh-ng://{env.builder.HOST}"
    first = {store_name(b["drv"]): b for b in report["builds"] if b["status"] == "built"}
    assert {name: b["machine"] for name, b in first.items()} == {"leaf": machine, "mid": machine}
    (rebuild,) = [b for b in report["builds"] if b["status"] == "checked"]
    assert store_name(rebuild["drv"]) == "mid"
    assert rebuild["machine"] in (None, "")  # this machine
    (check,) = report["checks"]
    assert (check["verdict"], check["reason"]) == ("reproducible", None)
    check_argv = next(r["argv"] for r in report["runs"] if r["label"] == "check")
    assert "max-jobs" in check_argv
    assert "max-jobs" not in next(r["argv"] for r in report["runs"] if r["label"] == "build")


def test_a_rebuild_that_was_killed_is_not_checked_and_says_why(nix_env: NixEnv) -> None:
    marker = f"nca-killed-{uuid.uuid4().hex[:12]}"
    nix_env.sandbox = False  # its builder leaves a marker in the host's /tmp
    flake = nix_env.flake("killed", {"@MARKER@": marker})
    try:
        run = nix_env.cli("build", ".#default", cwd=flake)
    finally:
        Path("/tmp", marker).unlink(missing_ok=True)
    assert run.returncode == 0, run.stderr  # the build is fine; only the check could not run
    report = run.report
    [check] = report["checks"]
    assert check["verdict"] == "not-checked"
    assert "signal 9" in check["reason"]
    assert check["check_nar_hash"] is None
    summary = run.summary_path.read_text(encoding="utf-8")
    assert "every output was checked" not in summary
    assert "1 output could not be checked" in summary
    assert report["verdict"] == "ok"


def test_two_installables_of_one_derivation_each_keep_their_outputs(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#good", ".#good-alias", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    good = only(report["installables"], name=".#good")
    alias = only(report["installables"], name=".#good-alias")
    assert good["drv"] == alias["drv"]
    assert good["outputs"] == alias["outputs"] != {}
    assert good["nar_hashes"] == alias["nar_hashes"] != {}
    # One build of it, each installable with its own verdict.
    assert names(report["builds"], "built") == ["good", "leaf"]
    verdicts = {c["installable"]: c["verdict"] for c in report["checks"]}
    assert verdicts == {".#good": "reproducible", ".#good-alias": "reproducible"}
    assert report["verdict"] == "ok"
