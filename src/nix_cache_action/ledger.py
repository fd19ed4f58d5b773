"""Events -> what happened: substitutions, builds, checks, cache errors and phase times.

Pure: it reads raw log lines (with an optional arrival time) and keeps only what the report needs,
so a million-line log never sits in memory. Times are seconds on any monotonic clock; a recorded
log has no times, and then every duration is None rather than a made-up zero.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from nix_cache_action.nix.events import (
    PROGRESS_HEAD,
    PROGRESS_TAIL,
    ActivityStarted,
    ActivityStopped,
    ActivityType,
    BuildLogLine,
    BuildResult,
    BuildStarted,
    CopyPathStarted,
    Event,
    FileTransferStarted,
    Message,
    PhaseSet,
    PlainText,
    Progress,
    QueryPathInfoStarted,
    SubstituteStarted,
    parse_line,
    progress_activity_id,
)
from nix_cache_action.report import (
    Build,
    CacheError,
    Check,
    MissReason,
    Phases,
    Report,
    Run,
    Substitution,
)

_PROGRESS_HEAD = PROGRESS_HEAD
_PROGRESS_TAIL_NL = PROGRESS_TAIL + b"\n"
LOG_TAIL_LINES = 40
# Nix names a failed build in an error message right after its activity stops, so only the
# tails of the last few stopped builds can still be needed; older ones are dropped, which keeps
# memory bounded on runs of thousands of builds.
RECENT_TAILS = 64
MAX_ERRORS = 50
MAX_ERROR_CHARS = 4000

# Nix 2.8 quotes paths with '...', 2.34 with "..."; both are accepted.
_NONDETERMINISTIC = re.compile(
    r"derivation '(?P<drv>[^']+\.drv)' may not be deterministic: "
    r"output ['\"](?P<out>[^'\"]+)['\"] differs"
)
_HTTP_ERROR = re.compile(r"unable to download '(?P<url>[^']+)': HTTP error (?P<code>\d{3})")
_DRV = re.compile(r"(/[^\s'\"]+\.drv)")
_NOT_VALID_FOR_CHECK = re.compile(
    r"some outputs of '(?P<drv>[^']+\.drv)' are not valid, so checking is not possible"
)


def store_name(path: str) -> str:
    """`/nix/store/<hash>-name` -> `name` (a `.drv` suffix removed)."""
    base = path.rsplit("/", 1)[-1]
    name = base.split("-", 1)[1] if "-" in base else base
    return name.removesuffix(".drv")


def store_hash(path: str) -> str:
    return path.rsplit("/", 1)[-1].split("-", 1)[0]


@dataclass
class _Sub:
    path: str
    substituter: str
    started: float | None
    stopped: float | None = None
    nar_bytes: int | None = None
    download_bytes: int | None = None


@dataclass
class _Build:
    drv: str
    check: bool
    machine: str
    started: float | None
    stopped: float | None = None
    phase: str | None = None
    success: bool | None = None  # Determinate Nix's structured build result, when sent
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))


@dataclass
class Ledger:
    """Feed it lines; `finish` turns what it saw into report entries."""

    run: str = ""
    first_time: float | None = None
    last_time: float | None = None
    realise_time: float | None = None
    plain_lines: int = 0
    _subs: dict[int, _Sub] = field(default_factory=dict)
    _subs_by_path: dict[str, int] = field(default_factory=dict)
    _copies: dict[int, str] = field(default_factory=dict)  # copyPath activity -> store path
    _transfers: dict[int, str] = field(default_factory=dict)  # nar transfer -> store path
    _tracked: set[bytes] = field(default_factory=set)  # activities whose progress matters
    _last_progress: dict[bytes, bytes] = field(default_factory=dict)
    _builds: dict[int, _Build] = field(default_factory=dict)
    _queried: dict[str, set[str]] = field(default_factory=dict)
    _path_by_hash: dict[str, str] = field(default_factory=dict)
    _cache_errors: list[CacheError] = field(default_factory=list)
    _failed: dict[str, str] = field(default_factory=dict)  # drv -> error text
    _differs: dict[str, list[str]] = field(default_factory=dict)  # drv -> outputs
    _uncheckable: dict[str, str] = field(default_factory=dict)
    _errors: list[str] = field(default_factory=list)
    _errors_dropped: int = 0
    _recent: deque[int] = field(default_factory=deque)  # stopped builds whose tails are kept

    # --- input --------------------------------------------------------------------------------

    def feed(self, line: bytes, now: float | None = None) -> Event | None:
        """Take one raw stderr line; returns the event when the line was parsed."""
        if now is not None:
            if self.first_time is None:
                self.first_time = now
            self.last_time = now
        activity = progress_activity_id(line)
        if activity is not None:
            # Only the last progress of a copy or download says how many bytes moved.
            if activity in self._tracked:
                self._last_progress[activity] = line
            return None
        event = parse_line(line)
        self.apply(event, now)
        return event

    def consume(self, lines: Iterable[bytes]) -> None:
        """Take every line of a recorded log (no times): the fast path for `analyze`.

        Same result as `feed` on each line; the progress check is inlined because it runs for
        nearly every line of a real log and a function call per line would double the cost.
        """
        tracked, last = self._tracked, self._last_progress
        head, tail = _PROGRESS_HEAD, _PROGRESS_TAIL_NL
        for line in lines:
            if line.endswith(tail) and line.startswith(head):
                # As progress_activity_id: the id ends at the next comma (`type`, or `sid`).
                key = line.rpartition(b'"id":')[2].partition(b",")[0]
                if key in tracked:
                    last[key] = line
                continue
            self.apply(parse_line(line))

    def apply(self, event: Event, now: float | None = None) -> None:  # noqa: C901
        if isinstance(event, ActivityStarted):
            self._start(event, now)
        elif isinstance(event, ActivityStopped):
            self._stop(event.id, now)
        elif isinstance(event, BuildLogLine):
            build = self._builds.get(event.id)
            if build is not None:
                build.tail.append(event.line)
        elif isinstance(event, PhaseSet):
            build = self._builds.get(event.id)
            if build is not None:
                build.phase = event.phase
        elif isinstance(event, BuildResult):
            self._build_result(event)
        elif isinstance(event, Progress):
            # Reached only for progress lines the fast path could not read (another key order).
            key = str(event.id).encode()
            if key in self._tracked:
                self._last_progress[key] = f"{event.done},{event.expected}".encode()
        elif isinstance(event, Message):
            self._message(event)
        elif isinstance(event, PlainText):
            self.plain_lines += 1

    def _build_result(self, event: BuildResult) -> None:
        """Determinate Nix's structured outcome; it names the drv in its payload, and its id is
        whatever activity was current, not necessarily the build's."""
        path = event.payload.get("path")
        drv = path.get("drvPath") if isinstance(path, dict) else None
        if isinstance(drv, str):
            # The payload names its drv: trust that, never the id (a drv not built here, or
            # one whose activity we missed, must not be pinned on another build).
            base = drv.rsplit("/", 1)[-1]
            build = next(
                (b for b in self._builds.values() if b.drv.rsplit("/", 1)[-1] == base), None
            )
        else:
            build = self._builds.get(event.id)
        if build is None:
            return  # a substitution's result: the substitute activity already says it all
        build.success = event.success
        message = event.payload.get("errorMsg")
        if event.success is False and isinstance(message, str):
            self._failed.setdefault(build.drv, message)

    def _start(self, event: ActivityStarted, now: float | None) -> None:
        if isinstance(event, SubstituteStarted):
            self._subs[event.id] = _Sub(event.path, event.substituter, now)
            self._subs_by_path[event.path] = event.id
        elif isinstance(event, CopyPathStarted):
            self._copies[event.id] = event.path
            self._tracked.add(str(event.id).encode())
        elif isinstance(event, FileTransferStarted):
            # Nix 2.18+ says which copy a download belongs to (`parent`). Before that, a NAR
            # download is attributed only when exactly one copy is open: with parallel copies
            # the log alone cannot tell, and the bytes stay unknown rather than guessed.
            owner = event.parent if event.parent in self._copies else None
            if (
                owner is None
                and event.parent is None
                and "/nar/" in event.url
                and len(self._copies) == 1
            ):
                owner = next(iter(self._copies))
            if owner is not None:
                self._transfers[event.id] = self._copies[owner]
                self._tracked.add(str(event.id).encode())
        elif isinstance(event, BuildStarted):
            self._builds[event.id] = _Build(event.drv, event.is_check, event.machine, now)
        elif isinstance(event, QueryPathInfoStarted):
            self._queried.setdefault(event.cache, set()).add(event.path)
            self._path_by_hash[store_hash(event.path)] = event.path
        elif event.type == ActivityType.REALISE and self.realise_time is None:
            self.realise_time = now

    def _stop(self, activity: int, now: float | None) -> None:
        key = str(activity).encode()
        if key in self._tracked:
            self._tracked.discard(key)
            done, expected = _progress_bytes(self._last_progress.pop(key, b""))
            moved = done or expected
            if activity in self._copies:
                sub = self._open_sub(self._copies.pop(activity))
                if sub is not None and moved is not None:
                    sub.nar_bytes = moved
            elif activity in self._transfers:
                sub = self._open_sub(self._transfers.pop(activity))
                if sub is not None and moved is not None:
                    sub.download_bytes = (sub.download_bytes or 0) + moved
            return
        sub_state = self._subs.get(activity)
        if sub_state is not None:
            sub_state.stopped = now if now is not None else sub_state.started
            if sub_state.stopped is None:
                sub_state.stopped = -1.0  # stopped, time unknown
            return
        build = self._builds.get(activity)
        if build is not None:
            build.stopped = now if now is not None else -1.0
            self._forget_old_tails(activity)

    def _forget_old_tails(self, stopped: int) -> None:
        self._recent.append(stopped)
        if len(self._recent) > RECENT_TAILS:
            old = self._builds[self._recent.popleft()]
            if old.success is not False and old.drv not in self._failed and not old.check:
                old.tail.clear()

    def _open_sub(self, path: str) -> _Sub | None:
        sub_id = self._subs_by_path.get(path)
        return self._subs.get(sub_id) if sub_id is not None else None

    def _message(self, event: Message) -> None:
        text = event.text
        http = _HTTP_ERROR.search(text)
        if http is not None:
            url = http["url"]
            cache = _substituter_of(url, self._queried)
            retrying = "retrying" in text
            self._cache_errors.append(
                CacheError(
                    substituter=cache,
                    url=url,
                    status=int(http["code"]),
                    message=text.split("\n", 1)[0][:300],
                    retried=retrying,
                )
            )
        if not (event.is_error and text.startswith("error:")):
            return
        self._remember_error(text)
        nondet = _NONDETERMINISTIC.search(text)
        if nondet is not None:
            self._differs.setdefault(nondet["drv"], []).append(nondet["out"])
            return
        invalid = _NOT_VALID_FOR_CHECK.search(text)
        if invalid is not None:
            self._uncheckable[invalid["drv"]] = text
            return
        drvs = _DRV.findall(text)
        if drvs:
            # The first drv named is the one that failed; later ones are its dependents.
            self._failed.setdefault(drvs[0], text)

    def _remember_error(self, text: str) -> None:
        if len(self._errors) >= MAX_ERRORS:
            self._errors_dropped += 1
            return
        self._errors.append(text[:MAX_ERROR_CHARS])

    # --- output -------------------------------------------------------------------------------

    @property
    def queried_paths(self) -> dict[str, set[str]]:
        return self._queried

    @property
    def queried(self) -> dict[str, int]:
        return {cache: len(paths) for cache, paths in self._queried.items()}

    @property
    def errors(self) -> list[str]:
        extra = [f"... and {self._errors_dropped} more errors"] if self._errors_dropped else []
        return [*self._errors, *extra]

    @property
    def failure_errors(self) -> list[str]:
        """The errors, less the mismatch messages that `checks()` already stands for."""
        return [e for e in self.errors if "may not be deterministic" not in e]

    def report(
        self,
        *,
        reproducibility_mode: str = "fail",
        runs: tuple[Run, ...] = (),
        notes: tuple[str, ...] = (),
    ) -> Report:
        """What this one log shows, as a Report (`analyze`: no installables, no Nix version)."""
        return Report(
            substitutions=tuple(self.substitutions()),
            builds=tuple(self.builds()),
            checks=tuple(self.checks()),
            cache_errors=tuple(self._cache_errors),
            runs=runs,
            phases=replace(self.phases(), check=self.phases(check=True).check),
            reproducibility_mode=reproducibility_mode,
            queried=self.queried,
            errors=tuple(self.failure_errors),
            notes=notes,
        )

    @property
    def cache_errors(self) -> list[CacheError]:
        return list(self._cache_errors)

    def substitutions(self) -> list[Substitution]:
        done = [s for s in self._subs.values() if s.stopped is not None]
        return [
            Substitution(
                path=s.path,
                substituter=s.substituter,
                nar_bytes=s.nar_bytes,
                download_bytes=s.download_bytes,
                seconds=_span(s.started, s.stopped),
                started=_since(self.first_time, s.started),
                run=self.run,
            )
            for s in done
        ]

    def unfinished_substitutions(self) -> list[str]:
        return [s.path for s in self._subs.values() if s.stopped is None]

    def builds(self, outputs: dict[str, list[str]] | None = None) -> list[Build]:
        """Every build activity; `outputs` (drv -> output paths), when known, sharpens reasons."""
        result = []
        for state in self._builds.values():
            error = self._failed.get(state.drv)
            failed = error is not None or state.success is False
            if state.stopped is None:
                failed, error = True, error or "interrupted before the build finished"
            if state.check:
                status = "checked"
                reason: MissReason = "check"
                detail = "rebuilt to check reproducibility"
            else:
                status = "failed" if failed else "built"
                reason, detail = self._miss_reason(state.drv, (outputs or {}).get(state.drv))
            result.append(
                Build(
                    drv=state.drv,
                    status=status,  # type: ignore[arg-type]
                    seconds=_span(state.started, state.stopped),
                    started=_since(self.first_time, state.started),
                    reason=reason,
                    reason_detail=detail,
                    machine=state.machine,
                    error=error if (failed or state.check) else None,
                    log_tail=tuple(state.tail) if failed or state.check else (),
                    run=self.run,
                )
            )
        return result

    def checks(self) -> list[Check]:
        """Verdicts from the log alone: every `checking outputs of` build, and every mismatch."""
        result: list[Check] = []
        seen: set[str] = set()
        for state in self._builds.values():
            if not state.check or state.drv in seen:
                continue
            seen.add(state.drv)
            result.extend(self._check_of(state.drv, stopped=state.stopped is not None))
        for drv in self._differs:
            if drv not in seen:
                result.extend(self._check_of(drv, stopped=True))
        for drv, text in self._uncheckable.items():
            if drv not in seen:
                result.append(
                    Check(drv=drv, output=None, verdict="not-checked", reason=text, run=self.run)
                )
        return result

    def _check_of(self, drv: str, *, stopped: bool) -> list[Check]:
        if drv in self._differs:
            return [
                Check(drv=drv, output=out, verdict="differs", run=self.run)
                for out in self._differs[drv]
            ]
        error = self._failed.get(drv)
        if error is not None or not stopped:
            reason = f"the rebuild failed: {error}" if error else "interrupted during the rebuild"
            return [Check(drv=drv, output=None, verdict="not-checked", reason=reason, run=self.run)]
        return [Check(drv=drv, output=None, verdict="reproducible", run=self.run)]

    def _miss_reason(self, drv: str, outputs: list[str] | None) -> tuple[MissReason, str]:
        hashes = {store_hash(o) for o in outputs} if outputs else None
        name = store_name(drv)
        for err in self._cache_errors:
            hash_part = err.url.rsplit("/", 1)[-1].removesuffix(".narinfo")
            path = self._path_by_hash.get(hash_part, "")
            if hashes is not None:
                match = hash_part in hashes
            else:
                # Without the drv's output paths, match the queried path by name (`name` or
                # `name-<output>`), which is what the log alone can tell.
                queried_name = store_name(path) if path else ""
                match = queried_name == name or queried_name.startswith(name + "-")
            if match:
                return "cache-error", f"{err.substituter} answered HTTP {err.status}"
        if not self._queried:
            return "not-in-cache", "no cache was asked for it (no substituters, or all skipped)"
        return "not-in-cache", "no configured cache had it"

    def phases(self, check: bool = False) -> Phases:  # noqa: FBT001, FBT002
        evaluation = _span(self.first_time, self.realise_time)
        downloads = [(s.started, s.stopped) for s in self._subs.values()]
        builds = [(b.started, b.stopped) for b in self._builds.values() if b.check == check]
        if check:
            return Phases(check=_union(builds))
        return Phases(evaluation=evaluation, download=_union(downloads), build=_union(builds))


def _progress_bytes(line: bytes) -> tuple[int | None, int | None]:
    if not line:
        return None, None
    if not line.startswith(b"@nix"):
        done, expected = line.split(b",")
        return int(done), int(expected)
    event = parse_line(line)
    if isinstance(event, Progress):
        return event.done, event.expected
    return None, None


def _substituter_of(url: str, queried: dict[str, set[str]]) -> str:
    for cache in queried:
        if url.startswith(cache.split("?", 1)[0].rstrip("/") + "/"):
            return cache
    return url.rsplit("/", 1)[0]


def _span(start: float | None, stop: float | None) -> float | None:
    if start is None or stop is None or stop < 0:
        return None
    return max(0.0, stop - start)


def _since(origin: float | None, moment: float | None) -> float | None:
    if origin is None or moment is None:
        return None
    return moment - origin


def _union(intervals: list[tuple[float | None, float | None]]) -> float | None:
    """Wall time covered by possibly overlapping intervals (parallel downloads count once)."""
    known = sorted((a, b) for a, b in intervals if a is not None and b is not None and b >= 0)
    if not known:
        return None
    total = 0.0
    cur_start, cur_end = known[0]
    for start, end in known[1:]:
        if start > cur_end:
            total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    return total + (cur_end - cur_start)
