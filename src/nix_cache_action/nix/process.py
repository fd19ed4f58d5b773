"""The one place a child process is started: argv lists only, logged, bounded, stoppable.

`Runner` is what the Nix commands need of it; `Subprocesses` is the real one and tests pass a
fake that asserts each argv and answers as a given Nix version would.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Protocol

from nix_cache_action import debug
from nix_cache_action.records import field, record

if TYPE_CHECKING:
    from pathlib import Path

# GitHub cancels a job with SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that:
# a child gets a short grace so that the report is written well before the SIGKILL.
STOP_GRACE_SECONDS = 3.0
# The most of Nix's stderr taken in one read: what a pipe holds (64 KiB on Linux) and more.
CHUNK = 1 << 20
# A read smaller than this is followed by a short wait for more (see _pump).
SMALL_READ = 16 << 10
GATHER_SECONDS = 0.002


class Interrupted(Exception):  # noqa: N818 - it is a signal, not a failure of ours
    """Raised from the SIGTERM/SIGINT handler so that every `finally` runs."""


@record
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@record
class Streamed:
    argv: tuple[str, ...]
    returncode: int | None  # None when we stopped the process ourselves
    stdout: str
    seconds: float
    interrupted: bool


def _ignore_argv(_argv: tuple[str, ...]) -> None:
    return None


def _ignore_error(_error: OSError) -> None:
    return None


@record
class Tee:
    """Where a streamed run's stderr goes: its lines to `on_lines`, as many at once as one read
    brought (each with its newline, but a last one that has none), the raw bytes to `raw_log`.

    `on_start` hears the argv before the process starts, so a run that is interrupted is still
    on record with what it ran.
    """

    on_lines: Callable[[list[bytes], float], None]
    raw_log: IO[bytes] | None = None
    on_start: Callable[[tuple[str, ...]], None] = field(default=_ignore_argv)
    # The raw log could not be written (a full disk): teeing stops, Nix goes on.
    on_log_error: Callable[[OSError], None] = field(default=_ignore_error)


class Runner(Protocol):
    """What the Nix commands need of a process runner."""

    def clock(self) -> float: ...

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed: ...

    def stream(self, argv: Sequence[str], tee: Tee) -> Streamed: ...

    def start(self, argv: Sequence[str]) -> Started:
        """Start a command now and take its answer later: commands that do not depend on each
        other run at once. Raises what `run` raises for a command that cannot start."""
        ...


class Started(Protocol):
    """A command started by `Runner.start`."""

    def result(self, *, timeout: float | None = None) -> Completed: ...


class _Running:
    """A real child process whose answer is read when asked for."""

    def __init__(self, argv: tuple[str, ...], proc: subprocess.Popen[bytes]) -> None:
        self.argv = argv
        self.proc = proc

    def result(self, *, timeout: float | None = None) -> Completed:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        return Completed(
            self.argv,
            self.proc.returncode,
            stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"),
        )


class Subprocesses:
    """Real child processes in one directory and environment (None: this process's own)."""

    def __init__(
        self,
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._clock = clock

    def clock(self) -> float:
        return self._clock()

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed:
        """Run to the end and capture both streams, decoded with replacement (Nix quotes
        builders' bytes, which need not be UTF-8)."""
        debug.debug(f"$ {shlex.join(argv)}")
        done = subprocess.run(
            list(argv),
            capture_output=True,
            check=False,
            env=self.env,
            cwd=self.cwd,
            timeout=timeout,
        )
        return Completed(
            tuple(argv),
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    def start(self, argv: Sequence[str]) -> Started:
        args = tuple(argv)
        debug.debug(f"$ {shlex.join(args)} &")
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
        )
        return _Running(args, proc)

    def stream(self, argv: Sequence[str], tee: Tee) -> Streamed:
        """Run with stderr turned into lines as they come; the raw bytes are teed.

        Nothing of the log is kept here: each line goes to `tee.raw_log` and `tee.on_lines`, then
        is dropped. On Interrupted (SIGTERM) the process and its children are stopped before
        re-raising.
        """
        args = tuple(argv)
        debug.debug(f"$ {shlex.join(args)}")
        tee.on_start(args)
        started = self.clock()
        proc = subprocess.Popen(
            args,
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
        copy = _LogCopy(tee)
        try:
            # Inside the try: a signal from here on still stops the process.
            reader.start()
            assert proc.stderr is not None  # noqa: S101 - Popen was asked for the pipe
            _pump(proc.stderr, tee.on_lines, copy, self.clock)
            returncode: int | None = proc.wait()
        except Interrupted:
            interrupted = True
            returncode = None
            raise
        finally:
            if proc.poll() is None:
                stop(proc)
            if reader.is_alive():
                reader.join(timeout=5)
            copy.flush()
            if interrupted:
                debug.warning(f"stopped {shlex.join(args)}")
        return Streamed(
            argv=args,
            returncode=returncode,
            stdout=b"".join(stdout_chunks).decode("utf-8", "replace"),
            seconds=self.clock() - started,
            interrupted=interrupted,
        )


class _LogCopy:
    """The raw log of a streamed run; when it cannot be written (a full disk), teeing stops
    and the run goes on."""

    def __init__(self, tee: Tee) -> None:
        self._file = tee.raw_log
        self._on_error = tee.on_log_error

    def write(self, chunk: bytes) -> None:
        if self._file is not None:
            try:
                self._file.write(chunk)
                # Live, like tee: someone may be following it, and a killed run keeps its log.
                self._file.flush()
            except OSError as error:
                self._file = None
                self._on_error(error)

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as error:
                self._file = None
                self._on_error(error)


def _ready(stream: IO[bytes]) -> bool:
    """Whether a read of `stream` would return at once (data, or its end)."""
    try:
        return bool(select.select([stream], [], [], 0)[0])
    except (OSError, ValueError):
        return True  # closed or not a pipe: the read says which


def _pump(
    stderr: IO[bytes],
    on_lines: Callable[[list[bytes], float], None],
    copy: _LogCopy,
    clock: Callable[[], float],
) -> None:
    """Nix's stderr into `copy` and `on_lines`, until it closes.

    Whatever the pipe holds at once, not a line at a time: a 201-path substitution is about
    19,000 lines, and a write, a flush and a clock reading for each of them made the reader
    slower than Nix, which then waited on its full stderr pipe; so are the lines, all of one
    read in one call, so that the reader's loop over them makes no call per line. Lines split
    as a file's iteration splits them, at b"\n" only, each with its newline.
    """
    # The start of a line not yet ended, in pieces: a builder's 50 MB line is joined once.
    pending: list[bytes] = []
    read = stderr.read1  # type: ignore[attr-defined]
    while chunk := read(CHUNK):
        if len(chunk) < SMALL_READ:
            # Nix writes a line at a time: waking for each costs this process more than the
            # lines do. A moment's wait lets a few hundred gather (the pipe holds 64 KiB).
            time.sleep(GATHER_SECONDS)
            chunk += read(CHUNK) if _ready(stderr) else b""
        copy.write(chunk)
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        now = clock()
        lines = chunk.split(b"\n")
        if pending:
            lines[0] = b"".join([*pending, lines[0]])
            pending = []
        if rest := lines.pop():
            pending.append(rest)
        if lines:
            on_lines([line + b"\n" for line in lines], now)
    if pending:
        on_lines([b"".join(pending)], clock())  # a last line without its newline


def _drain(pipe: IO[bytes] | None, into: list[bytes]) -> None:
    if pipe is not None:
        for chunk in iter(lambda: pipe.read(65536), b""):
            into.append(chunk)


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Children that outlived the leader in the same group.
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
