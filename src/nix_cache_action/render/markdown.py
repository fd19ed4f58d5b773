"""Markdown that GitHub renders as written: escaping, code spans, fences, folds and tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# Characters that start emphasis, code, links, strikethrough or end a table cell in GFM. `<`, `>`
# and `&` become entities instead, so a log line like `<script>` stays text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_BACKTICKS = re.compile(r"`+")


def escape_text(text: str) -> str:
    """Plain text for inline markdown (a paragraph, a list item or a table cell): one line."""
    flat = " ".join(text.split())
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str, *, in_table: bool = False) -> str:
    """An inline code span that holds any text: a fence longer than any backtick run in it."""
    flat = " ".join(text.splitlines()) or " "
    if in_table:
        # GFM splits table cells on `|` before it parses code spans; `\|` is a literal pipe.
        flat = flat.replace("|", "\\|")
    fence = "`" * (_longest_backtick_run(flat) + 1)
    # A space pads content that starts or ends with a backtick; GFM strips one on each side.
    pad = " " if flat[0] == "`" or flat[-1] == "`" or (flat[0] == flat[-1] == " ") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def fenced(text: str, lang: str = "") -> str:
    """A fenced code block that no line of `text` can close early."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    body = text.replace("\r", "")
    return f"{fence}{lang}\n{body}{'' if body.endswith(chr(10)) else chr(10)}{fence}\n"


def details(summary: str, body: str, *, open_: bool = False) -> str:
    """A folded block: `summary` is text (HTML-escaped), `body` is markdown."""
    attribute = " open" if open_ else ""
    return (
        f"<details{attribute}><summary>{_escape_html(' '.join(summary.split()))}</summary>\n\n"
        f"{body.rstrip()}\n\n</details>\n"
    )


def _escape_html(text: str) -> str:
    """As html.escape: & < > and both quotes as entities."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> str:
    """A GFM table; cells are markdown already escaped with `escape_text` / `code`."""
    aligns = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in aligns]
    lines = [_row(header), _row(rule)]
    lines.extend(_row(row) for row in rows)
    return "\n".join(lines) + "\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)
