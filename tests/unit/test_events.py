"""The internal-json parser: every activity and result type, and lines it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nix_cache_action.nix.events import (
    ActivityStarted,
    ActivityStopped,
    ActivityType,
    BuildLogLine,
    BuildResult,
    BuildStarted,
    CopyPathStarted,
    FileTransferStarted,
    Message,
    OtherResult,
    PlainText,
    Progress,
    QueryPathInfoStarted,
    SubstituteStarted,
    parse_line,
    progress_activity_id,
)

LOGS = Path(__file__).parent.parent / "logs"


def line(record: dict[str, object]) -> bytes:
    # Nix writes keys sorted (nlohmann::json), which the fast path relies on.
    return b"@nix " + json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def start(type_: int, fields: list[object], **extra: object) -> bytes:
    return line(
        {
            "action": "start",
            "id": 7,
            "level": 3,
            "text": "t",
            "type": type_,
            "fields": fields,
            **extra,
        }
    )


def result(type_: int, fields: list[object]) -> bytes:
    return line({"action": "result", "id": 7, "type": type_, "fields": fields})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            start(100, ["/s/a-x", "http://c", "local"]),
            CopyPathStarted(
                7,
                ActivityType.COPY_PATH,
                3,
                "t",
                None,
                ("/s/a-x", "http://c", "local"),
                "/s/a-x",
                "http://c",
                "local",
            ),
        ),
        (
            start(101, ["http://c/a.narinfo"]),
            FileTransferStarted(
                7,
                ActivityType.FILE_TRANSFER,
                3,
                "t",
                None,
                ("http://c/a.narinfo",),
                "http://c/a.narinfo",
            ),
        ),
        (
            start(105, ["/s/d.drv", "", 1, 1]),
            BuildStarted(7, ActivityType.BUILD, 3, "t", None, ("/s/d.drv", "", 1, 1), "/s/d.drv"),
        ),
        (
            start(108, ["/s/a-x", "http://c"]),
            SubstituteStarted(
                7,
                ActivityType.SUBSTITUTE,
                3,
                "t",
                None,
                ("/s/a-x", "http://c"),
                "/s/a-x",
                "http://c",
            ),
        ),
        (
            start(109, ["/s/a-x", "http://c"]),
            QueryPathInfoStarted(
                7,
                ActivityType.QUERY_PATH_INFO,
                3,
                "t",
                None,
                ("/s/a-x", "http://c"),
                "/s/a-x",
                "http://c",
            ),
        ),
        (
            start(110, ["/s/d.drv"]),
            ActivityStarted(7, ActivityType.POST_BUILD_HOOK, 3, "t", None, ("/s/d.drv",)),
        ),
        (result(101, ["\x1b[31mhello\x1b[0m"]), BuildLogLine(7, "hello")),
        (result(105, [1, 2, 3, 4]), Progress(7, 1, 2, 3, 4)),
        # Results nothing reads stay OtherResult, with their number and fields.
        (result(100, [12, 3]), OtherResult(7, 100, (12, 3), None)),
        (result(104, ["buildPhase"]), OtherResult(7, 104, ("buildPhase",), None)),
        (result(108, ["fetching"]), OtherResult(7, 108, ("fetching",), None)),
    ],
)
def test_each_known_type(raw: bytes, expected: object) -> None:
    assert parse_line(raw) == expected


@pytest.mark.parametrize("type_", [0, 102, 103, 104, 106, 107, 111, 112])
def test_activities_without_fields(type_: int) -> None:
    event = parse_line(line({"action": "start", "id": 1, "level": 0, "text": "", "type": type_}))
    assert type(event) is ActivityStarted
    assert event.type == ActivityType(type_)
    assert event.fields == ()


def test_unknown_types_stay_numbers() -> None:
    event = parse_line(line({"action": "start", "id": 1, "level": 0, "text": "x", "type": 777}))
    assert isinstance(event, ActivityStarted)
    assert event.type == 777
    assert not isinstance(event.type, ActivityType)
    other = parse_line(result(999, [1, "a"]))
    assert other == OtherResult(7, 999, (1, "a"), None)


def test_parent_zero_means_none_and_is_kept_otherwise() -> None:
    assert parse_line(start(108, ["/s/a", "c"], parent=0)).parent is None  # type: ignore[union-attr]
    assert parse_line(start(108, ["/s/a", "c"], parent=42)).parent == 42  # type: ignore[union-attr]


def test_determinate_payload_results() -> None:
    payload = {"path": {"drvPath": "x-a.drv", "outputs": ["*"]}, "status": "Built", "success": True}
    event = parse_line(
        line({"action": "result", "id": 5, "payload": payload, "type": 110, "sid": "31d57f8c"})
    )
    assert event == BuildResult(5, payload)
    assert isinstance(event, BuildResult)
    assert event.success is True
    failed = BuildResult(5, {"status": "PermanentFailure"})
    assert failed.success is False
    mismatch = parse_line(
        line(
            {
                "action": "result",
                "id": 5,
                "type": 109,
                "payload": {"storePath": "/s/a.drv", "got": "sha256-x"},
            }
        )
    )
    # Determinate's hash-mismatch result is not read: kept whole, with its payload.
    assert mismatch == OtherResult(5, 109, (), {"storePath": "/s/a.drv", "got": "sha256-x"})


def test_message_strips_ansi_and_keeps_location() -> None:
    event = parse_line(
        line(
            {
                "action": "msg",
                "level": 0,
                "msg": "\x1b[31;1merror:\x1b[0m boom",
                "raw_msg": "boom",
                "file": "/f.nix",
                "line": 3,
                "column": None,
            }
        )
    )
    assert event == Message(0, "error: boom", "boom", "/f.nix", 3, None)
    assert isinstance(event, Message)
    assert event.is_error


@pytest.mark.parametrize(
    "raw",
    [
        b"plain text from a wrapper\n",
        b'@nix {"action":"start","id":1,"lev',  # a truncated last line
        b"@nix not json at all\n",
        b"@nix [1,2,3]\n",
        b'@nix {"action":"start","id":"x","type":105,"fields":[1]}\n',  # wrong field types
        b'@nix {"action":"teleport","id":1}\n',
        b"@nix \xff\xfe\n",
    ],
)
def test_unreadable_lines_become_text(raw: bytes) -> None:
    event = parse_line(raw)
    assert isinstance(event, PlainText)
    assert event.text == raw.decode("utf-8", "replace").rstrip("\n")


def test_stop() -> None:
    assert parse_line(b'@nix {"action":"stop","id":12}\n') == ActivityStopped(12)


def test_progress_fast_path_agrees_with_the_parser() -> None:
    # Every line of every recorded log: the fast path must name exactly the progress results.
    seen = 0
    for log in sorted(LOGS.glob("*.log")):
        for raw in log.read_bytes().splitlines(keepends=True):
            activity = progress_activity_id(raw)
            event = parse_line(raw)
            if activity is None:
                assert not isinstance(event, Progress) or b'"type":105}' not in raw
            else:
                seen += 1
                assert isinstance(event, Progress)
                assert int(activity) == event.id
    assert seen > 100


def test_build_start_with_type_105_is_not_progress() -> None:
    # Activity type 105 (build) and result type 105 (progress) share the number.
    raw = start(105, ["/s/d.drv", "", 1, 1])
    assert raw.rstrip(b"\n").endswith(b',"type":105}')
    assert progress_activity_id(raw) is None


def test_absurd_nesting_is_text_not_a_crash() -> None:
    raw = b"@nix " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    assert isinstance(parse_line(raw), PlainText)


def test_progress_id_with_sid() -> None:
    raw = b'@nix {"action":"result","fields":[1,2,0,0],"id":77,"sid":"s-1","type":105}\n'
    assert progress_activity_id(raw) == b"77"
