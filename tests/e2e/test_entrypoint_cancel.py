"""A cancelled job: entrypoint.py under real Nix gets SIGTERM mid-build, as the runner sends it.

Nix must be stopped with its builder, and the report, the summary, the outputs and one error
annotation must still be written before the step exits with 130.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SYSTEM_NIX = "/usr/bin/nix"
NIX_CONFIG = (
    "experimental-features = nix-command flakes\n"
    "sandbox = false\n"
    "build-users-group =\n"
    "substituters =\n"
)


def pgrep(marker: str) -> list[str]:
    done = subprocess.run(
        ["pgrep", "-a", "-f", marker], capture_output=True, text=True, check=False
    )
    return done.stdout.splitlines()


def test_sigterm_stops_nix_and_still_publishes(tmp_path: Path) -> None:
    if not Path(SYSTEM_NIX).exists():
        pytest.fail(f"{SYSTEM_NIX} is missing; run bash scripts/setup.sh")
    marker = f"nca-cancel-{uuid.uuid4().hex[:12]}"
    workspace = tmp_path / "workspace"
    flake = workspace / "flake"
    shutil.copytree(REPO / "tests/fixtures/flakes/interrupt", flake)
    nix_file = flake / "flake.nix"
    nix_file.write_text(nix_file.read_text().replace("@MARKER@", marker))
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    (tmp_path / "etc-nix").mkdir()
    outer = ("NIX_", "INPUT_", "GITHUB_", "RUNNER_", "ACTIONS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outer)}
    env.update(
        NIX_STORE_DIR=str(tmp_path / "store"),
        NIX_STATE_DIR=str(tmp_path / "state"),
        NIX_LOG_DIR=str(tmp_path / "log"),
        NIX_CONF_DIR=str(tmp_path / "etc-nix"),
        NIX_USER_CONF_FILES=str(tmp_path / "etc-nix" / "user.conf"),
        NIX_CONFIG=NIX_CONFIG,
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(workspace),
        RUNNER_TEMP=str(temp),
        GITHUB_OUTPUT=str(tmp_path / "output"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
        **{"INPUT_WORKING-DIRECTORY": "flake", "INPUT_STATUS-CHECKS": "false"},
    )
    log = temp / "nix-cache-action" / "nix.log"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "entrypoint.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (
            log.exists()
            and '"type":105' in log.read_text(encoding="utf-8")
            and any(f"{marker} 30" in line for line in pgrep(marker))
        ):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sleeper build did not start within 60 s"
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 130, stderr
    assert took < 5, f"the action took {took:.1f} s to stop"
    assert pgrep(marker) == [], "the builder outlived the action"

    lines = stdout.splitlines()
    stop = next(line for line in lines if line.startswith("::stop-commands::"))
    assert f"::{stop.removeprefix('::stop-commands::')}::" in lines, "commands never resumed"
    errors = [line for line in lines if line.startswith("::error ")]
    expected = (
        "::error title=nix-cache-action stopped::The run was cancelled (SIGTERM); Nix was"
        " stopped. The report and summary hold what was known by then; run again for a verdict."
    )
    # The cancellation first; then what it left unbuilt, as for any failed build.
    assert errors[0] == expected
    assert errors[1] == (
        "::error title=.#default::not built: the run stopped before this installable was built"
    )
    report = json.loads((temp / "nix-cache-action" / "report.json").read_text())
    assert report["verdict"] == "failed"
    assert any(run["interrupted"] for run in report["runs"])
    assert "cancelled (SIGTERM)" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "report<<" in (tmp_path / "output").read_text(encoding="utf-8")
