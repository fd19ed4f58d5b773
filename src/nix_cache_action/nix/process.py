"""The one place a child process is started (with nix/spawn.py, for a build start.py starts
before this module is imported): argv lists only, logged, bounded, stoppable.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Protocol

from nix_cache_action import debug
from nix_cache_action.nix.spawn import popen_streamed
from nix_cache_action.records import field, record

if TYPE_CHECKING:
    from pathlib import Path

    from nix_cache_action.nix.spawn import StreamedProcess

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


def _never() -> bool:
    return False


@record
class Tee:
    """Where a streamed run's stderr goes: its lines to `on_lines`, as many at once as one read
    brought (each with its newline, but a last one that has none), the raw bytes to `raw_log`.

    `on_start` hears the argv before the process starts, so a run that is interrupted is still
    on record with what it ran. While `prompt` says so, each read is taken as soon as it comes;
    else a log that trickles is taken in batches (`_Reader.chunks`).
    """

    on_lines: Callable[[list[bytes], float], None]
    raw_log: IO[bytes] | None = None
    on_start: Callable[[tuple[str, ...]], None] = field(default=_ignore_argv)
    # The raw log could not be written (a full disk): teeing stops, Nix goes on.
    on_log_error: Callable[[OSError], None] = field(default=_ignore_error)
    prompt: Callable[[], bool] = field(default=_never)


class Runner(Protocol):
    """What the Nix commands need of a process runner."""

    def clock(self) -> float: ...

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed: ...

    def stream(self, argv: Sequence[str], tee: Tee) -> Streamed: ...

    def early_start(self) -> float | None:
        """When the command started early (`Subprocesses.take_early`) started, if one is
        waiting for its stream."""
        ...

    def discard_early(self) -> None:
        """Stop the command started early, if no stream took it."""
        ...

    def start(self, argv: Sequence[str], *, input_later: bool = False) -> Started:
        """Start a command now and take its answer later: commands that do not depend on each
        other run at once. With `input_later` it waits for its standard input, given to
        `result`: a query started before the run knows what to ask. Raises what `run` raises
        for a command that cannot start."""
        ...


class Started(Protocol):
    """A command started by `Runner.start`."""

    def result(self, *, stdin: str | None = None, timeout: float | None = None) -> Completed:
        """Its answer, once it has read `stdin` (for a command started with `input_later`)
        and ended."""
        ...

    def stop(self) -> None:
        """Stop it unanswered, if it still runs."""
        ...


class _Running:
    """A real child process whose answer is read when asked for."""

    def __init__(self, argv: tuple[str, ...], proc: subprocess.Popen[bytes]) -> None:
        self.argv = argv
        self.proc = proc

    def result(self, *, stdin: str | None = None, timeout: float | None = None) -> Completed:
        if stdin is not None:
            lines = stdin.count("\n")
            name = os.path.basename(self.argv[0])  # noqa: PTH119 - a word, not a path
            plural = "" if lines == 1 else "s"
            debug.debug(f"  {name} (started with &): told {lines} line{plural} on its stdin")
        try:
            stdout, stderr = self.proc.communicate(
                None if stdin is None else stdin.encode(), timeout=timeout
            )
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

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        # Reaped, and its pipes closed.
        self.proc.communicate()


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
        self._early: _Reader | None = None  # take_early's, until a stream takes it

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

    def start(self, argv: Sequence[str], *, input_later: bool = False) -> Started:
        args = tuple(argv)
        debug.debug(f"$ {shlex.join(args)} &")
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if input_later else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
        )
        return _Running(args, proc)

    def take_early(self, argv: Sequence[str], proc: StreamedProcess, started: float) -> None:
        """Own `proc`, started at `started` (by this runner's clock) as `spawn.spawn_streamed`
        starts it, for a later `stream` of the same argv: start.py starts a run's build while
        the CLI imports itself. Its log is read from now on, each read with its time, so that
        the run sees it as if streamed from the start."""
        self.discard_early()
        try:
            self._early = _Reader(tuple(argv), proc, self.clock, started)
        except BaseException:
            # A signal while it was being set up: not left running, unowned.
            stop(proc)
            raise

    def early_start(self) -> float | None:
        return None if self._early is None else self._early.started

    def discard_early(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.stop()

    def stream(self, argv: Sequence[str], tee: Tee) -> Streamed:
        """Run with stderr turned into lines as they come; the raw bytes are teed.

        Nothing of the log is kept here but the reads not yet taken: each line goes to
        `tee.raw_log` and `tee.on_lines`, then is dropped. On Interrupted (SIGTERM) the process
        and its children are stopped before re-raising, and what Nix wrote meanwhile still goes
        to the raw log. The command started early with this very argv is taken, not started again;
        one started early with another is stopped first.
        """
        args = tuple(argv)
        reader, self._early = self._early, None
        if reader is not None and reader.argv != args:
            debug.debug(f"stopped the early {shlex.join(reader.argv)}: the run asks another")
            reader.stop()
            reader = None
        debug.debug(f"$ {shlex.join(args)}" + (" (started early)" if reader else ""))
        tee.on_start(args)
        if reader is None:
            started = self.clock()
            proc = popen_streamed(args, cwd=self.cwd, env=self.env)
        else:
            started, proc = reader.started, reader.proc
        interrupted = False
        copy = _LogCopy(tee)
        try:
            # Inside the try: a signal from here on still stops the process.
            if reader is None:
                reader = _Reader(args, proc, self.clock, started)
            _lines(reader.chunks(tee.prompt), tee.on_lines, copy)
            returncode: int | None = proc.wait()
        except Interrupted:
            interrupted = True
            returncode = None
            raise
        finally:
            if proc.poll() is None:
                stop(proc)
            if reader is not None:
                reader.join()
                if interrupted:
                    for chunk, _ in reader.left():
                        copy.write(chunk)
            copy.flush()
            if interrupted:
                debug.warning(f"stopped {shlex.join(args)}")
        # Timed to the end of its log, as its reader saw it: a build started early may have
        # ended before the run took it.
        ended = reader.ended if reader.ended is not None else self.clock()
        return Streamed(
            argv=args,
            returncode=returncode,
            stdout=b"".join(reader.stdout).decode("utf-8", "replace"),
            seconds=ended - started,
            interrupted=interrupted,
        )


class _Reader:
    """The output of a streamed command, read by threads from its start: its stderr in reads,
    each with the time it was read, for the run's own thread to take in batches
    (`chunks`), and its stdout whole. A command started early (`Subprocesses.take_early`) is
    read so from before the run asks for it."""

    # How long the taker waits for a read at a time: a signal's handler runs in between.
    POLL_SECONDS = 0.2
    # A log that trickles (a build's few lines now and then) is taken this long after its last
    # batch, whatever came meanwhile, each read with its own time. Each wake-up of the run's
    # thread cost it about 0.2 ms of CPU, what it runs being out of the CPU's caches by then. A
    # cold build of 201 derivations (benchmarks/overhead.py, Nix 2.8) is 320 reads: the run's
    # thread used 127 to 136 ms of CPU taking each at once, 106 to 112 ms at 20 ms, 90 to
    # 97 ms at 50 ms. What the run says in the terminal and its progress come that much later,
    # at most; what must not wait (Tee.prompt) does not.
    BATCH_SECONDS = 0.05

    def __init__(
        self,
        argv: tuple[str, ...],
        proc: StreamedProcess,
        clock: Callable[[], float],
        started: float,
    ) -> None:
        import queue  # noqa: PLC0415 - imported once a stream starts, while Nix evaluates

        self.argv = argv
        self.proc = proc
        self.started = started
        self.ended: float | None = None  # when its log ended, read by the thread
        self.stdout: list[bytes] = []
        self._reads: queue.SimpleQueue[tuple[bytes, float] | None] = queue.SimpleQueue()
        self._empty = queue.Empty
        self._log_ended = threading.Event()
        self._threads = [
            threading.Thread(target=self._read, args=(clock,), daemon=True),
            threading.Thread(target=_drain, args=(proc.stdout, self.stdout), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, clock: Callable[[], float]) -> None:
        try:
            if self.proc.stderr is not None:
                for read in _chunks(self.proc.stderr, clock):
                    self._reads.put(read)
        except (OSError, ValueError):
            pass  # the pipe closed under the reader: the log ends here, as at its end
        finally:
            self.ended = clock()
            self._reads.put(None)
            self._log_ended.set()

    def chunks(self, prompt: Callable[[], bool] = _never) -> Iterator[tuple[bytes, float]]:
        """The reads so far and to come, each with the time it was read, until the log ends:
        all that came meanwhile at each wake-up, and after a small batch, unless `prompt()`,
        a wait of up to BATCH_SECONDS that the log's end cuts short. Interrupted while it
        waits, it first gives what was read before the signal: a build Nix had started by
        then is in the run's report, stopped."""
        try:
            yield from self._batches(prompt)
        except Interrupted:
            yield from self.left()
            raise

    def _batches(self, prompt: Callable[[], bool]) -> Iterator[tuple[bytes, float]]:
        get, empty = self._reads.get, self._empty
        while True:
            try:
                read = get(timeout=self.POLL_SECONDS)
            except empty:
                continue
            size = 0
            while read is not None:
                yield read
                size += len(read[0])
                try:
                    read = get(block=False)
                except empty:
                    break
            if read is None:
                return
            if size < SMALL_READ and not prompt():
                self._log_ended.wait(self.BATCH_SECONDS)

    def left(self) -> Iterator[tuple[bytes, float]]:
        """The reads not taken so far (a stream cut short)."""
        while True:
            try:
                read = self._reads.get(block=False)
            except self._empty:
                return
            if read is None:
                return
            yield read

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop(self.proc)
        self.join()


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


def _chunks(stderr: IO[bytes], clock: Callable[[], float]) -> Iterator[tuple[bytes, float]]:
    """Nix's stderr as it comes, whatever the pipe holds at once, each read with its time.

    Not a line at a time: a 201-path substitution is about 19,000 lines, and a write, a flush
    and a clock reading for each of them made the reader slower than Nix, which then waited on
    its full stderr pipe.
    """
    read = stderr.read1  # type: ignore[attr-defined]
    while chunk := read(CHUNK):
        if len(chunk) < SMALL_READ:
            # Nix writes a line at a time: waking for each costs this process more than the
            # lines do. A moment's wait lets a few hundred gather (the pipe holds 64 KiB).
            time.sleep(GATHER_SECONDS)
            chunk += read(CHUNK) if _ready(stderr) else b""
        yield chunk, clock()


def _lines(
    chunks: Iterable[tuple[bytes, float]],
    on_lines: Callable[[list[bytes], float], None],
    copy: _LogCopy,
) -> None:
    """The reads into `copy` and, as lines, into `on_lines`: all the lines of one read in one
    call, so that the reader's loop over them makes no call per line. Lines split as a file's
    iteration splits them, at b"\n" only, each with its newline.
    """
    # The start of a line not yet ended, in pieces: a builder's 50 MB line is joined once.
    pending: list[bytes] = []
    now = 0.0
    for chunk, now in chunks:
        copy.write(chunk)
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if pending:
            lines[0] = b"".join([*pending, lines[0]])
            pending = []
        if rest := lines.pop():
            pending.append(rest)
        if lines:
            on_lines([line + b"\n" for line in lines], now)
    if pending:
        on_lines([b"".join(pending)], now)  # a last line without its newline


def _drain(pipe: IO[bytes] | None, into: list[bytes]) -> None:
    if pipe is not None:
        for chunk in iter(lambda: pipe.read(65536), b""):
            into.append(chunk)


def stop(proc: StreamedProcess | subprocess.Popen[str]) -> None:
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
