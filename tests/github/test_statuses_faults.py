"""The publisher against a local server that fails on purpose: 5xx, rate limits, a read-only
token, a server that never answers, and GitHub asking for a wait longer than our budget.

Time is virtual where it can be: the publisher's sleep only moves its clock forward, so a
Retry-After of 7 s costs nothing, while the time real requests take still counts.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from nix_cache_action.github.statuses import StatusPublisher
from nix_cache_action.render.statuses import status_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nix_cache_action.render.statuses import CommitStatus

pytestmark = pytest.mark.github

TOKEN = "ghs_" + "Z9yX8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8c"
REPOSITORY = "octo/repo"
SHA = "0123456789abcdef0123456789abcdef01234567"
STATUSES_PATH = f"/repos/{REPOSITORY}/statuses/{SHA}"
CREATED = {"id": 1, "state": "success", "context": "nix-cache-action / .#a"}
SECONDARY_LIMIT = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you"
    " try again. If you reach out to GitHub Support for help, please include the request ID"
    " 1234:5678:9ABC.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}
FORK_REFUSAL = {
    "message": "Resource not accessible by integration",
    "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
    "status": "403",
}


class VirtualTime:
    """Real time plus every second slept: requests take real time, waits take none."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.skipped += seconds


@pytest.fixture
def virtual() -> VirtualTime:
    return VirtualTime()


def _publisher(
    server: HTTPServer,
    virtual: VirtualTime,
    *,
    deadline_seconds: float = 60,
    request_timeout: int = 10,
    write_interval: float = 0.0,
) -> StatusPublisher:
    return StatusPublisher(
        TOKEN,
        REPOSITORY,
        server.url_for("/").rstrip("/"),
        SHA,
        deadline_seconds=deadline_seconds,
        request_timeout=request_timeout,
        write_interval=write_interval,
        sleep=virtual.sleep,
        clock=virtual.clock,
    )


def _statuses(*names: str) -> list[CommitStatus]:
    return [
        status_for(name, verdict="reproducible", hit_rate=0.5, seconds=2.0, failed=False)
        for name in names
    ]


def _expect(
    server: HTTPServer, body: object, status: int, headers: dict[str, str] | None = None
) -> None:
    server.expect_ordered_request(STATUSES_PATH, method="POST").respond_with_json(
        body, status=status, headers=headers
    )


def _posted_contexts(server: HTTPServer) -> list[str]:
    return [json.loads(request.get_data())["context"] for request, _ in server.log]


def test_502_then_201_is_retried_and_posted(httpserver: HTTPServer, virtual: VirtualTime) -> None:
    _expect(httpserver, {"message": "Server Error"}, 502)
    _expect(httpserver, CREATED, 201)
    with _publisher(httpserver, virtual) as publisher:
        outcome = publisher.publish(_statuses(".#a"))
    assert outcome.posted == ["nix-cache-action / .#a"]
    assert outcome.warnings == []
    assert len(httpserver.log) == 2
    # Our own backoff: the first retry waits between 1 and 2 s.
    assert len(virtual.sleeps) == 1
    assert 1.0 <= virtual.sleeps[0] <= 2.0
    httpserver.check_assertions()


def test_requests_are_one_post_each_with_the_token(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    for _ in range(3):
        _expect(httpserver, CREATED, 201)
    with _publisher(httpserver, virtual, write_interval=1.0) as publisher:
        outcome = publisher.publish(_statuses(".#a", ".#b", ".#c"))
    assert outcome.posted == [f"nix-cache-action / .#{n}" for n in "abc"]
    # No GET of the repository or the commit: lazy objects, one POST per status.
    assert [(r.method, r.path) for r, _ in httpserver.log] == [("POST", STATUSES_PATH)] * 3
    assert all(r.headers["Authorization"].endswith(TOKEN) for r, _ in httpserver.log)
    first = json.loads(httpserver.log[0][0].get_data())
    assert first == {
        "state": "success",
        "context": "nix-cache-action / .#a",
        "description": "reproducible: .#a (cache hits 50%, 2.0 s)",
    }
    # GitHub asks for a second between writes: two pauses, each a little under a second
    # (the request itself took the rest).
    assert len(virtual.sleeps) == 2
    assert all(0.5 < s <= 1.0 for s in virtual.sleeps)
    httpserver.check_assertions()


def test_429_with_retry_after_waits_exactly_that(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    _expect(httpserver, {"message": "Too Many Requests"}, 429, {"Retry-After": "7"})
    _expect(httpserver, CREATED, 201)
    with _publisher(httpserver, virtual) as publisher:
        outcome = publisher.publish(_statuses(".#a"))
    assert virtual.sleeps == [7.0]
    assert outcome.posted == ["nix-cache-action / .#a"]
    assert outcome.warnings == []
    assert len(httpserver.log) == 2


def test_secondary_rate_limit_403_waits_as_told(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    _expect(httpserver, SECONDARY_LIMIT, 403, {"Retry-After": "3"})
    _expect(httpserver, CREATED, 201)
    with _publisher(httpserver, virtual) as publisher:
        outcome = publisher.publish(_statuses(".#a"))
    assert virtual.sleeps == [3.0]
    assert outcome.posted == ["nix-cache-action / .#a"]
    assert len(httpserver.log) == 2


def test_secondary_rate_limit_without_headers_waits_a_minute_or_gives_up(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    # GitHub: without retry-after, wait at least a minute. That is past a 60 s budget that
    # must also leave room for the request, so the publisher gives up without waiting.
    _expect(httpserver, SECONDARY_LIMIT, 403)
    with _publisher(httpserver, virtual, deadline_seconds=60) as publisher:
        outcome = publisher.publish(_statuses(".#a"))
    assert virtual.sleeps == []
    assert outcome.posted == []
    assert len(outcome.warnings) == 1
    assert "GitHub asked to wait 60 s" in outcome.warnings[0]
    assert "nix-cache-action / .#a" in outcome.warnings[0]
    assert len(httpserver.log) == 1


def test_primary_rate_limit_waits_for_the_reset(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    # The test server adds a Date of its own, so the reset is on this machine's clock here; the
    # unit tests show a skewed server Date being honoured.
    reset = int(time.time()) + 5
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    _expect(httpserver, {"message": "API rate limit exceeded for installation."}, 403, headers)
    _expect(httpserver, CREATED, 201)
    with _publisher(httpserver, virtual) as publisher:
        outcome = publisher.publish(_statuses(".#a"))
    # To the reset and one second more; Date has whole seconds, so the second may have turned.
    (wait,) = virtual.sleeps
    assert 5.0 <= wait <= 6.0
    assert outcome.posted == ["nix-cache-action / .#a"]
    assert len(httpserver.log) == 2


def test_read_only_token_gives_one_warning_for_the_batch(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    _expect(httpserver, FORK_REFUSAL, 403)
    with _publisher(httpserver, virtual) as publisher:
        outcome = publisher.publish(_statuses(".#a", ".#b", ".#c"))
    assert outcome.posted == []
    assert len(outcome.warnings) == 1
    warning = outcome.warnings[0]
    assert "Resource not accessible by integration" in warning
    assert "fork" in warning
    assert "read-only GITHUB_TOKEN" in warning
    assert "permissions: statuses: write" in warning
    assert "2 other status(es) were not tried" in warning
    # No retry, and the other two were not attempted.
    assert len(httpserver.log) == 1
    assert virtual.sleeps == []
    httpserver.check_assertions()


def test_404_and_422_name_the_context_and_the_batch_goes_on(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    _expect(httpserver, {"message": "Not Found"}, 404)
    _expect(
        httpserver,
        {
            "message": "Validation Failed",
            "errors": [{"resource": "Status", "code": "custom", "message": f"No commit for {SHA}"}],
        },
        422,
    )
    _expect(httpserver, CREATED, 201)
    with _publisher(httpserver, virtual) as publisher:
        outcome = publisher.publish(_statuses(".#a", ".#b", ".#c"))
    assert outcome.posted == ["nix-cache-action / .#c"]
    not_found, invalid = outcome.warnings
    assert "nix-cache-action / .#a" in not_found
    assert "404 (Not Found)" in not_found
    assert REPOSITORY in not_found
    assert "nix-cache-action / .#b" in invalid
    assert f"422 (Validation Failed; No commit for {SHA})" in invalid
    assert _posted_contexts(httpserver) == [f"nix-cache-action / .#{n}" for n in "abc"]
    assert virtual.sleeps == []


def test_a_server_that_echoes_the_token_does_not_get_it_into_warnings(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    _expect(httpserver, {"message": f"Bad token {TOKEN}"}, 422)
    _expect(httpserver, {"message": f"Resource not accessible with {TOKEN}"}, 403)
    with _publisher(httpserver, virtual) as publisher:
        outcome = publisher.publish(_statuses(".#a", ".#b"))
    assert len(outcome.warnings) == 2
    for warning in outcome.warnings:
        assert TOKEN not in warning
        assert "***" in warning


def test_retry_after_beyond_the_deadline_is_not_waited_for(
    httpserver: HTTPServer, virtual: VirtualTime
) -> None:
    _expect(httpserver, {"message": "Too Many Requests"}, 429, {"Retry-After": "7"})
    with _publisher(httpserver, virtual, deadline_seconds=5, request_timeout=1) as publisher:
        started = virtual.clock()
        outcome = publisher.publish(_statuses(".#a"))
        elapsed = virtual.clock() - started
    assert virtual.sleeps == []
    assert elapsed < 1.0
    assert outcome.posted == []
    assert len(httpserver.log) == 1
    (warning,) = outcome.warnings
    assert "nix-cache-action / .#a" in warning
    assert "last answer 429" in warning
    assert "GitHub asked to wait 7 s, past the time allowed" in warning
    httpserver.check_assertions()


# --- a server that never answers ------------------------------------------------------------


@pytest.fixture
def hanging_server() -> Iterator[tuple[HTTPServer, list[float], threading.Event]]:
    """A threaded server whose handler holds every request until the test ends."""
    server = HTTPServer(threaded=True)
    arrivals: list[float] = []
    release = threading.Event()

    def hang(_request: Request) -> Response:
        arrivals.append(time.monotonic())
        release.wait(timeout=10)
        return Response(json.dumps(CREATED), status=201, content_type="application/json")

    server.expect_request(STATUSES_PATH, method="POST").respond_with_handler(hang)
    server.start()
    try:
        yield server, arrivals, release
    finally:
        release.set()
        server.clear()
        server.stop()


def test_a_hanging_server_is_given_up_on_within_the_deadline(
    hanging_server: tuple[HTTPServer, list[float], threading.Event], virtual: VirtualTime
) -> None:
    server, arrivals, _release = hanging_server
    with _publisher(server, virtual, deadline_seconds=3, request_timeout=1) as publisher:
        started = virtual.clock()
        outcome = publisher.publish(_statuses(".#a", ".#b"))
        elapsed = virtual.clock() - started
    # Attempt 1 times out after 1 s; the backoff is cut to what leaves room for one more
    # request (about 1 s); attempt 2 times out at about 3 s, leaving no room for a third
    # attempt, nor for .#b.
    assert len(arrivals) == 2
    assert elapsed <= 3 + 0.5
    assert outcome.posted == []
    gave_up, out_of_time = outcome.warnings
    assert "nix-cache-action / .#a" in gave_up
    assert "gave up after 2 attempt(s)" in gave_up
    assert "no answer within 1 s" in gave_up
    assert "nix-cache-action / .#b" in out_of_time
    assert "the 3 s allowed" in out_of_time
