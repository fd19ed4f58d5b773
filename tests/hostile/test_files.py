"""Files the tool writes in awkward places: a directory, a symlink, a device, a full disk, a path
under a regular file. The CLI refuses a directory before Nix runs; every other publisher fails
alone, with a ::warning (or a warning on stderr) naming what failed, the rest still written and
the exit status following the verdict. Devices stay devices; regular files are replaced
atomically."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.hostile.conftest import Hostile, Outcome


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(path.stat().st_mode)


OPTION_FILES = {"--report": "report.json", "--summary": "summary.md", "--log": "nix.log"}


def cli_with(hostile: Hostile, option: str, target: Path, *args: str) -> Outcome:
    """`build .#default` with `option` pointing at `target`, the other two in the usual place."""
    paths: dict[str, Any] = {"report": "auto", "summary": "auto", "log": "auto"}
    paths[option.removeprefix("--")] = target
    run = hostile.cli("build", ".#default", *args, **paths)
    if option == "--report":
        run.report_path = target
    return run


def warned(run: Outcome, *words: str) -> None:
    """A warning naming the file: a ::warning annotation from the action, stderr from the CLI."""
    text = run.annotation_text("warning") if run.kind == "action" else run.stderr
    assert any(w in text for w in words), f"no warning naming {words}: {text[-1500:]!r}"


# --- the CLI: a directory is refused before Nix runs ---------------------------------------------


@pytest.mark.parametrize("option", list(OPTION_FILES))
def test_cli_option_at_a_directory(hostile: Hostile, option: str) -> None:
    hostile.flake()
    directory = hostile.tmp / "a-directory"
    directory.mkdir()
    run = cli_with(hostile, option, directory)
    if option == "--report":
        run.report_path = None
    data = run.check(exit=2, report=option != "--report")
    assert option in run.stderr, run.tail()
    assert "directory" in run.stderr
    assert hostile.nix_calls("build") == [], "Nix ran before the bad option was refused"
    if data:
        assert data["verdict"] == "failed"
        assert option in data["stopped"]


@pytest.mark.parametrize("command", ["analyze", "merge"])
def test_cli_report_at_a_directory_for_other_commands(hostile: Hostile, command: str) -> None:
    directory = hostile.tmp / "a-directory"
    directory.mkdir()
    source = hostile.tmp / "input"
    source.write_text("{}", encoding="utf-8")
    run = hostile.cli(command, str(source), report=directory)
    run.report_path = None
    run.check(exit=2, report=False)
    assert "--report" in run.stderr, run.tail()


def test_cli_report_under_a_regular_file(hostile: Hostile) -> None:
    hostile.flake()
    blocker = hostile.tmp / "a-file"
    blocker.write_text("x", encoding="utf-8")
    run = cli_with(hostile, "--report", blocker / "report.json")
    run.report_path = None
    run.check(exit=2, report=False)
    assert "--report" in run.stderr
    assert hostile.nix_calls("build") == []


# --- the CLI: symlinks and devices ---------------------------------------------------------------


@pytest.mark.parametrize("option", list(OPTION_FILES))
def test_cli_option_at_a_symlink(hostile: Hostile, option: str) -> None:
    hostile.flake()
    real = hostile.tmp / "elsewhere" / OPTION_FILES[option]
    real.parent.mkdir()
    real.write_text("old", encoding="utf-8")
    link = hostile.tmp / f"link-{OPTION_FILES[option]}"
    link.symlink_to(real)
    run = cli_with(hostile, option, link)
    run.check(exit=0, verdict="ok")
    assert link.is_symlink(), "the symlink was replaced"
    assert real.is_file()
    assert real.read_text(encoding="utf-8") != "old", "not written through the link"


@pytest.mark.parametrize("option", list(OPTION_FILES))
def test_cli_option_at_a_null_device(hostile: Hostile, option: str) -> None:
    hostile.flake()
    device = hostile.device("null", "null")
    run = cli_with(hostile, option, device)
    run.check(exit=0, report=option != "--report")
    assert is_char_device(device), "the device was replaced"
    assert "warning" not in run.stderr.lower() or option != "--report"


@pytest.mark.parametrize("option", list(OPTION_FILES))
def test_cli_option_at_a_full_device(hostile: Hostile, option: str) -> None:
    hostile.flake()
    device = hostile.device("full", "full")
    run = cli_with(hostile, option, device)
    data = run.check(exit=0, report=option != "--report")
    assert is_char_device(device), "the device was replaced by a regular file"
    warned(run, str(device), "full")
    if option == "--log":
        assert any("log" in n for n in data["notes"]), f"no note about the log: {data['notes']}"


@pytest.mark.parametrize("option", ["--report", "--summary"])
def test_cli_regular_file_is_replaced_atomically(hostile: Hostile, option: str) -> None:
    hostile.flake()
    target = hostile.tmp / "out" / OPTION_FILES[option]
    target.parent.mkdir()
    target.write_text("the old content\n", encoding="utf-8")
    with target.open(encoding="utf-8") as old:
        run = cli_with(hostile, option, target)
        run.check(exit=0, verdict="ok")
        # Renamed over, not rewritten in place: the old file is untouched for its readers.
        assert old.read() == "the old content\n", "the file was rewritten in place"
    assert target.read_text(encoding="utf-8") != "the old content\n"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name], "left-over files"


# --- the action: each publisher alone ------------------------------------------------------------


def _action_with(hostile: Hostile, installables: str = ".#default", **env: str) -> Outcome:
    hostile.flake()
    return hostile.action(installables, env=env)


def test_outputs_file_is_a_directory(hostile: Hostile) -> None:
    (hostile.tmp / "out-dir").mkdir()
    run = _action_with(hostile, GITHUB_OUTPUT=str(hostile.tmp / "out-dir"))
    run.check(exit=0, verdict="ok", outputs=False)
    warned(run, "GITHUB_OUTPUT", "outputs")


def test_outputs_file_under_a_regular_file(hostile: Hostile) -> None:
    blocker = hostile.tmp / "a-file"
    blocker.write_text("x", encoding="utf-8")
    run = _action_with(hostile, GITHUB_OUTPUT=str(blocker / "output"))
    run.check(exit=0, verdict="ok", outputs=False)
    warned(run, "GITHUB_OUTPUT", "outputs")


def test_outputs_file_on_a_full_disk(hostile: Hostile) -> None:
    device = hostile.device("full", "full")
    run = _action_with(hostile, GITHUB_OUTPUT=str(device))
    run.check(exit=0, verdict="ok", outputs=False)
    warned(run, "GITHUB_OUTPUT", "outputs")
    assert is_char_device(device)


def test_outputs_file_is_a_symlink(hostile: Hostile) -> None:
    real = hostile.tmp / "real-output"
    link = hostile.tmp / "output-link"
    link.symlink_to(real)
    run = _action_with(hostile, GITHUB_OUTPUT=str(link))
    run.check(exit=0, verdict="ok")
    assert link.is_symlink()
    assert "report<<" in real.read_text(encoding="utf-8")


def test_summary_file_is_a_directory(hostile: Hostile) -> None:
    (hostile.tmp / "summary-dir").mkdir()
    run = _action_with(hostile, GITHUB_STEP_SUMMARY=str(hostile.tmp / "summary-dir"))
    run.check(exit=0, verdict="ok", summary=False)
    warned(run, "GITHUB_STEP_SUMMARY", "summary")


def test_summary_file_on_a_full_disk(hostile: Hostile) -> None:
    device = hostile.device("full", "full")
    run = _action_with(hostile, GITHUB_STEP_SUMMARY=str(device))
    run.check(exit=0, verdict="ok", summary=False)
    warned(run, "GITHUB_STEP_SUMMARY", "summary")
    assert is_char_device(device)


def test_summary_file_is_a_null_device(hostile: Hostile) -> None:
    device = hostile.device("null", "null")
    run = _action_with(hostile, GITHUB_STEP_SUMMARY=str(device))
    run.check(exit=0, verdict="ok", summary=False)
    assert is_char_device(device)
    assert not run.annotations("warning"), run.annotation_text("warning")


def test_summary_file_nearly_full_stays_under_githubs_limit(hostile: Hostile) -> None:
    limit = 1024 * 1024
    hostile.step_summary.write_bytes(b"x" * (limit - 200))
    run = _action_with(hostile)
    run.check(exit=0, verdict="ok")
    assert hostile.step_summary.stat().st_size <= limit, hostile.step_summary.stat().st_size


def test_runner_temp_is_a_regular_file(hostile: Hostile) -> None:
    blocker = hostile.tmp / "runner-temp-file"
    blocker.write_text("x", encoding="utf-8")
    run = _action_with(hostile, RUNNER_TEMP=str(blocker))
    run.check(exit=0, report=False)
    warned(run, "report")
    assert run.outputs.get("built") == "1", run.outputs


def test_report_path_is_a_directory(hostile: Hostile) -> None:
    hostile.action_report.mkdir(parents=True)
    run = _action_with(hostile)
    run.check(exit=0, report=False)
    warned(run, "report")
    assert run.outputs.get("built") == "1", run.outputs
    assert "nix-cache-action" in run.summary


def test_raw_log_on_a_full_disk(hostile: Hostile) -> None:
    hostile.action_dir.mkdir(parents=True)
    full = hostile.device("full", "full")
    (hostile.action_dir / "nix.log").symlink_to(full)
    run = _action_with(hostile)
    data = run.check(exit=0, verdict="ok")
    assert data["installables"][0]["status"] == "built"
    assert any("log" in n for n in data["notes"]), f"no note about the log: {data['notes']}"
    assert is_char_device(full)


def test_raw_log_is_a_directory(hostile: Hostile) -> None:
    (hostile.action_dir / "nix.log").mkdir(parents=True)
    run = _action_with(hostile)
    data = run.check(exit=0, verdict="ok")
    assert any("log" in n for n in data["notes"]), data["notes"]


def test_failed_build_with_outputs_unwritable_still_fails(hostile: Hostile) -> None:
    (hostile.tmp / "out-dir").mkdir()
    run = _action_with(hostile, ".#fails", GITHUB_OUTPUT=str(hostile.tmp / "out-dir"))
    run.check(exit=1, verdict="failed", outputs=False)
    warned(run, "GITHUB_OUTPUT", "outputs")


def test_summary_and_outputs_both_unwritable(hostile: Hostile) -> None:
    (hostile.tmp / "d1").mkdir()
    (hostile.tmp / "d2").mkdir()
    run = _action_with(
        hostile, GITHUB_OUTPUT=str(hostile.tmp / "d1"), GITHUB_STEP_SUMMARY=str(hostile.tmp / "d2")
    )
    run.check(exit=0, verdict="ok", outputs=False, summary=False)
    warned(run, "GITHUB_OUTPUT", "outputs")
    warned(run, "GITHUB_STEP_SUMMARY", "summary")
