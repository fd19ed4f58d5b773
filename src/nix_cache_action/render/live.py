"""One live status line at the foot of a terminal, in the manner of nix-output-monitor.

Only on a terminal: the line is redrawn in place (carriage return, erase to the end of the
line) at most every REDRAW_SECONDS, and each ordinary line of the live account is printed above
it. Anywhere else (a file, a pipe, a CI log) nothing of this is written: plain lines only.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, TextIO

from nix_cache_action.render.format import duration
from nix_cache_action.report import substituter_name

if TYPE_CHECKING:
    from nix_cache_action.ledger import RunProgress

REDRAW_SECONDS = 0.25
RUNNING_NAMES = 3
ERASE = "\r\x1b[K"
DEFAULT_WIDTH = 79
MIN_WIDTH = 20


def status_text(progress: RunProgress, elapsed: float, width: int = 100) -> str:
    """`built 12 · running 2: app, lib · downloading 3 from Magic Nix Cache · 1 min 05 s`."""
    parts = [f"built {progress.built}"]
    if progress.checked:
        parts.append(f"checked {progress.checked}")
    if progress.running:
        names = ", ".join(progress.running[:RUNNING_NAMES])
        more = len(progress.running) - RUNNING_NAMES
        parts.append(f"running {len(progress.running)}: {names}" + (" ..." if more > 0 else ""))
    if progress.fetched:
        parts.append(f"fetched {progress.fetched}")
    if progress.fetching:
        caches = sorted({substituter_name(c) for c in progress.fetching})
        parts.append(f"downloading {len(progress.fetching)} from {', '.join(caches)}")
    parts.append(duration(max(0.0, elapsed)))
    text = " · ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


class LiveLine:
    """The status line and the live account, written to one terminal stream."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._shown = ""
        self._drawn_at = float("-inf")
        self._started: float | None = None

    def say(self, text: str) -> None:
        """An ordinary line, printed above the status line."""
        with self._lock:
            self._stream.write((ERASE if self._shown else "") + text + "\n")
            if self._shown:
                self._stream.write(self._shown)
            self._stream.flush()

    def update(self, progress: RunProgress, now: float) -> None:
        if self._started is None:
            self._started = now
        if now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        line = status_text(progress, now - self._started, self._width())
        with self._lock:
            self._shown = line
            self._stream.write(ERASE + line)
            self._stream.flush()

    def _width(self) -> int:
        """The terminal's width less one, so the line never wraps (a wrapped line cannot be
        redrawn in place)."""
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        # 0: a terminal that does not say (a fresh pseudo-terminal).
        return max(MIN_WIDTH, columns - 1) if columns else DEFAULT_WIDTH

    def close(self) -> None:
        with self._lock:
            if self._shown:
                self._stream.write(ERASE)
                self._stream.flush()
            self._shown = ""
