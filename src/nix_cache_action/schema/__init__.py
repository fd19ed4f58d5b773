"""The report's JSON Schema (`report-v1.json`, shipped with the package) and a check against it.

`merge` reads reports other runs wrote, and a file of the wrong shape must be refused with the
field that is wrong rather than crash deep inside a sum. The check covers the part of JSON
Schema that report-v1.json uses (type, const, enum, properties, required,
additionalProperties, items, oneOf, minimum, maximum, local $ref); the tests validate the same
schema with a full validator, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path as FilePath
from typing import Any

SCHEMA_FILE = "report-v1.json"

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@cache
def report_schema() -> dict[str, Any]:
    # Beside this module, as package data; importlib.resources would cost 4 ms of each start.
    text = (FilePath(__file__).parent / SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# Where a value is, as (parent, key) links: formatted only for an error (a report of 50,000
# builds is checked in a fraction of the time it took to format every path).
Path = tuple["Path", "str | int"] | None


Checker = Callable[[object, Path, list[str], int], None]


def schema_errors(value: object, limit: int = 5) -> list[str]:
    """Where `value` breaks the report schema ("builds[2].seconds: ..."), the first `limit`."""
    found: list[str] = []
    _compiled_report()(value, None, found, limit)
    return found


def _where(path: Path) -> str:
    parts: list[str | int] = []
    while path is not None:
        path, key = path
        parts.append(key)
    text = ""
    for key in reversed(parts):
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "the report"


@cache
def _compiled_report() -> Checker:
    # The schema made into one function per node, once: each keyword is looked at when the
    # schema is read, not again for each of a merge's hundred thousand values.
    definitions: dict[str, Checker] = {}
    defs = report_schema()["$defs"]

    def reference(name: str) -> Checker:
        def check(value: object, path: Path, found: list[str], limit: int) -> None:
            if name not in definitions:
                definitions[name] = _compile(defs[name], reference)
            definitions[name](value, path, found, limit)

        return check

    return _compile(report_schema(), reference)


def _compile(  # noqa: C901 - one branch per keyword
    schema: dict[str, Any], reference: Callable[[str], Checker]
) -> Checker:
    if "$ref" in schema:
        return reference(schema["$ref"].removeprefix("#/$defs/"))
    if "oneOf" in schema:
        options = [_compile(option, reference) for option in schema["oneOf"]]

        def one_of(value: object, path: Path, found: list[str], limit: int) -> None:
            if len(found) >= limit:
                return
            if not any(_fits(option, value) for option in options):
                found.append(f"{_where(path)}: {_shown(value)} is of none of the allowed shapes")

        return one_of
    const_given = "const" in schema
    const = schema.get("const")
    enum = schema.get("enum")
    kinds_given = schema.get("type")
    kinds = [kinds_given] if isinstance(kinds_given, str) else kinds_given
    types = tuple(t for kind in kinds or () for t in _TYPES[kind])
    numbers = bool(kinds) and any(k in ("integer", "number") for k in kinds or ())
    bools = bool(kinds) and "boolean" in (kinds or ())
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    required = schema.get("required", [])
    properties = {k: _compile(v, reference) for k, v in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    extra_check = _compile(extra, reference) if isinstance(extra, dict) else None
    items = _compile(schema["items"], reference) if "items" in schema else None

    def check(value: object, path: Path, found: list[str], limit: int) -> None:  # noqa: C901, PLR0912 - one branch per keyword
        if len(found) >= limit:
            return
        if const_given and value != const:
            found.append(f"{_where(path)}: {_shown(value)} is not {const!r}")
            return
        if enum is not None and value not in enum:
            allowed = ", ".join(str(v) for v in enum)
            found.append(f"{_where(path)}: {_shown(value)} is not one of {allowed}")
            return
        # JSON's true is not a number, though Python's bool is an int.
        if kinds and (
            not isinstance(value, types) or (isinstance(value, bool) and numbers and not bools)
        ):
            found.append(f"{_where(path)}: expected {' or '.join(kinds)}, found {_shown(value)}")
            return
        if isinstance(value, float) and not math.isfinite(value):
            # JSON has no NaN or Infinity; Python's reader takes them, and a figure of either
            # stops every sum and renderer downstream.
            found.append(f"{_where(path)}: {value} is not a finite number")
            return
        if (minimum is not None or maximum is not None) and (
            isinstance(value, (int, float)) and not isinstance(value, bool)
        ):
            if minimum is not None and value < minimum:
                found.append(f"{_where(path)}: {value} is below {minimum}")
            if maximum is not None and value > maximum:
                found.append(f"{_where(path)}: {value} is above {maximum}")
        if isinstance(value, dict):
            for key in required:
                if key not in value:
                    found.append(f"{_where(path)}: the field {key!r} is missing")
            for key, item in value.items():
                checker = properties.get(key, extra_check)
                if checker is not None:
                    checker(item, (path, key), found, limit)
        elif items is not None and isinstance(value, list):
            for index, item in enumerate(value):
                items(item, (path, index), found, limit)

    return check


def _fits(checker: Checker, value: object) -> bool:
    errors: list[str] = []
    checker(value, None, errors, 1)
    return not errors


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["report_schema", "schema_errors"]
