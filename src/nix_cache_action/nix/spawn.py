"""Starting a command whose log is read as it comes (a build): kept apart from nix/process.py,
which runs everything else, so that start.py can start a run's build before it imports anything
but `subprocess` (process.py's own imports took about 5 ms, the build's start 22 ms in all)."""

from __future__ import annotations

import subprocess

TYPE_CHECKING = False  # typing itself costs 3 ms to import, before the build has started
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path


def popen_streamed(
    args: Sequence[str], *, cwd: Path | str | None, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    """A command with both streams piped, in its own process group: a build's builders are
    stopped with it (process.stop)."""
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
