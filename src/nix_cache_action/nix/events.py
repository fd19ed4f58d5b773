"""Nix's `--log-format internal-json` records as typed events.

Each stderr line is either `@nix ` followed by one JSON object, or plain text (wrappers, remote
builders, Lix and a truncated last line all produce such lines). `parse_line` never raises: what it
cannot read becomes `PlainText`. Activity and result types this module does not know stay plain
ints so that a newer Nix never breaks the parser.
"""

from __future__ import annotations

import json
import re
from enum import IntEnum
from typing import Any, TypeAlias

from nix_cache_action.limits import TEXT_LIMIT, cut
from nix_cache_action.records import record

PREFIX = b"@nix "
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class ActivityType(IntEnum):
    UNKNOWN = 0
    COPY_PATH = 100
    FILE_TRANSFER = 101
    REALISE = 102
    COPY_PATHS = 103
    BUILDS = 104
    BUILD = 105
    OPTIMISE_STORE = 106
    VERIFY_PATHS = 107
    SUBSTITUTE = 108
    QUERY_PATH_INFO = 109
    POST_BUILD_HOOK = 110
    BUILD_WAITING = 111
    FETCH_TREE = 112


class ResultType(IntEnum):
    FILE_LINKED = 100
    BUILD_LOG_LINE = 101
    UNTRUSTED_PATH = 102
    CORRUPTED_PATH = 103
    SET_PHASE = 104
    PROGRESS = 105
    SET_EXPECTED = 106
    POST_BUILD_LOG_LINE = 107
    FETCH_STATUS = 108
    # Determinate Nix 3.x only, and only with a `payload` object instead of `fields`: upstream
    # master uses 109 for something else, so the payload is what tells them apart.
    HASH_MISMATCH = 109
    BUILD_RESULT = 110


def _activity_type(value: int) -> ActivityType | int:
    try:
        return ActivityType(value)
    except ValueError:
        return value


# --- activities -------------------------------------------------------------------------------


@record(slots=True)
class ActivityStarted:
    """An activity without fields of interest (counters, evaluation, unknown types)."""

    id: int
    type: ActivityType | int
    level: int
    text: str
    parent: int | None
    fields: tuple[int | str, ...] = ()


@record(slots=True)
class CopyPathStarted(ActivityStarted):
    path: str = ""
    from_uri: str = ""
    to_uri: str = ""


@record(slots=True)
class FileTransferStarted(ActivityStarted):
    url: str = ""


@record(slots=True)
class BuildStarted(ActivityStarted):
    drv: str = ""
    machine: str = ""  # "" means this machine
    round: int = 1
    rounds: int = 1

    @property
    def is_check(self) -> bool:
        # `nix build --rebuild` reuses the build activity; only its text tells the two apart.
        return self.text.startswith("checking outputs of")


@record(slots=True)
class SubstituteStarted(ActivityStarted):
    path: str = ""
    substituter: str = ""


@record(slots=True)
class QueryPathInfoStarted(ActivityStarted):
    path: str = ""
    cache: str = ""


@record(slots=True)
class ActivityStopped:
    id: int


# --- results ----------------------------------------------------------------------------------


@record(slots=True)
class BuildLogLine:
    id: int
    line: str


@record(slots=True)
class Progress:
    id: int
    done: int
    expected: int
    running: int
    failed: int


@record(slots=True)
class BuildResult:
    """Determinate Nix: the outcome of one build, as a structured payload."""

    id: int
    payload: dict[str, Any]

    @property
    def success(self) -> bool | None:
        success = self.payload.get("success")
        if isinstance(success, bool):
            return success
        status = self.payload.get("status")
        if isinstance(status, str):
            return status in {"Built", "Substituted", "AlreadyValid", "ResolvesToAlreadyValid"}
        return None


@record(slots=True)
class OtherResult:
    """A result type this module does not know (kept with its number)."""

    id: int
    type: int
    fields: tuple[int | str, ...]
    payload: dict[str, Any] | None


# --- messages and text ------------------------------------------------------------------------


@record(slots=True)
class Message:
    level: int
    text: str  # ANSI escapes removed
    raw_msg: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.level == 0


@record(slots=True)
class PlainText:
    """A line that is not an `@nix` record, or one that could not be read as one."""

    text: str


Event: TypeAlias = (
    ActivityStarted
    | ActivityStopped
    | BuildLogLine
    | Progress
    | BuildResult
    | OtherResult
    | Message
    | PlainText
)


# --- parsing ----------------------------------------------------------------------------------

PROGRESS_HEAD = b'@nix {"action":"result"'
PROGRESS_TAIL = b',"type":105}'


def progress_activity_id(line: bytes) -> bytes | None:
    """The activity id of a progress result, read without a JSON parser, else None.

    Progress results are nearly all of a real log (over 98% of a million-line log), and most
    matter to nobody, so this check decides cheaply whether a line needs parsing at all. It relies
    on Nix writing keys in sorted order (nlohmann::json); a line in any other shape returns None
    and goes through the full parser, so a different key order costs speed, never correctness.
    """
    body = line.rstrip(b"\r\n")
    if not (body.endswith(PROGRESS_TAIL) and body.startswith(PROGRESS_HEAD)):
        return None
    _, found, after = body.rpartition(b'"id":')
    if not found:
        return None
    # The id ends at the next comma: `type` follows it, or Determinate Nix 3.20+'s `sid`.
    return after.partition(b",")[0]


def _text(line: bytes) -> PlainText:
    return PlainText(cut(strip_ansi(line.decode("utf-8", "replace").rstrip("\r\n"))))


def cut_record(line: bytes) -> bool:
    """A record whose JSON ends before it is complete: what a log cut in the middle of writing
    its last line looks like (a record of an unknown shape is not cut)."""
    start = line.find(PREFIX + b"{")
    if start < 0:
        return False
    body = line[start + len(PREFIX) :].decode("utf-8", "replace").rstrip("\r\n")
    try:
        json.loads(body)
    except json.JSONDecodeError as error:
        # Cut: the text ends where more was expected, inside a string, or with no newline.
        return (
            error.pos >= len(body.rstrip())
            or error.msg.startswith("Unterminated string")
            or not line.endswith(b"\n")
        )
    except (ValueError, RecursionError):
        return False
    return False


def parse_line(line: bytes) -> Event:
    """One stderr line as an event; never raises."""
    if not line.startswith(PREFIX):
        # Determinate Nix writes "shutting down" with a line erase in front of the records it
        # sends while stopping: the record still counts.
        start = line.find(PREFIX + b"{")
        if start < 0:
            return _text(line)
        line = line[start:]
    try:
        record = _json(line[len(PREFIX) :])
    except (ValueError, RecursionError):  # a truncated line, absurd nesting
        return _text(line)
    if not isinstance(record, dict):
        return _text(line)
    try:
        return _event(record)
    except (KeyError, TypeError, ValueError, IndexError):
        # A record of a shape we do not know (wrong field types, missing keys) is kept as text
        # rather than stopping the report.
        return _text(line)


# json.loads of bytes first guesses their encoding; Nix writes UTF-8, so the text is decoded
# here and given to the decoder itself (a tenth of the time of each of a log's records).
_DECODE = json.JSONDecoder().decode


def _json(body: bytes) -> object:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # A builder's or a trace's bytes that are not UTF-8: the record still counts, with
        # those bytes replaced.
        text = body.decode("utf-8", "replace")
    return _DECODE(text)


def _fields(record: dict[str, Any]) -> tuple[int | str, ...]:
    raw = record.get("fields", [])  # omitted when empty
    if not isinstance(raw, list):
        raise TypeError("fields")
    return tuple(raw)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("int")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("str")
    return value


def _event(record: dict[str, Any]) -> Event:
    action = record["action"]
    if action == "result":
        return _result(record)
    if action == "stop":
        return ActivityStopped(_int(record["id"]))
    if action == "start":
        return _start(record)
    if action == "msg":
        raw = record.get("raw_msg")
        return Message(
            level=_int(record.get("level", 0)),
            text=cut(strip_ansi(_str(record["msg"]))),
            raw_msg=cut(strip_ansi(raw)) if isinstance(raw, str) else None,
            file=record.get("file") if isinstance(record.get("file"), str) else None,
            line=record.get("line") if isinstance(record.get("line"), int) else None,
            column=record.get("column") if isinstance(record.get("column"), int) else None,
        )
    raise ValueError(action)


def _start(record: dict[str, Any]) -> ActivityStarted:
    type_ = _activity_type(_int(record["type"]))
    fields = _fields(record)
    # A path or URL longer than any Nix writes: not a record to believe (kept as text).
    if any(isinstance(f, str) and len(f) > TEXT_LIMIT for f in fields):
        raise ValueError("oversized field")
    parent_raw = record.get("parent")
    common: dict[str, Any] = {
        "id": _int(record["id"]),
        "type": type_,
        "level": _int(record.get("level", 0)),
        "text": cut(_str(record.get("text", ""))),
        # `parent` exists from Nix 2.18; 0 means "no parent".
        "parent": parent_raw if isinstance(parent_raw, int) and parent_raw != 0 else None,
        "fields": fields,
    }
    if type_ == ActivityType.SUBSTITUTE:
        return SubstituteStarted(**common, path=_str(fields[0]), substituter=_str(fields[1]))
    if type_ == ActivityType.BUILD:
        return BuildStarted(
            **common,
            drv=_str(fields[0]),
            machine=_str(fields[1]) if len(fields) > 1 else "",
            round=_int(fields[2]) if len(fields) > 2 else 1,
            rounds=_int(fields[3]) if len(fields) > 3 else 1,
        )
    if type_ == ActivityType.COPY_PATH:
        return CopyPathStarted(
            **common, path=_str(fields[0]), from_uri=_str(fields[1]), to_uri=_str(fields[2])
        )
    if type_ == ActivityType.FILE_TRANSFER:
        return FileTransferStarted(**common, url=_str(fields[0]))
    if type_ == ActivityType.QUERY_PATH_INFO:
        return QueryPathInfoStarted(**common, path=_str(fields[0]), cache=_str(fields[1]))
    return ActivityStarted(**common)


def _result(record: dict[str, Any]) -> Event:
    """The results the ledger reads get their own type; the others stay `OtherResult`."""
    id_ = _int(record["id"])
    type_ = _int(record["type"])
    payload = record.get("payload")
    if isinstance(payload, dict):
        if type_ == ResultType.BUILD_RESULT:
            return BuildResult(id_, payload)
        return OtherResult(id_, type_, (), payload)
    f = _fields(record)
    if type_ == ResultType.PROGRESS:
        return Progress(id_, _int(f[0]), _int(f[1]), _int(f[2]), _int(f[3]))
    if type_ == ResultType.BUILD_LOG_LINE:
        return BuildLogLine(id_, cut(strip_ansi(_str(f[0]))))
    return OtherResult(id_, type_, f, None)
