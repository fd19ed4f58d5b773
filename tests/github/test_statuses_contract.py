"""The real StatusPublisher against GitHub's own OpenAPI description, served by Prism.

Prism checks every request against the description and answers 422 to one that breaks it, so
these tests fail if we send GitHub something it would refuse. One test sends a broken request on
purpose, to show that they can fail.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import pytest

import github
from nix_cache_action import records
from nix_cache_action.github.statuses import StatusPublisher
from nix_cache_action.render.statuses import FLAKE_CONTEXT, flake_status, status_for
from nix_cache_action.report import Installable, LegResult, Report
from nix_cache_action.settings import GitHubContext

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.github

TOKEN = "ghs_" + "C0ntr4ctT3stT0k3nN0tR34l0123456789ab"
REPOSITORY = "octo-org/hello-flake"
SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
STATUSES_PATH = f"/repos/{REPOSITORY}/statuses/{SHA}"
RUN_URL = "https://github.com/octo-org/hello-flake/actions/runs/1"


@dataclasses.dataclass(frozen=True)
class Exchange:
    verb: str
    path: str
    request_headers: str
    status: int


@pytest.fixture
def publisher(prism_url: str) -> Iterator[StatusPublisher]:
    with StatusPublisher(TOKEN, REPOSITORY, prism_url, SHA, write_interval=0.0) as publisher:
        yield publisher


@pytest.fixture
def exchanges(caplog: pytest.LogCaptureFixture) -> Iterator[list[Exchange]]:
    """What PyGithub's debug log saw: each request and the status code it got back.

    PyGithub logs every request at DEBUG with the Authorization header masked; reading that log
    is how these tests see status codes that PyGithub does not hand back on success.
    """
    caplog.set_level(logging.DEBUG, logger="github")
    seen: list[Exchange] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            args = record.args
            if record.name == "github.Requester" and isinstance(args, tuple) and len(args) == 9:
                seen.append(Exchange(str(args[0]), str(args[3]), str(args[4]), int(str(args[6]))))

    handler = Collect()
    logging.getLogger("github.Requester").addHandler(handler)
    yield seen
    logging.getLogger("github.Requester").removeHandler(handler)


def test_statuses_for_a_few_installables_are_accepted(
    publisher: StatusPublisher, exchanges: list[Exchange], caplog: pytest.LogCaptureFixture
) -> None:
    statuses = [
        status_for(".#hello", verdict="reproducible", hit_rate=1.0, seconds=3.2, failed=False),
        status_for(
            "github:octo-org/hello-flake#packages.x86_64-linux.default",
            verdict="differs",
            hit_rate=0.25,
            seconds=754,
            failed=False,
        ),
        status_for(
            ".#checks.x86_64-linux.fmt",
            verdict="not-checked",
            hit_rate=None,
            seconds=None,
            failed=False,
        ),
        status_for(".#broken", verdict="reproducible", hit_rate=0.0, seconds=1.0, failed=True),
        records.replace(
            status_for(
                ".#" + "long-" * 60, verdict="reproducible", hit_rate=0.5, seconds=42, failed=False
            ),
            target_url=RUN_URL,
        ),
    ]
    outcome = publisher.publish(statuses)
    assert outcome.warnings == []
    assert outcome.posted == [s.context for s in statuses]
    # One POST per status, no GET of the repository or commit, and every one answered 201.
    assert [(e.verb, e.path, e.status) for e in exchanges] == [("POST", STATUSES_PATH, 201)] * len(
        statuses
    )
    assert all(TOKEN not in e.request_headers for e in exchanges)
    assert TOKEN not in caplog.text


def test_the_aggregates_one_status_for_the_flake_is_accepted(
    publisher: StatusPublisher, exchanges: list[Exchange]
) -> None:
    """The aggregate's status: a failure naming the legs that never reported, with the run."""
    report = Report(
        installables=(Installable(name=".#packages.x86_64-linux.hello", status="error"),),
        legs=(
            LegResult("x86_64-linux-1", "x86_64-linux", "ubuntu-latest", "ok", seconds=812.0),
            LegResult("aarch64-linux-1", "aarch64-linux", "ubuntu-24.04-arm", "missing"),
        ),
        seconds=812.0,
    )
    context = GitHubContext(repository=REPOSITORY, run_id="1")
    (status,) = flake_status(report, context)
    assert (status.context, status.state, status.target_url) == (FLAKE_CONTEXT, "failure", RUN_URL)
    assert "1 never reported" in status.description
    outcome = publisher.publish([status])
    assert (outcome.warnings, outcome.posted) == ([], [FLAKE_CONTEXT])
    assert [(e.verb, e.path, e.status) for e in exchanges] == [("POST", STATUSES_PATH, 201)]


def test_a_request_that_breaks_githubs_schema_is_refused(
    publisher: StatusPublisher, exchanges: list[Exchange]
) -> None:
    # The low-level path sends what it is given: a state GitHub does not have must meet 422,
    # or the test above could not catch a request we build wrongly.
    with pytest.raises(github.GithubException) as refused:
        publisher._send(
            state="passed", context="nix-cache-action / .#hello", description="x", target_url=None
        )
    assert refused.value.status == 422
    assert "state" in str(refused.value.data)
    assert [(e.verb, e.path, e.status) for e in exchanges] == [("POST", STATUSES_PATH, 422)]
    # And the same path with a valid state is accepted.
    publisher._send(
        state="success", context="nix-cache-action / .#hello", description="x", target_url=None
    )
    assert exchanges[-1].status == 201
