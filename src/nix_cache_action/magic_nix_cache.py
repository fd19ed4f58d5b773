"""Magic Nix Cache's daemon log: what it uploaded to the GitHub Actions cache, and whether GitHub
throttled it. The daemon keeps its counters to itself (its API has no statistics route), but it
logs each upload and the moment its circuit breaker trips."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from nix_cache_action.report import MagicNixCache

# magic-nix-cache-action starts the daemon in this directory and writes its log there.
DAEMON_DIR_VARIABLE = "MAGIC_NIX_CACHE_DAEMONDIR"
LOG_NAME = "daemon.log"
# What the daemon logs (magic-nix-cache's own tests look for these two lines).
_UPLOADED = re.compile(rb"Uploaded '(?P<path>[^']+)' to the GitHub Action Cache")
_THROTTLED = b"GitHub Actions Cache throttled Magic Nix Cache"
# A long job's log can be large; its end holds this run's uploads and any throttling.
MAX_BYTES = 16 * 1024 * 1024


def read_daemon_log(environ: Mapping[str, str]) -> MagicNixCache | None:
    """What the daemon's log says, or None when there is no daemon log to read."""
    directory = environ.get(DAEMON_DIR_VARIABLE, "").strip()
    if not directory:
        return None
    path = Path(directory) / LOG_NAME
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - MAX_BYTES))
            data = handle.read()
    except OSError:
        return None
    uploaded = {m["path"] for m in _UPLOADED.finditer(data)}
    return MagicNixCache(log_path=str(path), uploaded=len(uploaded), throttled=_THROTTLED in data)
