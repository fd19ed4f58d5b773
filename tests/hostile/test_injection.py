"""Attacker text everywhere the tool repeats outside text: build logs, Nix's messages, traces,
evaluation errors, installables, paths and file names. None of it may become a command the
runner honours, and every annotation the tool means must still arrive."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

# pytest puts this folder on sys.path (tests are not a package); mypy names it from the root.
if TYPE_CHECKING:
    from tests.hostile.conftest import Hostile
    from tests.hostile.hostile_payloads import PAYLOADS, WORD_PAYLOADS
else:
    from hostile_payloads import PAYLOADS, WORD_PAYLOADS


def printing(payloads: list[str], *, fail: bool) -> str:
    """A builder script that prints `payloads` on stderr and stdout, then fails or succeeds."""
    body = "\n".join(payloads)
    script = f"cat >&2 <<'NCA_END'\n{body}\nNCA_END\ncat <<'NCA_END'\n{body}\nNCA_END\n"
    return script + ("exit 1\n" if fail else "echo ok > $out\n")


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_build_log_of_a_failed_build(hostile: Hostile, payload: str) -> None:
    hostile.flake({"hostile": printing([payload], fail=True)})
    run = hostile.action(".#hostile")

    def failure_is_annotated(_: object) -> None:
        titles = [c.title for c in run.annotations("error")]
        assert ".#hostile" in titles, f"no ::error for .#hostile among {titles}"

    run.check(exit=1, verdict="failed", also=[failure_is_annotated])


def test_build_log_of_a_successful_build(hostile: Hostile) -> None:
    hostile.flake({"hostile": printing(list(PAYLOADS.values()), fail=False)})
    run = hostile.action(".#hostile")
    run.check(exit=0, verdict="ok")


def test_nix_messages_quoting_attacker_text(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode="inject")
    run.check(exit=0, verdict="ok")


def test_nix_errors_quoting_attacker_text(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode="inject-fail")
    run.check(exit=1, verdict="failed")


def test_cli_build_log_of_a_failed_build(hostile: Hostile) -> None:
    hostile.flake({"hostile": printing(list(PAYLOADS.values()), fail=True)})
    run = hostile.cli("build", ".#hostile")
    run.check(exit=1, verdict="failed")


def test_cli_nix_errors_quoting_attacker_text(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.cli("build", ".#default", mode="inject-fail")
    run.check(exit=1, verdict="failed")


@pytest.mark.parametrize("payload", list(WORD_PAYLOADS.values()), ids=list(WORD_PAYLOADS))
def test_installable_carrying_a_command(hostile: Hostile, payload: str) -> None:
    hostile.flake()
    run = hostile.action(f".#default .#x{payload}")
    # Refused as an input or reported as an evaluation error: either way no command, and the
    # error about it arrives.
    run.check(exit=1, verdict="failed", verdict_annotation=False)
    assert run.annotations("error"), run.tail()


def test_cli_installable_with_a_carriage_return(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.cli("build", ".#default", ".#x\r::set-output name=x::PWNED")
    run.check(exit={1, 2}, verdict="failed")


def test_runner_temp_path_with_a_legacy_command(hostile: Hostile) -> None:
    hostile.flake()
    temp = hostile.tmp / "runner-temp-##[error]PWNED"
    temp.mkdir()
    run = hostile.action(".#default", env={"RUNNER_TEMP": str(temp)})
    run.check(exit=0, verdict="ok")


def test_working_directory_with_a_legacy_command(hostile: Hostile) -> None:
    name = "##[set-output name=x;]PWNED"
    hostile.flake(where=hostile.workspace / name)
    run = hostile.action(".#fails", inputs={"working-directory": name})
    run.check(exit=1, verdict="failed")


def test_flake_path_with_a_carriage_return(hostile: Hostile) -> None:
    name = "w\r::set-output name=x::PWNED"
    hostile.flake(where=hostile.workspace / name)
    run = hostile.cli("build", "-C", str(hostile.workspace / name), ".#fails", ".#missing")
    run.check(exit=1, verdict="failed")


def test_trace_quoting_attacker_text(hostile: Hostile) -> None:
    text = hostile.nix_string("::set-output name=x::PWNED\n##[error]PWNED\n   ::warning::PWNED")
    hostile.flake(extra=f'      traced = builtins.trace {text} (mk "traced" ./scripts/s0.sh);')
    run = hostile.action(".#traced")
    run.check(exit=0, verdict="ok")


def test_evaluation_error_quoting_attacker_text(hostile: Hostile) -> None:
    text = hostile.nix_string(
        "##[error]PWNED\n::set-output name=x::PWNED\n::stop-commands::PWNEDzzz"
    )
    hostile.flake(extra=f"      evalfail = throw {text};")
    run = hostile.action(".#default .#evalfail")

    def error_names_it(_: object) -> None:
        titles = [c.title for c in run.annotations("error")]
        assert ".#evalfail" in titles, f"no ::error for .#evalfail among {titles}"

    run.check(exit=1, verdict="failed", also=[error_names_it])


def test_payloads_with_annotations_off(hostile: Hostile) -> None:
    hostile.flake({"hostile": printing(list(PAYLOADS.values()), fail=True)})
    run = hostile.action(".#hostile", inputs={"annotations": "false"})
    run.check(exit=1, verdict="failed", verdict_annotation=False)


def test_differing_files_with_hostile_names(hostile: Hostile) -> None:
    script = (
        "mkdir $out\n"
        "for n in '##[error]PWNED' '::set-output name=x::PWNED' \"$(printf 'a\\n::error::PWNED')\";"
        ' do date +%s%N > "$out/$n"; done\n'
    )
    hostile.flake({"hostile": script})
    run = hostile.action(".#hostile", inputs={"reproducibility": "warn"})
    data = run.check(exit=0, verdict="warning")
    (check,) = [c for c in data["checks"] if c["installable"] == ".#hostile"]
    assert check["verdict"] == "differs"


def test_runner_debug_log_of_a_hostile_installable(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default .#x##[error]PWNED", env={"RUNNER_DEBUG": "1"})
    # RUNNER_DEBUG=1 logs every Nix command: the logged argv must not become a command either.
    run.check(exit=1, verdict="failed", verdict_annotation=False)


def test_cli_debug_log_of_a_hostile_installable(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.cli("build", "--debug", ".#default", ".#x##[add-mask]PWNED")
    run.check(exit=1, verdict="failed")
