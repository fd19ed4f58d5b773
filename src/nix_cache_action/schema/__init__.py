"""The report's JSON Schema (`report-v1.json`, shipped with the package) and a check against it.

`merge` reads reports other runs wrote, and a file of the wrong shape must be refused with the
field that is wrong rather than crash deep inside a sum. The check covers the part of JSON
Schema that report-v1.json uses (type, const, enum, properties, required,
additionalProperties, items, oneOf, minimum, maximum, local $ref); the tests validate the same
schema with a full validator, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
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
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_errors(value: object, limit: int = 5) -> list[str]:
    """Where `value` breaks the report schema ("builds[2].seconds: ..."), the first `limit`."""
    found: list[str] = []
    _check(value, report_schema(), "", found, limit)
    return found


def _is(value: object, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False  # JSON's true is not a number, though Python's bool is an int
    return isinstance(value, _TYPES[kind])


def _where(path: str) -> str:
    return path or "the report"


def _check(value: object, schema: dict[str, Any], path: str, found: list[str], limit: int) -> None:  # noqa: C901, PLR0912 - one branch per keyword
    if len(found) >= limit:
        return
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        _check(value, report_schema()["$defs"][name], path, found, limit)
        return
    if "oneOf" in schema:
        if not any(_fits(value, option) for option in schema["oneOf"]):
            found.append(f"{_where(path)}: {_shown(value)} is of none of the allowed shapes")
        return
    if "const" in schema and value != schema["const"]:
        found.append(f"{_where(path)}: {_shown(value)} is not {schema['const']!r}")
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        found.append(f"{_where(path)}: {_shown(value)} is not one of {allowed}")
        return
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            found.append(f"{_where(path)}: expected {' or '.join(kinds)}, found {_shown(value)}")
            return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{_where(path)}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{_where(path)}: {value} is above {schema['maximum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{_where(path)}: the field {key!r} is missing")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in properties:
                _check(item, properties[key], where, found, limit)
            elif isinstance(extra, dict):
                _check(item, extra, where, found, limit)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{path}[{index}]", found, limit)


def _fits(value: object, schema: dict[str, Any]) -> bool:
    errors: list[str] = []
    _check(value, schema, "", errors, 1)
    return not errors


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["report_schema", "schema_errors"]
