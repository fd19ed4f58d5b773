"""diffoscope, the one outside tool besides Nix: its text report on two trees, bounded."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

MAX_CHARS = 20_000
TIMEOUT_SECONDS = 120
TIMED_OUT = "(diffoscope did not finish within {seconds} s)"
CUT = "\n... ({cut} more characters cut)\n"


def diffoscope_text(first: Path, rebuild: Path, env: Mapping[str, str] | None = None) -> str | None:
    """diffoscope's text report when diffoscope is installed; else None."""
    # Imported here: shutil brings bz2 and lzma, 3 ms of each start, for a differing output only.
    import shutil  # noqa: PLC0415

    exe = shutil.which("diffoscope")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--text", "-", "--no-progress", str(first), str(rebuild)],
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except subprocess.TimeoutExpired:
        return TIMED_OUT.format(seconds=TIMEOUT_SECONDS)
    # It quotes the files' bytes, which need not be UTF-8.
    text = (done.stdout or done.stderr).decode("utf-8", "replace")
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + CUT.format(cut=len(text) - MAX_CHARS)
    return text
