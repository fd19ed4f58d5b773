"""Nix's messages: errors (bounded), cache errors, failed and uncheckable derivations, and the
outputs a rebuild found different."""

from __future__ import annotations

import re

from nix_cache_action.ledger.substitutions import SubState, SubstitutionTracker, cache_of
from nix_cache_action.limits import cut
from nix_cache_action.nix.events import Message
from nix_cache_action.report import CacheError

MAX_ERRORS = 50
MAX_ERROR_CHARS = 4000
MORE_ERRORS = "... and {count} more errors"
MISMATCH = "may not be deterministic"
CACHE_ANSWERED = "{cache} answered HTTP {status}"
CACHE_UNREACHABLE = "{cache} could not be reached"
CACHE_DISABLED = "{cache} was turned off for this run after an error"
NOT_FETCHED = "a cache had it, but it could not be fetched"
CACHE_BAD_COPY = "{cache} sent a copy Nix could not use ({why})"
INTERRUPTED_MESSAGE = "interrupted by the user"

# Nix 2.8 quotes paths with '...', 2.34 with "..."; both are accepted.
_NONDETERMINISTIC = re.compile(
    r"derivation '(?P<drv>[^']+\.drv)' " + MISMATCH + r": "
    r"output ['\"](?P<out>[^'\"]+)['\"] differs"
)
# Determinate Nix names itself at the top of a log at `-v`: `Nix (Determinate Nix 3.22.2) 2.35.2`.
_BANNER = re.compile(r"^nix \([^)]*\) \d+\.\d+(?:\.\d+)?$", re.IGNORECASE)
# Any failed download: an HTTP status, or no answer at all (connection refused, DNS, time-out).
_DOWNLOAD_ERROR = re.compile(r"unable to download '(?P<url>[^']+)': (?P<cause>[^\n;]*)")
_HTTP_STATUS = re.compile(r"^HTTP error (?P<code>\d{3})")
_DRV = re.compile(r"(/[^\s'\"]+\.drv)")
# A path Nix wanted from a cache and could not get, or one it could not get for want of a
# reference: both are then built (with --fallback) or fail, and neither was a hit.
_NOT_FETCHED = re.compile(
    r"path ['\"](?P<path>[^'\"]+)['\"] is required, but there is no substituter that can build it"
    r"|some references of path ['\"](?P<referrer>[^'\"]+)['\"] could not be realised"
)
# Said right after a substitution from a cache Nix has turned off for this run stops empty.
_DISABLED = re.compile(r"substituter ['\"](?P<cache>[^'\"]+)['\"] is disabled")
# Nix's closing word on a run in which several of the goals asked for failed: each named, in
# quotes. A goal it names with no failure of its own was stopped (without --keep-going Nix stops
# what still runs when one build fails), not failed. The remote form (`build of '…' on '…'
# failed: …`) is one build's own failure, and does not match.
_GOALS_FAILED = re.compile(
    r"^(?:error: )?build of (?P<drvs>'[^']+\.drv'(?:, '[^']+\.drv')*) failed$"
)
_NOT_VALID_FOR_CHECK = re.compile(
    r"some outputs of '(?P<drv>[^']+\.drv)' are not valid, so checking is not possible"
)


class MessageTracker:
    """What Nix said. The substitutions tracker names the cache and the store path behind a
    failed download, and hears which substitutions came to nothing."""

    def __init__(self, subs: SubstitutionTracker) -> None:
        self._subs = subs
        # Paths Nix wanted from a cache and could not get -> why, for the reason of its build.
        self.not_fetched: dict[str, str] = {}
        self.cache_errors: list[CacheError] = []
        self.failed: dict[str, str] = {}  # drv -> the error that names it
        self.stopped_goals: set[str] = set()  # named as failed goals, with no failure of their own
        self.differs: dict[str, list[str]] = {}  # drv -> output paths that differed
        self.uncheckable: dict[str, str] = {}  # drv -> why --rebuild could not check it
        self._errors: list[str] = []
        self._errors_dropped = 0
        self._warnings: dict[str, None] = {}  # each once, in order
        self.banner: str | None = None  # the version line, where the log has one
        self.interrupted = False  # Nix said it was interrupted (SIGINT, SIGTERM)
        self._pending: tuple[str, SubState | None] | None = None

    def message(self, event: Message) -> None:
        text = event.text
        copy_failed = _maybe_copy_failure(event)
        # Taken before a waiting message is settled: settling fails every copy of its path,
        # a retry that just stopped included.
        stopped_last = self._subs.last_stopped() if copy_failed else None
        pending, self._pending = self._pending, None
        if pending is not None:
            self._settle(pending, text)
        if self.banner is None and not event.is_error and _BANNER.match(text):
            self.banner = text
        if event.is_error and INTERRUPTED_MESSAGE in text:
            self.interrupted = True
        if copy_failed:
            # Said of a copy that came to nothing (a NAR that cannot be unpacked, a hash
            # mismatch), by no path: the next message may name it ("path ... is required");
            # else it is the substitution that stopped last (2.8 says no more), if any.
            self._pending = (text, stopped_last)
            return
        failed = _DOWNLOAD_ERROR.search(text)
        if failed is not None:
            status = _HTTP_STATUS.match(failed["cause"])
            self._subs.download_failed(failed["url"])
            self._cache_error(failed["url"], int(status["code"]) if status else None, text)
        elif text.startswith("warning:") and len(self._warnings) < MAX_ERRORS:
            # A download a cache failed is a cache error already, with each retry.
            self._warnings.setdefault(cut(text, MAX_ERROR_CHARS))
        self._not_fetched(text)
        if event.is_error and text.startswith("error:"):
            self._error(text)

    def settle(self) -> None:
        """Decide a message still waiting for the next one (the log ended, or is read now)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._settle(pending, None)

    def _settle(self, pending: tuple[str, SubState | None], following: str | None) -> None:
        text, stopped_last = pending
        named = _NOT_FETCHED.search(following or "")
        sub = self._subs.last_of(named["path"]) if named and named["path"] else None
        # Else (Nix 2.8 names no path at all, and says it when the goal wakes, which may be
        # after other activities) the substitution that had stopped last when it was said, of
        # those not known to have failed. One that succeeded in between would take the blame;
        # the store check after the run cannot tell either, as the path is then built.
        sub = sub or stopped_last
        if sub is None:
            self._error(text)  # about no copy: an error like any other
            return
        sub.failed = True
        self._subs.fail(sub.path)
        why = text.removeprefix("error:").strip().split("\n", 1)[0][:300]
        self.cache_errors.append(
            CacheError(
                substituter=sub.substituter,
                url=self._subs.nar_url_of(sub.path) or sub.substituter,
                status=None,
                message=text.split("\n", 1)[0][:300],
                path=sub.path,
            )
        )
        self.not_fetched.setdefault(sub.path, CACHE_BAD_COPY.format(cache=sub.substituter, why=why))

    def _not_fetched(self, text: str) -> None:
        """Paths Nix wanted from a cache and did not get."""
        disabled = _DISABLED.search(text)
        if disabled is not None:
            skipped = self._subs.fail_last_from(disabled["cache"])
            if skipped is not None:
                name = cache_of(disabled["cache"], self._subs.queried)
                self.not_fetched.setdefault(skipped, CACHE_DISABLED.format(cache=name))
        for found in _NOT_FETCHED.finditer(text):
            path = found["path"] or found["referrer"]
            self._subs.fail(path)
            cause = next((e for e in reversed(self.cache_errors) if e.path == path), None)
            cause = cause or (self.cache_errors[-1] if self.cache_errors else None)
            if cause is None:
                why = NOT_FETCHED
            else:
                # A referrer takes the reason of the path it waited for, as said already.
                why = self.not_fetched.get(cause.path or "") or answered(cause)
            self.not_fetched.setdefault(path, why)

    def _error(self, text: str) -> None:
        self._remember(text)
        nondet = _NONDETERMINISTIC.search(text)
        if nondet is not None:
            self.differs.setdefault(nondet["drv"], []).append(nondet["out"])
            return
        invalid = _NOT_VALID_FOR_CHECK.search(text)
        if invalid is not None:
            self.uncheckable[invalid["drv"]] = text
            return
        goals = _GOALS_FAILED.match(text.strip())
        if goals is not None and self.failed:
            # After the failure that stopped the run: a goal it names and no other message
            # did was stopped (or waited on what failed), and never failed itself.
            for drv in _DRV.findall(goals["drvs"]):
                if drv not in self.failed:
                    self.stopped_goals.add(drv)
            return
        drvs = _DRV.findall(text)
        if drvs:
            # The first drv named is the one that failed; later ones are its dependents.
            self.failed.setdefault(drvs[0], text)

    def _cache_error(self, url: str, status: int | None, text: str) -> None:
        owner = self._subs.owner_of(url)
        if owner is not None:
            # A NAR download: the path it was for, the cache of the substitution; the path was
            # not fetched, whatever the substitution's activity says when it stops.
            path, cache = owner
            self._subs.fail(path)
        else:
            path, cache = None, cache_of(url, self._subs.queried)
        error = CacheError(
            substituter=cache,
            url=url,
            status=status,
            message=text.split("\n", 1)[0][:300],
            retried="retrying" in text,
            path=path,
        )
        self.cache_errors.append(error)
        if path is not None:
            self.not_fetched.setdefault(path, answered(error))

    def failure(self, drv: str, text: str) -> None:
        """A failure Nix reported without a message (Determinate Nix's build result)."""
        self.failed.setdefault(drv, text)

    def _remember(self, text: str) -> None:
        if len(self._errors) >= MAX_ERRORS:
            self._errors_dropped += 1
            return
        self._errors.append(cut(text, MAX_ERROR_CHARS))

    @property
    def errors(self) -> list[str]:
        extra = [MORE_ERRORS.format(count=self._errors_dropped)] if self._errors_dropped else []
        return [*self._errors, *extra]

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @property
    def failure_errors(self) -> list[str]:
        """The errors, less the mismatch messages that the checks already stand for."""
        return [e for e in self.errors if MISMATCH not in e]


def _maybe_copy_failure(event: Message) -> bool:
    """An error of no kind known here: no download, no derivation, no cache turned off, no
    path named. Such a message after a copy is why the copy failed."""
    text = event.text
    if not (event.is_error and text.startswith("error:")):
        return False
    patterns = (_DOWNLOAD_ERROR, _NOT_FETCHED, _DISABLED, _DRV, _NONDETERMINISTIC)
    return not any(pattern.search(text) for pattern in patterns) and INTERRUPTED_MESSAGE not in text


def answered(error: CacheError) -> str:
    if error.status is None:
        return CACHE_UNREACHABLE.format(cache=error.substituter)
    return CACHE_ANSWERED.format(cache=error.substituter, status=error.status)
