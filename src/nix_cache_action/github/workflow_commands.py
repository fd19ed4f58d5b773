"""Workflow commands, step outputs and the job summary: how the action talks to the runner.

Commands are escaped exactly as @actions/core's command.ts escapes them and outputs use its
file-command heredoc form, so the runner reads them the same way it reads any JavaScript action.
"""

from __future__ import annotations

import re
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

# GitHub shows at most this many annotations of each type (error, warning, notice) per step and
# drops the rest without a word.
ANNOTATIONS_PER_TYPE = 10
# The overflow annotation lists what was held back; past this many characters it only counts.
OVERFLOW_LABELS_LIMIT = 1000
# GitHub aborts the upload of a step's summary above 1024 KiB, and the whole summary is lost.
SUMMARY_LIMIT_BYTES = 1024 * 1024

SUMMARY_CUT_NOTE = (
    "\n> [!WARNING]\n"
    "> This summary was cut to stay under GitHub's limit of 1 MiB per step."
    " The JSON report has the whole report.\n"
)
OUTPUT_NAME_MESSAGE = "output name {name!r} may hold only letters, digits, '-' and '_'"
DELIMITER_MESSAGE = "output {part} must not contain the delimiter {delimiter!r}; write it again"

_OUTPUT_NAME = re.compile(r"[A-Za-z0-9_-]+")
_FENCE = re.compile(r"(`{3,}|~{3,})")


class AnnotationLevel(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


@dataclass(frozen=True)
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

    def notice(
        self,
        message: str,
        *,
        title: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        self.annotate(Annotation(AnnotationLevel.NOTICE, message, title, file, line))

    def warning(
        self,
        message: str,
        *,
        title: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        self.annotate(Annotation(AnnotationLevel.WARNING, message, title, file, line))

    def error(
        self,
        message: str,
        *,
        title: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        self.annotate(Annotation(AnnotationLevel.ERROR, message, title, file, line))

    def annotate(self, annotation: Annotation) -> None:
        if annotation.line is not None and annotation.line < 1:
            raise ValueError(f"annotation line must be 1 or more, not {annotation.line}")
        # Same order as @actions/core's toCommandProperties; empty values are left out as it does.
        properties = {
            "title": annotation.title,
            "file": annotation.file,
            "line": None if annotation.line is None else str(annotation.line),
        }
        self._issue(annotation.level.value, annotation.message, properties)

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
    with path.open("a", encoding="utf-8", newline="") as file:
        file.write("".join(entries))


def write_summary(path: Path, markdown: str, limit: int = SUMMARY_LIMIT_BYTES) -> bool:
    """Append the job summary, cut to fit GitHub's limit; return whether it was cut."""
    # The limit is on the file, and earlier writers in the same step count against it.
    room = limit - (path.stat().st_size if path.exists() else 0)
    data = markdown.encode("utf-8")
    cut = len(data) > room
    if cut:
        data = _cut(data, room)
    with path.open("ab") as file:
        file.write(data)
    return cut


def _cut(data: bytes, room: int) -> bytes:
    note = SUMMARY_CUT_NOTE.encode("utf-8")
    budget = room - len(note)
    while budget > 0:
        kept = _keep_lines(data, budget)
        # A cut inside a code fence or an open <details> would swallow the note; close them.
        tail = _closers(kept.decode("utf-8")).encode("utf-8") + note
        if len(kept) + len(tail) <= room:
            return kept + tail
        # Strictly smaller each round, so the loop ends even if the closers keep growing.
        budget = min(budget - 1, len(kept) - 1, room - len(tail))
    return note if len(note) <= room else b""


def _keep_lines(data: bytes, budget: int) -> bytes:
    head = data[:budget]
    end = head.rfind(b"\n")
    if end >= 0:
        # A newline byte never occurs inside a multi-byte UTF-8 sequence: a safe place to cut.
        return head[: end + 1]
    # One line longer than the budget: cut between characters, never inside one, and end the
    # line so the note starts on its own.
    return head[:-1].decode("utf-8", errors="ignore").encode("utf-8") + b"\n"


def _closers(markdown: str) -> str:
    fence: str | None = None
    open_details = 0
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence) and not stripped.lstrip(fence[0]):
                fence = None
            continue
        match = _FENCE.match(stripped)
        if match:
            fence = match.group(1)
            continue
        open_details = max(
            0, open_details + stripped.count("<details") - stripped.count("</details")
        )
    closers = f"{fence}\n" if fence is not None else ""
    return closers + "</details>\n" * open_details
