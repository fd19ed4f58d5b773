"""The pure part of commit statuses, and the publisher's promise never to show the token.

Nothing here touches the network: the one outside call, PyGithub's create_status, is replaced.
"""

from __future__ import annotations

import hashlib
import itertools
from email.utils import formatdate
from typing import TYPE_CHECKING

import pytest
import requests

import github
from nix_cache_action import records
from nix_cache_action.github.statuses import (
    SECONDARY_LIMIT_WAIT_SECONDS,
    PublishOutcome,
    StatusPublisher,
    _demanded_wait,
)
from nix_cache_action.render.format import ELLIPSIS, shorten
from nix_cache_action.render.statuses import (
    CONTEXT_INSTALLABLE_LIMIT,
    CONTEXT_PREFIX,
    DESCRIPTION_LIMIT,
    CommitStatus,
    status_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# Shaped like a GITHUB_TOKEN (ghs_ and 36 characters); not a real one.
TOKEN = "ghs_" + "Q7xW2pLk9VmZ4tR8yN3cB6dF1hJ5sA0eUiOo"
VERDICTS = ["reproducible", "differs", "not-checked"]
LONG = ".#packages.x86_64-linux." + "very-long-attribute-name-" * 20 + "tail-end"


def _installables() -> list[str]:
    sizes = [0, 1, 60, 99, 100, 101, 139, 140, 141, 500, 5000]
    return ["x" * size for size in sizes] + [LONG, "github:o/r#ünïcödé-" + "ä" * 200]


@pytest.mark.parametrize("installable", _installables())
@pytest.mark.parametrize("verdict", VERDICTS)
@pytest.mark.parametrize("failed", [False, True])
@pytest.mark.parametrize(
    ("hit_rate", "seconds"),
    [(None, None), (0.0, 0.0), (1.0, 59.6), (0.996, 3599.6), (0.5, 1e12)],
)
def test_description_fits_githubs_limit(
    *, installable: str, verdict: str, failed: bool, hit_rate: float | None, seconds: float | None
) -> None:
    status = status_for(
        installable, verdict=verdict, hit_rate=hit_rate, seconds=seconds, failed=failed
    )
    assert len(status.description) <= DESCRIPTION_LIMIT
    # The figures are never what gets cut.
    assert status.description.endswith(")")
    assert "cache hits " in status.description
    assert len(status.context) <= len(CONTEXT_PREFIX) + CONTEXT_INSTALLABLE_LIMIT


def test_description_reads_as_verdict_installable_and_figures() -> None:
    status = status_for(
        ".#hello", verdict="reproducible", hit_rate=0.87, seconds=12.3, failed=False
    )
    assert status == CommitStatus(
        context="nix-cache-action / .#hello",
        state="success",
        description="reproducible: .#hello (cache hits 87%, 12 s)",
        target_url=None,
    )


@pytest.mark.parametrize(
    ("verdict", "failed", "state", "headline"),
    [
        ("reproducible", False, "success", "reproducible: "),
        ("not-checked", False, "success", "built, reproducibility not checked: "),
        ("differs", False, "failure", "NOT reproducible: "),
        ("reproducible", True, "failure", "build failed: "),
        ("not-checked", True, "failure", "build failed: "),
        ("differs", True, "failure", "build failed: "),
    ],
)
def test_state_follows_the_build_then_the_verdict(
    *, verdict: str, failed: bool, state: str, headline: str
) -> None:
    status = status_for(".#a", verdict=verdict, hit_rate=None, seconds=None, failed=failed)
    assert status.state == state
    assert status.description.startswith(headline)


def test_a_long_installable_is_cut_in_its_middle_to_exactly_the_limit() -> None:
    status = status_for(LONG, verdict="not-checked", hit_rate=0.25, seconds=4.25, failed=False)
    assert len(status.description) == DESCRIPTION_LIMIT
    assert status.description.startswith("built, reproducibility not checked: .#packages.")
    assert status.description.endswith("tail-end (cache hits 25%, 4.2 s)")
    assert status.description.count(ELLIPSIS) == 1


def test_context_keeps_installables_up_to_100_characters() -> None:
    exact = "a" * CONTEXT_INSTALLABLE_LIMIT
    context = status_for(
        exact, verdict="reproducible", hit_rate=None, seconds=None, failed=False
    ).context
    assert context == CONTEXT_PREFIX + exact
    longer = status_for(LONG, verdict="reproducible", hit_rate=None, seconds=None, failed=False)
    installable = longer.context.removeprefix(CONTEXT_PREFIX)
    assert len(installable) == CONTEXT_INSTALLABLE_LIMIT
    assert ELLIPSIS in installable
    assert installable.startswith(".#packages.x86_64-linux.")
    name, _, digest = installable.rpartition(" #")
    assert name.endswith("tail-end")
    assert digest == hashlib.sha256(LONG.encode()).hexdigest()[:8]


def test_two_long_installables_differing_only_where_they_are_cut_get_two_contexts() -> None:
    middle = "x" * 200
    first, second = f".#checks.{middle}-a-{middle}.test", f".#checks.{middle}-b-{middle}.test"
    contexts = {
        status_for(i, verdict="reproducible", hit_rate=None, seconds=None, failed=False).context
        for i in (first, second)
    }
    assert len(contexts) == 2
    assert all(len(c) == len(CONTEXT_PREFIX) + CONTEXT_INSTALLABLE_LIMIT for c in contexts)


@pytest.mark.parametrize(
    ("hit_rate", "text"),
    [
        (None, "cache hits n/a"),
        (0.0, "cache hits 0%"),
        (0.004, "cache hits 1%"),  # one hit among many still shows
        (0.5, "cache hits 50%"),
        (0.996, "cache hits 99%"),  # one miss among many is not 100 %
        (1.0, "cache hits 100%"),
    ],
)
def test_hit_rate_is_a_percentage(hit_rate: float | None, text: str) -> None:
    status = status_for(".#a", verdict="reproducible", hit_rate=hit_rate, seconds=1, failed=False)
    assert f"({text}, " in status.description


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "time n/a"),
        (0.0, "0 ms"),
        (0.0004, "under 1 ms"),
        (0.023, "23 ms"),
        (0.9994, "999 ms"),
        (0.9996, "1.0 s"),
        (9.94, "9.9 s"),
        (9.96, "10 s"),
        (59.4, "59 s"),
        (59.6, "1 min 00 s"),
        (125, "2 min 05 s"),
        (754, "12 min 34 s"),
        (3600, "1 h 00 min"),
        (7322, "2 h 02 min"),
        (1e12, "over 999 h"),
    ],
)
def test_time_is_short_and_human(seconds: float | None, text: str) -> None:
    status = status_for(".#a", verdict="reproducible", hit_rate=1.0, seconds=seconds, failed=False)
    assert status.description.endswith(f", {text})")


@pytest.mark.parametrize(
    "call",
    [
        lambda: status_for("a", verdict="maybe", hit_rate=None, seconds=None, failed=False),
        lambda: status_for("a", verdict="differs", hit_rate=1.5, seconds=None, failed=False),
        lambda: status_for("a", verdict="differs", hit_rate=-0.1, seconds=None, failed=False),
        lambda: status_for("a", verdict="differs", hit_rate=None, seconds=-1, failed=False),
        lambda: status_for(
            "a", verdict="differs", hit_rate=None, seconds=float("nan"), failed=False
        ),
        lambda: CommitStatus("c", "success", "d" * (DESCRIPTION_LIMIT + 1)),
        lambda: CommitStatus("c", "bogus", "d"),  # type: ignore[arg-type]
    ],
)
def test_programming_errors_are_caught_early(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"."):
        call()


@pytest.mark.parametrize(
    ("text", "limit"), list(itertools.product(["", "ab", "abcdef" * 9], range(6)))
)
def test_shorten_never_exceeds_its_limit(text: str, limit: int) -> None:
    short = shorten(text, limit)
    assert len(short) <= limit
    if len(text) <= limit:
        assert short == text


def test_target_url_is_added_by_the_caller() -> None:
    status = status_for(".#a", verdict="reproducible", hit_rate=None, seconds=None, failed=False)
    linked = records.replace(status, target_url="https://example.invalid/run/1")
    assert linked.target_url == "https://example.invalid/run/1"


# --- waits GitHub asks for ------------------------------------------------------------------


def _limited(status: int, message: str, headers: dict[str, str]) -> github.GithubException:
    return github.GithubException(status, {"message": message}, headers)


def test_reset_is_measured_on_githubs_clock_not_ours() -> None:
    # GitHub's Date is years away from this machine's clock: only the difference counts.
    error = _limited(
        403,
        "API rate limit exceeded for installation.",
        {
            "date": formatdate(1_000_000_000, usegmt=True),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "1000000005",
        },
    )
    assert _demanded_wait(error, 1) == 6.0  # to the reset, and one second more


@pytest.mark.parametrize(
    ("error", "wait"),
    [
        (_limited(429, "", {"retry-after": "7"}), 7.0),
        (_limited(403, "You have exceeded a secondary rate limit.", {"retry-after": "3"}), 3.0),
        (_limited(403, "You have exceeded a secondary rate limit.", {}), 60.0),
        (_limited(429, "", {}), 60.0),
        (_limited(403, "Resource not accessible by integration", {}), None),
        (_limited(502, "Bad Gateway", {"retry-after": "7"}), None),  # ours to choose
        (_limited(404, "Not Found", {}), None),
    ],
)
def test_which_answers_carry_a_wait(error: github.GithubException, wait: float | None) -> None:
    assert _demanded_wait(error, 1) == wait


def test_secondary_limit_without_a_figure_waits_longer_each_time() -> None:
    error = _limited(403, "You have exceeded a secondary rate limit.", {})
    waits = [_demanded_wait(error, attempt) for attempt in (1, 2, 3)]
    assert waits == [SECONDARY_LIMIT_WAIT_SECONDS * factor for factor in (1, 2, 4)]


# --- the token ----------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when slept on, so retries cost no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _publisher(fake: FakeTime, failure: Exception) -> StatusPublisher:
    publisher = StatusPublisher(
        TOKEN,
        "octo/repo",
        "http://127.0.0.1:9",  # never reached: the outside call is replaced below
        "0123456789abcdef0123456789abcdef01234567",
        deadline_seconds=30,
        request_timeout=5,
        sleep=fake.sleep,
        clock=fake.clock,
    )

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise failure

    publisher._commit.create_status = refuse  # type: ignore[method-assign,assignment]
    return publisher


def test_token_is_not_in_any_repr() -> None:
    fake = FakeTime()
    publisher = _publisher(fake, RuntimeError("unused"))
    status = status_for(".#a", verdict="reproducible", hit_rate=None, seconds=None, failed=False)
    for thing in (publisher, status, PublishOutcome(posted=["x"], warnings=["y"])):
        assert TOKEN not in repr(thing)
        assert TOKEN not in str(thing)
    assert "octo/repo" in repr(publisher)


@pytest.mark.parametrize(
    ("failure", "quoted"),
    [
        (github.GithubException(422, {"message": f"Validation Failed for {TOKEN}"}, {}), True),
        (github.GithubException(404, {"message": f"no {TOKEN} here"}, {}), True),
        (github.GithubException(403, {"message": f"Resource not accessible by {TOKEN}"}, {}), True),
        (github.GithubException(401, {"message": f"Bad credentials {TOKEN}"}, {}), True),
        (github.GithubException(502, {"data": f"<html>{TOKEN}</html>"}, {}), True),
        (requests.ConnectionError(f"http://x-access-token:{TOKEN}@127.0.0.1:9/ refused"), True),
        # A timeout is reported by its own figures, not by the library's text.
        (requests.ReadTimeout(f"read timed out for {TOKEN}"), False),
    ],
    ids=["422", "404", "403", "401", "502", "connection", "timeout"],
)
def test_token_never_reaches_a_warning(*, failure: Exception, quoted: bool) -> None:
    fake = FakeTime()
    publisher = _publisher(fake, failure)
    statuses = [
        status_for(name, verdict="differs", hit_rate=0.1, seconds=3, failed=False)
        for name in (".#a", ".#b")
    ]
    outcome = publisher.publish(statuses)
    assert outcome.posted == []
    assert outcome.warnings
    for warning in outcome.warnings:
        assert TOKEN not in warning
    # What the server or library said is quoted, with the token blanked out.
    assert ("***" in outcome.warnings[0]) is quoted
    assert TOKEN not in repr(outcome)
    # However many retries, the budget held.
    assert sum(fake.sleeps) <= 30


def test_a_long_message_is_redacted_before_it_is_clipped() -> None:
    # Clipping keeps the head and tail of a long message; cut through the token, the pieces
    # would no longer match it, so redaction must come first.
    fake = FakeTime()
    failure = github.GithubException(422, {"message": "x" * 80 + TOKEN + "y" * 400}, {})
    outcome = _publisher(fake, failure).publish(
        [status_for(".#a", verdict="reproducible", hit_rate=None, seconds=None, failed=False)]
    )
    (warning,) = outcome.warnings
    assert ELLIPSIS in warning
    assert TOKEN[:10] not in warning
    assert TOKEN[-10:] not in warning
