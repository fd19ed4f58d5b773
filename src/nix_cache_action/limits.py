"""How much outside text is kept: one builder can print a 50 MB line, and none of it may make
the report, the summary or an annotation unbounded. Text from Nix is cut where it enters (the
log's events), and what is published is cut again where it leaves (an annotation)."""

from __future__ import annotations

import re

# A log-tail line, a message of Nix's, an error or a note: a few KiB is more than anyone reads.
TEXT_LIMIT = 4096
CUT_MARKER = " … [cut: {count} more characters]"
# GitHub aborts the upload of a step's summary over 1024 KiB, and the whole summary is lost.
GITHUB_SUMMARY_LIMIT = 1024 * 1024
# The most installables one leg of a planned matrix builds, unless the plan is told otherwise:
# here, so that the command line can say it without importing the planner.
DEFAULT_MAX_PER_LEG = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8(text: str) -> bytes:
    """`text` as the UTF-8 bytes that are written. Text from outside can hold what UTF-8 cannot
    say: Python reads an undecodable byte of an environment variable, an argument or a path as a
    lone surrogate, and a strict encoder would then refuse the whole file it is in. Each such
    character is written as U+FFFD instead."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` if it fits in `limit` characters, else its start and a marker saying so."""
    if len(text) <= limit:
        return text
    return text[:limit] + CUT_MARKER.format(count=len(text) - limit)


__all__ = ["CUT_MARKER", "GITHUB_SUMMARY_LIMIT", "TEXT_LIMIT", "cut", "utf8"]
