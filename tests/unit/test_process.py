"""How a streamed run's stderr becomes lines: Subprocesses.stream on a real child process, one
started early and taken by its stream, and the reader under it (`_chunks` and `_lines`) on
scripted reads, whose chunk boundaries fall anywhere."""

from __future__ import annotations

import io
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nix_cache_action.nix.probe import build_argv
from nix_cache_action.nix.process import (
    CHUNK,
    Interrupted,
    Subprocesses,
    Tee,
    _chunks,
    _lines,
    _LogCopy,
    _Reader,
    sigterm_interrupts,
)
from nix_cache_action.nix.spawn import spawn_streamed
from nix_cache_action.start import early_probe


class Reads(io.RawIOBase):
    """A pipe that hands out exactly these chunks, one per read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self.sizes: list[int] = []

    def read1(self, size: int = -1) -> bytes:
        self.sizes.append(size)
        return next(self._chunks, b"")


class FullDisk(io.BytesIO):
    def write(self, _data: object) -> int:
        raise OSError(28, "No space left on device")


def pumped(chunks: list[bytes], log: io.BytesIO | None = None) -> tuple[list[bytes], list[str]]:
    lines: list[bytes] = []
    errors: list[str] = []
    tee = Tee(
        on_lines=lambda read, _now: lines.extend(read),
        raw_log=log,
        on_log_error=lambda error: errors.append(str(error)),
    )
    _lines(_chunks(Reads(chunks), lambda: 0.0), tee.on_lines, _LogCopy(tee))  # type: ignore[arg-type]
    return lines, errors


def test_lines_are_split_at_newlines_only_whatever_the_chunks() -> None:
    chunks = [b'@nix {"a', b'ction":1}\nplain\r', b"with a carriage return\n", b"\n", b"last"]

    lines, _ = pumped(chunks)

    assert lines == [
        b'@nix {"action":1}\n',
        b"plain\rwith a carriage return\n",  # a progress bar's \r is no line end
        b"\n",
        b"last",  # the end of the stream ends the last line, newline or not
    ]


def test_a_long_line_in_many_chunks_is_one_line() -> None:
    piece = b"x" * 1000
    lines, _ = pumped([piece] * 50 + [b"y\nnext\n"])

    assert lines == [piece * 50 + b"y\n", b"next\n"]


def test_the_raw_log_gets_every_byte_and_a_full_disk_stops_only_the_copy() -> None:
    chunks = [b"one\ntw", b"o\nthree\n"]
    log = io.BytesIO()
    lines, errors = pumped(chunks, log)
    assert log.getvalue() == b"".join(chunks)
    assert lines == [b"one\n", b"two\n", b"three\n"]
    assert errors == []

    lines, errors = pumped(chunks, FullDisk())
    assert lines == [b"one\n", b"two\n", b"three\n"]  # the run goes on without its log
    assert errors == ["[Errno 28] No space left on device"]  # said once, not per chunk


def test_a_read_asks_for_a_pipe_full_and_more() -> None:
    pipe = Reads([b"a\n"])
    for _ in _chunks(pipe, lambda: 0.0):  # type: ignore[arg-type]
        pass
    assert pipe.sizes[0] == CHUNK >= 64 * 1024


def test_a_real_childs_stderr_arrives_whole_and_in_order() -> None:
    # 20,000 lines in a burst, far more than a pipe holds, some long, one without its newline.
    script = (
        "import sys\n"
        "for i in range(20000):\n"
        "    sys.stderr.write(f'line {i} ' + 'z' * (i % 300) + '\\n')\n"
        "sys.stderr.write('tail')\n"
        "print('out')\n"
    )
    lines: list[bytes] = []
    log = io.BytesIO()
    tee = Tee(on_lines=lambda read, _now: lines.extend(read), raw_log=log)

    streamed = Subprocesses().stream([sys.executable, "-c", script], tee)

    expected = [f"line {i} ".encode() + b"z" * (i % 300) + b"\n" for i in range(20000)]
    assert lines == [*expected, b"tail"]
    assert log.getvalue() == b"".join([*expected, b"tail"])
    assert (streamed.returncode, streamed.stdout) == (0, "out\n")


LINES, APART = 40, 0.01
TRICKLE = (
    "import sys, time\n"
    f"for i in range({LINES}):\n"
    f"    sys.stderr.write(f'line {{i}}\\n'); sys.stderr.flush(); time.sleep({APART})\n"
)


def trickled(*, prompt: bool) -> tuple[list[list[tuple[float, float]]], int, float]:
    """A build's log, a line now and then, streamed: the reads as the run's thread took them,
    grouped by wake-up (calls less than half the lines' spacing apart), each as (the time it
    was read, when it was taken); how many reads; how long the stream took."""
    calls: list[tuple[float, float]] = []
    tee = Tee(
        on_lines=lambda _read, now: calls.append((now, time.monotonic())),
        prompt=lambda: prompt,
    )
    runner = Subprocesses()
    began = runner.clock()
    streamed = runner.stream([sys.executable, "-c", TRICKLE], tee)
    took = runner.clock() - began
    assert streamed.returncode == 0
    wake_ups = [[calls[0]]]
    for before, call in itertools.pairwise(calls):
        if call[1] - before[1] > APART / 2:
            wake_ups.append([])
        wake_ups[-1].append(call)
    return wake_ups, len(calls), took


def test_a_trickling_log_is_taken_in_few_wake_ups_each_read_timed_as_read() -> None:
    # Taken at each line, the run's thread woke as often as Nix wrote; each of its wake-ups
    # now takes what came meanwhile (_Reader.BATCH_SECONDS).
    wake_ups, reads, took = trickled(prompt=False)

    read_at = [at for wake_up in wake_ups for at, _ in wake_up]
    assert read_at == sorted(read_at)
    assert read_at[-1] - read_at[0] >= 0.8 * (LINES - 1) * APART
    # Batched: at most one wake-up per BATCH_SECONDS (twice that, for a loaded machine's
    # pauses within one), where each line would be one.
    assert len(wake_ups) <= 2 * took / _Reader.BATCH_SECONDS + 2 < reads
    # Each read keeps the time it was read at, not its batch's: the lines of one wake-up
    # were read their spacing apart.
    together = max(wake_ups, key=len)
    assert len(together) >= 2
    assert all(b[0] - a[0] >= APART / 2 for a, b in itertools.pairwise(together))


def test_a_log_the_run_wants_at_once_is_taken_read_by_read() -> None:
    # Until the NAR hashes' query has started, the engine wants each read as it comes.
    wake_ups, reads, took = trickled(prompt=True)

    assert len(wake_ups) > 2 * took / _Reader.BATCH_SECONDS
    assert len(wake_ups) >= reads // 2


def test_what_nix_wrote_before_a_signal_that_came_in_a_batch_wait_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A build Nix started just before the job was cancelled is in the report, stopped: its
    # line, read but waiting for the next batch, is taken before the stream stops.
    monkeypatch.setattr(_Reader, "BATCH_SECONDS", 30.0)
    script = (
        "import sys, time\n"
        "sys.stderr.write('first\\n'); sys.stderr.flush()\n"
        "time.sleep(0.01)\n"
        "sys.stderr.write('second\\n'); sys.stderr.flush()\n"
        "time.sleep(60)\n"
    )
    taken: list[bytes] = []
    tee = Tee(on_lines=lambda read, _now: taken.extend(read))
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    began = time.monotonic()
    try:
        with sigterm_interrupts(), pytest.raises(Interrupted):
            Subprocesses().stream([sys.executable, "-c", script], tee)
    finally:
        timer.cancel()

    assert taken == [b"first\n", b"second\n"]
    assert time.monotonic() - began < 10  # the signal cut the wait short


def test_a_stream_stopped_by_a_signal_keeps_what_nix_wrote_in_the_raw_log() -> None:
    script = (
        "import sys, time\n"
        "sys.stderr.write('first\\n'); sys.stderr.flush()\n"
        "for i in range(50):\n"
        "    sys.stderr.write(f'then {i}\\n'); sys.stderr.flush(); time.sleep(0.001)\n"
        "time.sleep(60)\n"
    )
    log = io.BytesIO()

    def cancelled(_read: list[bytes], _now: float) -> None:
        time.sleep(0.5)  # Nix writes on meanwhile; then the job is cancelled
        raise Interrupted

    tee = Tee(on_lines=cancelled, raw_log=log)
    try:
        Subprocesses().stream([sys.executable, "-c", script], tee)
    except Interrupted:
        pass
    else:
        raise AssertionError("the stream should have been interrupted")

    assert log.getvalue() == b"first\n" + b"".join(f"then {i}\n".encode() for i in range(50))


def start_early(runner: Subprocesses, argv: list[str]) -> None:
    """`argv` started as start.py starts a run's build while the CLI imports itself, and
    handed to the runner for its stream to take."""
    started = runner.clock()
    runner.take_early(argv, spawn_streamed(argv, os.environ, cwd=None), started)


def test_a_command_started_early_is_taken_by_its_stream_with_its_lines_timed_as_read() -> None:
    script = (
        "import sys, time\n"
        "sys.stderr.write('first\\n'); sys.stderr.flush()\n"
        "time.sleep(0.4)\n"
        "sys.stderr.write('second\\n')\n"
        "print('out')\n"
    )
    argv = [sys.executable, "-c", script]
    runner = Subprocesses()
    started = runner.clock()
    start_early(runner, argv)
    time.sleep(0.2)  # the CLI importing itself
    taken = runner.clock()
    reads: list[tuple[list[bytes], float]] = []
    heard: list[tuple[str, ...]] = []
    tee = Tee(on_lines=lambda read, now: reads.append((read, now)), on_start=heard.append)

    streamed = runner.stream(argv, tee)

    assert [line for read, _ in reads for line in read] == [b"first\n", b"second\n"]
    # The first line was read when it came, before the stream was asked for, and timed so.
    assert started <= reads[0][1] < taken
    assert heard == [tuple(argv)]
    assert (streamed.returncode, streamed.stdout) == (0, "out\n")
    assert streamed.seconds >= runner.clock() - taken + 0.15  # timed from the early start


def test_a_command_started_early_with_other_words_is_stopped_and_the_one_asked_runs() -> None:
    runner = Subprocesses()
    start_early(runner, [sys.executable, "-c", "import time; time.sleep(60)"])
    early = runner._early
    assert early is not None
    lines: list[bytes] = []

    streamed = runner.stream(
        [sys.executable, "-c", "import sys; sys.stderr.write('asked\\n')"],
        Tee(on_lines=lambda read, _now: lines.extend(read)),
    )

    assert early.proc.poll() is not None  # stopped, not left running
    assert (streamed.returncode, lines) == (0, [b"asked\n"])


def test_a_command_started_early_and_never_taken_is_stopped() -> None:
    runner = Subprocesses()
    start_early(runner, [sys.executable, "-c", "import time; time.sleep(60)"])
    early = runner._early
    assert early is not None

    runner.discard_early()

    assert early.proc.poll() is not None


def test_a_command_that_cannot_start_early_is_left_to_its_stream(tmp_path: Path) -> None:
    # As start.py leaves it: no build waits for the run, whose own fails with its message.
    nix = str(tmp_path / "nonexistent" / "nix")
    log = str(tmp_path / "nix.log")
    probe = early_probe(["build", "--nix", nix, "--log", log])
    assert probe is not None
    try:
        assert probe.runner.early_start() is None
        try:
            probe.runner.stream(
                build_argv(nix, [".#default"], keep_going=True, fallback=True), Tee(on_lines=print)
            )
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("the stream should fail as it does without an early start")
    finally:
        probe.close()


def test_a_command_started_early_that_ended_before_it_was_taken_is_timed_to_its_end() -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('done\\n')"]
    runner = Subprocesses()
    start_early(runner, argv)
    time.sleep(1.0)  # the command ends long before the run takes it
    lines: list[bytes] = []

    streamed = runner.stream(argv, Tee(on_lines=lambda read, _now: lines.extend(read)))

    assert (streamed.returncode, lines) == (0, [b"done\n"])
    assert streamed.seconds < 0.9


# --- a command started to be told its question later --------------------------------------------

# Reads words from its standard input as Nix's `--stdin` does, and answers with them.
WORDS = "import sys; words = sys.stdin.read().split(); print(' '.join(reversed(words)))"


def test_a_command_started_ahead_reads_what_it_is_told_later_and_answers() -> None:
    runner = Subprocesses()
    started = runner.start([sys.executable, "-c", WORDS], input_later=True)
    time.sleep(0.2)  # it has started, and waits

    done = started.result(stdin="first\nsecond\n", timeout=10)

    assert (done.returncode, done.stdout) == (0, "second first\n")


def test_a_command_started_ahead_and_never_asked_is_stopped_and_reaped() -> None:
    runner = Subprocesses()
    started = runner.start([sys.executable, "-c", WORDS], input_later=True)
    proc = started.proc  # type: ignore[attr-defined]

    started.stop()

    # Killed, not merely told its input ended (Nix before 2.17 then asked about `.`), and
    # waited for: not a zombie.
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdin.closed


def test_a_command_started_without_input_later_reads_nothing() -> None:
    # Its standard input is /dev/null, as before: it never waits for a question.
    runner = Subprocesses()
    done = runner.start([sys.executable, "-c", WORDS]).result(timeout=10)
    assert (done.returncode, done.stdout) == (0, "\n")
