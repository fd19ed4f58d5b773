"""The action's files as outside checkers see them: GitHub's own schemas (check-jsonschema's
built-in ones) accept every action, workflow and the Dependabot file, and zizmor finds nothing
at medium severity or above. Both tools come from requirements-dev.txt, beside this Python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
SUB_ACTIONS = [REPO / "plan" / "action.yml", REPO / "aggregate" / "action.yml"]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
STANDINS = sorted((REPO / "tests" / "e2e" / "standins").glob("*/action.yml"))
ALL_ACTIONS = [ACTION, *SUB_ACTIONS, *STANDINS]
# The reusable workflow uses the project's own actions by the release's major tag, on purpose
# (tests/unit/test_action_contract.py lets the same three through its pin check); zizmor's
# blanket policy calls each an unpinned action. Nothing else is let through.
REUSABLE_WORKFLOW = str(REPO / ".github/workflows/flake.yml")

pytestmark = pytest.mark.tools


def tool(name: str) -> str:
    """The tool installed beside the running Python (a venv's bin), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    assert found, f"{name} is not installed: bash scripts/test.sh installs it"
    return found


# --- outside checkers ---------------------------------------------------------------------


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("path", ALL_ACTIONS, ids=lambda p: str(p.relative_to(REPO)))
def test_actions_match_githubs_schema(path: Path) -> None:
    done = check_jsonschema("vendor.github-actions", path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_match_githubs_schema(path: Path) -> None:
    done = check_jsonschema("vendor.github-workflows", path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dependabot_config_matches_its_schema() -> None:
    done = check_jsonschema("vendor.dependabot", REPO / ".github/dependabot.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_does_reject_a_broken_action(tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    broken.write_text("name: x\nruns:\n  using: composite\n", encoding="utf-8")
    assert check_jsonschema("vendor.github-actions", broken).returncode != 0


def zizmor(*paths: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--min-severity",
            "medium",
            "--format",
            "json",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.stdout.strip(), done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    findings = zizmor(
        ACTION,
        *SUB_ACTIONS,
        REPO / ".github/workflows",
        REPO / ".github/dependabot.yml",
        *STANDINS,
    )
    assert [(f["ident"], f["determinations"]["severity"]) for f in findings] == []


def test_zizmor_does_catch_a_template_injection(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: issues\n"
        "permissions: {}\n"
        "jobs:\n"
        "  j:\n"
        "    runs-on: ubuntu-latest\n"
        "    timeout-minutes: 1\n"
        "    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n",
        encoding="utf-8",
    )
    assert "template-injection" in {f["ident"] for f in zizmor(workflows / "bad.yml")}
