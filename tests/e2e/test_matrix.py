"""The whole flake under a real Actions runner: act runs the reusable workflow
(.github/workflows/flake.yml) through tests/e2e/workflows/matrix.yml: a plan job, a matrix of
four legs, and the aggregate.

The flake is tests/fixtures/flakes/legs at max-per-leg 1, so each package is a leg of its own:
on x86_64-linux `good` (its `leaf` in the Magic Nix Cache stand-in) builds and is reproducible,
`nondet` is not reproducible, `fails` fails; the aarch64-linux leg never reports. act runs every
leg on this host (both runner labels map to it, as act skips a whole matrix when one label has
no platform), so that leg's upload is lost on purpose by the artifact stand-in
(STANDIN_ARTIFACT_LOSE), as when a runner never starts or is cancelled before its upload.

Stand-ins (tests/e2e/standins/), for what cannot run offline: the DeterminateSystems actions,
actions/cache, and actions/upload-artifact and actions/download-artifact (their code lives in
their own repositories, which a test cannot fetch offline; the stand-ins keep the artifacts in a
folder, with the same names, paths and download-by-pattern layout). The project's own actions
(`org/nix-cache-action/plan@v1`, `@v1`, `/aggregate@v1`) are redirected to a copy of this
repository. Nix is Debian's 2.8 in a store of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_act import (
    MAGIC_NIX_CACHE_PORT,
    REPO,
    SYSTEM_NIX,
    ActLog,
    act,
    copy_repository,
    nix_environ,
    stop_standin_server,
    wait_for_free_port,
)

pytestmark = pytest.mark.e2e

WORKFLOW = "tests/e2e/workflows/matrix.yml"
FLAKE = REPO / "tests/fixtures/flakes/legs"
X86, ARM = "x86_64-linux", "aarch64-linux"
LOST = f"nix-cache-action-leg-{ARM}-*"
NIX_CONF = "substituters =\nnarinfo-cache-negative-ttl = 0\n"


def fill_cache(root: Path, cache: Path) -> None:
    """`leaf` of the flake's x86_64-linux `good` in a binary cache, built with a throw-away
    state; the store is deleted again, so the run starts empty."""
    env = nix_environ(root, "producer-state")
    env["NIX_CONFIG"] = "experimental-features = nix-command flakes\nsandbox = false\n"
    env["NIX_CONFIG"] += "build-users-group =\n"
    flake = root / "producer-flake"
    shutil.copytree(FLAKE, flake)

    def nix(*args: str) -> str:
        done = subprocess.run(
            [SYSTEM_NIX, *args], cwd=flake, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"nix {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done.stdout

    good = f".#packages.{X86}.good"
    nix("build", "--no-link", good)
    leaf = next(p for p in nix("path-info", "-r", good).split() if p.endswith("-leaf"))
    nix("copy", "--to", f"file://{cache}", leaf)
    shutil.rmtree(root / "store")
    shutil.rmtree(root / "producer-state")


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ActLog, Path]:
    root = tmp_path_factory.mktemp("matrix")
    repo = root / "repo"
    copy_repository(repo)
    (root / "etc-nix").mkdir()
    (root / "etc-nix" / "nix.conf").write_text(NIX_CONF, encoding="utf-8")
    cache = root / "magic-nix-cache"
    fill_cache(root, cache)
    env = nix_environ(root, "state")
    env.pop("NIX_CONFIG", None)
    env.update(
        STANDIN_MAGIC_NIX_CACHE_DIR=str(cache),
        STANDIN_CACHE_DIR=str(root / "actions-cache"),
        STANDIN_ARTIFACT_DIR=str(root / "artifacts"),
        STANDIN_ARTIFACT_STORE=str(repo / "tests/e2e/standins/artifacts/store.py"),
        STANDIN_ARTIFACT_LOSE=LOST,
        # The reusable workflow checks out nix-cache-action's actions at the commit under test.
        STANDIN_CHECKOUT_DIR=str(repo),
    )
    wait_for_free_port(MAGIC_NIX_CACHE_PORT, 60)
    try:
        log = act(repo, root, env, WORKFLOW, "-P", "ubuntu-24.04-arm=-self-hosted")
    finally:
        stop_standin_server(Path(f"{cache}.pid"))
    print(f"act ran for {log.seconds:.1f} s, exit {log.returncode}", file=sys.stderr)
    return log, root


def job_records(log: ActLog, job: str) -> list[dict[str, Any]]:
    return [r for r in log.records if str(r.get("job", "")).rstrip().endswith(job)]


def outputs_of(log: ActLog, job: str, step: str) -> dict[str, str]:
    """What the sub-action's Python step (id `run`) inside the job's step `step` set."""
    return {
        r["name"]: r["arg"]
        for r in job_records(log, job)
        if r.get("command") == "set-output" and r.get("stepID") == [step, "run"]
    }


def aggregate_report(log: ActLog) -> dict[str, Any]:
    path = Path(outputs_of(log, "Aggregate", "aggregate")["report"])
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_the_run_fails_because_legs_failed_and_the_aggregate_says_so(
    matrix_run: tuple[ActLog, Path],
) -> None:
    log, _ = matrix_run
    assert log.returncode != 0, log.text[-4000:]
    results = {
        str(r["job"]).rsplit("/", 1)[-1].strip(): r["jobResult"]
        for r in log.records
        if "jobResult" in r
    }
    assert results["Plan"] == "success"
    assert results["Aggregate"] == "failure"
    outputs = outputs_of(log, "Aggregate", "aggregate")
    assert outputs["verdict"] == "failed"
    assert outputs["missing-legs"] == f"{ARM}-1"
    assert outputs["legs"] == "4"


def test_the_plan_made_four_legs_one_per_package(matrix_run: tuple[ActLog, Path]) -> None:
    log, _ = matrix_run
    outputs = outputs_of(log, "Plan", "plan")
    matrix = json.loads(outputs["matrix"])
    legs = {entry["installables"]: entry for entry in matrix["include"]}
    assert set(legs) == {
        f".#packages.{X86}.good",
        f".#packages.{X86}.nondet",
        f".#packages.{X86}.fails",
        f".#packages.{ARM}.good",
    }
    assert legs[f".#packages.{ARM}.good"]["runner"] == "ubuntu-24.04-arm"
    assert legs[f".#packages.{X86}.good"]["runner"] == "ubuntu-latest"
    assert (outputs["legs"], outputs["to-build"], outputs["errors"]) == ("4", "4", "0")


def test_each_leg_is_counted_with_its_own_verdict(matrix_run: tuple[ActLog, Path]) -> None:
    log, _ = matrix_run
    report = aggregate_report(log)
    by_installable = {i["name"]: i for i in report["installables"]}
    legs = {leg["id"]: leg for leg in report["legs"]}
    verdict_of = {}
    for leg in legs.values():
        if leg["verdict"] != "missing":
            assert leg["nix"] == "nix (Nix) 2.8.0"
            assert leg["seconds"] > 0
    plan = json.loads(outputs_of(log, "Plan", "plan")["matrix"])
    for entry in plan["include"]:
        verdict_of[entry["installables"]] = legs[entry["leg"]]["verdict"]
    assert verdict_of == {
        f".#packages.{X86}.good": "ok",
        f".#packages.{X86}.nondet": "not-reproducible",
        f".#packages.{X86}.fails": "failed",
        f".#packages.{ARM}.good": "missing",
    }
    assert by_installable[f".#packages.{X86}.fails"]["status"] == "failed"
    assert by_installable[f".#packages.{ARM}.good"]["status"] == "error"
    assert "never reported" in by_installable[f".#packages.{ARM}.good"]["error"]
    # Failing and missing legs first.
    assert [leg["verdict"] for leg in report["legs"]][:1] == ["missing"]
    # Across the legs: leaf from the cache in the `good` leg; good, nondet built; fails failed.
    assert report["totals"]["substituted"] == 1
    assert report["totals"]["built"] == 2
    assert report["totals"]["failed"] == 1
    assert report["totals"]["differs"] == 1
    assert report["duplicate_builds"] == []
    slowest = max(leg["seconds"] for leg in legs.values() if leg["seconds"] is not None)
    assert report["seconds"] == slowest


def test_the_aggregate_summary_and_junit(matrix_run: tuple[ActLog, Path]) -> None:
    log, _ = matrix_run
    summaries = [
        r["content"]
        for r in job_records(log, "Aggregate")
        if r.get("command") == "summary" and r.get("stepID") == ["aggregate", "run"]
    ]
    (summary,) = summaries
    assert summary.startswith("## ❌ nix-cache-action")
    assert "### 4 legs" in summary
    assert f"`{ARM}-1`" in summary
    assert "never reported" in summary
    assert "Slowest leg" in summary
    assert "this build fails on purpose" in summary
    junit = Path(outputs_of(log, "Aggregate", "aggregate")["junit"])
    # XML the aggregate wrote in this test.
    suite = ET.fromstring(junit.read_text(encoding="utf-8")).find("testsuite")  # noqa: S314
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4",
        "failures": "2",  # fails, and nondet not reproducible
        "errors": "1",  # the leg that never reported
        "skipped": "0",
    }


def test_the_artifacts_each_leg_uploaded(matrix_run: tuple[ActLog, Path]) -> None:
    _, root = matrix_run
    artifacts = root / "artifacts"
    names = sorted(p.name for p in artifacts.iterdir())
    assert names == [
        "nix-cache-action-leg-x86_64-linux-1",
        "nix-cache-action-leg-x86_64-linux-2",
        "nix-cache-action-leg-x86_64-linux-3",
        "nix-cache-action-plan",
    ]
    assert (artifacts / "nix-cache-action-plan" / "plan.json").is_file()
    for name in names[:-1]:
        report = json.loads((artifacts / name / "report.json").read_text(encoding="utf-8"))
        assert report["leg"]["id"] == name.removeprefix("nix-cache-action-leg-")
        # Also the failed leg uploaded: after a failed build the report is still written.
    # The reproducible leg adds its verified output to the record the aggregate merges.
    records = list(artifacts.glob("*/memory/verified.json"))
    assert records, "no leg uploaded its verification record"
