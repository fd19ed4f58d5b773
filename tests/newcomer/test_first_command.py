"""README's first command, as a newcomer runs it: in a plain copy of the repository, with no
folder beside it, no venv and no provisioned test tools.

The copy holds the tracked files as they are in the work tree (what a clone of the next commit
holds), in a folder of its own under the test's tmp_path: no `../shared`, no `.venv`. The
command is read from README, not written here, so the test runs what the README says. It runs
as this machine's root, against the system's Nix (Debian's, which the command itself installs
on a machine without it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.newcomer

REPO = Path(__file__).resolve().parents[2]
# pip's set-up of a fresh venv and a build of the demo flake with its check.
TIMEOUT_SECONDS = 900


def readme_first_command() -> str:
    """The first shell block under README's "On a fresh machine"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## On a fresh machine", 1)[1]
    found = re.search(r"```sh\n(.+?)\n```", section, re.DOTALL)
    assert found, "README's 'On a fresh machine' has no ```sh block"
    return found.group(1).strip()


def plain_copy(into: Path) -> Path:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    copy = into / "nix-cache-action"
    for name in filter(None, tracked):
        source = REPO / os.fsdecode(name)
        if not source.exists():  # deleted in the work tree, not yet committed
            continue
        target = copy / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return copy


@pytest.fixture(scope="module")
def first_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    copy = plain_copy(tmp_path_factory.mktemp("newcomer"))
    assert not (copy.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NCA_", "VIRTUAL_ENV"))}
    done = subprocess.run(
        ["bash", "-c", readme_first_command()],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_SECONDS,
    )
    return copy, done


def test_readme_first_command_works_in_a_plain_copy(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    copy, done = first_run
    # README: .#nondet is not reproducible, so the command exits 1 with both files written.
    assert done.returncode == 1, done.stderr[-3000:]
    report = json.loads((copy / "report.json").read_text())
    assert report["verdict"] == "not-reproducible"
    verdicts = {c["installable"]: c["verdict"] for c in report["checks"]}
    assert verdicts == {".#default": "reproducible", ".#nondet": "differs"}
    summary = (copy / "summary.md").read_text()
    assert "not reproducible" in summary
    # The set-up made the venv in the copy, and nothing of the tests' tools.
    assert (copy / ".venv" / "bin" / "nix-cache-action").is_file()
    assert not (copy / ".venv" / "bin" / "pytest").exists()


def test_the_set_up_prints_no_warning_of_its_own(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, done = first_run
    lines = done.stderr.splitlines()
    setup_done = next(i for i, line in enumerate(lines) if line.startswith("setup: ready"))
    # This machine's pip configuration names local indexes that may be absent ("Location
    # '...' is ignored"): the machine's, not the project's.
    said = [
        line
        for line in lines[:setup_done]
        if line.strip() and not re.match(r"WARNING: Location '[^']+' is ignored", line)
    ]
    assert not [line for line in said if re.search(r"(?i)warn|deprecat|error", line)], said
