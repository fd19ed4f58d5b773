"""The whole flake against real Nix: `plan` discovers and cuts, `build --plan --leg` builds one
leg, `aggregate` adds the legs up, on Nix 2.8, 2.34 and Determinate Nix 3.22.

The matrix fixture flake (tests/fixtures/flakes/matrix/flake.nix) has checks, packages and
devShells for x86_64-linux, which builds here, and aarch64-linux, which only evaluates here:
per system `lib`, `app` (= `default`, one derivation), `app-test` over app, a devShell over both,
and `checks.broken`, which throws.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from tests.nix.conftest import CLI_TIMEOUT_SECONDS, REPORT_SCHEMA

if TYPE_CHECKING:
    from pathlib import Path

    from tests.nix.conftest import NixEnv

pytestmark = pytest.mark.nix

X86 = "x86_64-linux"
ARM = "aarch64-linux"
# Per system: the attributes that evaluate, and the derivations behind them (default = app).
BUILDABLE = ("checks.{s}.app-test", "packages.{s}.app", "packages.{s}.default", "packages.{s}.lib")
SHELL = "devShells.{s}.default"


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(env: NixEnv, *args: str, cwd: Path) -> Ran:
    done = subprocess.run(
        [sys.executable, "-m", "nix_cache_action", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env.environ(),
        timeout=CLI_TIMEOUT_SECONDS,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def plan(env: NixEnv, flake: Path, *args: str, name: str = "plan") -> tuple[Ran, dict[str, Any]]:
    path = env.root / f"{name}.json"
    ran = cli(env, "plan", "--nix", env.exe.path, "--plan", str(path), *args, cwd=flake)
    assert path.is_file(), ran.stderr
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return ran, data


def installables(system: str) -> set[str]:
    return {f".#{a.format(s=system)}" for a in (*BUILDABLE, SHELL)}


def by_installable(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["installable"]: a for a in data["attributes"]}


def test_every_system_is_planned_and_named_and_an_error_names_its_attribute(
    nix_env: NixEnv,
) -> None:
    flake = nix_env.flake("matrix")
    ran, data = plan(nix_env, flake, "--systems", "all")
    # An attribute that does not evaluate is an error of the plan: exit 1, the others planned.
    assert ran.returncode == 1, ran.stderr
    legs = {leg["id"]: leg for leg in data["legs"]}
    assert set(legs) == {f"{X86}-1", f"{ARM}-1"}
    assert legs[f"{X86}-1"]["runner"] == "ubuntu-latest"
    assert legs[f"{ARM}-1"]["runner"] == "ubuntu-24.04-arm"
    for system in (X86, ARM):
        assert set(legs[f"{system}-1"]["installables"]) == installables(system)
    attributes = by_installable(data)
    for system in (X86, ARM):
        broken = attributes[f".#checks.{system}.broken"]
        assert broken["state"] == "error"
        assert broken["leg"] is None
        assert broken["error"] == (f".#checks.{system}.broken: checks.broken is broken on purpose")
        for name in installables(system):
            assert attributes[name]["state"] == "to-build"
            assert attributes[name]["system"] == system
            assert attributes[name]["drv"].endswith(".drv")
            assert attributes[name]["outputs"]["out"].startswith(str(nix_env.store))
    # One derivation, two names: the same drv, planned once per leg.
    assert (
        attributes[f".#packages.{X86}.default"]["drv"] == attributes[f".#packages.{X86}.app"]["drv"]
    )
    # The drvPaths are Nix's own: `nix eval` of one agrees.
    own = nix_env.nix("eval", "--raw", f".#checks.{ARM}.app-test.drvPath", cwd=flake).stdout
    assert attributes[f".#checks.{ARM}.app-test"]["drv"] == own.strip()
    assert data["counts"] == {"to-build": 10, "cached": 0, "verified": 0, "error": 2, "legs": 2}
    assert "checks.broken is broken on purpose" in ran.stderr


def test_the_default_system_is_this_nix_and_patterns_select(nix_env: NixEnv) -> None:
    flake = nix_env.flake("matrix")
    _, own = plan(nix_env, flake, "packages", name="own")
    assert {a["installable"] for a in own["attributes"]} == {
        f".#{a.format(s=X86)}" for a in BUILDABLE if a.startswith("packages")
    }
    assert own["systems"] == [X86]
    ran, one = plan(nix_env, flake, f"packages.{ARM}.*", "checks.*.app-test", name="patterns")
    assert ran.returncode == 0, ran.stderr
    assert {a["installable"] for a in one["attributes"]} == {
        f".#packages.{ARM}.app",
        f".#packages.{ARM}.default",
        f".#packages.{ARM}.lib",
        f".#checks.{X86}.app-test",
    }
    # A nested set: hydraJobs.<job>.<system>, the system read from each derivation.
    _, hydra = plan(nix_env, flake, "hydraJobs", "--systems", ARM, name="hydra")
    assert [(a["installable"], a["system"]) for a in hydra["attributes"]] == [
        (f".#hydraJobs.app.{ARM}", ARM)
    ]


def test_a_flake_that_does_not_evaluate_is_said_so_and_the_plan_holds_it(
    nix_env: NixEnv,
) -> None:
    flake = nix_env.flake("matrix", {"outputs = { self }:": "outputs = { self }: assert false;"})
    ran, data = plan(nix_env, flake)
    assert ran.returncode == 1
    assert data["legs"] == []
    assert data["attributes"] == []
    assert len(data["errors"]) == 1
    assert data["errors"][0].startswith("the flake . does not evaluate: ")
    assert "does not evaluate" in ran.stderr


def test_a_flake_without_the_default_categories_has_nothing_selected(nix_env: NixEnv) -> None:
    """Missing categories are no evaluation error: the plan says the selection matched none."""
    flake = nix_env.flake("matrix", {"packages = {": "other = {", "checks = {": "more = {"})
    flake_nix = flake / "flake.nix"
    text = flake_nix.read_text(encoding="utf-8").replace("devShells = {", "shells = {")
    flake_nix.write_text(text, encoding="utf-8")
    ran, data = plan(nix_env, flake)
    assert ran.returncode == 1
    assert data["attributes"] == []
    (error,) = data["errors"]
    assert error.startswith("the selection checks, packages, devShells matches no attribute")
    assert "does not evaluate" not in error


def test_legs_build_and_the_aggregate_names_a_leg_that_never_reported(nix_env: NixEnv) -> None:
    flake = nix_env.flake("matrix")
    _, data = plan(nix_env, flake, "--systems", "all", "checks", "packages", "devShells")
    plan_file = nix_env.root / "plan.json"
    leg_report = nix_env.root / "legs" / f"{X86}-1" / "report.json"
    built = nix_env.cli(
        "build", "--plan", str(plan_file), "--leg", f"{X86}-1", cwd=flake, name="leg"
    )
    assert built.returncode == 0, built.stderr
    leg = built.report
    assert leg["leg"] == {"id": f"{X86}-1", "system": X86, "runner": "ubuntu-latest"}
    assert {i["name"] for i in leg["installables"]} == installables(X86)
    # lib, app, app-test and the shell: four derivations for five installables.
    assert sorted(b["drv"] for b in leg["builds"] if b["status"] == "built") == sorted(
        {by_installable(data)[i]["drv"] for i in installables(X86)}
    )
    leg_report.parent.mkdir(parents=True)
    shutil.copy(built.report_path, leg_report)
    junit = nix_env.root / "junit.xml"
    out = nix_env.root / "aggregate"
    ran = cli(
        nix_env,
        "aggregate",
        str(nix_env.root / "legs"),
        "--plan",
        str(plan_file),
        "--junit",
        str(junit),
        "--report",
        str(out / "report.json"),
        "--summary",
        str(out / "summary.md"),
        cwd=flake,
    )
    # The aarch64-linux leg never ran here: never a green aggregate over it.
    assert ran.returncode == 1, ran.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report["verdict"] == "failed"
    legs = {leg["id"]: leg for leg in report["legs"]}
    assert legs[f"{ARM}-1"]["verdict"] == "missing"
    assert legs[f"{X86}-1"]["verdict"] == "ok"
    assert legs[f"{X86}-1"]["built"] == 4
    statuses = {i["name"]: i["status"] for i in report["installables"]}
    assert {statuses[i] for i in installables(X86)} == {"built"}
    assert {statuses[i] for i in installables(ARM)} == {"error"}
    assert statuses[f".#checks.{ARM}.broken"] == "error"
    assert report["duplicate_builds"] == []
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert f"`{ARM}-1`" in summary
    assert "never reported" in summary
    suite = junit.read_text(encoding="utf-8")
    assert 'tests="12"' in suite
    assert 'errors="7"' in suite  # 5 of the missing leg, 2 broken checks
    assert 'failures="0"' in suite


def test_cached_and_verified_attributes_are_left_out(nix_env: NixEnv) -> None:
    """A first machine builds and verifies, then fills a binary cache; a second machine with an
    empty store plans: everything is in the cache and verified, so the matrix is empty."""
    flake = nix_env.flake("matrix")
    record = nix_env.root / "verified.json"
    names = sorted(installables(X86))
    first = nix_env.cli("build", *names, "--verified", str(record), cwd=flake, name="first")
    assert first.returncode == 0, first.stderr
    cache = nix_env.root / "cache"
    nix_env.nix("copy", "--to", f"file://{cache}", *names, cwd=flake)
    # A fresh store at the same path, and the cache configured: the second machine.
    shutil.rmtree(nix_env.store)
    shutil.rmtree(nix_env.state)
    nix_env.state.mkdir()
    nix_env.substituters = [f"file://{cache}"]
    nix_env.extra_config.append("require-sigs = false")
    _, cold = plan(nix_env, flake, "checks", "packages", "devShells", name="unverified")
    # Without the record they are only cached: built (fetched and checked) in a leg.
    states = {a["installable"]: a["state"] for a in cold["attributes"]}
    assert {states[n] for n in names} == {"cached"}
    ran, warm = plan(
        nix_env, flake, *[n.removeprefix(".#") for n in names], "--verified", str(record)
    )
    assert ran.returncode == 0, ran.stderr
    assert warm["legs"] == []
    assert {a["state"] for a in warm["attributes"]} == {"verified"}
    assert [left["outputs"] for left in warm["left_out"]] == [5]
    assert "nothing to build: 5 outputs cached and verified" in ran.stderr
    out = nix_env.root / "aggregate"
    empty = nix_env.root / "no-legs"  # an empty matrix: no leg, no artifact
    empty.mkdir()
    done = cli(
        nix_env,
        "aggregate",
        str(empty),
        "--plan",
        str(nix_env.root / "plan.json"),
        "--report",
        str(out / "report.json"),
        "--summary",
        str(out / "summary.md"),
        cwd=flake,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "ok"
    assert report["totals"]["previously_verified"] == 5
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "nothing to build: 5 outputs cached and verified" in summary
