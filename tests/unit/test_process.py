"""How a streamed run's stderr becomes lines: Subprocesses.stream on a real child process, and
the reader under it (`_pump`) on scripted reads, whose chunk boundaries fall anywhere."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

from nix_cache_action.nix.process import CHUNK, Subprocesses, Tee, _LogCopy, _pump


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
    _pump(Reads(chunks), tee.on_lines, _LogCopy(tee), lambda: 0.0)  # type: ignore[arg-type]
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
    _pump(pipe, lambda _lines, _now: None, _LogCopy(Tee(on_lines=print)), lambda: 0.0)  # type: ignore[arg-type]
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
