"""Cancellation at the worst moments: while Nix hangs, while diffoscope explains a difference,
while commit statuses are posted, and GitHub's own SIGINT-then-SIGTERM. Exit 130, what was
found is kept (a `differs` check survives), the annotations and outputs are written before the
statuses, and no child outlives the step."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping

    from tests.hostile.conftest import Hostile, Outcome, StatusAPI

INTERRUPTED = 130
READY_TIMEOUT = 60


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        text = status.read_text(encoding="utf-8")
    except OSError:
        return False
    return "\nState:\tZ" not in text


def standin_diffoscope(hostile: Hostile) -> Path:
    """A `diffoscope` on PATH that says when it started, then takes its time."""
    ready = hostile.tmp / "diffoscope-ready"
    script = hostile.bin / "diffoscope"
    # Its argv names this case's folder, so that only this case's copy is ever ended by pid.
    sleep = f'exec "{sys.executable}" -c "import time; time.sleep(60)" "{ready}"'
    script.write_text(f'#!/bin/sh\necho $$ > "{ready}"\n{sleep}\n', encoding="utf-8")
    script.chmod(0o755)
    return ready


def action_after_signal(
    hostile: Hostile,
    proc: subprocess.Popen[bytes],
    environ: Mapping[str, str],
    *signals: signal.Signals,
) -> Outcome:
    for index, signum in enumerate(signals):
        if index:
            time.sleep(0.2)
        proc.send_signal(signum)
    returncode, stdout, stderr = hostile.finish(proc)
    return hostile.action_outcome(environ, returncode, stdout, stderr)


def pid_in(hostile: Hostile, path: Path) -> int:
    hostile.wait_for(path.exists, READY_TIMEOUT, f"{path.name}")
    hostile.wait_for(lambda: path.read_text("utf-8").strip() != "", 5, f"a pid in {path.name}")
    return int(path.read_text(encoding="utf-8").strip())


def test_sigterm_while_diffoscope_runs_keeps_the_difference(hostile: Hostile) -> None:
    hostile.flake()
    ready = standin_diffoscope(hostile)
    proc, environ = hostile.start_action(".#default .#nondet")
    child = pid_in(hostile, ready)
    run = action_after_signal(hostile, proc, environ, signal.SIGTERM)
    data = run.check(exit=INTERRUPTED, verdict="failed", stopped=True)
    verdicts = {c["installable"]: c["verdict"] for c in data["checks"]}
    assert verdicts.get(".#nondet") == "differs", f"the difference was lost: {verdicts}"
    assert verdicts.get(".#default") == "reproducible", verdicts
    assert not alive(child), "diffoscope outlived the step"


def test_cli_sigterm_while_diffoscope_runs_keeps_the_difference(hostile: Hostile) -> None:
    hostile.flake()
    ready = standin_diffoscope(hostile)
    proc, argv = hostile.start_cli("build", ".#nondet")
    child = pid_in(hostile, ready)
    proc.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = hostile.finish(proc)
    run = hostile.cli_outcome(
        argv, returncode, stdout, stderr, report=hostile.cli_out / "report.json", summary=None
    )
    data = run.check(exit=INTERRUPTED, verdict="failed", stopped=True)
    assert [c["verdict"] for c in data["checks"]] == ["differs"], data["checks"]
    assert not alive(child), "diffoscope outlived the run"


def test_sigterm_while_statuses_are_posted(hostile: Hostile, status_api: StatusAPI) -> None:
    hostile.flake()
    status_api.hold = threading.Event()
    proc, environ = hostile.start_action(".#default", api=status_api)
    assert status_api.received.wait(READY_TIMEOUT), "no status was posted"
    proc.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = hostile.finish(proc)
    status_api.hold.set()
    run = hostile.action_outcome(environ, returncode, stdout, stderr)
    # The build had finished: its report, annotations and outputs were out before the statuses,
    # and the step either ends as interrupted or, the statuses abandoned, as its verdict says.
    run.check(exit={0, INTERRUPTED}, report=False)
    data = run.report
    assert data["installables"][0]["status"] == "built", data["installables"]
    assert run.outputs.get("built") == "1", run.outputs


def test_sigterm_while_nix_hangs(hostile: Hostile) -> None:
    hostile.flake()
    proc, environ = hostile.start_action(".#default", mode="hang")
    nix = pid_in(hostile, hostile.ready_file)
    run = action_after_signal(hostile, proc, environ, signal.SIGTERM)
    data = run.check(exit=INTERRUPTED, verdict="failed", stopped=True)
    assert "SIGTERM" in data["stopped"], data["stopped"]
    assert any(r["interrupted"] for r in data["runs"]), data["runs"]
    assert not alive(nix), "Nix outlived the step"


def test_sigint_then_sigterm_as_github_cancels(hostile: Hostile) -> None:
    hostile.flake()
    proc, environ = hostile.start_action(".#default", mode="hang")
    nix = pid_in(hostile, hostile.ready_file)
    run = action_after_signal(hostile, proc, environ, signal.SIGINT, signal.SIGTERM)
    data = run.check(exit=INTERRUPTED, verdict="failed", stopped=True)
    assert "SIGINT" in data["stopped"], data["stopped"]
    stopped = [c for c in run.annotations("error") if c.data == data["stopped"]]
    assert len(stopped) == 1, "the cancellation is said exactly once"
    assert not alive(nix)


def test_two_sigterms_in_a_row(hostile: Hostile) -> None:
    hostile.flake()
    proc, environ = hostile.start_action(".#default", mode="hang")
    pid_in(hostile, hostile.ready_file)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = hostile.finish(proc)
    run = hostile.action_outcome(environ, returncode, stdout, stderr)
    run.check(exit=INTERRUPTED, verdict="failed", stopped=True)


def test_sigterm_during_evaluation(hostile: Hostile) -> None:
    hostile.flake()
    proc, environ = hostile.start_action(
        ".#default .#second", mode="hang", when="eval", match=".#second"
    )
    pid_in(hostile, hostile.ready_file)
    run = action_after_signal(hostile, proc, environ, signal.SIGTERM)
    data = run.check(exit=INTERRUPTED, verdict="failed", stopped=True)
    assert {i["name"] for i in data["installables"]} >= {".#default"}, data["installables"]


def test_sigterm_during_the_rebuild_keeps_the_build(hostile: Hostile) -> None:
    hostile.flake()
    proc, environ = hostile.start_action(".#default", mode="hang", when="rebuild")
    pid_in(hostile, hostile.ready_file)
    run = action_after_signal(hostile, proc, environ, signal.SIGTERM)
    data = run.check(exit=INTERRUPTED, verdict="failed", stopped=True)
    (item,) = data["installables"]
    assert item["outputs"], f"the finished build was lost: {item}"
    assert all(c["verdict"] == "not-checked" for c in data["checks"]), data["checks"]


def test_cli_sigterm_while_nix_hangs(hostile: Hostile) -> None:
    hostile.flake()
    proc, argv = hostile.start_cli("build", ".#default", mode="hang")
    nix = pid_in(hostile, hostile.ready_file)
    proc.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = hostile.finish(proc)
    run = hostile.cli_outcome(
        argv,
        returncode,
        stdout,
        stderr,
        report=hostile.cli_out / "report.json",
        summary=hostile.cli_out / "summary.md",
    )
    data = run.check(exit=INTERRUPTED, verdict="failed", stopped=True)
    assert "SIGTERM" in data["stopped"]
    assert "SIGTERM" in run.summary
    assert not alive(nix)
