"""Commit statuses posted through PyGithub, once the build verdicts are known.

What a status says is rendered in render/statuses.py; `StatusPublisher` posts them with one
retry policy, tenacity's, made once beside the client. A status that cannot be posted becomes a
warning: it never changes a verdict and never raises.
"""

from __future__ import annotations

import json
import math
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol

import requests
import tenacity

import github
from nix_cache_action.records import field, record
from nix_cache_action.render.format import shorten
from nix_cache_action.render.statuses import CommitStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

    from typing_extensions import Self

# GitHub asks integrations to leave at least a second between writes, or they meet a secondary
# rate limit ("Best practices for using the REST API").
WRITE_INTERVAL_SECONDS = 1.0
# When GitHub reports a secondary rate limit without saying how long to wait, its documentation
# says to wait at least a minute, then exponentially longer.
SECONDARY_LIMIT_WAIT_SECONDS = 60.0
# Our own backoff for 5xx answers and broken connections: 1-2 s, then 2-3 s, 4-5 s...
_BACKOFF = tenacity.wait_exponential_jitter(initial=1, max=30, jitter=1)
# How much of what GitHub said goes into a warning (a proxy's 502 page can be long HTML).
QUOTE_LIMIT = 300

READ_ONLY_WARNING = (
    "Commit statuses not posted: GitHub answered 403 ({said}) to {context}, and {skipped} other"
    " status(es) were not tried. The token cannot write commit statuses. A pull request"
    " from a fork always gets a read-only GITHUB_TOKEN, so its statuses cannot be posted from"
    " that run (the job summary and annotations still show the verdicts); for other events give"
    " the job `permissions: statuses: write`."
)
BAD_CREDENTIALS_WARNING = (
    "Commit statuses not posted: GitHub answered 401 ({said}) to {context}, and {skipped} other"
    " status(es) were not tried. Pass a valid token; the action's default is github.token."
)
NOT_FOUND_WARNING = (
    "Commit status {context} not posted: GitHub answered 404 ({said}). Check that the repository"
    " {repository} and the commit {sha} exist and that the token can see them."
)
REJECTED_WARNING = (
    "Commit status {context} not posted: GitHub answered {status} ({said}). The build verdict"
    " stands; the job summary and the JSON report have it."
)
GAVE_UP_WARNING = (
    "Commit status {context} not posted: gave up after {attempts} attempt(s) in {elapsed:.1f} s"
    " ({reason}). The build verdict stands; the job summary and the JSON report have it."
)
OUT_OF_TIME_WARNING = (
    "Commit status(es) not posted, the {deadline:g} s allowed for posting statuses were used up:"
    " {contexts}. The build verdicts stand; the job summary and the JSON report have them."
)


@record
class PublishOutcome:
    posted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Publisher(Protocol):
    """What the action needs of a status publisher (StatusPublisher); tests pass their own."""

    def publish(self, statuses: Iterable[CommitStatus]) -> PublishOutcome: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class StatusPublisher:
    """Posts commit statuses for one commit, within a time budget, and never raises for them.

    `deadline_seconds` bounds a whole `publish` call: a request is started only while the budget
    still has room for it to time out (`request_timeout`), so a hanging API cannot hold the job.
    """

    def __init__(  # noqa: PLR0913 - the brief's constructor; all but the first four are keywords
        self,
        token: str,
        repository: str,
        api_url: str,
        sha: str,
        *,
        deadline_seconds: float = 60.0,
        request_timeout: int = 10,
        write_interval: float = WRITE_INTERVAL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"repository {repository!r} is not of the form owner/name")
        if request_timeout > deadline_seconds:
            raise ValueError(
                f"request_timeout ({request_timeout} s) must fit in deadline_seconds"
                f" ({deadline_seconds} s)"
            )
        self._secret = token
        self._repository = repository
        self._sha = sha
        self._deadline_seconds = deadline_seconds
        self._request_timeout = request_timeout
        self._write_interval = write_interval
        self._sleep = sleep
        self._clock = clock
        self._deadline_at = math.inf  # set at the start of each publish()
        self._last_write_at = -math.inf
        self._github = github.Github(
            auth=github.Auth.Token(token),
            base_url=api_url,
            timeout=request_timeout,
            # PyGithub's own urllib3 retries and write pacing sleep on the real clock, outside
            # our deadline; tenacity below is the single retry policy and we pace writes here.
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            # Lazy objects make no GET for the repository or the commit: posting a status is
            # one POST /repos/{owner}/{repo}/statuses/{sha}.
            lazy=True,
        )
        self._commit = self._github.get_repo(repository).get_commit(sha)
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_transient),
            wait=self._wait,
            stop=self._stop,
            sleep=sleep,
            reraise=True,
        )

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs and tracebacks.
        return f"StatusPublisher(repository={self._repository!r}, sha={self._sha!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._github.close()

    def publish(self, statuses: Iterable[CommitStatus]) -> PublishOutcome:
        """Post each status in turn; what cannot be posted comes back as a warning."""
        started = self._clock()
        self._deadline_at = started + self._deadline_seconds
        pending = list(statuses)
        posted: list[str] = []
        warnings: list[str] = []
        for index, status in enumerate(pending):
            self._pace()
            if self._remaining() < self._request_timeout:
                contexts = ", ".join(s.context for s in pending[index:])
                warnings.append(
                    OUT_OF_TIME_WARNING.format(deadline=self._deadline_seconds, contexts=contexts)
                )
                break
            attempts = 0
            attempts_started = self._clock()
            try:
                for attempt in self._retrying:
                    with attempt:
                        attempts += 1
                        self._send(
                            state=status.state,
                            context=status.context,
                            description=status.description,
                            target_url=status.target_url,
                        )
            except github.GithubException as error:
                if _is_transient(error):
                    warnings.append(self._gave_up(status, attempts, attempts_started, error))
                    continue
                warning, stop = self._refused(status, error, skipped=len(pending) - index - 1)
                warnings.append(warning)
                if stop:
                    break
                continue
            except (requests.RequestException, json.JSONDecodeError) as error:
                warnings.append(self._gave_up(status, attempts, attempts_started, error))
                continue
            posted.append(status.context)
        # Quoted texts were redacted before they were clipped (a clip could cut the token in
        # two); this pass covers anything else a warning picked up.
        return PublishOutcome(posted=posted, warnings=[self._redact(w) for w in warnings])

    def _send(self, *, state: str, context: str, description: str, target_url: str | None) -> None:
        """One request, no retry, no checks of our own: the contract tests call this directly."""
        try:
            if target_url is None:
                self._commit.create_status(state, context=context, description=description)
            else:
                self._commit.create_status(
                    state, target_url=target_url, context=context, description=description
                )
        finally:
            self._last_write_at = self._clock()

    def _remaining(self) -> float:
        return self._deadline_at - self._clock()

    def _pace(self) -> None:
        wait = self._last_write_at + self._write_interval - self._clock()
        if wait > 0:
            self._sleep(wait)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = _outcome_error(state)
        demanded = _demanded_wait(error, state.attempt_number) if error is not None else None
        if demanded is not None:
            # GitHub's own figure: waiting less would only earn another refusal.
            return demanded
        return max(0.0, min(_BACKOFF(state), self._remaining() - self._request_timeout))

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        # Decided from what is certain (the budget, a wait GitHub demands), not from the jittered
        # backoff, so the answer does not depend on whether tenacity asks before or after _wait.
        room = self._remaining() - self._request_timeout
        error = _outcome_error(state)
        demanded = _demanded_wait(error, state.attempt_number) if error is not None else None
        return room <= 0 or (demanded is not None and demanded > room)

    def _refused(
        self, status: CommitStatus, error: github.GithubException, *, skipped: int
    ) -> tuple[str, bool]:
        """The warning for an answer that retrying cannot change, and whether to stop the batch."""
        said = self._said(error)
        if error.status in {401, 403}:
            # The token is refused or cannot write statuses: every other status would meet the
            # same answer, so one warning stands for the batch.
            template = BAD_CREDENTIALS_WARNING if error.status == 401 else READ_ONLY_WARNING
            return template.format(said=said, context=status.context, skipped=skipped), True
        if error.status == 404:
            warning = NOT_FOUND_WARNING.format(
                context=status.context, said=said, repository=self._repository, sha=self._sha
            )
            return warning, False
        return REJECTED_WARNING.format(
            context=status.context, status=error.status, said=said
        ), False

    def _gave_up(
        self, status: CommitStatus, attempts: int, started: float, error: Exception
    ) -> str:
        if isinstance(error, github.GithubException):
            reason = f"last answer {error.status}: {self._said(error)}"
            demanded = _demanded_wait(error, attempts)
            if demanded is not None:
                reason += f"; GitHub asked to wait {demanded:g} s, past the time allowed"
        elif isinstance(error, requests.Timeout):
            reason = f"no answer within {self._request_timeout} s"
        else:
            reason = f"{type(error).__name__}: {self._quote(str(error))}"
        return GAVE_UP_WARNING.format(
            context=status.context,
            attempts=attempts,
            elapsed=self._clock() - started,
            reason=reason,
        )

    def _redact(self, text: str) -> str:
        # Our messages quote what servers and libraries said; none of it may carry the token.
        return text.replace(self._secret, "***") if self._secret else text

    def _quote(self, text: str) -> str:
        """Someone else's text, redacted first, then clipped to one short line."""
        return shorten(" ".join(self._redact(text).split()), QUOTE_LIMIT)

    def _said(self, error: github.GithubException) -> str:
        """What GitHub said: its message and the details of a 422."""
        parts = [_message(error) or "no message"]
        data = error.data
        if isinstance(data, dict):
            # GitHub lists the fields it refused under "errors"; an OpenAPI validator under
            # "validation".
            for key in ("errors", "validation"):
                details = data.get(key)
                if isinstance(details, list):
                    parts.extend(
                        str(item.get("message") or item.get("code") or item)
                        if isinstance(item, dict)
                        else str(item)
                        for item in details
                    )
        return self._quote("; ".join(parts))


def _outcome_error(state: tenacity.RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def _is_transient(error: BaseException) -> bool:
    """Whether asking again later can succeed: 5xx, rate limits, dropped or hung connections."""
    if isinstance(error, github.GithubException):
        return error.status >= 500 or _is_rate_limit(error)
    # A POST retried after a timeout may land twice; harmless, GitHub shows the newest status
    # of each context.
    return isinstance(
        error,
        (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError),
    )


def _is_rate_limit(error: github.GithubException) -> bool:
    # GitHub answers a rate limit with 429, or with 403 plus a message or headers that say so
    # ("Rate limits for the REST API"); any other 403 is a permission problem.
    if error.status == 429:
        return True
    if error.status != 403:
        return False
    headers = _headers(error)
    message = (_message(error) or "").lower()
    return (
        "rate limit" in message
        or "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
    )


def _demanded_wait(error: BaseException, attempt: int) -> float | None:
    """How long GitHub asks us to wait before asking again, or None if it is up to us."""
    if not isinstance(error, github.GithubException) or not _is_rate_limit(error):
        return None
    headers = _headers(error)
    retry_after = _number(headers.get("retry-after"))
    if retry_after is not None:
        return max(retry_after, 0.0)
    reset = _number(headers.get("x-ratelimit-reset"))
    if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
        # Reset is an epoch second on GitHub's clock: measure it against the answer's Date so a
        # runner with a skewed clock waits the right time; one second more, as Octokit does,
        # because the window turns over during that second.
        now = _server_time(headers)
        return max(reset - now, 0.0) + 1.0
    return SECONDARY_LIMIT_WAIT_SECONDS * 2.0 ** (attempt - 1)


def _server_time(headers: Mapping[str, str]) -> float:
    date = headers.get("date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _headers(error: github.GithubException) -> dict[str, str]:
    # Header names are case-insensitive; PyGithub lower-cases those it reads, and so do we for
    # any exception made elsewhere.
    return {k.lower(): v for k, v in (error.headers or {}).items()}


def _message(error: github.GithubException) -> str | None:
    data = error.data
    if isinstance(data, dict):
        # "message" is GitHub's; "title" an OpenAPI validator's; "data" is PyGithub's wrapping
        # of a body that was not JSON (a proxy's error page).
        for key in ("message", "title", "data"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
    return error.message
