"""Bad action inputs and bad command lines: one clear error naming what is wrong, the documented
exit status, and a report that says why, with nothing built and nothing injected."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.hostile.conftest import Hostile

TOKEN_VARIABLE = "INPUT_GITHUB-TOKEN"  # noqa: S105 - a variable name, not a token


def _token(hostile: Hostile) -> str:
    return hostile.action_env(None)[TOKEN_VARIABLE]


# --- the action ----------------------------------------------------------------------------------

BAD_INPUTS = [
    pytest.param("reproducibility", {"reproducibility": "maybe"}, id="reproducibility-maybe"),
    pytest.param(
        "reproducibility",
        {"reproducibility": "maybe\n::set-output name=x::PWNED"},
        id="reproducibility-injected",
    ),
    pytest.param("deep-check", {"deep-check": "yes"}, id="deep-check-yes"),
    pytest.param("status-checks", {"status-checks": "sometimes"}, id="status-checks"),
    pytest.param("annotations", {"annotations": "##[error]PWNED"}, id="annotations-legacy"),
    pytest.param(
        "installables", {"installables": ".#default\n::set-output name=x::PWNED"}, id="newline-v2"
    ),
    pytest.param(
        "installables", {"installables": ".#default\n##[set-output name=x;]PWNED"}, id="legacy"
    ),
    pytest.param(
        "installables", {"installables": ".#default\r\n::stop-commands::PWNEDzzz"}, id="crlf-stop"
    ),
    pytest.param("installables", {"installables": " \n\t \n"}, id="only-whitespace"),
    pytest.param("installables", {"installables": ".#default --impure"}, id="nix-option"),
    pytest.param("working-directory", {"working-directory": "../outside"}, id="outside"),
    pytest.param("working-directory", {"working-directory": "missing"}, id="missing"),
    pytest.param("working-directory", {"working-directory": "flake.nix"}, id="a-file"),
    pytest.param("working-directory", {"working-directory": "link-out"}, id="link-out"),
    pytest.param(
        "working-directory",
        {"working-directory": "sub\n::set-output name=x::PWNED"},
        id="newline-in-path",
    ),
]


@pytest.mark.parametrize(("name", "inputs"), BAD_INPUTS)
def test_bad_action_input(hostile: Hostile, name: str, inputs: dict[str, str]) -> None:
    hostile.flake()
    (hostile.tmp / "outside").mkdir()
    (hostile.workspace / "link-out").symlink_to(hostile.tmp / "outside")
    (hostile.workspace / "sub").mkdir()
    given = dict(inputs)
    installables = given.pop("installables", ".#default")
    run = hostile.action(installables, inputs=given)

    def nothing_built(_: object) -> None:
        # A bad input is refused before Nix runs.
        assert hostile.nix_calls("build") == [], "Nix built despite the bad input"

    run.check_bad_input(name, secrets=[_token(hostile)], also=[nothing_built])


def test_bad_repository_still_reports_under_runner_temp(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(env={"GITHUB_REPOSITORY": "not-a-repository"})

    def not_in_tmpdir(_: object) -> None:
        assert not (hostile.tmpdir / "nix-cache-action").exists(), "the report went to TMPDIR"

    # The context itself is in doubt: the report is what must be there, under RUNNER_TEMP.
    run.check_bad_input("GITHUB_REPOSITORY", outputs=False, summary=False, also=[not_in_tmpdir])


def test_bad_input_with_annotations_off_still_says_the_error(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(inputs={"annotations": "false", "reproducibility": "sometimes"})
    run.check_bad_input("reproducibility")


# --- the CLI -------------------------------------------------------------------------------------


def _cli_refused(hostile: Hostile, *args: str, named: str, exit_status: int = 2) -> None:
    report = hostile.cli_out / "r.json"
    run = hostile.cli(*args, report=None, summary=None, log=None, nix=False)
    data = run.check(exit=exit_status, verdict="failed", stopped=True)
    assert run.report_path is None or run.report_path == report
    assert named in run.stderr, run.tail()
    assert named in data["stopped"] or any(named in e for e in data["errors"]), data


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["build", "--reproducability", "warn"], "--reproducability", id="misspelt"),
        pytest.param(["build", "--reproducibility", "maybe"], "maybe", id="bad-choice"),
        pytest.param(["build", "--deep=yes"], "--deep", id="flag-with-value"),
        pytest.param(["analyze", "--timing", "sometimes"], "sometimes", id="analyze-timing"),
        pytest.param(["merge"], "reports", id="merge-nothing"),
        pytest.param(["analyze"], "log", id="analyze-nothing"),
    ],
)
def test_cli_bad_argument_still_writes_the_report(
    hostile: Hostile, args: list[str], named: str
) -> None:
    report = hostile.cli_out / "r.json"
    run = hostile.cli(
        *args, "--report", str(report), report=None, summary=None, log=None, nix=False
    )
    run.report_path = report
    data = run.check(exit=2, verdict="failed", stopped=True)
    assert named in run.stderr, run.tail()
    assert named in data["stopped"], data["stopped"]


def test_cli_bad_argument_before_report_still_writes_it(hostile: Hostile) -> None:
    report = hostile.cli_out / "r.json"
    run = hostile.cli(
        "build", f"--report={report}", "--reproducibility", report=None, summary=None, log=None
    )
    run.report_path = report
    data = run.check(exit=2, verdict="failed", stopped=True)
    assert "--reproducibility" in data["stopped"]


@pytest.mark.parametrize("option", ["--impure", "-L", "--option"])
def test_cli_nix_option_as_installable_is_refused(hostile: Hostile, option: str) -> None:
    hostile.flake()
    run = hostile.cli("build", "--", option, ".#default")
    data = run.check(exit=2, verdict="failed", stopped=True)
    assert option in data["stopped"], data["stopped"]
    assert "installable" in data["stopped"]
    assert option in run.stderr
    assert hostile.nix_calls("build") == [], "Nix ran with the option"


def test_cli_analyze_with_stdin_closed(hostile: Hostile) -> None:
    def close_stdin() -> None:
        os.close(0)

    run = hostile.cli("analyze", "-", stdin=None, preexec_fn=close_stdin)
    data = run.check(exit=2, verdict="failed", stopped=True)
    assert "standard input" in data["stopped"]
    assert "standard input" in run.stderr
    assert run.stderr.count("\n") <= 10, "a clear error, not a wall of text"


@pytest.mark.parametrize(
    ("args", "named", "status"),
    [
        pytest.param(["analyze", "/nonexistent/nix.log"], "/nonexistent/nix.log", 2, id="no-log"),
        pytest.param(["build", "-C", "/nonexistent/dir"], "/nonexistent/dir", 2, id="no-dir"),
        pytest.param(["build", "--nix", "/nonexistent/nix"], "/nonexistent/nix", 1, id="no-nix"),
    ],
)
def test_cli_missing_paths(hostile: Hostile, args: list[str], named: str, status: int) -> None:
    run = hostile.cli(*args, nix=False)
    data = run.check(exit=status, verdict="failed", stopped=True)
    assert named in data["stopped"], data["stopped"]
    assert named in run.stderr


def test_cli_nix_that_is_a_directory(hostile: Hostile, tmp_path: Path) -> None:
    run = hostile.cli("build", "--nix", str(tmp_path), nix=False)
    data = run.check(exit=1, verdict="failed", stopped=True)
    assert str(tmp_path) in data["stopped"]


# --- secrets in the inputs and the configuration -------------------------------------------------

GHP = "ghp_" + "S3cretAccessTokenValue0123456789abcd"
NETRC = "/run/secrets/netrc-Sup3rS3cretPath"
UPLOAD = "tok_" + "UploadTokenValue0123456789"
SIGNING = "key_" + "SigningKeyValue0123456789"


def _with_conf(conf: str) -> dict[str, str]:
    """extra-conf as the composite gives it with install-nix: false: the input, and NIX_CONFIG."""
    return {"INPUT_EXTRA-CONF": conf, "NIX_CONFIG": conf}


@pytest.mark.parametrize(
    ("conf", "secrets"),
    [
        pytest.param(f"access-tokens = github.com={GHP}\n", [GHP], id="access-tokens"),
        pytest.param(f"netrc-file = {NETRC}\n", [NETRC], id="netrc-file"),
        pytest.param(
            f"my-upload-token = {UPLOAD}\nsigning-key = {SIGNING}\n",
            [UPLOAD, SIGNING],
            id="token-and-key",
        ),
    ],
)
def test_secrets_in_extra_conf_are_masked_first(
    hostile: Hostile, conf: str, secrets: list[str]
) -> None:
    hostile.flake()
    run = hostile.action(".#default", env=_with_conf(conf))
    run.check(exit=0, verdict="ok", secrets=[*secrets, _token(hostile)])


def test_malformed_secret_line_that_nix_quotes(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default", env=_with_conf(f"access-tokens github.com={GHP}\n"))
    data = run.check(exit=1, verdict="failed", stopped=True, secrets=[GHP, _token(hostile)])
    assert "***" in " ".join([data["stopped"], *data["errors"]]), "the quote is not redacted"


def test_nix_quoting_its_configuration_back(hostile: Hostile) -> None:
    hostile.flake()
    conf = f"access-tokens = github.com={GHP}\nnetrc-file = {NETRC}\n"
    run = hostile.action(".#default", env=_with_conf(conf), mode="quote-config")
    data = run.check(exit=1, verdict="failed", secrets=[GHP, NETRC])
    assert "***" in " ".join(data["errors"]), data["errors"]


def test_secrets_stay_hidden_with_runner_debug(hostile: Hostile) -> None:
    hostile.flake()
    env = {**_with_conf(f"access-tokens github.com={GHP}\n"), "RUNNER_DEBUG": "1"}
    run = hostile.action(".#default", env=env)
    run.check(exit=1, verdict="failed", stopped=True, secrets=[GHP, _token(hostile)])


def test_cli_redacts_secrets_from_report_and_summary(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.cli("build", ".#default", env={"NIX_CONFIG": f"access-tokens github.com={GHP}\n"})
    run.check(exit=1, verdict="failed", stopped=True, secrets=[GHP])
