"""Events -> what happened: one reader that dispatches each event to a small tracker.

Pure: it reads raw log lines (with an optional arrival time) and keeps only what the report
needs, so a million-line log never sits in memory. Times are seconds on any monotonic clock; a
recorded log has no times, and then every duration is None rather than a made-up zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import islice

from nix_cache_action.errors import NixError
from nix_cache_action.ledger.builds import BuildState, BuildTracker
from nix_cache_action.ledger.messages import MessageTracker, answered
from nix_cache_action.ledger.substitutions import SubstitutionTracker
from nix_cache_action.ledger.timing import Stopped, since, span, union
from nix_cache_action.limits import cut
from nix_cache_action.nix.events import (
    PREFIX,
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
    PlainText,
    Progress,
    QueryPathInfoStarted,
    ResultType,
    SubstituteStarted,
    cut_record,
    parse_line,
    progress_activity_id,
    strip_ansi,
)
from nix_cache_action.nix.version import parse_version
from nix_cache_action.records import record, replace
from nix_cache_action.report import (
    Build,
    BuildStatus,
    CacheError,
    Check,
    MissReason,
    Mode,
    NixInfo,
    Phases,
    Report,
    Run,
    RunLabel,
    Substitution,
    Verdict,
    substituter_name,
)
from nix_cache_action.store_path import output_name, store_hash, store_name

_PROGRESS_TAIL_NL = PROGRESS_TAIL + b"\n"
# Results the report has no use for, told by their last bytes (keys come sorted, `type` last):
# the expected counts alone are a third of a cold build's records, and each parsed cost as
# much as a build's start. A record with a `payload` (Determinate Nix's) never starts so.
UNREAD_RESULTS = frozenset(
    {
        ResultType.FILE_LINKED,
        ResultType.UNTRUSTED_PATH,
        ResultType.CORRUPTED_PATH,
        ResultType.SET_PHASE,
        ResultType.SET_EXPECTED,
        ResultType.POST_BUILD_LOG_LINE,
        ResultType.FETCH_STATUS,
    }
)
_UNREAD_HEAD = PREFIX + b'{"action":"result","fields":['
_UNREAD_TAILS = frozenset(f',"type":{kind.value}}}\n'.encode() for kind in UNREAD_RESULTS)
_UNREAD_TAIL_BYTES = len(next(iter(_UNREAD_TAILS)))
# A stop is an id alone: read without the JSON parser (a 201-path substitution has 1,000).
_STOP_HEAD = PREFIX + b'{"action":"stop","id":'
_STOP_TAIL = b"}\n"
_SID = b'"sid":"'
# Lines a recorded log is read in at once (consume): few enough to keep memory flat.
CONSUME_BATCH = 4096

# Determinate Nix's build result status for a rebuild that differs.
NOT_DETERMINISTIC = "NotDeterministic"
BUILD_FAILED = "the build failed"
INTERRUPTED_BUILD = "interrupted before the build finished"
CANCELLED = "Nix stopped this build before it finished (its outputs are not in the store)"
INTERRUPTED_CHECK = "interrupted during the rebuild"
REBUILD_FAILED = "the rebuild failed: {error}"
NO_CACHE_ASKED = "no cache was asked for it: none is configured, or every one was skipped"
NO_CACHE_HAD_IT = "no configured cache had it"
CACHES_FAILED_FIRST = (
    "no cache could be asked for it: {caches} failed before any was (unreachable or erring,"
    " and turned off), so whether one held it is unknown"
)


@record
class RunProgress:
    built: int  # builds stopped (finished or failed), check rebuilds apart
    checked: int
    running: list[str]  # names of the builds running now
    fetched: int
    fetching: list[str]  # the cache of each download running now


def _stopped(line: bytes) -> ActivityStopped | None:
    """A stop record read without the JSON parser; None for any other line (the parser's)."""
    if not (line.startswith(_STOP_HEAD) and line.endswith(_STOP_TAIL)):
        return None
    digits, comma, rest = line[len(_STOP_HEAD) : -len(_STOP_TAIL)].partition(b",")
    # Determinate Nix adds its session's id, a UUID; any other shape goes to the parser.
    if comma and not (
        rest.startswith(_SID)
        and rest.endswith(b'"')
        and rest[len(_SID) : -1].replace(b"-", b"").isalnum()
    ):
        return None
    # Digits only, as JSON writes a number: `int` also takes signs, spaces, underscores and
    # leading zeros.
    if digits.isdigit() and (digits[:1] != b"0" or len(digits) == 1):
        return ActivityStopped(int(digits))
    return None


class Ledger:
    """Feed it the lines of one Nix run; `builds()`, `substitutions()`, `checks()` and
    `report()` say what they showed, at any moment."""

    def __init__(self, run: RunLabel) -> None:
        self.run: RunLabel = run
        self.first_time: float | None = None
        self.realise_time: float | None = None
        self.plain_lines = 0
        self.ends_cut = False  # the last line read was a record cut in the middle
        self.records = 0  # `@nix` records read (progress results on the fast path not counted)
        self._open: set[int] = set()  # activities started and not stopped yet
        self.subs = SubstitutionTracker()
        self._messages = MessageTracker(self.subs)
        self.builds_seen = BuildTracker(is_failed=self._messages.failed.__contains__)
        self._earlier: Ledger | None = None
        # The builds activities (one per Nix invocation) and what their progress counted done:
        # Nix counts each build it finishes there, and only there in a log without results.
        self._builds_activities: set[int] = set()
        self._builds_done = 0
        self._builds_counted_any = False  # a builds activity sent its progress
        # A run Nix gave up on and that was done once more: its loose ends are not the verdict's.
        self.superseded = False

    @property
    def messages(self) -> MessageTracker:
        """What Nix said, read for the report: a message still waiting for the next one to say
        what it was about is settled first."""
        self._messages.settle()
        return self._messages

    # --- input --------------------------------------------------------------------------------

    def feed(self, line: bytes, now: float | None = None) -> Event | None:
        """Take one raw stderr line; returns the event when the line was parsed."""
        if now is not None and self.first_time is None:
            self.first_time = now
        activity = progress_activity_id(line)
        if activity is not None:
            # Only the last progress of a copy or download says how many bytes moved.
            self.subs.progress(activity, line)
            return None
        event = parse_line(line)
        self._apply(event, line, now)
        return event

    def feed_lines(self, lines: Iterable[bytes], now: float | None) -> list[Event]:
        """`feed` for the lines of one read of a live log, at `now`; the events parsed.

        The progress check is inlined as in `consume`: a 201-path substitution is 17,000
        progress lines, and a call or two for each made the reader slower than Nix. Results
        the report does not read are passed over unparsed as progress is (they are not among
        the events returned), and a stop is read without the JSON parser.
        """
        if now is not None and self.first_time is None:
            self.first_time = now
        tracked, last = self.subs.tracked, self.subs.last_progress
        head, tail = PROGRESS_HEAD, _PROGRESS_TAIL_NL
        unread_head, unread_tails, unread_bytes = _UNREAD_HEAD, _UNREAD_TAILS, _UNREAD_TAIL_BYTES
        events = []
        skipped = False  # the last line was one of the above, read without parsing
        for line in lines:
            if line.endswith(tail) and line.startswith(head):
                # As progress_activity_id: the id ends at the next comma (`type`, or `sid`).
                key = line.rpartition(b'"id":')[2].partition(b",")[0]
                if key in tracked:
                    last[key] = line
                skipped = True
                continue
            if line[-unread_bytes:] in unread_tails and line.startswith(unread_head):
                skipped = True
                continue
            event = _stopped(line) or parse_line(line)
            self._apply(event, line, now)
            events.append(event)
            skipped = False
        if skipped:
            self.ends_cut = False  # a whole record, ended by its newline
        return events

    def consume(self, lines: Iterable[bytes]) -> None:
        """Take every line of a recorded log (no times): the fast path for `analyze`, a few
        thousand lines at a time through `feed_lines`."""
        lines = iter(lines)
        while batch := list(islice(lines, CONSUME_BATCH)):
            self.feed_lines(batch, None)

    def _apply(  # noqa: C901, PLR0912 - the dispatch: one case per event kind
        self, event: Event, line: bytes, now: float | None
    ) -> None:
        if isinstance(event, ActivityStarted):
            self._open.add(event.id)
        elif isinstance(event, ActivityStopped):
            self._open.discard(event.id)
        if not isinstance(event, PlainText):
            self.records += 1
        # A record that does not parse is text; as the log's last line it says the log was cut
        # in the middle of writing it (see `incomplete`).
        self.ends_cut = isinstance(event, PlainText) and cut_record(line)
        match event:
            case SubstituteStarted():
                self.subs.substitute(event, now)
            case CopyPathStarted():
                self.subs.copy(event)
            case FileTransferStarted():
                self.subs.transfer(event, now)
            case QueryPathInfoStarted():
                self.subs.query(event, now)
            case BuildStarted():
                self.builds_seen.start(event, now)
            case ActivityStarted(type=ActivityType.BUILDS):
                # Its last progress (done, expected, running, failed) is kept, as a copy's is.
                self._builds_activities.add(event.id)
                self.subs.tracked.add(str(event.id).encode())
            case ActivityStarted(type=ActivityType.REALISE) if self.realise_time is None:
                self.realise_time = now
            case ActivityStopped(id=activity) if activity in self._builds_activities:
                self._builds_activities.discard(activity)
                done = self._done_of(activity)
                if done is not None:
                    self._builds_done += done
                    self._builds_counted_any = True
            case ActivityStopped(id=activity):
                if not self.subs.stop(activity, now):
                    self.builds_seen.stop(activity, now)
            case BuildLogLine():
                self.builds_seen.log_line(event)
            case BuildResult():
                self._build_result(event)
            case Progress(id=activity):
                # Reached only for progress lines the fast check could not read (another key
                # order); the raw line is kept, as for the others.
                self.subs.progress(str(activity).encode(), line)
            case Message():
                self._messages.message(event)
            case PlainText():
                self.plain_lines += 1
            case _:
                pass  # other activities and results say nothing the report holds

    def _done_of(self, activity: int) -> int | None:
        """What a builds activity's last progress counted done (and forget it); None if it
        sent none."""
        key = str(activity).encode()
        self.subs.tracked.discard(key)
        event = parse_line(self.subs.last_progress.pop(key, b""))
        return event.done if isinstance(event, Progress) else None

    def _builds_counted(self) -> int | None:
        """Builds Nix's builds activities counted done; None where the log holds no count."""
        counted, done = self._builds_counted_any, self._builds_done
        for activity in self._builds_activities:  # still open: the log ends in the run
            event = parse_line(self.subs.last_progress.get(str(activity).encode(), b""))
            if isinstance(event, Progress):
                counted, done = True, done + event.done
        return done if counted else None

    def _build_result(self, event: BuildResult) -> None:
        build = self.builds_seen.result(event)
        message = event.payload.get("errorMsg")
        # A rebuild that differs is a verdict, not a failure: its message says so already.
        differs = event.payload.get("status") == NOT_DETERMINISTIC
        if build is not None and event.success is False and not differs:
            build.error = cut(strip_ansi(message)) if isinstance(message, str) else BUILD_FAILED

    # --- output -------------------------------------------------------------------------------

    @property
    def incomplete(self) -> bool:
        """The log ends in the middle of a run: some activity never stopped, or its last
        record is cut in half."""
        return bool(self._open) or self.ends_cut

    @property
    def open_activities(self) -> int:
        return len(self._open)

    @property
    def queried_paths(self) -> Mapping[str, set[str]]:
        return self.subs.queried

    @property
    def queried(self) -> dict[str, int]:
        return {cache: len(paths) for cache, paths in self.subs.queried.items()}

    @property
    def errors(self) -> list[str]:
        return self.messages.errors

    @property
    def failure_errors(self) -> list[str]:
        return self.messages.failure_errors

    @property
    def cache_errors(self) -> list[CacheError]:
        return list(self.messages.cache_errors)

    def substitutions(self) -> list[Substitution]:
        return self.subs.substitutions(self.first_time, self.run)

    def unfinished_substitutions(self) -> list[str]:
        return self.subs.unfinished()

    def report(
        self,
        *,
        reproducibility_mode: Mode = "fail",
        runs: tuple[Run, ...] = (),
        notes: tuple[str, ...] = (),
    ) -> Report:
        """What this one log shows, as a Report (`analyze`: no installables, no Nix version)."""
        return Report(
            substitutions=tuple(self.substitutions()),
            builds=tuple(self.builds()),
            checks=tuple(self.checks()),
            cache_errors=tuple(self.messages.cache_errors),
            runs=runs,
            phases=replace(self.phases(), check=self.phases(check=True).check),
            reproducibility_mode=reproducibility_mode,
            queried=self.queried,
            errors=tuple(self.failure_errors),
            warnings=tuple(self.messages.warnings),
            notes=notes,
            nix=self.nix_info(),
            incomplete=self.incomplete,
            seconds_lost=self.seconds_lost(),
        )

    def nix_info(self) -> NixInfo:
        """Which Nix wrote the log, where the log says so; else nothing is claimed."""
        banner = self.messages.banner
        if banner is None:
            return NixInfo()
        try:
            return parse_version(banner).info()
        except NixError:
            return NixInfo(text=banner)

    def builds(self, outputs: Mapping[str, Sequence[str]] | None = None) -> list[Build]:
        """Every build activity; `outputs` (drv -> output paths), when known, sharpens reasons."""
        return [self._build(state, (outputs or {}).get(state.drv)) for state in self.builds_seen]

    def _build(self, state: BuildState, outputs: Sequence[str] | None) -> Build:
        # A failure reported on this build itself first (Determinate Nix's result), else the
        # error message that names its drv; a check rebuild never borrows the build's failure.
        error = state.error or (None if state.check else self.messages.failed.get(state.drv))
        failed = error is not None or state.success is False
        status: BuildStatus = "checked" if state.check else "failed" if failed else "built"
        if not failed and (state.stopped is None or state.cancelled or self._unfinished(state)):
            # Never finished: still running when the log ended (an interrupted run), or
            # stopped by Nix with its outputs not made (the store says so).
            status, error = "cancelled", INTERRUPTED_BUILD if state.stopped is None else CANCELLED
        reason: MissReason | None = None
        if state.check:
            detail = "rebuilt to check reproducibility"
        else:
            reason, detail = self._miss_reason(state.drv, outputs)
        kept = failed or state.check or status == "cancelled"
        return Build(
            drv=state.drv,
            status=status,
            seconds=span(state.started, state.stopped),
            started=since(self.first_time, state.started),
            reason=reason,
            reason_detail=detail,
            machine=state.machine,
            error=error if kept else None,
            log_tail=tuple(state.tail) if kept else (),
            run=self.run,
        )

    def _unfinished(self, state: BuildState) -> bool:
        """Stopped without the result this Nix sends for each build it finishes, in a run where
        a build failed or that was interrupted: Nix stopped it. Where Nix sends no results, only
        the store can tell (`confirm_unbuilt`)."""
        if state.check or not (self.messages.failed or self.messages.interrupted):
            return False
        if self.builds_seen.sends_results:
            return state.success is None
        # Upstream Nix sends no result per build, but names a goal it stopped in its closing
        # message, and counts each build it finishes: none counted means none finished.
        return state.drv in self.messages.stopped_goals or self._builds_counted() == 0

    def progress(self) -> RunProgress:
        """Where the run stands, for a live status line and the heartbeat. Read from another
        thread than the one feeding the log, it may raise RuntimeError when a build or a
        download is added meanwhile."""
        states = list(self.builds_seen)
        return RunProgress(
            built=sum(1 for s in states if s.stopped is not None and not s.check),
            checked=sum(1 for s in states if s.stopped is not None and s.check),
            running=[store_name(s.drv) for s in states if s.stopped is None],
            fetched=self.subs.fetched_count(),
            fetching=self.subs.fetching(),
        )

    def unconfirmed_builds(self) -> int:
        """How many builds the log calls finished while it cannot know: Nix sends no result per
        build, and a build failed (without --keep-going Nix stops the others) or the run was
        interrupted, and a stopped build looks finished. Only the store can tell
        (`confirm_unbuilt`)."""
        if self.builds_seen.sends_results or not (
            self.messages.failed or self.messages.interrupted
        ):
            return 0
        finished = [
            state
            for state in self.builds_seen
            if not state.cancelled
            and state.stopped is not None
            and state.drv not in self.messages.failed
            and state.success is None
            and not self._unfinished(state)
        ]
        done = self._builds_counted()
        if done is not None and done >= len(finished):
            return 0  # Nix counted every one of them done
        return sum(1 for state in finished if not state.check)

    def confirm_unfetched(self, paths: Iterable[str]) -> None:
        """These paths are not in the store: whatever the log said, no cache brought them."""
        for path in paths:
            self.subs.fail(path)

    def fetched(self) -> list[str]:
        return self.subs.fetched()

    def missing_sizes(self) -> dict[str, list[str]]:
        return self.subs.missing_sizes()

    def fill_sizes(self, sizes: Mapping[str, tuple[int | None, int | None]]) -> None:
        self.subs.fill_sizes(sizes)

    def confirm_unbuilt(self, drvs: Iterable[str]) -> None:
        """These derivations' outputs are not in the store: whatever the log said, they were
        not built (Nix stops other builds when one fails without --keep-going)."""
        unbuilt = set(drvs)
        for state in self.builds_seen:
            if state.drv in unbuilt and not state.check:
                state.cancelled = True

    def checks(self) -> list[Check]:
        """Verdicts from the log alone: every `checking outputs of` build, and every mismatch."""
        result: list[Check] = []
        seen: set[str] = set()
        for state in self.builds_seen:
            if not state.check or state.drv in seen:
                continue
            seen.add(state.drv)
            result.extend(self._check_of(state.drv, stopped=state.stopped is not None))
        for drv in self.messages.differs:
            if drv not in seen:
                result.extend(self._check_of(drv, stopped=True))
        for drv, text in self.messages.uncheckable.items():
            if drv not in seen:
                result.append(self._check(drv, None, "not-checked", text))
        return result

    def _check_of(self, drv: str, *, stopped: bool) -> list[Check]:
        differing = self.messages.differs.get(drv)
        if differing:
            return [self._check(drv, path, "differs") for path in differing]
        error = self.messages.failed.get(drv)
        if error is not None or not stopped:
            reason = REBUILD_FAILED.format(error=error) if error else INTERRUPTED_CHECK
            return [self._check(drv, None, "not-checked", reason)]
        return [self._check(drv, None, "reproducible")]

    def _check(
        self,
        drv: str,
        path: str | None,
        verdict: Verdict,
        reason: str | None = None,
    ) -> Check:
        return Check(
            drv=drv,
            output=output_name(drv, path) if path else None,
            path=path,
            verdict=verdict,
            reason=reason,
            run=self.run,
        )

    def after(self, earlier: Ledger) -> None:
        """This run repeats `earlier` (a retry): a miss is also explained by what the caches
        answered there."""
        self._earlier = earlier
        earlier.superseded = True

    def _miss_reason(self, drv: str, outputs: Sequence[str] | None) -> tuple[MissReason, str]:
        ledger: Ledger | None = self
        while ledger is not None:
            found = ledger._cache_reason(drv, outputs)  # noqa: SLF001 - the same class
            if found is not None:
                return "cache-error", found
            ledger = ledger._earlier  # noqa: SLF001 - the same class
        if not self.subs.queried:
            # None was asked: because every cache failed first (Nix turns off a cache whose
            # nix-cache-info it cannot fetch), or because none is configured.
            failed = self._failed_caches()
            if failed:
                return "cache-error", CACHES_FAILED_FIRST.format(caches=", ".join(failed))
            return "not-in-cache", NO_CACHE_ASKED
        return "not-in-cache", NO_CACHE_HAD_IT

    def _failed_caches(self) -> list[str]:
        """The caches that answered with errors in this run. Only this run's: a retry leaves the
        failed cache out on purpose, so what it builds was not asked of that cache."""
        return sorted({substituter_name(e.substituter) for e in self.messages.cache_errors})

    def _cache_reason(self, drv: str, outputs: Sequence[str] | None) -> str | None:
        """How a cache failed to deliver this derivation's output, if one did."""
        hashes = {store_hash(o) for o in outputs} if outputs else None
        name = store_name(drv)
        # A path Nix asked a cache for and could not get (its NAR failed, or a reference's).
        for path, why in self.messages.not_fetched.items():
            if hashes is not None:
                match = store_hash(path) in hashes
            else:
                match = store_name(path) == name or store_name(path).startswith(name + "-")
            if match:
                return why
        for err in self.messages.cache_errors:
            hash_part = err.url.rsplit("/", 1)[-1].removesuffix(".narinfo")
            path = self.subs.path_by_hash.get(hash_part, "")
            if hashes is not None:
                match = hash_part in hashes
            else:
                # Without the drv's output paths, match the queried path by name (`name` or
                # `name-<output>`), which is what the log alone can tell.
                queried_name = store_name(path) if path else ""
                match = queried_name == name or queried_name.startswith(name + "-")
            if match:
                return answered(err)
        return None

    def phases(self, *, check: bool = False) -> Phases:
        builds = [(b.started, b.stopped) for b in self.builds_seen if b.check == check]
        if check:
            return Phases(check=union(builds))
        lost = [(a, Stopped(b)) for spans in self.subs.lost.values() for a, b in spans]
        asked = [(a, Stopped(b)) for a, b in self.subs.query_spans]
        evaluation = span(self.first_time, self.realise_time)
        if evaluation is not None and (lost or asked) and self.first_time is not None:
            # Nix asks its caches (nix-cache-info, narinfos) before it realises anything:
            # that time, answered or lost on a cache that does not answer, is the caches'.
            start, end = self.first_time, self.first_time + evaluation
            inside = [
                (max(a, start), Stopped(min(b.at or a, end))) for a, b in lost + asked if a < end
            ]
            evaluation = max(0.0, evaluation - (union(inside) or 0.0))
        waited = union(lost)
        # Look-ups that were not failed requests (those are cache_wait already); none without
        # look-ups on record.
        querying = union(asked + lost) if asked else None
        if querying is not None and waited is not None:
            querying = max(0.0, querying - waited)
        return Phases(
            evaluation=evaluation,
            download=union(self.subs.intervals()),
            build=union(builds),
            cache_wait=waited,
            cache_query=querying,
        )

    def seconds_lost(self) -> dict[str, float]:
        """Per cache: seconds its failed downloads took, retries included (live runs only)."""
        return {
            cache: union([(a, Stopped(b)) for a, b in spans]) or 0.0
            for cache, spans in self.subs.lost.items()
        }
