"""The version lives in pyproject.toml; the code, README, CHANGELOG and the flake follow it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nix_cache_action import __version__

REPO = Path(__file__).resolve().parents[2]


def project_version() -> str:
    # tomllib is 3.11's; the project itself supports 3.10, where these tests are skipped.
    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    version: str = data["project"]["version"]
    return version


def test_the_code_reports_the_projects_version() -> None:
    assert __version__ == project_version()


def test_readme_refs_follow_the_version() -> None:
    major = project_version().split(".", 1)[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    majors = set(re.findall(r"nix-cache-action@v(\d+)\b(?!\.)", readme))
    releases = set(re.findall(r"nix-cache-action@v(\d+\.\d+\.\d+)", readme))
    assert majors == {major}
    assert releases <= {project_version()}
    # The example summary is made by this version (scripts/readme_example.py writes it).
    assert f"nix-cache-action {project_version()} ·" in readme


def test_the_changelog_has_a_section_for_the_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[?{re.escape(project_version())}\]?\b", changelog, re.MULTILINE)


def test_the_flake_reads_the_version_from_pyproject() -> None:
    flake = (REPO / "flake.nix").read_text(encoding="utf-8")
    assert "builtins.fromTOML (builtins.readFile ./pyproject.toml)" in flake
    assert project_version() not in flake
