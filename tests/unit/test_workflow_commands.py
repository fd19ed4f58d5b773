from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from nix_cache_action.github.workflow_commands import (
    Annotation,
    AnnotationBuffer,
    AnnotationLevel,
    WorkflowCommands,
    escape_data,
    escape_property,
    neutral,
    neutral_json,
    summary_room,
    write_outputs,
    write_summary,
)
from nix_cache_action.limits import GITHUB_SUMMARY_LIMIT
from nix_cache_action.render.summary import render_summary
from nix_cache_action.report import Report

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


# --- reading back what the runner would read ------------------------------------------------


@dataclass(frozen=True)
class Command:
    name: str
    properties: dict[str, str]
    data: str


def unescape_data(text: str) -> str:
    # `%25` last, as the runner does, so `%250A` stays the literal text `%0A`.
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return (
        text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
    )


def parse_commands(output: str) -> list[Command]:
    """Parse `::name k=v,k=v::data` lines the way the runner's ActionCommand does."""
    commands = []
    for line in output.splitlines():
        assert line.startswith("::"), line
        head, separator, data = line[2:].partition("::")
        assert separator, line
        name, _, props = head.partition(" ")
        properties = {}
        for pair in filter(None, props.split(",")):
            key, equals, value = pair.partition("=")
            assert equals, pair
            properties[key] = unescape_property(value)
        commands.append(Command(name, properties, unescape_data(data)))
    return commands


def parse_output_file(text: str) -> dict[str, str]:
    """Read a GITHUB_OUTPUT file as the runner documents it: `name=value` or a heredoc."""
    outputs: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        equals = line.find("=")
        heredoc = line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            outputs[line[:equals]] = line[equals + 1 :]
        elif heredoc >= 0:
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            body = []
            for body_line in lines:
                if body_line == delimiter:
                    break
                body.append(body_line)
            else:
                pytest.fail(f"heredoc for {name!r} never ends with {delimiter!r}")
            outputs[name] = "\n".join(body)
        else:
            pytest.fail(f"invalid line in output file: {line!r}")
    return outputs


def run(action: Callable[[WorkflowCommands], object]) -> str:
    stream = io.StringIO()
    action(WorkflowCommands(stream))
    return stream.getvalue()


# --- escaping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("%", "%25"),
        ("\r", "%0D"),
        ("\n", "%0A"),
        (":", ":"),
        (",", ","),
        ("100%\r\ndone", "100%25%0D%0Adone"),
        ("%0A", "%250A"),
        ("plain text", "plain text"),
    ],
)
def test_escape_data(raw: str, escaped: str) -> None:
    assert escape_data(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("%", "%25"),
        ("\r", "%0D"),
        ("\n", "%0A"),
        (":", "%3A"),
        (",", "%2C"),
        ("a:b,c%\n", "a%3Ab%2Cc%25%0A"),
        ("%3A", "%253A"),
    ],
)
def test_escape_property(raw: str, escaped: str) -> None:
    assert escape_property(raw) == escaped


def test_every_special_character_round_trips() -> None:
    nasty = "50% of x: a,b\r\nnext::line %0A %3A ::error::x"
    output = run(lambda c: c.warning(nasty, title=nasty, file=nasty, line=4))
    assert output.count("\n") == 1
    [command] = parse_commands(output)
    assert command == Command("warning", {"title": nasty, "file": nasty, "line": "4"}, nasty)


# --- commands -------------------------------------------------------------------------------


def test_error_with_every_property() -> None:
    output = run(lambda c: c.error("drv\nfailed", title="Build: x, y", file="flake.nix", line=3))
    assert output == "::error title=Build%3A x%2C y,file=flake.nix,line=3::drv%0Afailed\n"


def test_property_order_is_fixed_and_missing_ones_are_left_out() -> None:
    output = run(lambda c: c.notice("m", line=7, file="a.nix"))
    assert output == "::notice file=a.nix,line=7::m\n"


@pytest.mark.parametrize("level", ["notice", "warning", "error"])
def test_annotation_without_properties(level: str) -> None:
    output = run(lambda c: getattr(c, level)("hello", title="", file=None))
    assert output == f"::{level}::hello\n"


def test_annotation_line_must_be_positive() -> None:
    with pytest.raises(ValueError, match="line"):
        run(lambda c: c.error("x", line=0))


def test_add_mask_escapes_and_skips_empty() -> None:
    def mask(commands: WorkflowCommands) -> None:
        commands.add_mask("s3cr%t\nline2")
        commands.add_mask("")

    output = run(mask)
    assert output == "::add-mask::s3cr%25t%0Aline2\n"


def test_debug() -> None:
    assert run(lambda c: c.debug("a: b, c")) == "::debug::a: b, c\n"


def test_group_encloses_and_ends_even_on_error() -> None:
    stream = io.StringIO()
    commands = WorkflowCommands(stream)

    def build() -> None:
        with commands.group("Build %1\n"):
            stream.write("inside\n")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        build()
    assert stream.getvalue() == "::group::Build %251%0A\ninside\n::endgroup::\n"


def test_default_stream_is_stdout_at_construction(capsys: pytest.CaptureFixture[str]) -> None:
    WorkflowCommands().notice("to stdout")
    assert capsys.readouterr().out == "::notice::to stdout\n"


# --- annotation cap -------------------------------------------------------------------------


def errors(count: int, level: AnnotationLevel = AnnotationLevel.ERROR) -> list[Annotation]:
    return [
        Annotation(level, f"message {n}", title=f"{level.value} {n}") for n in range(1, count + 1)
    ]


def flush(annotations: list[Annotation]) -> list[Command]:
    buffer = AnnotationBuffer()
    for annotation in annotations:
        buffer.add(annotation)
    return parse_commands(run(buffer.flush))


def test_twenty_five_errors_become_ten() -> None:
    commands = flush(errors(25))
    assert [c.name for c in commands] == ["error"] * 10
    assert [c.data for c in commands[:9]] == [f"message {n}" for n in range(1, 10)]
    held_back = "; ".join(f"error {n}" for n in range(10, 26))
    assert commands[9].data == f"and 16 more errors: {held_back}"


def test_exactly_ten_are_all_shown() -> None:
    commands = flush(errors(10))
    assert [c.data for c in commands] == [f"message {n}" for n in range(1, 11)]


def test_eleven_show_nine_and_count_two() -> None:
    commands = flush(errors(11))
    assert len(commands) == 10
    assert commands[9].data == "and 2 more errors: error 10; error 11"


def test_each_type_is_capped_on_its_own() -> None:
    mixed = errors(25) + errors(12, AnnotationLevel.WARNING) + errors(3, AnnotationLevel.NOTICE)
    commands = flush(mixed)
    names = [c.name for c in commands]
    assert names.count("error") == 10
    assert names.count("warning") == 10
    assert names.count("notice") == 3
    overflow = {c.name: c.data for c in commands if c.data.startswith("and ")}
    assert overflow["error"].startswith("and 16 more errors: ")
    assert overflow["warning"].startswith("and 3 more warnings: ")
    assert "notice" not in overflow


def test_shown_annotations_keep_their_order_across_types() -> None:
    mixed = [
        Annotation(AnnotationLevel.WARNING, "w1"),
        Annotation(AnnotationLevel.ERROR, "e1"),
        Annotation(AnnotationLevel.NOTICE, "n1"),
        Annotation(AnnotationLevel.WARNING, "w2"),
    ]
    assert [c.data for c in flush(mixed)] == ["w1", "e1", "n1", "w2"]


def test_overflow_uses_the_first_message_line_without_a_title() -> None:
    untitled = [Annotation(AnnotationLevel.NOTICE, f"line {n}\nmore") for n in range(12)]
    commands = flush(untitled)
    assert commands[-1].data == "and 3 more notices: line 9; line 10; line 11"


def test_overflow_message_is_bounded() -> None:
    long_titles = [
        Annotation(AnnotationLevel.ERROR, "m", title=f"{n:03} " + "x" * 200) for n in range(300)
    ]
    commands = flush(long_titles)
    assert len(commands) == 10
    last = commands[-1].data
    assert last.startswith("and 291 more errors: 009 ")
    assert last.endswith("; …")
    assert len(last) < 1100


def test_flush_empties_the_buffer() -> None:
    buffer = AnnotationBuffer()
    buffer.add(Annotation(AnnotationLevel.ERROR, "once"))
    assert len(buffer) == 1
    assert run(buffer.flush) == "::error::once\n"
    assert len(buffer) == 0
    assert run(buffer.flush) == ""


# --- step outputs ---------------------------------------------------------------------------

DELIMITER = re.compile(
    r"ghadelimiter_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)


def test_outputs_read_back_with_random_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier=1\n", encoding="utf-8")
    outputs = {
        "report-path": "/tmp/report.json",
        "summary": "line one\nline two\n",
        "tricky": "a=b<<EOF\nEOF\n%0A ::error::x",
        "empty": "",
        "unicode_1": "ünïcødé €",
    }
    write_outputs(path, outputs)
    text = path.read_text(encoding="utf-8")
    assert parse_output_file(text) == {"earlier": "1", **outputs}
    delimiters = DELIMITER.findall(text)
    # Each entry opens and closes with its own delimiter.
    assert len(delimiters) == 2 * len(outputs)
    assert len(set(delimiters)) == len(outputs)
    assert text.startswith("earlier=1\nreport-path<<ghadelimiter_")


def test_outputs_heredoc_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    path = tmp_path / "output"
    write_outputs(path, {"verdict": "pass"})
    delimiter = f"ghadelimiter_{fixed}"
    assert path.read_bytes() == f"verdict<<{delimiter}\npass\n{delimiter}\n".encode()


@pytest.mark.parametrize("name", ["", "a b", "a=b", "a<<b", "ä", "x\ny", "a.b"])
def test_invalid_output_names_write_nothing(tmp_path: Path, name: str) -> None:
    path = tmp_path / "output"
    path.write_text("kept=1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="output name"):
        write_outputs(path, {"good": "1", name: "v"})
    assert path.read_text(encoding="utf-8") == "kept=1\n"


def test_value_holding_the_delimiter_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    path = tmp_path / "output"
    injected = f"x\nghadelimiter_{fixed}\nadmin=true"
    with pytest.raises(ValueError, match="value must not contain the delimiter"):
        write_outputs(path, {"good": "1", "evil": injected})
    assert not path.exists() or path.read_text(encoding="utf-8") == ""


# --- the job summary ------------------------------------------------------------------------


def test_summary_is_appended_after_what_the_step_wrote(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("earlier\n", encoding="utf-8")
    write_summary(path, "## Report\n\nall good ✓\n")
    assert path.read_text(encoding="utf-8") == "earlier\n## Report\n\nall good ✓\n"


def test_summary_path_is_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    write_summary(path, "hello\n")
    assert path.read_text(encoding="utf-8") == "hello\n"


def test_summary_room_counts_earlier_writers(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    assert summary_room(path) == GITHUB_SUMMARY_LIMIT
    path.write_bytes(b"x" * 1000)
    assert summary_room(path) == GITHUB_SUMMARY_LIMIT - 1000
    assert summary_room(path, limit=500) == 0


def test_a_summary_rendered_for_the_room_keeps_the_file_under_the_limit(tmp_path: Path) -> None:
    # The renderer is the one guard: sized to the room left, the file stays under the limit.
    path = tmp_path / "summary.md"
    path.write_bytes(b"x" * 3000)
    report = Report(errors=tuple(f"error: {'e' * 500} {i}" for i in range(200)))
    write_summary(path, render_summary(report, limit=summary_room(path, limit=8000)))
    assert 3000 < path.stat().st_size <= 8000


# --- neutral text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "::set-output name=x::y",
        "   ::error::indented",
        "ok line\r::warning::after a carriage return",
        "first\n\t::add-mask::secret",
        "prefix ##[stop-commands]zzz",
        "##[error]at the start",
    ],
)
def test_neutral_text_holds_no_command_the_runner_would_run(text: str) -> None:
    shown = neutral(text)
    for line in shown.split("\n"):
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line, line
    # It reads the same: only zero-width spaces were added.
    assert shown.replace("\u200b", "") == text.replace("\r\n", "\n").replace("\r", "\n")


def test_neutral_json_decodes_to_the_same_value() -> None:
    value = {"error": "builder said ##[add-mask]x", "line": "::set-output name=a::b"}
    text = neutral_json(json.dumps(value, indent=2))
    assert "##[" not in text
    assert json.loads(text) == value
