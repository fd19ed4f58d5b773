"""Text from outside that is not valid UTF-8 never loses a file.

Python reads an undecodable byte of an environment variable, an argument or a path as a lone
surrogate. Each of the action's outputs (stdout, the step outputs, the job summary, the report)
must still be written: the step runs here as the runner runs it, a process whose environment
holds the raw bytes, with Python's streams strict as under a UTF-8 locale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nix_cache_action.files import write_text
from nix_cache_action.github.workflow_commands import write_outputs, write_summary
from nix_cache_action.limits import utf8

ENTRYPOINT = Path(__file__).resolve().parents[2] / "entrypoint.py"
LONE = "sub\udcff\udcfedir"  # what Python makes of the bytes b"sub\xff\xfedir"


def test_a_lone_surrogate_is_written_as_the_replacement_character() -> None:
    assert utf8(LONE) == "sub\ufffd\ufffddir".encode()
    assert utf8("plain ü") == "plain ü".encode()
    assert utf8("\ud800") == "\ufffd".encode()  # any lone surrogate, not only escaped bytes


def test_every_writer_survives_a_lone_surrogate(tmp_path: Path) -> None:
    write_text(tmp_path / "report.json", LONE)
    write_outputs(tmp_path / "outputs", {"note": LONE})
    write_summary(tmp_path / "summary.md", LONE)
    assert (tmp_path / "report.json").read_text(encoding="utf-8") == "sub\ufffd\ufffddir"
    assert "note<<" in (tmp_path / "outputs").read_text(encoding="utf-8")
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == "sub\ufffd\ufffddir"


def test_the_step_with_an_undecodable_input_still_writes_everything(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    environ = {k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith("INPUT_")}
    environ.update(
        {
            b"PYTHONIOENCODING": b"utf-8:strict",  # as under a UTF-8 locale
            b"GITHUB_ACTIONS": b"true",
            b"GITHUB_WORKSPACE": str(tmp_path).encode(),
            b"RUNNER_TEMP": str(temp).encode(),
            b"GITHUB_OUTPUT": str(tmp_path / "outputs").encode(),
            b"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md").encode(),
            b"GITHUB_REPOSITORY": b"owner/repo",
            b"GITHUB_SHA": b"a" * 40,
            b"GITHUB_EVENT_NAME": b"push",
            b"GITHUB_RUN_ID": b"1",
            b"INPUT_WORKING-DIRECTORY": b"sub\xff\xfedir",
        }
    )
    done = subprocess.run(
        [sys.executable, str(ENTRYPOINT)], env=environ, capture_output=True, check=False
    )
    assert done.returncode == 1
    assert done.stderr == b""  # no traceback, no warning that a file could not be written
    stdout = done.stdout.decode("utf-8")
    assert "::error title=nix-cache-action%3A input working-directory::" in stdout
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "working-directory" in summary
    assert "sub\ufffd\ufffddir" in summary
    report = json.loads((temp / "nix-cache-action" / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "failed"
    assert "working-directory" in report["errors"][0]
    assert "report<<" in (tmp_path / "outputs").read_text(encoding="utf-8")
    assert "could not write" not in stdout


def test_the_cli_names_an_undecodable_path_in_its_error(tmp_path: Path) -> None:
    # The error goes to stderr, which Python escapes by itself; the case guards the CLI's
    # own handling of the path (no traceback), with stdout strict as under a UTF-8 locale.
    environ = {k.encode(): v.encode() for k, v in os.environ.items()}
    environ[b"PYTHONIOENCODING"] = b"utf-8:strict"
    environ[b"PYTHONPATH"] = str(ENTRYPOINT.parent / "src").encode()
    log = str(tmp_path).encode() + b"/build\xff.log"
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"nix_cache_action", b"analyze", log],
        env=environ,
        capture_output=True,
        check=False,
    )
    assert done.returncode != 0
    assert b"Traceback" not in done.stderr
    assert b"build\\udcff.log" in done.stderr  # the path, with its odd byte shown as an escape
