"""start.py: a `build` asks Nix its version before the CLI is imported, from the
executable and directory it reads off the command line; cli.main asks again where that reading
was not the whole story."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import NoReturn

import pytest
from tests.support.cli import cli_argv, cli_environ, run_cli

from nix_cache_action import start
from nix_cache_action.cli import _parser
from nix_cache_action.engine import BuildOptions, run_job
from nix_cache_action.nix.probe import build_argv
from nix_cache_action.nix.process import Subprocesses
from nix_cache_action.report import MODES as REPORT_MODES
from nix_cache_action.start import DEFAULT_LOG, MODES, early_build, early_probe


@pytest.mark.parametrize(
    ("argv", "executable", "directory"),
    [
        (["build"], "nix", None),
        (["build", ".#a", "--nix", "/opt/nix"], "/opt/nix", None),
        (["build", "--nix=/opt/nix", "-C", "{tmp}"], "/opt/nix", "{tmp}"),
        (["build", "-C{tmp}"], "nix", "{tmp}"),
        (["build", "--directory={tmp}", "--", "--nix"], "nix", "{tmp}"),
    ],
)
def test_a_build_starts_the_probe_of_the_nix_and_directory_it_names(
    tmp_path: Path, argv: list[str], executable: str, directory: str | None
) -> None:
    words = [w.replace("{tmp}", str(tmp_path)) for w in argv]
    # A Nix that does not exist: the probe starts nothing, and says so when asked.
    probe = early_probe([w.replace("/opt/nix", str(tmp_path / "no-nix")) for w in words])
    assert probe is not None
    assert probe.executable == executable.replace("/opt/nix", str(tmp_path / "no-nix"))
    assert isinstance(probe.runner, Subprocesses)
    expected = None if directory is None else directory.replace("{tmp}", str(tmp_path))
    assert probe.runner.cwd == expected
    assert probe.asks(probe.executable, None if expected is None else Path(expected))
    assert not probe.asks("other-nix", None if expected is None else Path(expected))


@pytest.mark.parametrize(
    "argv",
    [[], ["analyze", "x.log"], ["build", "--help"], ["build", "-C", "/no/such/directory"]],
)
def test_anything_else_starts_nothing(argv: list[str]) -> None:
    assert early_probe(argv) is None


def test_an_abbreviated_nix_option_is_asked_again_by_the_cli(tmp_path: Path) -> None:
    # start.py does not read `--ni` as --nix (argparse does): it asks `nix`, and the CLI,
    # seeing another executable, asks the one named.
    missing = tmp_path / "no-nix"
    done = run_cli(tmp_path, "build", "--ni", str(missing))
    assert done.returncode == 1
    assert f"`{missing}` does not exist or cannot be run" in done.stderr


# --- the build started early --------------------------------------------------------------------

DEFAULTS = (".#default", True, True)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["build"], DEFAULTS),
        (["build", ".#hello"], (".#hello", True, True)),
        (["build", "--no-keep-going", ".#hello", "--keep-going"], (".#hello", True, True)),
        (["build", "--no-keep-going", "--no-fallback"], (".#default", False, False)),
        (["build", "--reproducibility", "off", "--deep", "--recheck"], (".#default", True, True)),
        (["build", "--reproducibility=warn", "--json", "--debug"], (".#default", True, True)),
        (
            ["build", "--nix", "/opt/nix", "-C", "{tmp}", "--report", "{tmp}/r.json", ".#x"],
            (".#x", True, True),
        ),
        # -Cdir, as argparse reads it.
        (["build", "-C{tmp}", "--log={tmp}/n.log", "--verified", "{tmp}/v.json"], DEFAULTS),
        (
            ["build", "--summary", "{tmp}/s.md", "--verified={tmp}/v.json"],
            (".#default", True, True),
        ),
    ],
)
def test_a_build_whose_first_nix_command_is_certain_starts_it(
    tmp_path: Path, argv: list[str], expected: tuple[str, bool, bool]
) -> None:
    words = [w.replace("{tmp}", str(tmp_path)) for w in argv]
    assert early_build(words) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "x.log"],
        ["build", ".#a", ".#b"],  # each evaluated on its own first
        ["build", "--skip-cached", "--verified", "v.json"],  # asks the caches first
        ["build", "--plan", "plan.json", "--leg", "x86_64-linux-1"],
        ["build", "--baseline", "base.json"],  # read, and perhaps refused, first
        ["build", "--max-seconds", "5"],
        ["build", "--keep"],  # an abbreviation: argparse's to read
        ["build", "--reproducibility", "sometimes"],
        ["build", "--deep=yes"],
        ["build", "--report"],
        ["build", "--report", "--json"],
        ["build", "--", ".#a"],
        ["build", "--report", "{tmp}"],  # a directory: refused
        ["build", "--log", "{tmp}/no/such/folder/n.log"],  # the CLI would make the folder first
        ["build", "--verified", "{tmp}"],
    ],
)
def test_a_build_with_anything_else_starts_no_build_early(tmp_path: Path, argv: list[str]) -> None:
    assert early_build([w.replace("{tmp}", str(tmp_path)) for w in argv]) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["build"],
        ["build", ".#hello", "--no-keep-going"],
        ["build", "--no-fallback", "--keep-going", "--no-keep-going", "path/to/flake#x"],
        ["build", "--reproducibility", "off", "--fallback", "--json", "nixpkgs#jq"],
    ],
)
def test_the_build_started_early_is_the_one_the_cli_runs(argv: list[str]) -> None:
    # The engine takes an early build only if the argv is the same, so this is what makes the
    # early start pay: argparse and Nix.build give the very same `nix build`.
    early = early_build(argv)
    assert early is not None
    installable, keep_going, fallback = early
    args = _parser().parse_args(argv)
    assert build_argv(
        args.nix, args.installables, keep_going=args.keep_going, fallback=args.fallback
    ) == build_argv(args.nix, [installable], keep_going=keep_going, fallback=fallback)
    # What start.py takes for the CLI's defaults and choices is the CLI's.
    assert MODES == REPORT_MODES
    assert _parser().parse_args(["build"]).log == Path(DEFAULT_LOG)


FAKE_NIX = """#!/bin/sh
# A Nix that says, slowly, that it is too old, and whose build only waits, marking that it ran.
case "$*" in
  *--version*) sleep 1; echo "nix (Nix) 2.3.16" ;;
  *build*) echo $$ > "$MARKER"; exec sleep 60 ;;
esac
"""


def fake_nix(folder: Path, version: str = "2.3.16") -> Path:
    nix = folder / "nix"
    nix.write_text(FAKE_NIX.replace("2.3.16", version))
    nix.chmod(0o755)
    return nix


def test_a_build_started_early_is_stopped_when_the_run_refuses_its_nix(tmp_path: Path) -> None:
    nix = fake_nix(tmp_path)
    marker = tmp_path / "build.pid"
    done = run_cli(tmp_path, "build", "--nix", str(nix), env={"MARKER": str(marker)})
    assert done.returncode == 1
    assert "2.3.16 is too old" in done.stderr
    # It had started, early (the version took a second to answer), and it is stopped, not
    # left running after the CLI.
    pid = int(marker.read_text())
    assert not Path(f"/proc/{pid}").exists()


def test_a_refused_command_line_starts_no_build(tmp_path: Path) -> None:
    nix = fake_nix(tmp_path)
    marker = tmp_path / "build.pid"
    done = run_cli(
        tmp_path, "build", "--nix", str(nix), "--report", str(tmp_path), env={"MARKER": str(marker)}
    )
    assert done.returncode == 2
    assert "is a directory" in done.stderr
    assert not marker.exists()


def test_a_run_cancelled_as_its_early_build_starts_stops_it_and_says_so(tmp_path: Path) -> None:
    nix = fake_nix(tmp_path, "2.34.0")
    marker = tmp_path / "build.pid"
    report, summary = tmp_path / "report.json", tmp_path / "summary.md"
    cli = subprocess.Popen(
        cli_argv("build", "--nix", str(nix), "--report", str(report), "--summary", str(summary)),
        cwd=tmp_path,
        env=cli_environ({"MARKER": str(marker)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    # As soon as the build runs: the CLI may still be importing itself, or be in its run.
    cli.send_signal(signal.SIGTERM)
    _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert not Path(f"/proc/{int(marker.read_text())}").exists()
    # Wherever the signal found it (importing itself, or in its run), the report and summary
    # say the run was cancelled by it.
    data = json.loads(report.read_text())
    assert "SIGTERM" in data["stopped"], data
    assert "SIGTERM" in summary.read_text()
    assert b"cancelled (SIGTERM)" in stderr


def test_a_signal_while_the_report_is_written_is_dropped() -> None:
    # The report being written is not cut short; the process ends right after it anyway.
    start.INTERRUPTED_BY.clear()
    start._DROPPING.clear()
    previous = signal.signal(signal.SIGTERM, start._interrupt)
    try:
        start.drop_signals()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # nothing interrupted the writing (a KeyboardInterrupt would)
        assert start.INTERRUPTED_BY == []  # nor was it noted as the run's cancellation
    finally:
        signal.signal(signal.SIGTERM, previous)
        start._DROPPING.clear()


def test_a_signal_before_the_run_handles_them_interrupts_and_one_after_is_dropped() -> None:
    # Before: the CLI is still importing itself, and the report says the run was cancelled.
    # After the run's own handlers had it: the run is ending and writing its report, which a
    # "cancelled" report must not replace.
    start.INTERRUPTED_BY.clear()
    start._DROPPING.clear()
    try:
        with pytest.raises(KeyboardInterrupt):
            start._interrupt(signal.SIGTERM, None)
        assert start.INTERRUPTED_BY == ["SIGTERM"]
        start.drop_signals()
        start._interrupt(signal.SIGINT, None)  # dropped: nothing raised
        assert start.INTERRUPTED_BY == ["SIGTERM"]
    finally:
        start.INTERRUPTED_BY.clear()
        start._DROPPING.clear()


def test_the_run_says_when_its_own_signal_handlers_are_in_place() -> None:
    # run_job calls on_signals once SIGTERM is its own (it raises Interrupted and the report
    # says the run was cancelled), and before it asks for Nix.
    def outer(_signum: int, _frame: object) -> None:
        raise AssertionError("the run's own handler should have had it")

    seen: list[object] = []

    def on_signals() -> None:
        seen.append(signal.getsignal(signal.SIGTERM))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises Interrupted meanwhile

    def no_nix() -> NoReturn:
        raise AssertionError("asked for Nix after the run was interrupted")

    previous = signal.signal(signal.SIGTERM, outer)
    try:
        report, status = run_job(
            BuildOptions((".#default",)),
            no_nix,
            log_path=None,
            say=lambda _text: None,
            on_signals=on_signals,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 130
    assert report.stopped is not None
    assert "SIGTERM" in report.stopped
    assert seen != [outer]
