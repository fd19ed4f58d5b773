"""The hostile tier: the action and the CLI as black boxes, fed hostile inputs, files, Nix, logs
and APIs, each case checked against the same contract (`Outcome.check`).

What every case asserts, in `Outcome.check`:

1. the exit status;
2. no Python traceback in stdout or stderr, unless RUNNER_DEBUG=1 or `--debug` was given;
3. the JSON report is there and truthful: valid against the published schema
   (report-v1.json), strict JSON, at most 1 MiB; after anything unexpected its verdict is
   `failed` and `stopped` a non-empty string, and no error ever comes with `verdict: ok`;
4. what must survive did: the step outputs (`report=` and the counts) and the verdict's
   annotation;
5. no secret reaches the log except inside `::add-mask::` commands that come before any other
   line holding it, and none is in the report, the summary or the outputs file;
6. replayed through the runner's own rules (runner_commands.py), stdout and stderr hold only
   the commands the tool means (annotations, add-mask, group, debug, its own stop-commands and
   their resume): nothing injected, and no pause left open.

Real Nix runs through standin_nix.py in a store of its own per test.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jsonschema
import pytest

# pytest puts this folder on sys.path (tests are not a package); mypy names it from the root.
if TYPE_CHECKING:
    from tests.hostile.hostile_payloads import MARKER
    from tests.hostile.runner_commands import Command, Replay, leading_masks, replay
else:
    from hostile_payloads import MARKER
    from runner_commands import Command, Replay, leading_masks, replay

REPO = Path(__file__).resolve().parents[2]
# The published schema; it lives in the package (src/nix_cache_action/schema) or at the root.
SCHEMA_PATH = next(
    (
        p
        for p in (
            REPO / "src/nix_cache_action/schema/report-v1.json",
            REPO / "schema/report-v1.json",
        )
        if p.is_file()
    ),
    REPO / "schema/report-v1.json",
)
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text("utf-8"))
ENTRYPOINT = REPO / "entrypoint.py"
STANDIN = Path(__file__).resolve().with_name("standin_nix.py")
REAL_NIX = "/usr/bin/nix"
PYTHON = sys.executable

TOKEN = "ghs_" + "H0stileT0kenValue0123456789abcdefXYZ"
REPOSITORY = "octo/hostile"
SHA = "0123456789abcdef0123456789abcdef01234567"
TIMEOUT_SECONDS = 120
ANNOTATION_LINE_LIMIT = 8 * 1024
REPORT_LIMIT = 1024 * 1024
TRACEBACK = "Traceback (most recent call last)"
# What the action itself may say to the runner; anything else in its output was injected.
MEANT = frozenset(
    {"error", "warning", "notice", "add-mask", "group", "endgroup", "stop-commands", "debug"}
)
OUTPUT_COUNTS = ("report", "substituted", "built", "failed")

# The flake every case starts from; a case adds or replaces packages (name -> builder script).
STANDARD_PACKAGES: dict[str, str] = {
    "default": "echo good > $out\n",
    "second": "echo second > $out\n",
    "nondet": "date +%s%N > $out\n",
    "fails": "echo oops >&2\nexit 3\n",
}

OUTER_VARIABLES = ("NIX_", "INPUT_", "GITHUB_", "RUNNER_", "ACTIONS_", "NCA_", "MAGIC_NIX_CACHE")


# --- the contract --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One run of the action or the CLI: what it printed and the files it left."""

    kind: Literal["action", "cli"]
    returncode: int
    stdout: str
    stderr: str
    report_path: Path | None
    summary_path: Path | None
    output_path: Path | None
    debug: bool = False
    annotations_on: bool = True
    # Secrets every check looks for: the token the harness gives each action run.
    known_secrets: tuple[str, ...] = ()
    _replays: tuple[Replay, Replay] | None = field(default=None, repr=False)

    # --- reading -------------------------------------------------------------------------------

    @property
    def replays(self) -> tuple[Replay, Replay]:
        if self._replays is None:
            self._replays = replay(self.stdout, self.stderr)
        return self._replays

    @property
    def commands(self) -> list[Command]:
        out, err = self.replays
        return out.commands + err.commands

    def annotations(self, level: str | None = None) -> list[Command]:
        found = list(self.replays[0].annotations)
        return [c for c in found if level is None or c.key == level]

    def annotation_text(self, level: str | None = None) -> str:
        return "\n".join(f"{c.title or ''}: {c.data}" for c in self.annotations(level))

    @property
    def report(self) -> dict[str, Any]:
        assert self.report_path is not None, "this run writes no report"
        assert self.report_path.exists(), f"no report at {self.report_path}"
        raw = self.report_path.read_bytes()
        assert len(raw) <= REPORT_LIMIT, f"the report has {len(raw)} bytes, over 1 MiB"
        data: dict[str, Any] = json.loads(raw, parse_constant=_no_constant)
        jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
        return data

    @property
    def summary(self) -> str:
        assert self.summary_path is not None
        assert self.summary_path.is_file(), f"no summary at {self.summary_path}"
        return self.summary_path.read_text(encoding="utf-8", errors="replace")

    @property
    def outputs(self) -> dict[str, str]:
        assert self.output_path is not None
        assert self.output_path.is_file(), f"no outputs at {self.output_path}"
        return parse_outputs(self.output_path.read_text(encoding="utf-8", errors="replace"))

    def tail(self, chars: int = 3000) -> str:
        return (
            f"exit {self.returncode}\n--- stdout ---\n{self.stdout[-chars:]}\n"
            f"--- stderr ---\n{self.stderr[-chars:]}"
        )

    # --- the checks ----------------------------------------------------------------------------

    def check(  # noqa: C901, PLR0913 - one keyword per part of the contract a case may tune
        self,
        *,
        exit: int | Collection[int],  # noqa: A002 - the word the contract uses
        verdict: str | Collection[str] | None = None,
        stopped: bool | None = None,
        markers: Sequence[str] = (MARKER,),
        secrets: Sequence[str] = (),
        outputs: bool = True,
        summary: bool = True,
        verdict_annotation: bool = True,
        report: bool = True,
        also: Sequence[Callable[[dict[str, Any]], object]] = (),
    ) -> dict[str, Any]:
        """The whole contract for one case; the report comes back for the case's own asserts.

        Every part is checked even when an earlier one fails, and all that failed is told at
        once, so one run shows everything the tool must still change."""
        problems: list[str] = []

        def part(check: Callable[[], object]) -> None:
            try:
                check()
            except AssertionError as error:
                problems.append(str(error).split("\nassert ", 1)[0])
            except pytest.fail.Exception as error:
                problems.append(str(error))
            except jsonschema.ValidationError as error:
                problems.append(f"the report breaks its schema: {str(error)[:1500]}")
            except ValueError as error:
                problems.append(f"the report is not strict JSON: {error}")
            except (KeyError, IndexError, TypeError) as error:
                problems.append(f"the report lacks what a check reads ({error!r})")

        exits = {exit} if isinstance(exit, int) else set(exit)
        part(
            lambda: _expect(
                self.returncode in exits, f"exit {self.returncode}, not {sorted(exits)}"
            )
        )
        if not self.debug:
            for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
                part(functools.partial(_expect, TRACEBACK not in text, f"a traceback on {name}"))
        data: dict[str, Any] = {}
        if report:

            def truthful() -> None:
                data.update(self.report)
                check_truthful(data, self.returncode, verdict=verdict, stopped=stopped)

            part(truthful)
        if self.kind == "action":
            if outputs:
                part(self.check_outputs)
            if summary and self.summary_path is not None:
                part(lambda: _expect(bool(self.summary.strip()), "the job summary is empty"))
            if verdict_annotation:
                part(lambda: self.check_verdict_annotation(data))
        part(lambda: self.check_commands(markers))
        part(self.check_bounded)
        every = [*secrets, *(s for s in self.known_secrets if s not in secrets)]
        if every:
            part(lambda: self.check_secrets(every))
        for extra in also:
            part(functools.partial(extra, data))
        if problems:
            pytest.fail("\n".join(f"- {p}" for p in problems) + "\n" + self.tail(), pytrace=False)
        return data

    def check_outputs(self) -> None:
        found = self.outputs
        missing = [name for name in OUTPUT_COUNTS if name not in found]
        assert not missing, f"outputs without {missing}: {sorted(found)}"

    def check_verdict_annotation(self, data: Mapping[str, Any]) -> None:
        notices = [c for c in self.annotations("notice") if (c.title or "").startswith(TOOL)]
        errors = self.annotations("error")
        if self.annotations_on:
            assert notices, f"no verdict notice among: {self.annotation_text()[:2000]!r}"
        if data.get("verdict") == "failed":
            assert errors, "a failed run without an ::error annotation"

    def check_commands(self, markers: Sequence[str] = (MARKER,)) -> None:
        """(6): only what the tool means, nothing an attacker wrote, no pause left open."""
        out, err = self.replays
        problems: list[str] = []
        for stream in (out, err):
            problems.extend(
                f"{stream.stream}: refused stop-commands {c.line!r}" for c in stream.refused
            )
            for command in stream.commands:
                why = injected(command, stream, markers)
                if why:
                    problems.append(
                        f"{stream.stream} line {command.number}: {why}: {command.line[:300]!r}"
                    )
            if stream.paused is not None:
                problems.append(f"{stream.stream} ends with commands stopped ({stream.paused!r})")
        assert not problems, "\n".join(problems)

    def check_bounded(self) -> None:
        for line in self.replays[0].lines:
            if line.lstrip().startswith("::") and len(line.encode()) > ANNOTATION_LINE_LIMIT:
                name = line.lstrip()[2:].split(":", 1)[0].split(" ", 1)[0]
                size = len(line.encode())
                pytest.fail(f"a ::{name} line of {size} bytes, over {ANNOTATION_LINE_LIMIT}")

    def check_secrets(self, secrets: Sequence[str]) -> None:
        """(5): for the action, each secret masked before any other line and never shown
        unmasked; for both, never in the report, the summary or the outputs."""
        out, err = self.replays
        leading = leading_masks(self.stdout)
        for secret in secrets:
            if self.kind == "action":
                assert secret in leading, f"{secret!r} is not masked before the first other line"
                for stream in (out, err):
                    leaked = [line for line in stream.shown if secret in line]
                    assert not leaked, f"{secret!r} reached {stream.stream} unmasked: {leaked[:3]}"
            for path in (self.report_path, self.summary_path, self.output_path):
                if path is not None and path.is_file():
                    text = path.read_text(encoding="utf-8", errors="replace")
                    assert secret not in text, f"{secret!r} is in {path.name}"

    def check_bad_input(
        self,
        name: str,
        *,
        secrets: Sequence[str] = (),
        outputs: bool = True,
        summary: bool = True,
        also: Sequence[Callable[[dict[str, Any]], object]] = (),
    ) -> dict[str, Any]:
        """A bad action input: one ::error naming it, exit 1, a report saying why."""

        def one_error(_: object) -> None:
            errors = self.annotations("error")
            assert len(errors) == 1, (
                f"{len(errors)} ::error annotations: {self.annotation_text()!r}"
            )
            assert name in f"{errors[0].title} {errors[0].data}", self.annotation_text()

        def says_why(data: Mapping[str, Any]) -> None:
            assert name in str(data.get("stopped")), f"stopped does not name {name}"

        return self.check(
            exit=1,
            verdict="failed",
            stopped=True,
            verdict_annotation=False,
            secrets=secrets,
            outputs=outputs,
            summary=summary,
            also=[one_error, says_why, *also],
        )


TOOL = "nix-cache-action"


def check_truthful(
    data: Mapping[str, Any],
    returncode: int,
    *,
    verdict: str | Collection[str] | None = None,
    stopped: bool | None = None,
) -> None:
    """(3): the report says what happened."""
    found = data["verdict"]
    if verdict is not None:
        wanted = {verdict} if isinstance(verdict, str) else set(verdict)
        assert found in wanted, f"verdict {found!r}, not {sorted(wanted)}: {_gist(data)}"
    if stopped is True:
        assert found == "failed", f"a stopped run with verdict {found!r}: {_gist(data)}"
        assert isinstance(data["stopped"], str), f"`stopped` is {data['stopped']!r}: {_gist(data)}"
        assert data["stopped"].strip(), "`stopped` is blank"
    elif stopped is False:
        assert data["stopped"] is None, f"stopped: {data['stopped']!r}"
    if data["stopped"] is not None:
        assert found == "failed", f"stopped, yet verdict {found!r}"
    if data["errors"] or data["stopped"]:
        assert found != "ok", f"errors, yet verdict ok: {data['errors'][:3]}"
    # The exit status follows the verdict: 0 for ok and warning, else not.
    if returncode == 0:
        assert found in ("ok", "warning"), f"exit 0 with verdict {found!r}: {_gist(data)}"
    else:
        assert found in ("failed", "not-reproducible", "over-budget"), (
            f"exit {returncode} with verdict {found!r}: {_gist(data)}"
        )


def _expect(condition: bool, message: str) -> None:  # noqa: FBT001 - reads as assert
    assert condition, message


def _gist(data: Mapping[str, Any]) -> str:
    keys = ("verdict", "stopped", "errors", "notes")
    return json.dumps({k: data.get(k) for k in keys}, default=str)[:2000]


def _no_constant(name: str) -> object:
    raise ValueError(f"the report holds {name}, which is not JSON")


def injected(command: Command, stream: Replay, markers: Sequence[str]) -> str | None:
    """Why a honoured command is not one the tool meant, or None."""
    if command.form == "legacy":
        return "a legacy ##[...] command (the tool writes none)"
    if command.key not in MEANT and not _is_resume(command, stream):
        return f"a {command.key} command"
    texts = [command.name, command.data, *command.properties.values()]
    for marker in markers:
        if any(t.lstrip(" \t\u00a0").startswith(marker) for t in texts):
            return f"attacker text as a {command.key} command"
        if command.key == "stop-commands" and marker in command.data:
            return "a pause with the attacker's token"
    return None


def _is_resume(command: Command, stream: Replay) -> bool:
    return any(
        c.key == "stop-commands" and c.data.lower() == command.key
        for c in stream.commands
        if c.number < command.number
    )


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: `name=value` lines and `name<<DELIM` heredocs."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            while index < len(lines) and lines[index] != delimiter:
                value.append(lines[index])
                index += 1
            assert index < len(lines), f"heredoc {name} never ends"
            index += 1
            outputs[name] = "\n".join(value)
        else:
            name, _, rest = line.partition("=")
            outputs[name] = rest
    return outputs


# --- flakes --------------------------------------------------------------------------------------


def nix_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def write_flake(
    directory: Path,
    packages: Mapping[str, str] | None = None,
    *,
    extra: str = "",
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """A flake of small /bin/sh derivations: STANDARD_PACKAGES plus `packages` (name -> builder
    script), `extra` Nix lines inside `packages.x86_64-linux`, and `files` beside flake.nix."""
    directory.mkdir(parents=True, exist_ok=True)
    scripts = directory / "scripts"
    scripts.mkdir(exist_ok=True)
    entries = []
    for index, (name, script) in enumerate({**STANDARD_PACKAGES, **(packages or {})}.items()):
        (scripts / f"s{index}.sh").write_text(script, encoding="utf-8")
        drv_name = re.sub(r"[^A-Za-z0-9+._-]", "-", name)[:40].strip(".-") or "pkg"
        entries.append(
            f"      {nix_string(name)} = mk {nix_string(drv_name)} ./scripts/s{index}.sh;"
        )
    for name, content in (files or {}).items():
        (directory / name).write_bytes(content)
    body = "\n".join(entries)
    (directory / "flake.nix").write_text(
        "{\n"
        "  outputs = { self }: let\n"
        '    system = "x86_64-linux";\n'
        "    mk = name: script: derivation {\n"
        "      inherit name system;\n"
        '      builder = "/bin/sh";\n'
        '      args = [ "-c" (builtins.readFile script) ];\n'
        '      PATH = "/usr/bin:/bin";\n'
        "    };\n"
        "  in {\n"
        "    packages.${system} = {\n"
        f"{body}\n{extra}\n"
        "    };\n"
        "  };\n"
        "}\n",
        encoding="utf-8",
    )
    return directory


# --- a GitHub API stand-in -----------------------------------------------------------------------


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    server: StatusAPI

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers.items()), "body": body}
        )
        self.server.received.set()
        if self.server.hold is not None:
            self.server.hold.wait(timeout=20)
        self._answer()

    def do_GET(self) -> None:
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": b""})
        self._answer()

    def _answer(self) -> None:
        api = self.server
        self.send_response(api.status)
        for name, value in api.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", api.content_type)
        self.send_header("Content-Length", str(len(api.body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(api.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        """Quiet: the requests are kept in `server.requests`."""


class StatusAPI(http.server.ThreadingHTTPServer):
    """Answers every request with one configured answer; records what was asked."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StatusHandler)
        self.status = 201
        self.body = json.dumps({"id": 1, "state": "success"}).encode()
        self.content_type = "application/json; charset=utf-8"
        self.headers: dict[str, str] = {}
        self.hold: threading.Event | None = None
        self.received = threading.Event()
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, status: int, body: object, content_type: str | None = None) -> None:
        self.status = status
        if isinstance(body, bytes):
            self.body = body
        else:
            self.body = json.dumps(body).encode()
        if content_type is not None:
            self.content_type = content_type

    @property
    def contexts(self) -> list[str]:
        return [
            json.loads(r["body"])["context"]
            for r in self.requests
            if r["body"] and r["path"].startswith(f"/repos/{REPOSITORY}/statuses/")
        ]


@pytest.fixture
def status_api() -> Iterator[StatusAPI]:
    server = StatusAPI()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        if server.hold is not None:
            server.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _overridden(environ: dict[str, str], env: Mapping[str, str | None] | None) -> dict[str, str]:
    """`environ` with a case's own variables: a value sets one, None removes it."""
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return environ


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def finish(proc: subprocess.Popen[bytes], timeout: float = 30) -> tuple[int, bytes, bytes]:
    """Wait for a started run; killed (and the case failed) if it does not end in time."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"the run did not end within {timeout} s after its signal:\n{stderr[-3000:]!r}")
    return proc.returncode, stdout, stderr


# --- running the action and the CLI --------------------------------------------------------------


@dataclass
class Hostile:
    """One case's world: a workspace, runner files, a stand-in nix and its isolated store."""

    tmp: Path
    # Helpers the cases need at run time (they cannot import this conftest by name).
    nix_string = staticmethod(nix_string)
    wait_for = staticmethod(wait_for)
    finish = staticmethod(finish)

    def __post_init__(self) -> None:
        for directory in (self.bin, self.workspace, self.runner_temp, self.tmpdir, self.cli_out):
            directory.mkdir(parents=True, exist_ok=True)
        wrapper = self.bin / "nix"
        wrapper.write_text(f'#!/bin/sh\nexec "{PYTHON}" -S "{STANDIN}" "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)

    # --- places --------------------------------------------------------------------------------

    @property
    def bin(self) -> Path:
        return self.tmp / "bin"

    @property
    def nix(self) -> Path:
        return self.bin / "nix"

    @property
    def workspace(self) -> Path:
        return self.tmp / "workspace"

    @property
    def runner_temp(self) -> Path:
        return self.tmp / "runner-temp"

    @property
    def action_dir(self) -> Path:
        return self.runner_temp / "nix-cache-action"

    @property
    def action_report(self) -> Path:
        return self.action_dir / "report.json"

    @property
    def github_output(self) -> Path:
        return self.tmp / "github-output"

    @property
    def step_summary(self) -> Path:
        return self.tmp / "step-summary.md"

    @property
    def tmpdir(self) -> Path:
        return self.tmp / "tmpdir"

    @property
    def cli_out(self) -> Path:
        return self.tmp / "cli"

    @property
    def calls_file(self) -> Path:
        return self.tmp / "nix-calls.jsonl"

    @property
    def ready_file(self) -> Path:
        return self.tmp / "standin-ready"

    def flake(
        self,
        packages: Mapping[str, str] | None = None,
        *,
        extra: str = "",
        files: Mapping[str, bytes] | None = None,
        where: Path | None = None,
    ) -> Path:
        return write_flake(where or self.workspace, packages, extra=extra, files=files)

    def fake_outcome(self, stdout: str, stderr: str = "") -> Outcome:
        """An action's run that printed `stdout` and `stderr` and wrote nothing: to check the
        checks themselves."""
        return Outcome("action", 0, stdout, stderr, None, None, None)

    def nix_calls(self, kind: str | None = None) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        calls = [json.loads(line) for line in self.calls_file.read_text("utf-8").splitlines()]
        if kind == "build":
            return [c for c in calls if "build" in c and "--rebuild" not in c]
        return calls

    def device(self, name: str, kind: Literal["null", "full"]) -> Path:
        """A character device like /dev/null or /dev/full, made in tmp so that nothing a buggy
        writer does to it can touch the machine's own; a symlink to it where mknod is denied."""
        directory = self.tmp / "dev"
        directory.mkdir(exist_ok=True)
        path = directory / name
        minor = {"null": 3, "full": 7}[kind]
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        except PermissionError:
            path.symlink_to(f"/dev/{kind}")
        return path

    # --- environments --------------------------------------------------------------------------

    def base_env(self, mode: str | None, when: str, match: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_VARIABLES)}
        env.update(
            PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            TMPDIR=str(self.tmpdir),
            NCA_HOSTILE_ROOT=str(self.tmp / "nix"),
            NCA_HOSTILE_CALLS=str(self.calls_file),
            NCA_HOSTILE_READY=str(self.ready_file),
            NCA_HOSTILE_WHEN=when,
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.pop("PYTHONPATH", None)
        if mode:
            env["NCA_HOSTILE_MODE"] = mode
        if match:
            env["NCA_HOSTILE_MATCH"] = match
        return env

    def action_env(  # noqa: PLR0913 - each keyword is one knob a case turns
        self,
        installables: str | None,
        *,
        inputs: Mapping[str, str] | None = None,
        env: Mapping[str, str | None] | None = None,
        mode: str | None = None,
        when: str = "build",
        match: str | None = None,
        api: StatusAPI | None = None,
    ) -> dict[str, str]:
        base = self.base_env(mode, when, match)
        base.update(
            GITHUB_ACTIONS="true",
            GITHUB_WORKSPACE=str(self.workspace),
            RUNNER_TEMP=str(self.runner_temp),
            GITHUB_OUTPUT=str(self.github_output),
            GITHUB_STEP_SUMMARY=str(self.step_summary),
            GITHUB_REPOSITORY=REPOSITORY,
            GITHUB_SHA=SHA,
            GITHUB_RUN_ID="4242",
            GITHUB_EVENT_NAME="push",
            GITHUB_API_URL=api.url if api is not None else "http://127.0.0.1:9",
        )
        values = {
            "INSTALL-NIX": "false",
            "MAGIC-NIX-CACHE": "false",
            "STATUS-CHECKS": "true" if api is not None else "false",
            "GITHUB-TOKEN": TOKEN,
            "WORKING-DIRECTORY": ".",
        }
        if installables is not None:
            values["INSTALLABLES"] = installables
        values.update({k.upper(): v for k, v in (inputs or {}).items()})
        base.update({f"INPUT_{k}": v for k, v in values.items()})
        return _overridden(base, env)

    # --- the action ----------------------------------------------------------------------------

    def action(  # noqa: PLR0913 - each keyword is one knob a case turns
        self,
        installables: str | None = ".#default",
        *,
        inputs: Mapping[str, str] | None = None,
        env: Mapping[str, str | None] | None = None,
        mode: str | None = None,
        when: str = "build",
        match: str | None = None,
        api: StatusAPI | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> Outcome:
        """`python entrypoint.py` in the workspace, as the composite's last step runs it."""
        environ = self.action_env(
            installables, inputs=inputs, env=env, mode=mode, when=when, match=match, api=api
        )
        done = subprocess.run(
            [PYTHON, str(ENTRYPOINT)],
            cwd=self.workspace,
            env=environ,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return self.action_outcome(environ, done.returncode, done.stdout, done.stderr)

    def start_action(  # noqa: PLR0913 - each keyword is one knob a case turns
        self,
        installables: str | None = ".#default",
        *,
        inputs: Mapping[str, str] | None = None,
        env: Mapping[str, str | None] | None = None,
        mode: str | None = None,
        when: str = "build",
        match: str | None = None,
        api: StatusAPI | None = None,
    ) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
        environ = self.action_env(
            installables, inputs=inputs, env=env, mode=mode, when=when, match=match, api=api
        )
        proc = subprocess.Popen(
            [PYTHON, str(ENTRYPOINT)],
            cwd=self.workspace,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        return proc, environ

    def action_outcome(
        self, environ: Mapping[str, str], returncode: int, stdout: bytes, stderr: bytes
    ) -> Outcome:
        temp = environ.get("RUNNER_TEMP")
        output = environ.get("GITHUB_OUTPUT")
        summary = environ.get("GITHUB_STEP_SUMMARY")
        return Outcome(
            kind="action",
            returncode=returncode,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            report_path=Path(temp) / "nix-cache-action" / "report.json" if temp else None,
            summary_path=Path(summary) if summary else None,
            output_path=Path(output) if output else None,
            debug=environ.get("RUNNER_DEBUG") == "1",
            annotations_on=environ.get("INPUT_ANNOTATIONS", "true").strip().lower() != "false",
            known_secrets=(TOKEN,) if environ.get("INPUT_GITHUB-TOKEN") == TOKEN else (),
        )

    # --- the CLI -------------------------------------------------------------------------------

    def cli_argv(
        self,
        args: Sequence[str],
        *,
        report: Path | None,
        summary: Path | None,
        log: Path | None,
        nix: bool,
    ) -> list[str]:
        command, *rest = args
        added: list[str] = []
        if report is not None:
            added += ["--report", str(report)]
        if summary is not None:
            added += ["--summary", str(summary)]
        if command == "build":
            if nix:
                added += ["--nix", str(self.nix)]
            if log is not None:
                added += ["--log", str(log)]
        return [PYTHON, "-m", "nix_cache_action", command, *added, *rest]

    def cli_env(
        self,
        env: Mapping[str, str | None] | None,
        mode: str | None,
        when: str,
        match: str | None,
    ) -> dict[str, str]:
        environ = self.base_env(mode, when, match)
        environ["PYTHONPATH"] = str(REPO / "src")
        return _overridden(environ, env)

    def cli(  # noqa: PLR0913 - each keyword is one knob a case turns
        self,
        *args: str,
        report: Path | Literal["auto"] | None = "auto",
        summary: Path | Literal["auto"] | None = "auto",
        log: Path | Literal["auto"] | None = "auto",
        nix: bool = True,
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        mode: str | None = None,
        when: str = "build",
        match: str | None = None,
        stdin: int | None = subprocess.DEVNULL,
        input_bytes: bytes | None = None,
        preexec_fn: Callable[[], None] | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> Outcome:
        """`python -m nix_cache_action ARGS`; --report, --summary (and for build --nix, --log)
        added right after the subcommand unless given as None."""
        report_path = self.cli_out / "report.json" if report == "auto" else report
        summary_path = self.cli_out / "summary.md" if summary == "auto" else summary
        log_path = self.cli_out / "nix.log" if log == "auto" else log
        argv = self.cli_argv(args, report=report_path, summary=summary_path, log=log_path, nix=nix)
        done = subprocess.run(
            argv,
            cwd=cwd or self.workspace,
            env=self.cli_env(env, mode, when, match),
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=None if input_bytes is not None else stdin,
            input=input_bytes,
            preexec_fn=preexec_fn,
        )
        return self.cli_outcome(
            argv,
            done.returncode,
            done.stdout,
            done.stderr,
            report=report_path,
            summary=summary_path,
        )

    def cli_outcome(  # noqa: PLR0913 - what a finished run left, each part named
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: bytes,
        stderr: bytes,
        *,
        report: Path | None,
        summary: Path | None,
    ) -> Outcome:
        return Outcome(
            kind="cli",
            returncode=returncode,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            report_path=report,
            summary_path=summary,
            output_path=None,
            debug="--debug" in argv,
        )

    def start_cli(
        self,
        *args: str,
        mode: str | None = None,
        when: str = "build",
        match: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> tuple[subprocess.Popen[bytes], list[str]]:
        argv = self.cli_argv(
            args,
            report=self.cli_out / "report.json",
            summary=self.cli_out / "summary.md",
            log=self.cli_out / "nix.log",
            nix=True,
        )
        proc = subprocess.Popen(
            argv,
            cwd=self.workspace,
            env=self.cli_env(env, mode, when, match),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        return proc, argv


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Hostile]:
    if not Path(REAL_NIX).exists():
        pytest.fail(f"{REAL_NIX} is missing; run bash scripts/setup.sh")
    world = Hostile(tmp_path)
    try:
        yield world
    finally:
        _kill_leftovers(world)


def _kill_leftovers(world: Hostile) -> None:
    """A stand-in (nix told to hang, or diffoscope) that outlived its run: it wrote its pid, and
    it is ended by that pid only if that process is still this case's own stand-in."""
    for ready in (world.ready_file, world.tmp / "diffoscope-ready"):
        try:
            pid = int(ready.read_text("utf-8").strip())
        except (OSError, ValueError):
            continue
        if _is_own_standin(pid, world):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _is_own_standin(pid: int, world: Hostile) -> bool:
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes()
        environ = (proc / "environ").read_bytes()
    except OSError:
        return False
    ours = f"NCA_HOSTILE_ROOT={world.tmp / 'nix'}".encode()
    return ours in environ.split(b"\0") or str(world.tmp).encode() in cmdline


@dataclass(frozen=True)
class RecordedLogs:
    """Logs real Nix 2.8 wrote with `--log-format internal-json -v`, for `analyze`."""

    ok: bytes  # .#default built
    fail: bytes  # .#default built, .#fails failed (exit code 3, "oops")

    def activity(self, log: bytes, drv_part: str) -> int:
        """The id of the build activity of the derivation whose path holds `drv_part`."""
        for line in log.splitlines():
            if line.startswith(b"@nix {"):
                record = json.loads(line[5:])
                fields = record.get("fields") or [""]
                started = record.get("type") == 105 and record.get("action") == "start"
                if started and drv_part in str(fields[0]):
                    return int(record["id"])
        raise AssertionError(f"no build of {drv_part} in the log")


@pytest.fixture(scope="module")
def recorded_logs(tmp_path_factory: pytest.TempPathFactory) -> RecordedLogs:
    ok = Hostile(tmp_path_factory.mktemp("log-ok"))
    ok.flake()
    fail = Hostile(tmp_path_factory.mktemp("log-fail"))
    fail.flake()
    return RecordedLogs(
        ok=real_nix_log(ok, ".#default"), fail=real_nix_log(fail, ".#default", ".#fails")
    )


@pytest.fixture(scope="module")
def sample_reports(
    tmp_path_factory: pytest.TempPathFactory, recorded_logs: RecordedLogs
) -> dict[str, dict[str, Any]]:
    """Reports `analyze` wrote from real logs: `ok`, `failed`, and `ok` in `warn` mode."""
    world = Hostile(tmp_path_factory.mktemp("sample-reports"))
    found: dict[str, dict[str, Any]] = {}
    for name, log, extra in (
        ("ok", recorded_logs.ok, ()),
        ("failed", recorded_logs.fail, ()),
        ("warn", recorded_logs.ok, ("--reproducibility", "warn")),
    ):
        path = world.tmp / f"{name}.log"
        path.write_bytes(log)
        report = world.tmp / f"{name}.json"
        done = world.cli("analyze", str(path), *extra, report=report, summary=None)
        assert report.is_file(), done.tail()
        found[name] = json.loads(report.read_text("utf-8"))
    return found


def real_nix_log(hostile: Hostile, *installables: str, rebuild: bool = False) -> bytes:
    """The internal-json log real Nix writes for a build of the case's flake."""
    argv = [str(hostile.nix), "build", "--log-format", "internal-json", "-v", "--no-link"]
    if rebuild:
        argv.append("--rebuild")
    done = subprocess.run(
        [*argv, "--keep-going", *installables],
        cwd=hostile.workspace,
        env=hostile.base_env(None, "build", None),
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    return done.stderr


__all__ = [
    "MEANT",
    "REPOSITORY",
    "SHA",
    "TOKEN",
    "Hostile",
    "Outcome",
    "RecordedLogs",
    "StatusAPI",
    "finish",
    "real_nix_log",
    "wait_for",
    "write_flake",
]
