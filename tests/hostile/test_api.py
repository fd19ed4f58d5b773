"""Commit statuses against a local API stand-in that refuses, lies, echoes the token back or
quotes attacker text; event payloads that are not what they should be. A status never costs a
verdict: a ::warning names what failed, the exit status follows the build, nothing leaks and
nothing is injected; contexts stay unique per installable."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.hostile.conftest import Hostile, Outcome, StatusAPI
    from tests.hostile.hostile_payloads import PAYLOADS
else:
    from hostile_payloads import PAYLOADS

CONTEXT_PREFIX = "nix-cache-action / "
TOKEN_VARIABLE = "INPUT_GITHUB-TOKEN"  # noqa: S105 - a variable name, not a token


def warned_about_statuses(run: Outcome) -> None:
    text = run.annotation_text("warning") if run.annotations_on else run.stdout
    assert "status" in text.lower(), f"no warning about the statuses: {text[-1500:]!r}"


def test_long_installables_get_unique_contexts(hostile: Hostile, status_api: StatusAPI) -> None:
    left, right = "a" * 90, "b" * 90
    names = [f"p{left}{n}{right}" for n in ("1", "2")]
    hostile.flake(dict.fromkeys(names, "echo long > $out\n"))
    run = hostile.action(" ".join(f".#{n}" for n in names), api=status_api)
    run.check(exit=0, verdict="ok")
    contexts = status_api.contexts
    assert len(contexts) == 2, contexts
    assert len(set(contexts)) == 2, f"two installables, one context: {contexts}"
    for context in contexts:
        assert context.startswith(CONTEXT_PREFIX), context
        assert len(context.removeprefix(CONTEXT_PREFIX)) <= 100, len(context)


def test_refused_token_echoed_back_is_never_shown(hostile: Hostile, status_api: StatusAPI) -> None:
    token = hostile.action_env(None)[TOKEN_VARIABLE]
    status_api.answer(401, {"message": f"Bad credentials: {token}", "token": token})
    hostile.flake()
    run = hostile.action(".#default", api=status_api)
    run.check(exit=0, verdict="ok", secrets=[token])
    warned_about_statuses(run)
    assert status_api.requests, "no status was even tried"


@pytest.mark.parametrize("annotations", ["true", "false"])
def test_refusal_quoting_attacker_text(
    hostile: Hostile, status_api: StatusAPI, annotations: str
) -> None:
    hostile_text = "\n".join(PAYLOADS.values())
    status_api.answer(
        422,
        {
            "message": hostile_text,
            "errors": [{"message": p} for p in PAYLOADS.values()],
        },
    )
    hostile.flake()
    run = hostile.action(".#default", api=status_api, inputs={"annotations": annotations})
    run.check(exit=0, verdict="ok", verdict_annotation=annotations == "true")
    warned_about_statuses(run)


def test_refusal_of_10_mb(hostile: Hostile, status_api: StatusAPI) -> None:
    status_api.answer(422, {"message": "m" * 10_000_000})
    hostile.flake()
    run = hostile.action(".#default", api=status_api)
    run.check(exit=0, verdict="ok")
    warned_about_statuses(run)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(201, b"", id="created-empty"),
        pytest.param(403, b'{"message": "Resource not accessible by integration"}', id="403"),
        pytest.param(404, b'{"message": "Not Found"}', id="404"),
    ],
)
def test_status_api_failing(
    hostile: Hostile, status_api: StatusAPI, status: int, body: bytes
) -> None:
    status_api.answer(status, body, content_type="application/json")
    hostile.flake()
    run = hostile.action(".#default", api=status_api)
    run.check(exit=0, verdict="ok")
    warned_about_statuses(run)


def test_status_api_failing_on_a_failed_build(hostile: Hostile, status_api: StatusAPI) -> None:
    status_api.answer(500, {"message": "Server Error"})
    status_api.answer(403, {"message": "Resource not accessible by integration"})
    hostile.flake()
    run = hostile.action(".#fails", api=status_api)
    run.check(exit=1, verdict="failed")
    warned_about_statuses(run)


def test_redirect_loop(hostile: Hostile, status_api: StatusAPI) -> None:
    status_api.answer(307, b"")
    status_api.headers["Location"] = f"{status_api.url}/repos/octo/hostile/statuses/loop"
    hostile.flake()
    run = hostile.action(".#default", api=status_api)
    run.check(exit=0, verdict="ok")
    warned_about_statuses(run)


@pytest.mark.parametrize(
    "url",
    ["::set-output name=x::PWNED", "##[error]PWNED", "ftp://127.0.0.1:9", "http://[::1"],
)
def test_api_url_that_is_not_one(hostile: Hostile, url: str) -> None:
    hostile.flake()
    run = hostile.action(".#default", inputs={"status-checks": "true"}, env={"GITHUB_API_URL": url})
    run.check(exit=0, verdict="ok")
    warned_about_statuses(run)


def test_installables_that_carry_commands(hostile: Hostile, status_api: StatusAPI) -> None:
    hostile.flake()
    run = hostile.action(".#default .#x##[stop-commands]PWNEDzzz .#y##[error]PWNED", api=status_api)
    # Either refused as an input or reported per installable: nothing injected, nothing lost.
    run.check(exit=1, verdict="failed", verdict_annotation=False)
    assert run.annotations("error"), run.tail()


def test_token_with_a_newline(hostile: Hostile, status_api: StatusAPI) -> None:
    secret = "ghp_" + "NewlineToken0123456789abcdefABCDEF"
    hostile.flake()
    run = hostile.action(
        ".#default",
        api=status_api,
        env={TOKEN_VARIABLE: f"{secret}\n::set-output name=x::PWNED"},
    )
    run.check(exit=0, verdict="ok", secrets=[secret])


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[]", id="list"),
        pytest.param(b'{"pull_request": {"head": {"sha": 5}}}', id="sha-number"),
        pytest.param(b"\xff\xfe", id="bytes"),
    ],
)
def test_pull_request_event_payload_broken(
    hostile: Hostile, status_api: StatusAPI, payload: bytes
) -> None:
    event = hostile.tmp / "event.json"
    event.write_bytes(payload)
    hostile.flake()
    run = hostile.action(
        ".#default",
        api=status_api,
        env={"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)},
    )
    run.check(exit=0, verdict="ok")
    warned_about_statuses(run)
    assert status_api.contexts == [], "a status went to a commit nobody named"


def test_pull_request_event_payload_is_a_directory(hostile: Hostile, status_api: StatusAPI) -> None:
    hostile.flake()
    run = hostile.action(
        ".#default",
        api=status_api,
        env={"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(hostile.tmp)},
    )
    run.check(exit=0, verdict="ok")
    warned_about_statuses(run)


def test_statuses_posted_carry_no_secret(hostile: Hostile, status_api: StatusAPI) -> None:
    token = hostile.action_env(None)[TOKEN_VARIABLE]
    hostile.flake()
    run = hostile.action(".#default .#second", api=status_api)
    run.check(exit=0, verdict="ok", secrets=[token])
    for request in status_api.requests:
        body = json.loads(request["body"])
        assert token not in json.dumps(body)
        assert len(body["description"]) <= 140
