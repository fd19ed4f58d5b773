"""Wrong input and interruptions: a clear message naming the problem and the fix, and a report
written all the same."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.nix.conftest import NixEnv

pytestmark = pytest.mark.nix


def only(items: list[dict[str, Any]], **match: object) -> dict[str, Any]:
    found = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one item with {match}, found {found}"
    return found[0]


def pgrep(marker: str) -> list[str]:
    done = subprocess.run(
        ["pgrep", "-a", "-f", marker], capture_output=True, text=True, check=False
    )
    return done.stdout.splitlines()


def test_missing_attribute_is_named_and_the_others_still_build(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#nope", ".#good", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report
    nope = only(report["installables"], name=".#nope")
    assert nope["status"] == "error"
    assert nope["drv"] is None
    assert nope["error"].startswith(".#nope: ")
    assert "does not provide attribute 'packages.x86_64-linux.nope'" in nope["error"]
    assert nope["error"].endswith("`nix flake show` lists what the flake provides.")
    assert report["errors"] == [nope["error"]]
    # Said once: in the live account, not again in its last lines.
    assert run.stderr.count(nope["error"]) == 1
    assert f"error: {nope['error']}" in run.stderr
    # One bad name does not stop the others.
    assert only(report["installables"], name=".#good")["status"] == "built"
    assert only(report["checks"], installable=".#good")["verdict"] == "reproducible"
    assert report["verdict"] == "failed"


def test_directory_without_a_flake_is_named_with_the_fix(nix_env: NixEnv) -> None:
    empty = nix_env.root / "not-a-flake"
    empty.mkdir()
    (empty / "README").write_text("no flake.nix here\n", encoding="utf-8")
    run = nix_env.cli("build", cwd=empty)
    assert run.returncode == 1, run.stderr
    report = run.report
    [item] = report["installables"]
    assert item["name"] == ".#default"  # the default installable
    assert item["status"] == "error"
    assert "could not find a flake.nix file" in item["error"]
    assert item["error"].endswith(
        "Run in the directory that holds flake.nix, or name the flake's directory in the "
        "installable (path/to/flake#package)."
    )
    assert report["errors"] == [item["error"]]  # said once, with the fix
    # In the terminal too: Nix's own line is not said beside the restatement.
    assert run.stderr.count("could not find a flake.nix file") == 1, run.stderr
    # A single installable is evaluated by the build itself, which stops there.
    assert [(r["label"], r["exit_status"]) for r in report["runs"]] == [("build", 1)]
    assert report["builds"] == []
    assert report["verdict"] == "failed"


def test_nix_path_that_does_not_exist(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#good", cwd=flake, nix="/nonexistent/nix")
    assert run.returncode == 1
    message = (
        "`/nonexistent/nix` does not exist or cannot be run. Pass the path of a nix "
        "executable, or leave it unset to use nix from PATH."
    )
    assert f"nix-cache-action: {message}" in run.stderr
    report = run.report
    assert report["errors"] == [message]
    assert report["verdict"] == "failed"
    assert report["installables"] == []
    assert report["runs"] == []


def test_nix_not_on_path(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    empty_bin = nix_env.root / "empty-bin"
    empty_bin.mkdir()
    run = nix_env.cli("build", ".#good", cwd=flake, nix="nix", path=str(empty_bin))
    assert run.returncode == 1
    assert "`nix` was not found on PATH." in run.stderr
    [error] = run.report["errors"]
    assert error.startswith("`nix` was not found on PATH. Install Nix")
    assert error.endswith("or put it on PATH.")
    assert run.report["verdict"] == "failed"


def test_nix_too_old(nix_env: NixEnv) -> None:
    # A stand-in for an old Nix: it only answers `--version`, as Nix 2.3.16 would.
    fake = nix_env.root / "fake-old-nix"
    fake.write_text('#!/bin/sh\necho "nix (Nix) 2.3.16"\n', encoding="utf-8")
    fake.chmod(0o755)
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#good", cwd=flake, nix=str(fake))
    assert run.returncode == 1
    message = (
        "nix 2.3.16 is too old: nix-cache-action needs Nix 2.8 or newer. "
        "Upgrade Nix (the action's install-nix input installs a current one)."
    )
    assert f"nix-cache-action: {message}" in run.stderr
    assert run.report["errors"] == [message]
    assert run.report["verdict"] == "failed"
    assert run.report["runs"] == []


def test_unusable_nix_makes_the_report_fail(nix_env: NixEnv) -> None:
    flake = nix_env.flake("outcomes")
    run = nix_env.cli("build", ".#good", cwd=flake, nix="/nonexistent/nix")
    assert run.returncode == 1
    assert run.report["verdict"] == "failed"
    assert any("/nonexistent/nix" in e for e in run.report["errors"])


def test_sigterm_stops_nix_and_its_builder_and_writes_the_report(nix_env: NixEnv) -> None:
    marker = f"nca-sleeper-{uuid.uuid4().hex[:12]}"
    nix_env.sandbox = False  # its builder runs a copy of the host's /bin/sleep
    flake = nix_env.flake("interrupt", {"@MARKER@": marker})
    name = "interrupted"
    result = nix_env.cli_result(name, 0, "", "")
    proc = subprocess.Popen(
        nix_env.cli_argv("build", ".#default", name=name),
        cwd=flake,
        env=nix_env.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The build has started once Nix logged it and the builder's sleep is running.
        deadline = time.monotonic() + 60
        while not (
            result.log_path.exists()
            and '"type":105' in result.log_path.read_text(encoding="utf-8")
            and any(f"{marker} 30" in line for line in pgrep(marker))
        ):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sleeper build did not start within 60 s"
            time.sleep(0.05)

        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 5, f"the CLI took {took:.1f} s to stop"
    assert proc.returncode == 130, stderr

    # Nothing of the build is left: poll briefly, as a killed process takes a moment to go.
    deadline = time.monotonic() + 3
    while pgrep(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = pgrep(marker)
    for line in left:  # do not leave a 30-s sleeper behind if the assertion below fails
        subprocess.run(["kill", "-9", line.split()[0]], check=False)
    assert left == []

    report = result.report
    assert "the build step was interrupted; Nix was stopped" in report["notes"]
    assert report["stopped"].startswith("The run was cancelled (SIGTERM); Nix was stopped.")
    [build_run] = report["runs"]
    assert (build_run["label"], build_run["interrupted"], build_run["exit_status"]) == (
        "build",
        True,
        None,
    )
    [sleeper] = report["builds"]
    assert sleeper["status"] == "cancelled"
    assert sleeper["error"] == "interrupted before the build finished"
    assert (report["totals"]["built"], report["totals"]["cancelled"]) == (0, 1)
    assert sleeper["log_tail"] == [f"sleeper {marker} started"]
    [item] = report["installables"]
    assert item["status"] == "failed"
    assert item["outputs"] == {}
    assert report["verdict"] == "failed"
