"""Builds: one state per build activity, with its machine, times, outcome and log tail."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from nix_cache_action.ledger.timing import Stopped
from nix_cache_action.nix.events import BuildLogLine, BuildResult, BuildStarted
from nix_cache_action.records import field, record
from nix_cache_action.store_path import base_name

LOG_TAIL_LINES = 40
# Nix names a failed build in an error message right after its activity stops, so only the
# tails of the last few stopped builds can still be needed; older ones are dropped, which keeps
# memory bounded on runs of thousands of builds.
RECENT_TAILS = 64


@record(frozen=False, slots=True)
class BuildState:
    """One derivation built (or rebuilt for the check) in one run, over all its activities."""

    drv: str
    check: bool  # a rebuild under `--rebuild`
    machine: str
    started: float | None
    stopped: Stopped | None = None  # None while any of its activities is open
    success: bool | None = None  # Determinate Nix's structured build result, when sent
    error: str | None = None  # the failure that result gave
    cancelled: bool = False  # stopped, yet its outputs are not in the store
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    open_activities: int = 1


class BuildTracker:
    """Build activities by id. `is_failed(drv)` says whether an error message named a drv, so
    that the tail of a failed build is never dropped."""

    def __init__(self, is_failed: Callable[[str], bool]) -> None:
        self._builds: dict[int, BuildState] = {}  # by activity id: several ids may share one
        self._by_drv: dict[tuple[str, bool], BuildState] = {}
        self._open: set[int] = set()
        self._latest: dict[str, BuildState] = {}  # by the drv's base name
        self._recent: deque[BuildState] = deque()  # stopped builds whose tails are kept
        self._is_failed = is_failed
        # Whether this Nix sends a structured result for every build it finishes (Determinate
        # Nix does): then a build stopped without one was not finished.
        self.sends_results = False

    def __iter__(self) -> Iterator[BuildState]:
        return iter(self._by_drv.values())

    def start(self, event: BuildStarted, now: float | None) -> None:
        """One state per derivation: Nix may open several build activities for one build.

        Determinate Nix 3.22 starts and stops a build activity each time the goal waits for a
        build slot before the build itself; a build sent to a remote builder has the remote
        activity and one nested in it. The time counted runs from the first start to the last
        stop, and the machine is whichever activity names one.
        """
        key = (event.drv, event.is_check)
        state = self._by_drv.get(key)
        if state is None:
            state = BuildState(event.drv, event.is_check, event.machine, now)
            self._by_drv[key] = state
        else:
            if state.stopped is not None:
                state.stopped = None
                state.open_activities = 0
                # Waiting for a slot is not building: the build starts with its last activity.
                state.started = now
            state.open_activities += 1
            state.machine = state.machine or event.machine
        self._builds[event.id] = state
        self._open.add(event.id)
        self._latest[base_name(event.drv)] = state

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
            self.sends_results = True
            # The latest build of it: a log of two runs has the build and then its check.
            build = self._latest.get(base_name(drv))
        else:
            build = self._builds.get(event.id)
        if build is not None:
            build.success = event.success
        return build

    def stop(self, activity: int, now: float | None) -> bool:
        """Close `activity` if it is a build; False when it is not."""
        build = self._builds.get(activity)
        if build is None or activity not in self._open:
            return build is not None
        self._open.discard(activity)
        build.open_activities -= 1
        if build.open_activities > 0:
            return True  # an activity nested in another of the same build
        build.stopped = Stopped(now)
        self._recent.append(build)
        if len(self._recent) > RECENT_TAILS:
            old = self._recent.popleft()
            finished = old.stopped is not None  # not started again since
            if (
                finished
                and old.success is not False
                and not old.check
                and not self._is_failed(old.drv)
            ):
                old.tail.clear()
        return True
