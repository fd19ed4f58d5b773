"""The replay of the runner's rules (runner_commands.py) on hand-written lines, each rule once,
with what actions/runner's own tests and code say it does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.hostile.conftest import Hostile
    from tests.hostile.runner_commands import Runner, replay, split_lines
else:
    from runner_commands import Runner, replay, split_lines


def names(text: str) -> list[str]:
    return [c.key for c in Runner().feed(text).commands]


def test_v2_command_with_escaped_properties_and_data() -> None:
    (command,) = Runner().feed("::error title=a%3Ab%2Cc,file=x.nix::one%0Atwo %25 %3A\n").commands
    assert (command.key, command.form) == ("error", "v2")
    assert command.properties == {"title": "a:b,c", "file": "x.nix"}
    # Data unescapes only %0D, %0A and %25: `%3A` stays as it is.
    assert command.data == "one\ntwo % %3A"


@pytest.mark.parametrize("lead", [" ", "   ", "\t", "\u00a0", "\u2003", "\u3000", "\v"])
def test_v2_after_leading_whitespace_is_honoured(lead: str) -> None:
    assert names(f"{lead}::set-output name=x::y\n") == ["set-output"]


def test_not_whitespace_to_dotnet_is_not_trimmed() -> None:
    # Python calls U+001C whitespace; .NET's Char.IsWhiteSpace does not.
    assert names("\x1c::set-output name=x::y\n") == []


@pytest.mark.parametrize(
    "line",
    ["::nope::x", "::error", "text ::error::x", ":: error::x", "::::x", "#[error]x", "##[nope]x"],
)
def test_lines_that_are_no_command(line: str) -> None:
    assert names(line + "\n") == []


def test_legacy_form_anywhere_in_a_line() -> None:
    (command,) = Runner().feed("some text ##[set-output name=x;other=%3B]va%5Dl\n").commands
    assert (command.key, command.form, command.data) == ("set-output", "legacy", "va]l")
    assert command.properties == {"name": "x", "other": ";"}


def test_v2_is_tried_first_and_wins() -> None:
    (command,) = Runner().feed("::error::a ##[set-output name=x]y\n").commands
    assert (command.key, command.data) == ("error", "a ##[set-output name=x]y")


def test_legacy_is_tried_when_v2_fails() -> None:
    assert names("::nope::##[add-path]/evil\n") == ["add-path"]


def test_command_names_ignore_case() -> None:
    assert names("::ERROR::x\n::Set-Output name=x::y\n") == ["error", "set-output"]


def test_stop_commands_pause_until_the_token() -> None:
    text = (
        "::stop-commands::tok123\n"
        "::error::hidden\n"
        "##[error]hidden\n"
        "::stop-commands::other\n"
        "##[TOK123]\n"
        "::error::shown\n"
    )
    runner = Runner()
    result = runner.feed(text)
    assert [c.key for c in result.commands] == ["stop-commands", "tok123", "error"]
    assert [c.data for c in result.ignored] == ["hidden", "hidden", "other"]
    assert result.paused is None
    assert "tok123" not in runner.registered


def test_a_pause_never_resumed_is_reported() -> None:
    assert Runner().feed("::stop-commands::abcdef\n::error::x\n").paused == "abcdef"


@pytest.mark.parametrize("token", ["", "error", "set-output", "pause-logging", "PAUSE-LOGGING"])
def test_refused_stop_tokens(token: str) -> None:
    result = Runner().feed(f"::stop-commands::{token}\n::error::x\n")
    assert len(result.refused) == 1
    assert [c.key for c in result.commands] == ["error"]


def test_lines_end_at_cr_lf_and_crlf_only() -> None:
    assert split_lines("a\rb\nc\r\nd\x0be\x85f\u2028g\n") == ["a", "b", "c", "d\x0be\x85f\u2028g"]
    assert names("::notice::a\r::set-output name=x::y\n") == ["notice", "set-output"]


def test_add_mask_masks_the_value_and_each_line() -> None:
    result = Runner().feed(
        "before s3cret\n::add-mask::s3cret%0A  other-line  \nafter s3cret and other-line\n"
    )
    assert result.shown == ["before s3cret", "after *** and ***"]


def test_masks_apply_to_annotations_as_shown() -> None:
    result = Runner().feed("::add-mask::hush\n::warning title=t hush::says hush\n")
    assert result.shown == ["t ***", "says ***"]


def test_replay_reads_stderr_from_a_fresh_state_with_leading_masks() -> None:
    out, err = replay(
        "::add-mask::abcd1234\n::stop-commands::pausing1\nx\n::pausing1::\n",
        "::error::on stderr abcd1234\n",
    )
    assert out.paused is None
    # A pause on stdout does not hide what stderr prints (the interleaving is unknown).
    assert [c.key for c in err.commands] == ["error"]
    assert err.shown == ["on stderr ***"]


# --- the contract's own checks catch what they are for ---------------------------------------

CLEAN = (
    "::add-mask::s3cretvalue\n"
    "::stop-commands::nix-cache-action-0123456789abcdef\n"
    "::set-output name=x::PWNED\n"
    "::nix-cache-action-0123456789abcdef::\n"
    "::notice title=nix-cache-action%3A ok::fine, quoting ::set-output name=x::PWNED\n"
)


def test_the_checks_pass_a_clean_run(hostile: Hostile) -> None:
    run = hostile.fake_outcome(CLEAN)
    run.check_commands()
    run.check_secrets(["s3cretvalue"])
    run.check_bounded()


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        pytest.param("::set-output name=x::y\n", "", id="set-output"),
        pytest.param("note ##[error]PWNED\n", "", id="legacy"),
        pytest.param("::error::PWNED\n", "", id="annotation-from-attacker"),
        pytest.param("::stop-commands::PWNEDzzz\n::PWNEDzzz::\n", "", id="attacker-pause"),
        pytest.param("::stop-commands::mine1234\n", "", id="pause-left-open"),
        pytest.param("", "  ::add-path::/tmp\n", id="stderr"),
    ],
)
def test_the_checks_catch_injection(hostile: Hostile, stdout: str, stderr: str) -> None:
    with pytest.raises(AssertionError):
        hostile.fake_outcome(CLEAN + stdout, stderr).check_commands()


@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param("leak s3cretvalue\n::add-mask::s3cretvalue\n", id="before-the-mask"),
        pytest.param("::add-mask::other\nleak s3cretvalue\n", id="never-masked"),
        pytest.param(
            "::stop-commands::abcdefgh\n::add-mask::s3cretvalue\n::abcdefgh::\n",
            id="mask-paused",
        ),
    ],
)
def test_the_checks_catch_a_leak(hostile: Hostile, stdout: str) -> None:
    with pytest.raises(AssertionError):
        hostile.fake_outcome(stdout + "s3cretvalue\n").check_secrets(["s3cretvalue"])


def test_the_checks_catch_a_long_annotation(hostile: Hostile) -> None:
    with pytest.raises(pytest.fail.Exception):
        hostile.fake_outcome("::error::" + "x" * 9000 + "\n").check_bounded()
