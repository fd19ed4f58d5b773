"""What a newcomer reads: each refusal said once, with its fix, and help that describes what the
command does. The CLI runs as a child process, as a user runs it; where Nix is asked, a missing
executable stands for it (nothing here needs a Nix)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.support.cli import run_cli


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, *args, env={"COLUMNS": "100"})


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_report_path_that_is_a_directory_is_refused_once_and_not_written_to(
    tmp_path: Path,
) -> None:
    log = tmp_path / "nix.log"
    log.write_text('@nix {"action":"msg","level":0,"msg":"x"}\n', encoding="utf-8")
    run = cli(tmp_path, "analyze", str(log), "--report", str(tmp_path))
    assert run.returncode == 2
    expected = (
        f"nix-cache-action: --report: {tmp_path} is a directory; name a file in it,"
        f" e.g. {tmp_path}/report.json"
    )
    assert lines(run.stderr) == [expected]


def test_a_missing_nix_is_said_once_and_the_report_holds_it(tmp_path: Path) -> None:
    run = cli(tmp_path, "build", "--nix", "/nonexistent/nix", "--report", "report.json")
    assert run.returncode == 1
    said = "`/nonexistent/nix` does not exist or cannot be run"
    assert run.stderr.count(said) == 1, run.stderr
    # The run stopped before Nix ran: no line of zero counts after it.
    assert lines(run.stderr)[-1] == "nix-cache-action: failed"
    report = json.loads((tmp_path / "report.json").read_text())
    assert said in report["stopped"]


def test_a_verified_record_that_is_a_directory_is_refused_before_the_run(tmp_path: Path) -> None:
    run = cli(tmp_path, "build", "--nix", "/nonexistent/nix", "--verified", str(tmp_path))
    assert run.returncode == 2
    expected = (
        f"nix-cache-action: --verified: {tmp_path} is a directory; name a file in it,"
        f" e.g. {tmp_path}/verified.json"
    )
    assert lines(run.stderr) == [expected]


def test_an_aggregate_of_nothing_fails_instead_of_passing(tmp_path: Path) -> None:
    empty = tmp_path / "artifacts"
    empty.mkdir()
    run = cli(tmp_path, "aggregate", str(empty), "--report", "report.json")
    assert run.returncode == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "failed"
    assert "nothing to add up" in report["stopped"]


def test_a_usage_error_shows_the_usage_of_its_command(tmp_path: Path) -> None:
    run = cli(tmp_path, "analyze")
    assert run.returncode == 2
    assert run.stderr.startswith("usage: nix-cache-action analyze ")
    assert "the following arguments are required: log" in run.stderr


def test_help_describes_the_installables_and_where_files_go(tmp_path: Path) -> None:
    build = cli(tmp_path, "build", "--help").stdout
    assert "INSTALLABLE" in build
    assert "(default: .#default)" in " ".join(build.split())
    assert "relative to the current directory, not to -C" in " ".join(build.split())
    assert "print every Nix command as it starts" in " ".join(build.split())


def test_analyze_help_says_what_it_does_and_runs_no_nix(tmp_path: Path) -> None:
    text = " ".join(cli(tmp_path, "analyze", "--help").stdout.split())
    assert "--reproducibility {fail,warn,off} fail (default):" in text
    assert "--debug print a traceback on an unexpected error" in text
    assert "Nix command" not in text


def test_each_line_of_what_is_said_at_once_counts_as_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The engine says what one read of the log brought in one text: an error among its lines
    # is not said again in the last lines.
    from nix_cache_action import cli as module  # noqa: PLC0415 - its own state is tested
    from nix_cache_action.render.terminal import render_terminal  # noqa: PLC0415
    from nix_cache_action.report import Report  # noqa: PLC0415

    module._SAID.clear()
    module._say("  fetching a from cache\nerror: b failed\n  fetching c from cache")
    assert "error: b failed" in capsys.readouterr().err
    last_lines = render_terminal(Report(errors=("b failed",)), said=module._SAID)
    assert "b failed" not in last_lines
    assert "b failed" in render_terminal(Report(errors=("b failed",)))  # what it would say
