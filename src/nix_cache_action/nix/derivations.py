"""Derivations read from the store's own .drv files, where they are on disk.

`nix derivation show -r` prints every derivation of a closure with its whole environment: for a
plan's 2,000 derivations it took longer than evaluating them (0.15 s for 1,000 here, Nix 2.34).
A .drv file is ATerm text,

    Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])

with strings in double quotes (escapes \\\\ \\" \\n \\r \\t). Where a file is not there to read (a
chroot or remote store, a daemon's store on another path) or is not in this form (a dynamic
derivation's `DrvWithVersion`), the caller asks Nix instead (`Nix.derivations`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, cast

from nix_cache_action.records import field, record
from nix_cache_action.store_path import base_name

if TYPE_CHECKING:
    from collections.abc import Iterable

_INPUT_DRV = re.compile(rb'\("(/[^"]+\.drv)",\[')
_ATERM = b"Derive(["
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


@record
class Derivation:
    """What a derivation is made of: enough to say what changed between two of them."""

    path: str
    input_drvs: tuple[str, ...] = ()  # full store paths of the derivations it builds on
    input_srcs: tuple[str, ...] = ()  # store paths of its sources
    env: dict[str, str] = field(default_factory=dict)
    system: str = ""
    builder: str = ""
    args: tuple[str, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)  # name -> path ("" when unknown)

    @property
    def name(self) -> str:
        return self.env.get("name", "")


def read_input_graph(drvs: Iterable[str]) -> dict[str, set[str]] | None:
    """{drv base name: base names of its input derivations} over the closure of `drvs`, from the
    files; None as soon as one cannot be read this way. Input derivations are the only
    `("<path>.drv",[<outputs>])` pairs in a .drv: an environment pair is `("name","value")`,
    never followed by a list."""
    graph: dict[str, set[str]] = {}
    stack = list(drvs)
    while stack:
        drv = stack.pop()
        key = base_name(drv)
        if key in graph:
            continue
        try:
            data = Path(drv).read_bytes()
        except OSError:
            return None
        if not data.startswith(_ATERM):
            return None
        inputs = [match.decode("utf-8", "replace") for match in _INPUT_DRV.findall(data)]
        graph[key] = {base_name(path) for path in inputs}
        stack.extend(inputs)
    return graph


def read_derivations(drvs: Iterable[str]) -> dict[str, Derivation] | None:
    """Each of `drvs` (not their closure) from its file; None as soon as one cannot be read."""
    found: dict[str, Derivation] = {}
    for drv in drvs:
        try:
            data = Path(drv).read_bytes()
        except OSError:
            return None
        parsed = parse_aterm(drv, data)
        if parsed is None:
            return None
        found[drv] = parsed
    return found


def parse_aterm(path: str, data: bytes) -> Derivation | None:
    """A .drv file's text as a Derivation; None when it is not `Derive(...)` as above."""
    if not data.startswith(_ATERM):
        return None
    try:
        value, end = _Reader(data.decode("utf-8", "replace")).term(len("Derive"))
    except (ValueError, IndexError):
        return None
    if end != len(data.decode("utf-8", "replace").rstrip()) or not _is_derive(value):
        return None
    # Checked by _is_derive: the shapes below are what the file holds.
    shaped = cast("_Derive", value)
    outputs, inputs, srcs, system, builder, args, env = shaped
    return Derivation(
        path=path,
        input_drvs=tuple(item[0] for item in inputs),
        input_srcs=tuple(srcs),
        env=dict(env),
        system=system,
        builder=builder,
        args=tuple(args),
        outputs={item[0]: item[1] for item in outputs},
    )


def _is_derive(value: object) -> bool:
    if not isinstance(value, tuple) or len(value) != 7:
        return False
    outputs, inputs, srcs, system, builder, args, env = value

    def strings(item: object, size: int) -> bool:
        return (
            isinstance(item, tuple)
            and len(item) == size
            and all(isinstance(part, str) for part in item)
        )

    return (
        isinstance(outputs, list)
        and all(strings(o, 4) for o in outputs)
        and isinstance(inputs, list)
        and all(
            isinstance(i, tuple)
            and len(i) == 2
            and isinstance(i[0], str)
            and isinstance(i[1], list)
            for i in inputs
        )
        and isinstance(srcs, list)
        and all(isinstance(s, str) for s in srcs)
        and isinstance(system, str)
        and isinstance(builder, str)
        and isinstance(args, list)
        and all(isinstance(a, str) for a in args)
        and isinstance(env, list)
        and all(strings(e, 2) for e in env)
    )


_Term = str | list["_Term"] | tuple["_Term", ...]
_Derive = tuple[
    list[tuple[str, str, str, str]],
    list[tuple[str, list[str]]],
    list[str],
    str,
    str,
    list[str],
    list[tuple[str, str]],
]


class _Reader:
    """ATerm's three shapes: "string", [list], (tuple); the top is Derive(...), a tuple."""

    def __init__(self, text: str) -> None:
        self.text = text

    def term(self, at: int) -> tuple[_Term, int]:
        char = self.text[at]
        if char == '"':
            return self.string(at)
        if char in "[(":
            close = "]" if char == "[" else ")"
            items: list[_Term] = []
            at += 1
            if self.text[at] == close:
                return (items if char == "[" else tuple(items)), at + 1
            while True:
                item, at = self.term(at)
                items.append(item)
                if self.text[at] == ",":
                    at += 1
                elif self.text[at] == close:
                    return (items if char == "[" else tuple(items)), at + 1
                else:
                    raise ValueError(f"unexpected {self.text[at]!r} at {at}")
        raise ValueError(f"unexpected {char!r} at {at}")

    def string(self, at: int) -> tuple[str, int]:
        out: list[str] = []
        at += 1
        text = self.text
        while True:
            end = text.find('"', at)
            slash = text.find("\\", at, end if end >= 0 else None)
            if end < 0:
                raise ValueError("a string is not closed")
            if slash < 0:
                out.append(text[at:end])
                return "".join(out), end + 1
            out.append(text[at:slash])
            escaped = text[slash + 1]
            out.append(_ESCAPES.get(escaped, escaped))
            at = slash + 2


__all__ = [
    "Derivation",
    "parse_aterm",
    "read_derivations",
    "read_input_graph",
]
