"""The only code that runs `nix`: argv lists, the version probe, streaming stderr, JSON queries."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import jq

from nix_cache_action.errors import NixError
from nix_cache_action.nix.version import NixVersion, parse_version

log = logging.getLogger(__name__)

NIX_NOT_FOUND = (
    "`{exe}` was not found on PATH. Install Nix (on GitHub, leave the action's install-nix "
    "input at true; elsewhere see https://nixos.org/download) or put it on PATH."
)
NIX_PATH_UNUSABLE = (
    "`{exe}` does not exist or cannot be run. Pass the path of a nix executable, or leave it "
    "unset to use nix from PATH."
)
# GitHub cancels a job with SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that:
# Nix gets a short grace so that the report is written well before the SIGKILL.
STOP_GRACE_SECONDS = 3.0
TIMEOUT_NIX_VERSION = 60

# `nix path-info --json` is a list of objects with `path` up to 2.18 and an object keyed by path
# (null for an invalid path) from 2.19; reshape both into {path: {narHash, narSize}}.
_PATH_INFO = jq.compile(
    'if type == "array" then map({key: .path, value: .}) | from_entries else . end'
    " | with_entries(select(.value != null and .value.narHash != null))"
    " | map_values({narHash, narSize})"
)


# `nix show-derivation` (to 2.14) and `nix derivation show` print {drv: {outputs: {name: {path}}}};
# from 2.33 it is wrapped in {"derivations": ...} and paths are base names.
_DRV_OUTPUTS = jq.compile(
    '(if has("derivations") then .derivations else . end)'
    " | map_values(.outputs | map_values(.path) | with_entries(select(.value != null)))"
)


NIX_PROBE_FAILED = (
    "`{exe} --version` did not answer ({error}). Check that this Nix works from a shell, "
    "then run again."
)


def without_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment less the action's INPUT_* variables."""
    return {k: v for k, v in environ.items() if not k.startswith("INPUT_")}


class Interrupted(Exception):  # noqa: N818 - it is a signal, not a failure of ours
    """Raised from the SIGTERM/SIGINT handler so that every `finally` runs."""


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Streamed:
    argv: tuple[str, ...]
    returncode: int | None  # None when we stopped Nix ourselves
    stdout: str
    seconds: float
    interrupted: bool


@dataclass(frozen=True)
class PathInfo:
    nar_hash: str
    nar_size: int | None


class Nix:
    """One Nix installation: its version, and every command this project runs with it."""

    def __init__(
        self,
        executable: str = "nix",
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.executable = executable
        self.cwd = cwd
        self.env = env  # None: Nix inherits this process's environment
        self.clock = clock
        self.version = self._probe()

    def _probe(self) -> NixVersion:
        try:
            done = subprocess.run(
                [self.executable, "--version"],
                capture_output=True,
                text=True,
                check=False,
                env=self.env,
                cwd=self.cwd,
                timeout=TIMEOUT_NIX_VERSION,
            )
        except (FileNotFoundError, PermissionError) as exc:
            # A bare name was looked up on PATH; a path was given by the user and is wrong.
            template = NIX_PATH_UNUSABLE if os.sep in self.executable else NIX_NOT_FOUND
            raise NixError(template.format(exe=self.executable)) from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NixError(NIX_PROBE_FAILED.format(exe=self.executable, error=exc)) from exc
        return parse_version(done.stdout or done.stderr)

    def argv(self, *args: str) -> list[str]:
        # Flakes and the new CLI are experimental in upstream Nix; the extra- form adds to the
        # user's own setting instead of replacing it. Determinate Nix and Lix accept it too.
        return [
            self.executable,
            "--extra-experimental-features",
            "nix-command flakes",
            *args,
        ]

    def run(self, *args: str, timeout: float | None = None) -> Completed:
        argv = self.argv(*args)
        log.debug("$ %s", shlex.join(argv))
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            env=self.env,
            cwd=self.cwd,
            timeout=timeout,
        )
        return Completed(tuple(argv), done.returncode, done.stdout, done.stderr)

    def stream(
        self,
        args: Sequence[str],
        on_line: Callable[[bytes, float], None],
        raw_log: IO[bytes] | None = None,
    ) -> Streamed:
        """Run Nix with its stderr turned into lines as they come; the raw bytes are teed.

        Nothing of the log is kept here: each line goes to `raw_log` and `on_line`, then is
        dropped. On Interrupted (SIGTERM) Nix and its builders are stopped before re-raising.
        """
        argv = self.argv(*args)
        log.debug("$ %s", shlex.join(argv))
        started = self.clock()
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            # Its own process group, so builders are stopped with it.
            start_new_session=True,
        )
        stdout_chunks: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(proc.stdout, stdout_chunks), daemon=True)
        interrupted = False
        try:
            # Inside the try: a signal from here on still stops Nix.
            reader.start()
            assert proc.stderr is not None  # noqa: S101 - Popen was asked for the pipe
            for line in proc.stderr:
                if raw_log is not None:
                    raw_log.write(line)
                    # Live, like tee: someone may be following it, and a killed run keeps its
                    # log. About 1.5 us a line, nothing next to Nix's own work.
                    raw_log.flush()
                on_line(line, self.clock())
            returncode: int | None = proc.wait()
        except Interrupted:
            interrupted = True
            returncode = None
            raise
        finally:
            if proc.poll() is None:
                _stop(proc)
            if reader.is_alive():
                reader.join(timeout=5)
            if raw_log is not None:
                raw_log.flush()
            if interrupted:
                log.warning("stopped %s", shlex.join(argv))
        return Streamed(
            argv=tuple(argv),
            returncode=returncode,
            stdout=b"".join(stdout_chunks).decode("utf-8", "replace"),
            seconds=self.clock() - started,
            interrupted=interrupted,
        )

    # --- queries ------------------------------------------------------------------------------

    def derivation_of(self, installable: str) -> Completed:
        """The .drv behind an installable (evaluation only); the caller reads the error."""
        return self.run("path-info", "--derivation", installable)

    def derivation_outputs(self, drvs: Sequence[str]) -> dict[str, dict[str, str]]:
        """{drv path: {output name: store path}} for derivations already in the store."""
        if not drvs:
            return {}
        command = ["derivation", "show"] if self.version.at_least(2, 15) else ["show-derivation"]
        done = self.run(*command, *drvs)
        if done.returncode != 0 or not done.stdout.strip():
            return {}
        raw: dict[str, dict[str, str]] = _DRV_OUTPUTS.input_text(done.stdout).first()
        by_base = {drv.rsplit("/", 1)[-1]: drv for drv in drvs}
        result: dict[str, dict[str, str]] = {}
        for key, outputs in raw.items():
            drv = by_base.get(key.rsplit("/", 1)[-1], key)
            store = drv.rsplit("/", 1)[0]
            result[drv] = {
                name: path if path.startswith("/") else f"{store}/{path}"
                for name, path in outputs.items()
            }
        return result

    def path_info(self, paths: Sequence[str]) -> dict[str, PathInfo]:
        if not paths:
            return {}
        done = self.run("path-info", *self.version.path_info_json_flags(), *paths)
        if not done.stdout.strip():
            return {}
        raw: dict[str, Any] = _PATH_INFO.input_text(done.stdout).first()
        return {
            path: PathInfo(nar_hash=info["narHash"], nar_size=info.get("narSize"))
            for path, info in raw.items()
        }

    def hash_path(self, path: str) -> str | None:
        """The SRI NAR hash of any path, registered or not (a `.check` copy is not)."""
        done = self.run("hash", "path", path)
        return done.stdout.strip() or None if done.returncode == 0 else None


def _drain(pipe: IO[bytes] | None, into: list[bytes]) -> None:
    if pipe is not None:
        for chunk in iter(lambda: pipe.read(65536), b""):
            into.append(chunk)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Builders that outlived Nix in the same group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM (a cancelled job) and SIGINT into Interrupted for the duration.

    Only the first signal raises: GitHub follows its SIGINT with a SIGTERM, and a second
    exception in the middle of stopping Nix would cut that short and leave Nix running.
    """
    raised: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        if raised:
            return
        raised.append(signal.Signals(signum).name)
        raise Interrupted(raised[0])

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
