"""A stand-in for the nix executable: a `Runner` (nix/process.py) that plays a script of calls.

Each expected call is the exact argv Nix must be run with and what that Nix answers: for `run`
a `Completed` (or an exception, such as the FileNotFoundError of a missing executable); for
`stream` the stderr lines fed to `tee.on_lines` one by one, the exit status and stdout, and
optionally an exception (Interrupted, as the SIGTERM handler raises it) at a given line. Nothing
is executed. The clock is a counter, so every time the code measures is deterministic.

The engine catches every exception (a stopped run is a report, not a crash), so an argv that
does not match would vanish into the report. The first mismatch is therefore also kept, and
`assert_done()`, which every test calls at its end, raises it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from nix_cache_action.nix.process import Completed, Interrupted, Started, Streamed, Tee


@dataclass(frozen=True)
class RunCall:
    """An expected `runner.run(argv)` and its answer (`error` is raised instead, if set)."""

    argv: Sequence[str]
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    error: Exception | None = None
    # For a command started to be told its question later (`start(..., input_later=True)`):
    # the standard input it must be given.
    stdin: str | None = None


@dataclass(frozen=True)
class StreamCall:
    """An expected `runner.stream(argv, tee)` and its answer.

    With `raise_at`, `error` (default: Interrupted by SIGTERM) is raised before line
    `lines[raise_at]` is fed, after the ones before it were (`len(lines)`: after the last line,
    as Nix exits): what a signal in the middle of Nix's log looks like to the caller. Lines are
    fed one at a time, or `read` at a time (as a read of the pipe brings several).
    """

    argv: Sequence[str]
    lines: Sequence[bytes] = ()
    returncode: int | None = 0
    stdout: str = ""
    raise_at: int | None = None
    error: BaseException | None = None
    read: int = 1


C = TypeVar("C", RunCall, StreamCall)


class ScriptMismatchError(AssertionError):
    """A call the script did not expect (another argv, another kind, or one too many)."""


@dataclass
class FakeNix:
    """Plays `script` in order; `calls` is every argv it was given, as tuples."""

    script: Sequence[RunCall | StreamCall]
    calls: list[tuple[str, ...]] = field(default_factory=list)
    now: float = 0.0
    mismatch: ScriptMismatchError | None = None
    timeouts: list[float | None] = field(default_factory=list)  # of each `run`, in order
    started_ahead: list[tuple[str, ...]] = field(default_factory=list)  # input_later starts
    stopped: list[tuple[str, ...]] = field(default_factory=list)  # of those, stopped unasked

    def clock(self) -> float:
        # Each reading is one second after the last: durations count readings, never real time.
        self.now += 1.0
        return self.now

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed:
        self.timeouts.append(timeout)  # a fake process never hangs, but the limit is noted
        call = self._next(argv, RunCall)
        if call.error is not None:
            raise call.error
        return Completed(tuple(argv), call.returncode, call.stdout, call.stderr)

    def start(self, argv: Sequence[str], *, input_later: bool = False) -> Started:
        # A command started now and read later plays its RunCall now, in script order: an
        # error (a missing executable) is raised at the start, as Popen raises it. One that
        # waits for its question plays it when asked, with the question checked: the script
        # lists a query where its answer is read, whenever it was started.
        if input_later:
            self.started_ahead.append(tuple(argv))
            return _AskedLater(self, tuple(argv))
        call = self._next(argv, RunCall)
        if isinstance(call.error, OSError):
            raise call.error
        return _Answered(self, call)

    def early_start(self) -> float | None:
        return None  # a fake starts nothing early

    def discard_early(self) -> None:
        return None

    def stream(self, argv: Sequence[str], tee: Tee) -> Streamed:
        call = self._next(argv, StreamCall)
        args = tuple(argv)
        # As the real runner: the argv is on record before the first line arrives.
        tee.on_start(args)
        started = self.clock()
        for index in range(0, len(call.lines), call.read):
            read = list(call.lines[index : index + call.read])
            if call.raise_at is not None and index <= call.raise_at < index + call.read:
                read = read[: call.raise_at - index]
                if read:
                    if tee.raw_log is not None:
                        tee.raw_log.write(b"".join(read))
                        tee.raw_log.flush()
                    tee.on_lines(read, self.clock())
                raise call.error or Interrupted("SIGTERM")
            if tee.raw_log is not None:
                tee.raw_log.write(b"".join(read))
                tee.raw_log.flush()
            tee.on_lines(read, self.clock())
        if call.raise_at is not None and call.raise_at >= len(call.lines):
            raise call.error or Interrupted("SIGTERM")
        return Streamed(
            argv=args,
            returncode=call.returncode,
            stdout=call.stdout,
            seconds=self.clock() - started,
            interrupted=False,
        )

    def assert_done(self) -> None:
        """Every expected call was made, and none other."""
        if self.mismatch is not None:
            raise self.mismatch
        left = self.script[len(self.calls) :]
        assert not left, "expected calls that were never made:\n" + "\n".join(
            f"  {_show(c.argv)}" for c in left
        )

    def _next(self, argv: Sequence[str], kind: type[C]) -> C:
        number = len(self.calls)
        self.calls.append(tuple(argv))
        expected = self.script[number] if number < len(self.script) else None
        if isinstance(expected, kind) and list(expected.argv) == list(argv):
            return expected
        if expected is None:
            problem = (
                f"call #{number + 1} was not expected (the script has {len(self.script)}):\n"
                f"  actual   {kind.__name__} {_show(argv)}"
            )
        else:
            problem = (
                f"call #{number + 1}:\n"
                f"  expected {type(expected).__name__} {_show(expected.argv)}\n"
                f"  actual   {kind.__name__} {_show(argv)}"
            )
        error = ScriptMismatchError(problem)
        if self.mismatch is None:
            self.mismatch = error
        raise error


@dataclass(frozen=True)
class _Answered:
    """A started command: any other error (a timeout) is raised when its answer is read."""

    fake: FakeNix
    call: RunCall

    def result(self, *, stdin: str | None = None, timeout: float | None = None) -> Completed:
        self.fake.timeouts.append(timeout)
        # Its standard input was /dev/null: a question for it would be lost.
        assert stdin is None, f"{_show(self.call.argv)} was not started to be told {stdin!r}"
        if self.call.error is not None:
            raise self.call.error
        call = self.call
        return Completed(tuple(call.argv), call.returncode, call.stdout, call.stderr)

    def stop(self) -> None:
        return None


@dataclass(frozen=True)
class _AskedLater:
    """A command started to wait for its question: its RunCall is played when it is asked."""

    fake: FakeNix
    argv: tuple[str, ...]

    def result(self, *, stdin: str | None = None, timeout: float | None = None) -> Completed:
        self.fake.timeouts.append(timeout)
        call = self.fake._next(self.argv, RunCall)
        if call.stdin != stdin:
            error = ScriptMismatchError(
                f"{_show(self.argv)} was told {stdin!r}, the script says {call.stdin!r}"
            )
            if self.fake.mismatch is None:
                self.fake.mismatch = error
            raise error
        if call.error is not None:
            raise call.error
        return Completed(self.argv, call.returncode, call.stdout, call.stderr)

    def stop(self) -> None:
        self.fake.stopped.append(self.argv)


def _show(argv: Sequence[str]) -> str:
    return repr(list(argv))
