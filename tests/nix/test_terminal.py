"""The live account on a terminal (a pseudo-terminal) and off one, on real Nix."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from typing import TYPE_CHECKING

import pytest

from nix_cache_action.render.live import ERASE
from nix_cache_action.store_path import store_hash, store_name

if TYPE_CHECKING:
    from tests.nix.conftest import NixEnv

pytestmark = pytest.mark.nix


def run_in_a_terminal(env: NixEnv, argv: list[str], cwd: os.PathLike[str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal, as in an interactive shell; all it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env.environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_one_status_line_is_redrawn_under_the_account(nix_env: NixEnv) -> None:
    flake = nix_env.flake("dag")
    argv = nix_env.cli_argv("build", ".#default", "--reproducibility", "off", name="tty")
    status, text = run_in_a_terminal(nix_env, argv, flake)
    assert status == 0, text[-3000:]
    # The status line: redrawn in place (carriage return, erase), never a line of its own.
    assert ERASE in text
    drawn = [part.split("\r\n", 1)[0] for part in text.split(ERASE)[1:]]
    assert any(line.startswith("built ") and " · " in line for line in drawn), drawn[-5:]
    # The account's lines are still there, each on a line of its own, and the status line is
    # erased before the final account: its last line is the summary's, not a status.
    assert "  building node-0-0\r\n" in text
    assert text.rstrip().splitlines()[-1].startswith("  ")
    report = json.loads((nix_env.root / "out" / "tty" / "report.json").read_text())
    assert report["totals"]["built"] == 31


def test_off_a_terminal_the_account_is_plain_lines(nix_env: NixEnv) -> None:
    flake = nix_env.flake("dag")
    run = nix_env.cli("build", ".#default", "--reproducibility", "off", cwd=flake, name="pipe")
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stderr
    assert "\r" not in run.stderr
    assert "  building node-0-0\n" in run.stderr


def test_two_derivations_of_one_name_are_told_apart_in_the_summary(nix_env: NixEnv) -> None:
    """Two revisions of one package built in one run (two derivations named twin-9): every
    table names each with the start of its hash, never twin-9 twice as if one build."""
    flake = nix_env.flake("twins")
    run = nix_env.cli("build", ".#old", ".#new", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    drvs = sorted(b["drv"] for b in run.report["builds"])
    assert [store_name(d) for d in drvs] == ["twin-9", "twin-9"]
    summary = run.summary_path.read_text(encoding="utf-8")
    for drv in drvs:
        assert f"twin-9 ({store_hash(drv)[:7]})" in summary
    slowest = summary.split("Slowest 2 builds", 1)[1]
    assert "`twin-9`" not in slowest
