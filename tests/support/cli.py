"""The command line as a user runs it: `python -m nix_cache_action` in a child process, with
this checkout's source and none of the caller's NIX_* settings (a test names those it needs)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT_SECONDS = 60


def cli_argv(*args: str) -> list[str]:
    """`nix-cache-action ARGS` as this checkout's source runs it."""
    return [sys.executable, "-m", "nix_cache_action", *args]


def cli_environ(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment less its NIX_* settings, with `env` added."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NIX_")}
    environ.update(env or {}, PYTHONPATH=str(SRC))
    return environ


def run_cli(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`nix-cache-action ARGS` in `cwd`, with `env` added to the environment."""
    return subprocess.run(
        cli_argv(*args),
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=cli_environ(env),
        timeout=TIMEOUT_SECONDS,
    )
