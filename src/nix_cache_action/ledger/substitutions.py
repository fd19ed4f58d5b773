"""Substitutions: which path came from which cache, how many bytes it moved, how long it took;
and which paths Nix asked each cache about."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from nix_cache_action.ledger.timing import Stopped, since, span
from nix_cache_action.nix.events import (
    CopyPathStarted,
    FileTransferStarted,
    Progress,
    QueryPathInfoStarted,
    SubstituteStarted,
    parse_line,
)
from nix_cache_action.records import record
from nix_cache_action.report import Substitution, cache_key
from nix_cache_action.store_path import store_hash


@record(frozen=False, slots=True)
class SubState:
    path: str
    substituter: str
    started: float | None
    stopped: Stopped | None = None
    nar_bytes: int | None = None
    download_bytes: int | None = None
    failed: bool = False  # its download failed, or Nix said the path could not be fetched
    order: int = 0  # when it stopped, among the substitutions of the run


# Closed downloads remembered for a failure Nix names after the download stopped.
RECENT_DOWNLOADS = 256


class SubstitutionTracker:
    """Substitute activities, the copies and transfers inside them, and narinfo queries.

    Bytes come from the last progress result of a copy (unpacked) or a NAR transfer (downloaded),
    so only those activities' progress lines are kept: `tracked` holds their ids as the bytes
    that appear in the log line, and `last_progress` the last raw `@nix` line of each.
    """

    def __init__(self) -> None:
        self._subs: dict[int, SubState] = {}
        self._subs_by_path: dict[str, int] = {}
        self._copies: dict[int, str] = {}  # copyPath activity -> store path
        self._transfers: dict[int, str] = {}  # NAR transfer -> store path
        self._nar_urls: dict[str, str] = {}  # NAR URL -> store path, for failed downloads
        self.tracked: set[bytes] = set()
        self.last_progress: dict[bytes, bytes] = {}
        # Distinct store paths asked of each cache, and the path each narinfo hash stands for.
        self.queried: dict[str, set[str]] = {}
        self.path_by_hash: dict[str, str] = {}
        # When each narinfo look-up ran (live runs only): before Nix realises anything it asks
        # its caches what they hold, and that time is the caches', not the evaluation's.
        self._queries: dict[int, float] = {}
        self.query_spans: list[tuple[float, float]] = []
        # Time lost to downloads that failed (a cache unreachable, erroring, retried), by cache:
        # open downloads with their start, the last closed ones (Nix may name a failure only
        # after the download stopped), the URLs that failed, and what they cost.
        self._downloads: dict[int, tuple[str, float]] = {}
        self._closed: deque[tuple[str, float, float]] = deque(maxlen=RECENT_DOWNLOADS)
        self._failed_urls: set[str] = set()
        self.lost: dict[str, list[tuple[float, float]]] = {}
        self._stops = 0  # substitutions stopped so far: their order, for last_stopped()

    def substitute(self, event: SubstituteStarted, now: float | None) -> None:
        self._subs[event.id] = SubState(event.path, event.substituter, now)
        self._subs_by_path[event.path] = event.id

    def copy(self, event: CopyPathStarted) -> None:
        self._copies[event.id] = event.path
        self.tracked.add(str(event.id).encode())

    def transfer(self, event: FileTransferStarted, now: float | None = None) -> None:
        if now is not None:
            self._downloads[event.id] = (event.url, now)
        self._own(event)

    def _own(self, event: FileTransferStarted) -> None:
        # Nix 2.18+ says which copy a download belongs to (`parent`). Before that, a NAR
        # download is attributed only when exactly one copy is open: with parallel copies the
        # log alone cannot tell, and the bytes stay unknown rather than guessed.
        owner = event.parent if event.parent in self._copies else None
        if owner is None and event.parent is None and "/nar/" in event.url:
            owner = next(iter(self._copies)) if len(self._copies) == 1 else None
        if owner is not None:
            self._transfers[event.id] = self._copies[owner]
            self._nar_urls[event.url] = self._copies[owner]
            self.tracked.add(str(event.id).encode())

    def query(self, event: QueryPathInfoStarted, now: float | None = None) -> None:
        self.queried.setdefault(event.cache, set()).add(event.path)
        self.path_by_hash[store_hash(event.path)] = event.path
        if now is not None:
            self._queries[event.id] = now

    def progress(self, key: bytes, line: bytes) -> None:
        if key in self.tracked:
            self.last_progress[key] = line

    def download_failed(self, url: str) -> None:
        """A download of `url` failed (or is being retried): its time was lost."""
        self._failed_urls.add(url)
        for closed in [c for c in self._closed if c[0] == url]:
            self._closed.remove(closed)
            self._lose(*closed)

    def _lose(self, url: str, start: float, end: float) -> None:
        self.lost.setdefault(cache_of(url, self.queried), []).append((start, end))

    def _download_stopped(self, activity: int, now: float | None) -> None:
        started = self._downloads.pop(activity, None)
        if started is None or now is None:
            return
        url, start = started
        if url in self._failed_urls:
            self._lose(url, start, now)
        else:
            self._closed.append((url, start, now))

    def stop(self, activity: int, now: float | None) -> bool:
        """Close `activity` if it is one of ours; False when it is not."""
        if self._downloads:
            self._download_stopped(activity, now)
        key = str(activity).encode()
        if key in self.tracked:
            self.tracked.discard(key)
            moved = _bytes_moved(self.last_progress.pop(key, b""))
            if activity in self._copies:
                sub = self._open(self._copies.pop(activity))
                if sub is not None and moved is not None:
                    sub.nar_bytes = moved
            elif activity in self._transfers:
                sub = self._open(self._transfers.pop(activity))
                if sub is not None and moved is not None:
                    sub.download_bytes = (sub.download_bytes or 0) + moved
            return True
        sub = self._subs.get(activity)
        if sub is None:
            asked = self._queries.pop(activity, None)
            if asked is None:
                return False
            if now is not None:
                self.query_spans.append((asked, now))
            return True
        sub.stopped = Stopped(now)
        self._stops += 1
        sub.order = self._stops
        return True

    def fetching(self) -> list[str]:
        """The caches of the substitutions started and not stopped yet, one entry each."""
        return [sub.substituter for sub in list(self._subs.values()) if sub.stopped is None]

    def fetched_count(self) -> int:
        return sum(1 for sub in list(self._subs.values()) if sub.stopped and not sub.failed)

    def last_stopped(self) -> SubState | None:
        """The substitution whose activity stopped last, of those not known to have failed."""
        stopped = [s for s in self._subs.values() if s.stopped is not None and not s.failed]
        return max(stopped, key=lambda s: s.order, default=None)

    def last_of(self, path: str) -> SubState | None:
        """The latest substitution of `path`, if there was one."""
        return next((sub for sub in reversed(self._subs.values()) if sub.path == path), None)

    def nar_url_of(self, path: str) -> str | None:
        """The last NAR download of `path`, where the log tells."""
        return next((u for u, p in reversed(self._nar_urls.items()) if p == path), None)

    def owner_of(self, url: str) -> tuple[str, str] | None:
        """(store path, cache) a NAR download was for, where the log tells."""
        path = self._nar_urls.get(url)
        sub = self._open(path) if path is not None else None
        return None if sub is None else (sub.path, sub.substituter)

    def fail(self, path: str) -> None:
        """Every substitution of `path` so far came to nothing."""
        for sub in self._subs.values():
            if sub.path == path:
                sub.failed = True

    def fail_last_from(self, cache: str) -> str | None:
        """The substitution from `cache` that stopped last came to nothing: its path."""
        wanted = cache_key(cache)
        for sub in reversed(self._subs.values()):
            if cache_key(sub.substituter) == wanted and sub.stopped is not None:
                sub.failed = True
                return sub.path
        return None

    def _open(self, path: str) -> SubState | None:
        sub_id = self._subs_by_path.get(path)
        return self._subs.get(sub_id) if sub_id is not None else None

    # --- output -------------------------------------------------------------------------------

    def substitutions(self, origin: float | None, run: str) -> list[Substitution]:
        return [
            Substitution(
                path=s.path,
                substituter=s.substituter,
                nar_bytes=s.nar_bytes,
                download_bytes=s.download_bytes,
                seconds=span(s.started, s.stopped),
                started=since(origin, s.started),
                run=run,
            )
            for s in self._subs.values()
            # Only a substitution that finished and brought the path is a hit.
            if s.stopped is not None and not s.failed
        ]

    def missing_sizes(self) -> dict[str, list[str]]:
        """{substituter: paths} of the finished copies whose NAR or download size the log did
        not give: Nix 2.8 reports no NAR size, and before 2.18 a download is tied to its copy
        only when one copy is open."""
        missing: dict[str, list[str]] = {}
        for s in self._subs.values():
            finished = s.stopped is not None and not s.failed
            if finished and (s.nar_bytes is None or s.download_bytes is None):
                missing.setdefault(s.substituter, []).append(s.path)
        return missing

    def fill_sizes(self, sizes: Mapping[str, tuple[int | None, int | None]]) -> None:
        """Sizes the cache's narinfo gives, {path: (NAR, download)}, where the log gave none."""
        for s in self._subs.values():
            nar, download = sizes.get(s.path, (None, None))
            if s.nar_bytes is None:
                s.nar_bytes = nar
            if s.download_bytes is None:
                s.download_bytes = download

    def unfinished(self) -> list[str]:
        return [s.path for s in self._subs.values() if s.stopped is None]

    def fetched(self) -> list[str]:
        """Paths whose substitution the log shows finished."""
        return list(
            dict.fromkeys(s.path for s in self._subs.values() if s.stopped and not s.failed)
        )

    def intervals(self) -> list[tuple[float | None, Stopped | None]]:
        return [(s.started, s.stopped) for s in self._subs.values()]


def cache_of(url: str, queried: Mapping[str, set[str]]) -> str:
    """The cache a URL belongs to: one Nix asked about paths, else the URL's base."""
    for cache in queried:
        if url.startswith(cache_key(cache) + "/"):
            return cache
    # A cache's NARs live under `<cache>/nar/`: the cache is what comes before.
    head, nar, _ = url.partition("/nar/")
    return head if nar else url.rsplit("/", 1)[0]


def _bytes_moved(line: bytes) -> int | None:
    """Bytes done (or, if none are reported, expected) in a progress line."""
    if not line:
        return None
    event = parse_line(line)
    if isinstance(event, Progress):
        return event.done or event.expected
    return None
