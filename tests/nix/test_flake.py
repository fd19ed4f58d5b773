"""The project's own flake.nix evaluates, offline, against a stand-in for nixpkgs.

Real nixpkgs cannot be fetched where the tests run, so `nixpkgs` is overridden with
tests/fixtures/flakes/standin-nixpkgs (see its flake.nix). The flake is copied to tmp_path with
the files it reads and named by a `path:` reference: in a git checkout Nix would see only tracked
files, and a copy keeps Nix from writing next to the checkout.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import subprocess

    from tests.nix.conftest import NixEnv

pytestmark = pytest.mark.nix

REPO = Path(__file__).resolve().parents[2]
# What flake.nix reads: itself, its lock and pyproject.toml (the version).
FLAKE_FILES = ("flake.nix", "flake.lock", "pyproject.toml")
SYSTEM = "x86_64-linux"
# The modules tests/unit imports on top of the runtime dependencies, as nixpkgs names them.
UNIT_TIER_MODULES = {"pytest", "pytest-httpserver", "cmarkgfm", "jsonschema", "ruamel-yaml"}
RUNTIME_MODULES = {"jq", "tenacity", "pygithub"}


def pyproject_version() -> str:
    # tomllib is 3.11's; the project itself supports 3.10, where this test is skipped.
    tomllib = pytest.importorskip("tomllib")
    data: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    version: str = data["project"]["version"]
    return version


class ProjectFlake:
    def __init__(self, nix_env: NixEnv) -> None:
        self.env = nix_env
        # Offline by construction: no flake registry to download, no substituters.
        nix_env.extra_config.append("flake-registry =")
        self.directory = nix_env.root / "project"
        self.directory.mkdir()
        for name in FLAKE_FILES:
            shutil.copy2(REPO / name, self.directory / name)
        self.standin = nix_env.flake("standin-nixpkgs")

    @property
    def ref(self) -> str:
        return f"path:{self.directory}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.env.nix(
            *args,
            "--offline",
            "--no-write-lock-file",
            "--override-input",
            "nixpkgs",
            f"path:{self.standin}",
            check=check,
        )

    def eval_json(self, attribute: str, *extra: str) -> Any:
        return json.loads(self.run("eval", "--json", f"{self.ref}#{attribute}", *extra).stdout)


@pytest.fixture
def project(nix_env: NixEnv) -> ProjectFlake:
    return ProjectFlake(nix_env)


def test_the_package_version_is_pyprojects(project: ProjectFlake) -> None:
    version = project.eval_json(f"packages.{SYSTEM}.default.version")
    assert version == pyproject_version()


def test_flake_nix_holds_no_version_of_its_own() -> None:
    text = (REPO / "flake.nix").read_text(encoding="utf-8")
    assert re.search(r"""version\s*=\s*["']""", text) is None
    assert "builtins.fromTOML (builtins.readFile ./pyproject.toml)" in text


def test_checks_hold_the_package_and_lint(project: ProjectFlake) -> None:
    names = project.eval_json(f"checks.{SYSTEM}", "--apply", "builtins.attrNames")
    assert {"package", "lint"} <= set(names)


def test_the_package_check_runs_the_unit_tier_with_its_modules(project: ProjectFlake) -> None:
    package = f"packages.{SYSTEM}.default"
    check_inputs = project.eval_json(f"{package}.nativeCheckInputs")
    dependencies = project.eval_json(f"{package}.dependencies")
    assert {name.removeprefix("python3-") for name in check_inputs} >= UNIT_TIER_MODULES
    assert {name.removeprefix("python3-") for name in dependencies} >= RUNTIME_MODULES
    check_phase: str = project.eval_json(f"{package}.checkPhase")
    assert "pytest tests/unit -q -p no:cacheprovider" in check_phase


def test_the_dev_shell_python_has_the_unit_tiers_modules(project: ProjectFlake) -> None:
    # The stand-in's python3.withPackages keeps the packages it was given as `packages`.
    chosen = project.eval_json(
        f"devShells.{SYSTEM}.default.packages",
        "--apply",
        "builtins.concatMap (p: p.packages or [ ])",
    )
    names = {name.removeprefix("python3-") for name in chosen}
    assert names >= UNIT_TIER_MODULES | RUNTIME_MODULES


def test_flake_check_passes_without_building(project: ProjectFlake) -> None:
    done = project.run("flake", "check", "--no-build", project.ref, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_lock_file_pins_nixos_unstable_and_needs_no_update(project: ProjectFlake) -> None:
    # --no-update-lock-file makes Nix fail if flake.lock did not match flake.nix's inputs.
    done = project.env.nix(
        "flake", "metadata", "--json", "--offline", "--no-update-lock-file", project.ref
    )
    nixpkgs = json.loads(done.stdout)["locks"]["nodes"]["nixpkgs"]
    assert nixpkgs["original"] == {
        "type": "github",
        "owner": "NixOS",
        "repo": "nixpkgs",
        "ref": "nixos-unstable",
    }
    locked = nixpkgs["locked"]
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    assert locked["narHash"].startswith("sha256-")
