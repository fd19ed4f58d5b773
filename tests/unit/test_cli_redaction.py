"""The command line redacts what it prints as the action does: a secret of the configuration
Nix runs with (NIX_CONFIG's access-tokens), quoted back by Nix in an error, never reaches the
terminal, the report or the plan. A stand-in `nix` quotes its configuration in the error of a
failed `--version` (as a malformed access-tokens line makes some Nix do)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.support.cli import run_cli

TOKEN = "ghp_0123456789abcdefSECRETTOKEN"  # noqa: S105 - made up, looked for below


@pytest.fixture
def quoting_nix(tmp_path: Path) -> Path:
    nix = tmp_path / "nix"
    nix.write_text(
        "#!/bin/sh\necho \"error: cannot parse access-tokens: '$NIX_CONFIG'\" >&2\nexit 1\n",
        encoding="utf-8",
    )
    nix.chmod(0o755)
    return nix


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, *args, env={"NIX_CONFIG": f"access-tokens = github.com={TOKEN}"})


def test_build_prints_and_writes_no_secret_nix_quoted(tmp_path: Path, quoting_nix: Path) -> None:
    report = tmp_path / "report.json"
    done = run(tmp_path, "build", "--nix", str(quoting_nix), "--report", str(report))
    assert done.returncode == 1
    # The error is said, with the secret taken out of it.
    assert "could not read the Nix version" in done.stderr or "did not answer" in done.stderr
    assert "access-tokens" in done.stderr
    assert TOKEN not in done.stderr + done.stdout
    assert TOKEN not in report.read_text(encoding="utf-8")


def test_plan_prints_and_writes_no_secret_nix_quoted(tmp_path: Path, quoting_nix: Path) -> None:
    plan = tmp_path / "plan.json"
    done = run(tmp_path, "plan", "--nix", str(quoting_nix), "--plan", str(plan), "--json")
    assert done.returncode == 1
    assert "access-tokens" in plan.read_text(encoding="utf-8")
    assert TOKEN not in done.stderr + done.stdout
    assert TOKEN not in plan.read_text(encoding="utf-8")
