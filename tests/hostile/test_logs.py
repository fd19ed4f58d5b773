"""`analyze` on recorded logs that are broken, huge or hostile: logs real Nix 2.8 wrote, then cut,
padded or spiked. No traceback, a truthful report of bounded size, every text in it at most a
few KiB with a visible cut marker, and nothing the runner would take for a command."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from tests.hostile.conftest import Hostile, RecordedLogs
    from tests.hostile.hostile_payloads import PAYLOADS
    from tests.hostile.standin_nix import BROKEN_RECORDS
else:
    from hostile_payloads import PAYLOADS
    from standin_nix import BROKEN_RECORDS

TEXT_LIMIT = 8 * 1024
CUT = re.compile(r"cut|truncat|…", re.IGNORECASE)
HUGE = 20_000_000


def record(obj: object) -> bytes:
    return b"@nix " + json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def write(hostile: Hostile, data: bytes, name: str = "nix.log") -> Path:
    path = hostile.tmp / name
    path.write_bytes(data)
    return path


def insert_before_stop(log: bytes, activity: int, extra: bytes) -> bytes:
    """`extra` lines just before the activity's stop record."""
    stop = f'@nix {{"action":"stop","id":{activity}}}'.encode()
    at = log.index(stop)
    return log[:at] + extra + log[at:]


def texts(data: Mapping[str, Any]) -> list[str]:
    found = [*data["errors"], *data["warnings"], *data["notes"]]
    found += [line for b in data["builds"] for line in b["log_tail"]]
    found += [b["error"] for b in data["builds"] if b["error"]]
    found += [b["drv"] for b in data["builds"]]
    if data["stopped"]:
        found.append(data["stopped"])
    return found


def bounded(data: Mapping[str, Any], *, cut_expected: bool = True) -> None:
    long = [t for t in texts(data) if len(t.encode()) > TEXT_LIMIT]
    assert not long, f"{len(long)} texts over {TEXT_LIMIT} bytes, the first {len(long[0])} long"
    if cut_expected:
        assert any(CUT.search(t) for t in texts(data)), "nothing says that text was cut"


# --- not a log at all ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param("\n".join(PAYLOADS.values()).encode() + b"\n", id="plain-payloads"),
        pytest.param(bytes(range(256)) * 4096, id="binary"),
        pytest.param(b"@nix " * 200_000, id="prefixes-only"),
    ],
)
def test_not_a_log(hostile: Hostile, content: bytes) -> None:
    run = hostile.cli("analyze", str(write(hostile, content)))
    data = run.check(exit=1, verdict="failed", stopped=True)
    assert "@nix" in data["stopped"], data["stopped"]
    assert len(run.stderr) < 16_384, "the error quotes too much of the file"


def test_carriage_returns_only(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.ok.replace(b"\n", b"\r")
    run = hostile.cli("analyze", str(write(hostile, log)))
    run.check(exit={0, 1})


# --- huge ----------------------------------------------------------------------------------------


def test_build_log_line_of_20_mb(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.fail
    fails = recorded_logs.activity(log, "-fails.drv")
    huge = record({"action": "result", "fields": ["y" * HUGE], "id": fails, "type": 101})
    run = hostile.cli("analyze", str(write(hostile, insert_before_stop(log, fails, huge))))
    data = run.check(exit=1, verdict="failed")
    bounded(data)


def test_plain_line_of_20_mb(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.ok + b"x" * HUGE + b"\n"
    run = hostile.cli("analyze", str(write(hostile, log)))
    data = run.check(exit=0, verdict="ok")
    bounded(data, cut_expected=False)


def test_error_message_of_20_mb(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.fail + record({"action": "msg", "level": 0, "msg": "error: " + "e" * HUGE})
    run = hostile.cli("analyze", str(write(hostile, log)))
    data = run.check(exit=1, verdict="failed")
    bounded(data)


def test_derivation_path_of_20_mb(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    drv = "/tmp/store/" + "d" * HUGE + "-huge.drv"
    start = {
        "action": "start",
        "fields": [drv, "", 1, 1],
        "id": 77,
        "level": 3,
        "text": f"building '{drv}'",
        "type": 105,
    }
    log = recorded_logs.ok + record(start) + b'@nix {"action":"stop","id":77}\n'
    run = hostile.cli("analyze", str(write(hostile, log)))
    data = run.check(exit={0, 1})
    # No Nix writes such a path: the record is not believed, kept as text, and said so.
    bounded(data, cut_expected=False)
    assert not any(b["drv"].endswith("-huge.drv") for b in data["builds"])
    assert any("not @nix records" in note for note in data["notes"]), data["notes"]


def test_log_of_50_mb(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.fail
    fails = recorded_logs.activity(log, "-fails.drv")
    line = "z" * 1000
    lines = b"".join(
        record({"action": "result", "fields": [f"{i} {line}"], "id": fails, "type": 101})
        for i in range(50_000)
    )
    path = write(hostile, insert_before_stop(log, fails, lines))
    started = time.monotonic()
    run = hostile.cli("analyze", str(path))
    took = time.monotonic() - started
    data = run.check(exit=1, verdict="failed")
    bounded(data, cut_expected=False)
    (build,) = [b for b in data["builds"] if b["status"] == "failed"]
    assert build["log_tail"][-1].startswith("49999 "), build["log_tail"][-1][:40]
    assert took < 60, f"50 MB took {took:.0f} s"


@pytest.mark.parametrize("level", [0, 1], ids=["errors", "warnings"])
def test_ten_thousand_distinct_messages(
    hostile: Hostile, recorded_logs: RecordedLogs, level: int
) -> None:
    word = "error" if level == 0 else "warning"
    messages = b"".join(
        record({"action": "msg", "level": level, "msg": f"{word}: number {i}"})
        for i in range(10_000)
    )
    run = hostile.cli("analyze", str(write(hostile, recorded_logs.fail + messages)))
    data = run.check(exit=1, verdict="failed")
    assert len(data["errors"]) <= 60, len(data["errors"])
    assert len(data["warnings"]) <= 60, len(data["warnings"])
    assert run.report_path is not None
    assert run.report_path.stat().st_size < 256 * 1024


def test_message_of_many_lines(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    text = "error: many lines\n" + "::error::line\n" * 200_000
    log = recorded_logs.fail + record({"action": "msg", "level": 0, "msg": text})
    run = hostile.cli("analyze", str(write(hostile, log)))
    data = run.check(exit=1, verdict="failed")
    bounded(data)


# --- broken --------------------------------------------------------------------------------------


def test_log_cut_in_the_middle(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.ok
    at = log.index(b'"type":105') + 20
    run = hostile.cli("analyze", str(write(hostile, log[:at])))
    data = run.check(exit=1, verdict="failed")
    assert data["incomplete"] or data["stopped"], data


def test_last_line_cut_mid_record(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.ok.rstrip(b"\n")
    run = hostile.cli("analyze", str(write(hostile, log[: len(log) - 7])))
    data = run.check(exit={0, 1})
    # The broken record is not lost without a word.
    assert data["notes"] or data["incomplete"] or data["stopped"], data


@pytest.mark.parametrize("variant", sorted(BROKEN_RECORDS))
def test_broken_record_in_a_good_log(
    hostile: Hostile, recorded_logs: RecordedLogs, variant: str
) -> None:
    log = BROKEN_RECORDS[variant] + b"\n" + recorded_logs.ok + BROKEN_RECORDS[variant] + b"\n"
    run = hostile.cli("analyze", str(write(hostile, log)))
    data = run.check(exit={0, 1})
    if data["verdict"] == "ok":
        assert any("not @nix records" in n or "not read" in n for n in data["notes"]), data["notes"]
    elif variant == "truncated":
        # A record cut short as the log's last line: the log was cut, and the report says so.
        assert data["incomplete"], data
        assert any("cut in the middle" in n for n in data["notes"]), data["notes"]
    else:
        assert data["stopped"], data


def test_numbers_json_does_not_allow(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.ok
    weird = (
        b'@nix {"action":"result","id":NaN,"type":105,"fields":[NaN,Infinity,-Infinity,1e999]}\n'
        b'@nix {"action":"start","id":1e999,"level":3,"type":105,"fields":["x.drv","",1,1]}\n'
        b'@nix {"action":"result","fields":[Infinity,1e400,0,0],"id":1,"type":105}\n'
    )
    run = hostile.cli("analyze", str(write(hostile, log + weird)))
    run.check(exit={0, 1})


def test_bytes_that_are_not_utf8(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.fail
    fails = recorded_logs.activity(log, "-fails.drv")
    spiked = (
        f'@nix {{"action":"result","fields":["\xff\xfe tail"],"id":{fails},"type":101}}\n'.encode(
            "latin-1"
        )
        + b"plain \xff\xfe\x00 line\n"
    )
    run = hostile.cli("analyze", str(write(hostile, insert_before_stop(log, fails, spiked))))
    data = run.check(exit=1, verdict="failed")
    (build,) = [b for b in data["builds"] if b["status"] == "failed"]
    assert any("tail" in line for line in build["log_tail"]), build["log_tail"]


# --- hostile -------------------------------------------------------------------------------------


def test_payloads_in_errors_and_build_log(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.fail
    fails = recorded_logs.activity(log, "-fails.drv")
    lines = b"".join(
        record({"action": "result", "fields": [p], "id": fails, "type": 101})
        for p in PAYLOADS.values()
    )
    errors = b"".join(
        record({"action": "msg", "level": 0, "msg": f"error: {p}"}) for p in PAYLOADS.values()
    )
    path = write(hostile, insert_before_stop(log, fails, lines) + errors)
    run = hostile.cli("analyze", str(path))
    run.check(exit=1, verdict="failed")
    assert "PWNED" in run.summary


def test_pipe_with_arrival_timing(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = b"garbage \xff\n" + recorded_logs.fail + BROKEN_RECORDS["nested"] + b"\n"
    run = hostile.cli("analyze", "-", "--timing", "arrival", input_bytes=log)
    data = run.check(exit=1, verdict="failed")
    assert data["runs"][0]["label"] == "analyze"


def test_json_output_of_a_hostile_log(hostile: Hostile, recorded_logs: RecordedLogs) -> None:
    log = recorded_logs.fail + record({"action": "msg", "level": 0, "msg": "error: " + "j" * HUGE})
    run = hostile.cli("analyze", str(write(hostile, log)), "--json")
    run.check(exit=1, verdict="failed")
    printed = json.loads(run.stdout)
    assert printed["verdict"] == "failed"
    assert len(run.stdout) <= 1024 * 1024, len(run.stdout)
