"""Which workflow commands the GitHub Actions runner honours in a step's output: a replay.

The rules are those of actions/runner at commit 258d6c857db3519913f7deb6004b60172f8043ae
(2026-08-17), read from:

- `src/Runner.Common/ActionCommand.cs`: `TryParseV2` (the `::cmd props::data` form: the line is
  trimmed at its start with .NET's `String.TrimStart()`, which removes every `Char.IsWhiteSpace`
  character; properties are split on `,` and `=`, values unescaped `%0D %0A %3A %2C %25`; the
  data unescaped `%0D %0A %25`) and `TryParse` (the legacy `##[cmd props]data` form, found
  ANYWHERE in a line, up to the first `]` after it; properties split on `;`; values and data
  unescaped `%3B %0D %0A %5D %25`);
- `src/Runner.Worker/ActionCommandManager.cs`: `TryProcessCommand` (the v2 form is tried first,
  the legacy form only when it fails; a command name is looked up case-insensitively among the
  registered ones; `::stop-commands::TOKEN` registers TOKEN as a command and, until a command
  named TOKEN arrives in either form, nothing else is honoured; a stop token that is empty,
  `pause-logging` or the name of a registered command is refused with an exception) and
  `AddMaskCommandExtension` (the value and each of its lines, trimmed, become secrets);
- `src/Runner.Common/ExtensionManager.cs`: the registered commands (`set-env`, `set-output`,
  `save-state`, `add-path`, `add-mask`, `add-matcher`, `remove-matcher`, `warning`, `error`,
  `notice`, `debug`, `group`, `endgroup`, `echo`, plus `stop-commands`;
  `internal-set-repo-path` only while a runner plugin runs, so not here);
- `src/Runner.Sdk/ProcessInvoker.cs`: a step's stdout and stderr are read with
  `StreamReader.ReadLine()`, which ends a line at `\\n`, `\\r` or `\\r\\n`;
- `src/Runner.Worker/Handlers/OutputManager.cs`: both streams go through the same
  `ActionCommandManager`, so a pause opened on one stream holds for the other.

Not modelled: the `notice` command needs the server's "enhanced annotations" (taken as on, as on
github.com); .NET's culture-sensitive `StartsWith`/`IndexOf` under ICU can skip zero-width
characters, which the tests here never print; the masker's encoded variants (base64 and the
like). Comparisons are ordinal, as the runner's code means them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

RUNNER_COMMIT = "258d6c857db3519913f7deb6004b60172f8043ae"

STOP_COMMANDS = "stop-commands"
REGISTERED = frozenset(
    {
        STOP_COMMANDS,
        "set-env",
        "set-output",
        "save-state",
        "add-path",
        "add-mask",
        "add-matcher",
        "remove-matcher",
        "warning",
        "error",
        "notice",
        "debug",
        "group",
        "endgroup",
        "echo",
    }
)
ANNOTATIONS = frozenset({"error", "warning", "notice"})

# .NET's Char.IsWhiteSpace: what String.TrimStart() removes (Python's str.isspace differs: it
# also counts U+001C..U+001F and not U+180E's old status).
DOTNET_WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# StreamReader.ReadLine(): a line ends at \r\n, \r or \n, and at nothing else.
_LINE_END = re.compile(r"\r\n|\r|\n")
_V2_KEY = "::"
_LEGACY_PREFIX = "##["
_MASKED = "***"

Form = Literal["v2", "legacy"]


@dataclass(frozen=True)
class Command:
    """One command the runner parsed from a line of output."""

    name: str  # as written; `key` is what the runner compares
    properties: dict[str, str]  # keys lower-cased (the runner's dictionary ignores case)
    data: str
    form: Form
    line: str  # the whole line it came from
    number: int  # 1-based line number in its stream
    stream: str

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def title(self) -> str | None:
        return self.properties.get("title")


@dataclass
class Replay:
    """What the runner made of one stream."""

    stream: str
    lines: list[str] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)  # honoured, stop and resume included
    ignored: list[Command] = field(default_factory=list)  # parsed, but commands were stopped
    refused: list[Command] = field(default_factory=list)  # stop-commands with a refused token
    masks: list[str] = field(default_factory=list)  # secrets registered by add-mask
    shown: list[str] = field(default_factory=list)  # the log as shown: masked, commands left out
    paused: str | None = None  # the stop token still in force when the stream ended

    def named(self, *names: str) -> list[Command]:
        wanted = {n.lower() for n in names}
        return [c for c in self.commands if c.key in wanted]

    @property
    def annotations(self) -> list[Command]:
        return [c for c in self.commands if c.key in ANNOTATIONS]


def split_lines(text: str) -> list[str]:
    """The lines as the runner reads them (StreamReader.ReadLine)."""
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _unescape(value: str, mappings: tuple[tuple[str, str], ...]) -> str:
    for escaped, plain in mappings:
        value = value.replace(escaped, plain)
    return value


# In the order the runner applies them (ActionCommand.cs): `%25` last, so `%253A` stays `%3A`.
_DATA = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))
_LEGACY = (("%3B", ";"), ("%0D", "\r"), ("%0A", "\n"), ("%5D", "]"), ("%25", "%"))


def _pairs(text: str, separator: str) -> list[tuple[str, str]]:
    pairs = []
    for item in (p for p in text.split(separator) if p):
        key, sep, value = item.partition("=")
        # Split('=', 2, RemoveEmptyEntries): a pair needs a non-empty key and a non-empty value.
        if key and sep and value:
            pairs.append((key, value))
    return pairs


def _name_and_properties(
    info: str,
    registered: frozenset[str] | set[str],
    separator: str,
    escapes: tuple[tuple[str, str], ...],
    *,
    trim: bool,
) -> tuple[str, dict[str, str]]:
    """`cmd key=value...`, as both of the runner's parsers read it; only the `::` form trims the
    properties first (ActionCommand.TryParseV2 vs TryParse)."""
    space = info.find(" ")
    name = info if space < 0 else info[:space]
    if name.lower() not in registered:
        raise ValueError("not registered")
    properties: dict[str, str] = {}
    if space > 0:
        text = info[space + 1 :]
        for key, value in _pairs(text.strip() if trim else text, separator):
            properties[key.lower()] = _unescape(value, escapes)
    return name, properties


def parse_v2(line: str, registered: frozenset[str] | set[str]) -> tuple[str, dict[str, str], str]:
    """(name, properties, data) of a `::cmd props::data` line, or raise ValueError."""
    message = line.lstrip(DOTNET_WHITESPACE)
    if not message.startswith(_V2_KEY):
        raise ValueError("no ::")
    end = message.find(_V2_KEY, len(_V2_KEY))
    if end < 0:
        raise ValueError("no second ::")
    name, properties = _name_and_properties(
        message[len(_V2_KEY) : end], registered, ",", _PROPERTY, trim=True
    )
    return name, properties, _unescape(message[end + len(_V2_KEY) :], _DATA)


def parse_legacy(
    line: str, registered: frozenset[str] | set[str]
) -> tuple[str, dict[str, str], str]:
    """(name, properties, data) of a line holding `##[cmd props]data` anywhere, or ValueError."""
    start = line.find(_LEGACY_PREFIX)
    if start < 0:
        raise ValueError("no ##[")
    close = line.find("]", start)
    if close < 0:
        raise ValueError("no ]")
    name, properties = _name_and_properties(
        line[start + len(_LEGACY_PREFIX) : close], registered, ";", _LEGACY, trim=False
    )
    return name, properties, _unescape(line[close + 1 :], _LEGACY)


_Parser = Callable[[str, "frozenset[str] | set[str]"], tuple[str, dict[str, str], str]]
_PARSERS: tuple[tuple[Form, _Parser], ...] = (("v2", parse_v2), ("legacy", parse_legacy))


class Runner:
    """The runner's command state for one job step: the registered commands, a pause in force
    and the secrets masked so far. Feed it each stream in the order the runner would read it."""

    def __init__(self) -> None:
        self.registered: set[str] = set(REGISTERED)
        self.stop_token: str | None = None
        self.masks: list[str] = []

    def parse(self, line: str, number: int, stream: str) -> Command | None:
        if not line:
            return None
        for form, parser in _PARSERS:
            try:
                name, properties, data = parser(line, self.registered)
            except ValueError:
                continue
            return Command(name, properties, data, form, line, number, stream)
        return None

    def feed(self, text: str, stream: str = "stdout") -> Replay:
        replay = Replay(stream)
        for number, line in enumerate(split_lines(text), start=1):
            replay.lines.append(line)
            command = self.parse(line, number, stream)
            if command is None:
                replay.shown.append(self.mask(line))
                continue
            self._process(command, replay)
        replay.paused = self.stop_token
        replay.masks = list(self.masks)
        return replay

    def _process(self, command: Command, replay: Replay) -> None:
        if self.stop_token is not None:
            if command.key == self.stop_token.lower():
                self.registered.discard(self.stop_token.lower())
                self.stop_token = None
                replay.commands.append(command)
            else:
                replay.ignored.append(command)
            # Both are echoed to the log as they are (context.Output(input)), masked.
            replay.shown.append(self.mask(command.line))
            return
        if command.key == STOP_COMMANDS:
            token = command.data
            refused = (
                not token or token.lower() in self.registered or token.lower() == "pause-logging"
            )
            if refused:
                # ValidateStopToken throws: the step fails, nothing is paused.
                replay.refused.append(command)
                replay.shown.append(self.mask(command.line))
                return
            self.stop_token = token
            self.registered.add(token.lower())
            if len(token) > 6:
                self.masks.append(token)
            replay.commands.append(command)
            replay.shown.append(self.mask(command.line))
            return
        replay.commands.append(command)
        if command.key == "add-mask":
            # Never shown; the value and each of its lines, trimmed, become secrets.
            if command.data.strip():
                self.masks.append(command.data)
                self.masks.extend(p.strip() for p in re.split(r"[\r\n]", command.data) if p.strip())
        elif command.key in ANNOTATIONS:
            # The annotation's title and message are what the log and the run page show.
            shown = "\n".join(filter(None, (command.title, command.data)))
            replay.shown.extend(split_lines(self.mask(shown)) or [""])
        else:
            replay.shown.append(self.mask(command.data if command.key == "debug" else command.line))

    def mask(self, text: str) -> str:
        # Longest first, as the runner's masker replaces overlapping secrets.
        for secret in sorted(set(self.masks), key=len, reverse=True):
            text = text.replace(secret, _MASKED)
        return text


def replay(stdout: str, stderr: str = "") -> tuple[Replay, Replay]:
    """What the runner honours in a step's stdout and in its stderr.

    The two streams reach the runner interleaved in an order the tests cannot know, so each is
    replayed from a fresh state (stderr with the masks stdout registered before its first other
    line, which the action prints first of all): a command that only works in one interleaving
    is still found, in the stream that printed it.
    """
    out = Runner().feed(stdout, "stdout")
    err_runner = Runner()
    err_runner.masks = leading_masks(stdout)
    return out, err_runner.feed(stderr, "stderr")


def leading_masks(stdout: str) -> list[str]:
    """The secrets stdout's add-mask commands register before any other line is printed."""
    runner = Runner()
    for number, line in enumerate(split_lines(stdout), start=1):
        command = runner.parse(line, number, "stdout")
        if command is None or command.key != "add-mask":
            break
        runner.feed(line + "\n")
    return runner.masks


__all__ = [
    "ANNOTATIONS",
    "DOTNET_WHITESPACE",
    "REGISTERED",
    "RUNNER_COMMIT",
    "Command",
    "Replay",
    "Runner",
    "leading_masks",
    "parse_legacy",
    "parse_v2",
    "replay",
    "split_lines",
]
