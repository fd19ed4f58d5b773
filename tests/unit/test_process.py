"""How a streamed run's stderr becomes lines: Subprocesses.stream on a real child process, one
started early and taken by its stream, and the reader under it (`_chunks` and `_lines`) on
scripted reads, whose chunk boundaries fall anywhere."""

from __future__ import annotations

import io
import itertools
import signal
import sys
import time
from collections.abc import Iterator

from nix_cache_action.nix.process import (
    CHUNK,
    Subprocesses,
    Tee,
    _chunks,
    _lines,
    _LogCopy,
    _Reader,
)


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


def test_a_trickling_log_is_taken_in_few_wake_ups_each_read_timed_as_read() -> None:
    # A build's log: a line now and then. Taken at each line, the run's thread woke as often as
    # Nix wrote; each of its wake-ups now takes what came meanwhile (_Reader.BATCH_SECONDS).
    lines, apart = 40, 0.01
    script = (
        "import sys, time\n"
        f"for i in range({lines}):\n"
        f"    sys.stderr.write(f'line {{i}}\\n'); sys.stderr.flush(); time.sleep({apart})\n"
    )
    calls: list[tuple[float, float]] = []  # (the read's time, when the run's thread took it)
    tee = Tee(on_lines=lambda _read, now: calls.append((now, time.monotonic())))
    runner = Subprocesses()
    began = runner.clock()

    streamed = runner.stream([sys.executable, "-c", script], tee)

    took = runner.clock() - began
    assert streamed.returncode == 0
    read_at = [at for at, _ in calls]
    # Each read keeps the time it was read at, not the time of its batch.
    assert read_at == sorted(read_at)
    assert read_at[-1] - read_at[0] >= 0.8 * (lines - 1) * apart
    # Calls less than half the lines' spacing apart are one wake-up. Taken as they came, each
    # line would be one; batched, the wake-ups are at least BATCH_SECONDS apart.
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(calls)]
    wake_ups = 1 + sum(gap > apart / 2 for gap in gaps)
    assert wake_ups <= took / _Reader.BATCH_SECONDS + 2


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
    runner.start_early(argv)
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
    runner.start_early([sys.executable, "-c", "import time; time.sleep(60)"])
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
    runner.start_early([sys.executable, "-c", "import time; time.sleep(60)"])
    early = runner._early
    assert early is not None

    runner.discard_early()

    assert early.proc.poll() is not None


def test_a_command_that_cannot_start_early_is_left_to_its_stream() -> None:
    runner = Subprocesses()
    runner.start_early(["/nonexistent/nix", "build"])
    try:
        runner.stream(["/nonexistent/nix", "build"], Tee(on_lines=print))
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("the stream should fail as it does without an early start")


def test_a_command_started_early_that_ended_before_it_was_taken_is_timed_to_its_end() -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('done\\n')"]
    runner = Subprocesses()
    runner.start_early(argv)
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
