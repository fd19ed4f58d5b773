"""Workflow commands, step outputs and the job summary: how the action talks to the runner.

Commands are escaped exactly as @actions/core's command.ts escapes them and outputs use its
file-command heredoc form, so the runner reads them the same way it reads any JavaScript action.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, TextIO

from nix_cache_action.limits import GITHUB_SUMMARY_LIMIT, cut, utf8
from nix_cache_action.records import record

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from pathlib import Path

# GitHub shows at most this many annotations of each type (error, warning, notice) per step and
# drops the rest without a word.
ANNOTATIONS_PER_TYPE = 10
# Characters of an annotation's message; GitHub shows a few lines of it anyway.
ANNOTATION_LIMIT = 4096
# The overflow annotation lists what was held back; past this many characters it only counts.
OVERFLOW_LABELS_LIMIT = 1000
OUTPUT_NAME_MESSAGE = "output name {name!r} may hold only letters, digits, '-' and '_'"
DELIMITER_MESSAGE = "output {part} must not contain the delimiter {delimiter!r}; write it again"

_OUTPUT_NAME = re.compile(r"[A-Za-z0-9_-]+")


class AnnotationLevel(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


@record
class Annotation:
    level: AnnotationLevel
    message: str
    title: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def label(self) -> str:
        """A short name for this annotation when it is listed among those held back."""
        if self.title:
            return self.title
        lines = self.message.strip().splitlines()
        return lines[0] if lines else self.level.value


def _annotation(
    level: AnnotationLevel, message: str, where: dict[str, str | int | None]
) -> Annotation:
    """`where` holds the optional `title`, `file` and `line` of an annotation."""
    title, file, line = where.pop("title", None), where.pop("file", None), where.pop("line", None)
    if where:
        raise TypeError(f"unknown annotation properties: {', '.join(sorted(where))}")
    return Annotation(
        level,
        message,
        title=None if title is None else str(title),
        file=None if file is None else str(file),
        line=line if isinstance(line, int) else None,
    )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A zero-width space: the line reads the same, and the runner no longer sees a command in it.
_BREAKER = "\u200b"


def neutral(text: str) -> str:
    """`text` as a line (or lines) the runner runs no command from, wherever it is printed.

    The runner splits at CR as at LF, honours `::cmd::` at a line's start after whitespace and
    `##[cmd]` anywhere in a line; both are broken with a zero-width space, and a lone CR becomes
    a line break of its own.
    """
    lines = []
    for raw in _LINE_BREAK.split(text):
        line = raw.replace("##[", f"##{_BREAKER}[")
        stripped = line.lstrip()
        if stripped.startswith("::"):
            line = line[: len(line) - len(stripped)] + f":{_BREAKER}:" + stripped[2:]
        lines.append(line)
    return "\n".join(lines)


def configure_logging(level: int | str) -> None:
    """Log the standard library's records (PyGithub's, in the action) to stderr at `level`,
    each `neutral`. The project's own debugging lines go through debug.py."""
    import logging  # noqa: PLC0415 - only a debugging run of the action needs it

    class NeutralFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return neutral(super().format(record))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(NeutralFormatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def neutral_json(text: str) -> str:
    """JSON text the runner runs no command from: `##[` occurs only inside strings, where
    `\\u005b` is the same `[`; no line of indented JSON starts with `::`."""
    return text.replace("##[", "##\\u005b")


def escape_data(value: str) -> str:
    # `%` first, or the escapes added for `\r` and `\n` would be escaped again.
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    # `:` ends the property list and `,` separates properties, so both are escaped in values.
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


class WorkflowCommands:
    """Writes `::command props::data` lines to a stream, the runner's own stdout by default."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # Looked up now rather than as a default argument, so a replaced sys.stdout is honoured.
        self._stream = sys.stdout if stream is None else stream

    def notice(self, message: str, **where: str | int | None) -> None:
        self.annotate(_annotation(AnnotationLevel.NOTICE, message, where))

    def warning(self, message: str, **where: str | int | None) -> None:
        self.annotate(_annotation(AnnotationLevel.WARNING, message, where))

    def error(self, message: str, **where: str | int | None) -> None:
        self.annotate(_annotation(AnnotationLevel.ERROR, message, where))

    def annotate(self, annotation: Annotation) -> None:
        if annotation.line is not None and annotation.line < 1:
            raise ValueError(f"annotation line must be 1 or more, not {annotation.line}")
        # Same order as @actions/core's toCommandProperties; empty values are left out as it does.
        properties = {
            "title": annotation.title,
            "file": annotation.file,
            "line": None if annotation.line is None else str(annotation.line),
        }
        # Bounded where it leaves: a message joins several lines of outside text.
        self._issue(annotation.level.value, cut(annotation.message, ANNOTATION_LIMIT), properties)

    def echo(self, text: str) -> None:
        """A plain line that may quote outside text (a path, an installable, an API's words):
        the runner honours `::cmd::` at a line's start and `##[cmd]` anywhere in it, so such a
        line is printed inside a pause, where neither form runs."""
        if "::" in text or "##[" in text:
            with self.paused():
                self._stream.write(text + "\n")
        else:
            self._stream.write(text + "\n")
            self._stream.flush()

    def echo_raw(self, text: str) -> None:
        """A line as it is, for inside `paused()`, where no command runs anyway."""
        self._stream.write(neutral(text) + "\n")

    def add_mask(self, value: str) -> None:
        # The runner rejects an empty mask with a warning of its own; there is nothing to hide.
        if value:
            self._issue("add-mask", value)

    def debug(self, message: str) -> None:
        self._issue("debug", message)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._issue("group", title)
        try:
            yield
        finally:
            self._issue("endgroup", "")

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No workflow command is honoured in between: what is printed meanwhile (a build log
        quoted by Nix) cannot add annotations, masks or outputs. The resume token is random,
        so the text in between cannot end the pause either."""
        import secrets  # noqa: PLC0415 - only the action pauses commands; 1 ms of each start

        resume = f"nix-cache-action-{secrets.token_hex(16)}"
        self._stream.write(f"::stop-commands::{resume}\n")
        try:
            yield
        finally:
            self._stream.write(f"::{resume}::\n")
            self._stream.flush()

    def _issue(
        self, command: str, data: str, properties: Mapping[str, str | None] | None = None
    ) -> None:
        text = f"::{command}"
        given = [(key, value) for key, value in (properties or {}).items() if value]
        if given:
            text += " " + ",".join(f"{key}={escape_property(value)}" for key, value in given)
        self._stream.write(f"{text}::{escape_data(data)}\n")
        # Nix writes to the same log from another process; flushing keeps the order readable.
        self._stream.flush()


class AnnotationBuffer:
    """Holds annotations until the end of the step so none is lost to GitHub's per-type cap."""

    def __init__(self, per_type: int = ANNOTATIONS_PER_TYPE) -> None:
        if per_type < 2:
            raise ValueError("per_type must leave room for one annotation and the overflow note")
        self._per_type = per_type
        self._annotations: list[Annotation] = []

    def add(self, annotation: Annotation) -> None:
        self._annotations.append(annotation)

    def extend(self, annotations: Iterable[Annotation]) -> None:
        self._annotations.extend(annotations)

    def __len__(self) -> int:
        return len(self._annotations)

    def flush(self, commands: WorkflowCommands) -> None:
        """Emit at most `per_type` of each type; the last slot of a full type lists the rest."""
        shown_per_level = {
            level: self._shown(sum(1 for item in self._annotations if item.level is level))
            for level in AnnotationLevel
        }
        shown = dict.fromkeys(AnnotationLevel, 0)
        held_back: dict[AnnotationLevel, list[Annotation]] = {
            level: [] for level in AnnotationLevel
        }
        for annotation in self._annotations:
            if shown[annotation.level] < shown_per_level[annotation.level]:
                shown[annotation.level] += 1
                commands.annotate(annotation)
            else:
                held_back[annotation.level].append(annotation)
        for level, rest in held_back.items():
            if rest:
                commands.annotate(_overflow(level, rest))
        self._annotations.clear()

    def _shown(self, count: int) -> int:
        return count if count <= self._per_type else self._per_type - 1


def _overflow(level: AnnotationLevel, rest: list[Annotation]) -> Annotation:
    labels = ""
    for index, annotation in enumerate(rest):
        label = annotation.label if index == 0 else f"; {annotation.label}"
        if len(labels) + len(label) > OVERFLOW_LABELS_LIMIT:
            labels += "; …"
            break
        labels += label
    return Annotation(
        level,
        f"and {len(rest)} more {level.value}s: {labels}",
        title=f"{len(rest)} more {level.value}s than GitHub shows",
    )


def write_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to the GITHUB_OUTPUT file in @actions/core's heredoc form."""
    import uuid  # noqa: PLC0415 - only the action writes outputs; 2 ms of each start

    entries = []
    for name, value in outputs.items():
        if not _OUTPUT_NAME.fullmatch(name):
            raise ValueError(OUTPUT_NAME_MESSAGE.format(name=name))
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        # A value holding the delimiter would end the heredoc early and let the rest of the
        # value set arbitrary outputs; @actions/core refuses it for the same reason.
        if delimiter in name:
            raise ValueError(DELIMITER_MESSAGE.format(part="name", delimiter=delimiter))
        if delimiter in value:
            raise ValueError(DELIMITER_MESSAGE.format(part="value", delimiter=delimiter))
        entries.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    # Everything is checked before anything is written, so a bad entry leaves no partial file.
    with path.open("ab") as file:
        file.write(utf8("".join(entries)))


def summary_room(path: Path, limit: int = GITHUB_SUMMARY_LIMIT) -> int:
    """Bytes a summary may still have: the limit is on the step's file, and earlier writers in
    the same step count against it."""
    used = path.stat().st_size if path.is_file() else 0
    return max(0, limit - used)


def write_summary(path: Path, markdown: str) -> None:
    """Append the job summary, rendered to fit `summary_room(path)`."""
    with path.open("ab") as file:
        file.write(utf8(markdown))
