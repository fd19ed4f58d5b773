"""Builds: one state per build activity, with its machine, times, outcome and log tail."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from nix_cache_action.ledger.timing import Stopped
from nix_cache_action.nix.events import BuildLogLine, BuildResult, BuildStarted
from nix_cache_action.store_path import base_name

LOG_TAIL_LINES = 40
# Nix names a failed build in an error message right after its activity stops, so only the
# tails of the last few stopped builds can still be needed; older ones are dropped, which keeps
# memory bounded on runs of thousands of builds.
RECENT_TAILS = 64


@dataclass(slots=True)
class BuildState:
    drv: str
    check: bool  # a rebuild under `--rebuild`
    machine: str
    started: float | None
    stopped: Stopped | None = None
    success: bool | None = None  # Determinate Nix's structured build result, when sent
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))


class BuildTracker:
    """Build activities by id. `is_failed(drv)` says whether an error message named a drv, so
    that the tail of a failed build is never dropped."""

    def __init__(self, is_failed: Callable[[str], bool]) -> None:
        self._builds: dict[int, BuildState] = {}
        self._recent: deque[int] = deque()  # stopped builds whose tails are kept
        self._is_failed = is_failed

    def __iter__(self) -> Iterator[BuildState]:
        return iter(self._builds.values())

    def start(self, event: BuildStarted, now: float | None) -> None:
        self._builds[event.id] = BuildState(event.drv, event.is_check, event.machine, now)

    def log_line(self, event: BuildLogLine) -> None:
        build = self._builds.get(event.id)
        if build is not None:
            build.tail.append(event.line)

    def result(self, event: BuildResult) -> BuildState | None:
        """Determinate Nix's structured outcome, on the build it names; None if it names none
        built here (a substitution's result: the substitute activity already says it all).

        Its id is whatever activity was current, not necessarily the build's (3.22 sends 0), so a
        payload that names its drv is trusted and the id never is: a drv not built here, or one
        whose activity was missed, must not be pinned on another build.
        """
        path = event.payload.get("path")
        drv = path.get("drvPath") if isinstance(path, dict) else None
        if isinstance(drv, str):
            wanted = base_name(drv)
            build = next((b for b in self._builds.values() if base_name(b.drv) == wanted), None)
        else:
            build = self._builds.get(event.id)
        if build is not None:
            build.success = event.success
        return build

    def stop(self, activity: int, now: float | None) -> bool:
        """Close `activity` if it is a build; False when it is not."""
        build = self._builds.get(activity)
        if build is None:
            return False
        build.stopped = Stopped(now)
        self._recent.append(activity)
        if len(self._recent) > RECENT_TAILS:
            old = self._builds[self._recent.popleft()]
            if old.success is not False and not self._is_failed(old.drv) and not old.check:
                old.tail.clear()
        return True
