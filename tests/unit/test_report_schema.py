"""The package's schema/report-v1.json describes exactly what `Report.to_json()` writes, and
README's table too.

Real reports (from every recorded log in tests/logs, merged, round-tripped, empty and hand-made
with every optional field) must validate; the schema's enums must be report.py's `Literal`s; every
object is closed (`additionalProperties: false`, all properties required), so a field added to the
code and not to the schema fails here; and README's "The JSON report" table names the same fields.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator

from nix_cache_action import records
from nix_cache_action import report as report_module
from nix_cache_action.ledger import Ledger
from nix_cache_action.report import (
    Baseline,
    Budgets,
    Build,
    CacheChange,
    CacheError,
    Change,
    Check,
    DuplicateBuild,
    FileDifference,
    Installable,
    LegInfo,
    LegResult,
    MagicNixCache,
    NixInfo,
    Phases,
    Report,
    RootCause,
    Run,
    SlowerBuild,
    SubstituterTotals,
    Substitution,
    Totals,
    VerdictChange,
    Verification,
    Why,
    merge,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "src" / "nix_cache_action" / "schema" / "report-v1.json"
README = ROOT / "README.md"
LOGS = ROOT / "tests" / "logs"
LOG_PATHS = sorted(LOGS.glob("*.log"))
README_SECTION = "## The JSON report"

SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)

# Every enum in the schema, by JSON pointer: the Literal in report.py it spells, and if nullable.
VOCABULARY: dict[str, tuple[str, bool]] = {
    "/properties/verdict": ("RunVerdict", False),
    "/properties/reproducibility_mode": ("Mode", False),
    "/$defs/nix/properties/flavour": ("Flavour", True),
    "/$defs/installable/properties/status": ("InstallableStatus", False),
    "/$defs/build/properties/status": ("BuildStatus", False),
    "/$defs/build/properties/reason": ("MissReason", True),
    "/$defs/check/properties/verdict": ("Verdict", False),
    "/$defs/check/properties/first_copy": ("FirstCopy", False),
    "/$defs/difference/properties/kind": ("DifferenceKind", False),
    "/$defs/run/properties/label": ("RunLabel", False),
    "/$defs/verification/properties/verdict": ("Verdict", False),
    "/$defs/verification/properties/first_copy": ("FirstCopy", False),
    "/$defs/verdict_change/properties/before": ("Verdict", False),
    "/$defs/verdict_change/properties/after": ("Verdict", False),
    "/$defs/leg_result/properties/verdict": ("LegVerdict", False),
}

# The dataclass each per-item object of the schema is written from, field for field.
DEFS: dict[str, type[Any]] = {
    "nix": NixInfo,
    "totals": Totals,
    "phases": Phases,
    "substituter": SubstituterTotals,
    "installable": Installable,
    "substitution": Substitution,
    "build": Build,
    "check": Check,
    "difference": FileDifference,
    "cache_error": CacheError,
    "run": Run,
    "magic_nix_cache": MagicNixCache,
    "verification": Verification,
    "baseline": Baseline,
    "slower_build": SlowerBuild,
    "verdict_change": VerdictChange,
    "cache_change": CacheChange,
    "budgets": Budgets,
    "leg_info": LegInfo,
    "leg_result": LegResult,
    "duplicate_build": DuplicateBuild,
    "why": Why,
    "root_cause": RootCause,
    "change": Change,
}
# Fields added to schema_version 1 after reports of it were in use (restored baselines, leg
# reports from an older release): optional, so that those reports are still read.
ADDED_LATER = ("leg", "legs", "duplicate_builds", "why")
# The same inside a record: a budget added later is optional in the budgets of older reports.
ADDED_LATER_IN = {"/$defs/budgets": ("max_per_change",), "/$defs/build": ("because",)}


def problems(body: object) -> list[str]:
    """Every way `body` breaks the schema, one line each (empty when it validates)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in sorted(VALIDATOR.iter_errors(body), key=lambda e: list(map(str, e.path)))
    ]


def report_of_log(path: Path) -> Report:
    ledger = Ledger(run="analyze")
    with path.open("rb") as handle:
        ledger.consume(handle)
    return ledger.report()


def full_report() -> Report:
    """A report that sets every optional field the code can write."""
    store = "/nix/store/" + "a" * 32
    return Report(
        substitutions=(
            Substitution(
                path=f"{store}-leaf",
                substituter="https://cache.example.invalid",
                nar_bytes=120,
                download_bytes=64,
                seconds=0.25,
                started=1.5,
                run="build",
            ),
        ),
        builds=(
            Build(
                drv=f"{store}-top.drv",
                status="failed",
                seconds=3.125,
                started=2.0,
                reason="cache-error",
                reason_detail="a cache answered HTTP 418",
                machine="ssh-ng://builder.example.invalid",
                error="error: builder failed with exit code 3",
                log_tail=("compiling", "oops"),
                run="build",
            ),
            Build(drv=f"{store}-nondet.drv", status="checked", seconds=1.0, reason=None),
        ),
        checks=(
            Check(
                drv=f"{store}-nondet.drv",
                output="out",
                path=f"{store}-nondet",
                verdict="differs",
                reason="the rebuild's NAR hash differs",
                nar_hash="sha256-" + "A" * 43 + "=",
                check_nar_hash="sha256-" + "B" * 43 + "=",
                first_copy="substituted",
                substituter="https://cache.example.invalid",
                installable=".#nondet",
                deep=True,
                differences=(
                    FileDifference(
                        path="bin/tool",
                        kind="content",
                        size=10,
                        check_size=12,
                        sha256="ab" * 32,
                        check_sha256="cd" * 32,
                    ),
                    FileDifference(path="share/new", kind="only-in-rebuild", check_size=3),
                ),
                differences_truncated=True,
                diffoscope="--- first\n+++ rebuild\n",
                run="check",
            ),
            Check(drv=f"{store}-top.drv", output=None, path=None, verdict="not-checked"),
            Check(
                drv=f"{store}-leaf.drv",
                output="out",
                path=f"{store}-leaf",
                verdict="reproducible",
                nar_hash="sha256-" + "C" * 43 + "=",
                previously_verified=Verification(
                    drv=f"{store}-leaf.drv",
                    output="out",
                    nar_hash="sha256-" + "C" * 43 + "=",
                    verdict="reproducible",
                    checked_at="2026-11-30T10:00:00Z",
                    commit="0" * 40,
                    run_url="https://github.example.invalid/o/r/actions/runs/1",
                    nix="nix (Nix) 2.34.8",
                    system="x86_64-linux",
                    first_copy="substituted",
                ),
            ),
        ),
        installables=(
            Installable(
                name=".#nondet",
                drv=f"{store}-nondet.drv",
                outputs={"out": f"{store}-nondet", "dev": f"{store}-nondet-dev"},
                status="failed",
                error="error: build failed",
                nar_hashes={"out": "sha256-" + "A" * 43 + "="},
            ),
            Installable(name=".#broken", status="error", error="error: attribute missing"),
        ),
        cache_errors=(
            CacheError(
                substituter="https://cache.example.invalid",
                url="https://cache.example.invalid/abc.narinfo",
                status=418,
                message="HTTP error 418",
                retried=True,
            ),
            CacheError(substituter="s3://bucket", url="s3://bucket/x", status=None, message="?"),
        ),
        runs=(
            Run(
                label="deep-check",
                argv=("nix", "build", "--rebuild", ".#nondet"),
                exit_status=1,
                seconds=12.5,
                log_path="/tmp/nca/deep-check.log",
                plain_lines=4,
                interrupted=True,
            ),
        ),
        phases=Phases(evaluation=0.5, download=1.25, build=3.0, check=4),
        nix=NixInfo(version="3.1.0", flavour="determinate"),
        reproducibility_mode="warn",
        queried={"https://cache.example.invalid": 3, "s3://bucket": 0},
        errors=("error: build failed",),
        stopped="interrupted (SIGTERM)",
        notes=("4 lines were not @nix records",),
        seconds=21.5,
        baseline=Baseline(
            source="main's last run",
            totals_before={"built": 1, "hit_rate": 0.5, "seconds": None},
            totals_delta={"built": 1, "hit_rate": -0.25, "seconds": None},
            new_builds=(f"{store}-top.drv",),
            slower=(SlowerBuild(name="top", seconds=3.0, baseline_seconds=1.0),),
            reproducibility_changes=(
                VerdictChange(
                    installable=".#nondet", output="out", before="reproducible", after="differs"
                ),
            ),
            caches=(
                CacheChange(
                    url="https://cache.example.invalid",
                    served=1,
                    baseline_served=3,
                    hit_rate=0.25,
                    baseline_hit_rate=None,
                ),
            ),
        ),
        budgets=Budgets(max_built=1, min_hit_rate=0.9, exceeded=("--max-built 1: 2 built",)),
    )


# --- the schema itself ----------------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def walk(node: object, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema with its JSON pointer."""
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            yield from walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


def objects_with_properties() -> list[tuple[str, dict[str, Any]]]:
    return [
        (pointer, node)
        for pointer, node in walk(SCHEMA)
        if isinstance(node.get("properties"), dict) and not pointer.endswith("/properties")
    ]


def test_every_object_is_closed_and_requires_all_its_properties() -> None:
    found = objects_with_properties()
    assert len(found) == 1 + len(DEFS) + 1  # the report, the $defs, and `tool`
    for pointer, node in found:
        assert node.get("type") == "object", pointer
        assert node.get("additionalProperties") is False, pointer
        later = ADDED_LATER if not pointer else ADDED_LATER_IN.get(pointer, ())
        expected = [p for p in node["properties"] if p not in later]
        assert node.get("required") == expected, pointer


def test_a_report_without_the_fields_added_later_still_validates() -> None:
    body = Report().to_json()
    for name in ADDED_LATER:
        del body[name]
    assert problems(body) == []
    assert Report.from_json(body) == Report()


def test_every_top_level_property_is_described() -> None:
    for name, prop in SCHEMA["properties"].items():
        assert prop.get("description"), name


def test_the_top_level_properties_are_to_json_s_keys_in_order() -> None:
    assert list(SCHEMA["properties"]) == list(Report().to_json())


@pytest.mark.parametrize("name", DEFS)
def test_each_item_object_lists_its_dataclass_fields_in_order(name: str) -> None:
    # A field marked json=False is derived from others when read back (RootCause.dependents).
    fields = [f.name for f in records.fields(DEFS[name]) if f.metadata.get("json", True)]
    assert list(SCHEMA["$defs"][name]["properties"]) == fields


# --- real reports validate ------------------------------------------------------------------------


def test_there_are_recorded_logs() -> None:
    assert len(LOG_PATHS) >= 6


@pytest.mark.parametrize("path", LOG_PATHS, ids=lambda p: p.name)
def test_a_report_from_each_recorded_log_validates(path: Path) -> None:
    assert problems(report_of_log(path).to_json()) == []


def test_a_merge_of_every_recorded_log_validates() -> None:
    merged = merge([report_of_log(path) for path in LOG_PATHS])
    body = merged.to_json()
    assert problems(body) == []
    assert body["checks"]  # the merge holds verdicts, builds and cache errors to check
    assert body["builds"]
    assert body["cache_errors"]


def test_an_empty_report_validates() -> None:
    assert problems(Report().to_json()) == []
    assert problems(merge([]).to_json()) == []


def test_a_report_with_every_optional_field_validates() -> None:
    body = full_report().to_json()
    assert problems(body) == []
    # It does exercise what it claims to.
    assert body["nix"]["flavour"] == "determinate"
    assert body["checks"][0]["differences"][0]["sha256"]
    assert body["builds"][0]["machine"]
    assert body["runs"][0]["argv"]
    assert body["stopped"] is not None


@pytest.mark.parametrize(
    "report",
    [full_report(), merge([report_of_log(p) for p in LOG_PATHS]), Report()],
    ids=["full", "merged-logs", "empty"],
)
def test_a_round_tripped_report_validates_and_is_unchanged(report: Report) -> None:
    body = report.to_json()
    again = Report.from_json(json.loads(json.dumps(body))).to_json()
    assert problems(again) == []
    assert again == body


# --- the vocabulary is report.py's ----------------------------------------------------------------


def test_every_enum_in_the_schema_is_a_literal_of_report_py() -> None:
    enums = {pointer for pointer, node in walk(SCHEMA) if "enum" in node}
    assert enums == set(VOCABULARY)


@pytest.mark.parametrize("pointer", VOCABULARY)
def test_each_enum_equals_its_literal(pointer: str) -> None:
    literal_name, nullable = VOCABULARY[pointer]
    node: Any = SCHEMA
    for part in pointer.strip("/").split("/"):
        node = node[part]
    expected = [*get_args(getattr(report_module, literal_name)), *([None] if nullable else [])]
    assert node["enum"] == expected


# --- the schema can fail --------------------------------------------------------------------------

DELETE = object()


@dataclass(frozen=True)
class Breakage:
    where: tuple[str | int, ...]
    value: object = field(default=DELETE)


BREAKAGES = {
    "extra-top-level-field": Breakage(("extra",), 1),
    "missing-top-level-field": Breakage(("notes",)),
    "wrong-verdict": Breakage(("verdict",), "passed"),
    "wrong-mode": Breakage(("reproducibility_mode",), "strict"),
    "wrong-schema-version": Breakage(("schema_version",), 2),
    "wrong-check-verdict": Breakage(("checks", 0, "verdict"), "same"),
    "wrong-first-copy": Breakage(("checks", 0, "first_copy"), "cached"),
    "extra-check-field": Breakage(("checks", 0, "extra"), None),
    "missing-check-path": Breakage(("checks", 0, "path")),
    "wrong-difference-kind": Breakage(("checks", 0, "differences", 0, "kind"), "mode"),
    "wrong-build-reason": Breakage(("builds", 0, "reason"), "check"),
    "null-build-status": Breakage(("builds", 0, "status"), None),
    "wrong-installable-status": Breakage(("installables", 0, "status"), "ok"),
    "non-string-output-path": Breakage(("installables", 0, "outputs", "out"), 1),
    "wrong-flavour": Breakage(("nix", "flavour"), "guix"),
    "wrong-run-label": Breakage(("runs", 0, "label"), "test"),
    "float-count": Breakage(("totals", "built"), 1.5),
    "hit-rate-above-one": Breakage(("substituters", 0, "hit_rate"), 1.5),
    "string-queried-count": Breakage(("queried", "s3://bucket"), "3"),
    "null-errors": Breakage(("errors",), None),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_the_schema_rejects_a_broken_report(name: str) -> None:
    breakage = BREAKAGES[name]
    body = copy.deepcopy(full_report().to_json())
    body["substituters"][0]["hit_rate"] = 1.0  # a valid value the breakage can replace
    assert problems(body) == []
    *parents, last = breakage.where
    node: Any = body
    for part in parents:
        node = node[part]
    if breakage.value is DELETE:
        del node[last]
    else:
        node[last] = breakage.value
    assert problems(body) != []


# --- README's table agrees ------------------------------------------------------------------------


def readme_rows() -> list[tuple[str, str]]:
    """(field, what it holds) for each row of the table under "## The JSON report"."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(README_SECTION) + 1
    rows: list[tuple[str, str]] = []
    for line in lines[start:]:
        if line.startswith(("## ", "<!--")):
            break
        if not line.startswith("|"):
            if rows:
                break  # the table is over
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())]
        cells = cells[1:-1]  # the empty strings outside the outer pipes
        if re.fullmatch(r":?-+:?", cells[0]):
            continue  # the separator row
        rows.append((cells[0].strip("`").strip(), cells[1] if len(cells) > 1 else ""))
    assert rows, f"README.md has no table under {README_SECTION!r}"
    return rows[1:]  # the first row is the header


@dataclass
class Group:
    """A `{"a", "b": {...}}` list from README: its quoted names, and nested lists by name."""

    start: int
    end: int = 0
    names: list[str] = field(default_factory=list)
    nested: dict[str, Group] = field(default_factory=dict)


def parse_group(text: str, start: int) -> Group:
    """The `{...}` opening at text[start]; a name is a quoted string after `{` or `,`."""
    group = Group(start=start)
    previous = "{"  # the last non-blank character at this level
    last_name: str | None = None
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "}":
            group.end = i + 1
            return group
        if char == "{":
            inner = parse_group(text, i)
            if previous == ":" and last_name is not None:
                group.nested[last_name] = inner
            i, previous = inner.end, "}"
            continue
        if char == '"':
            close = text.index('"', i + 1)
            if previous in "{,":
                last_name = text[i + 1 : close]
                group.names.append(last_name)
            i, previous = close + 1, '"'
            continue
        if not char.isspace():
            previous = char
        i += 1
    msg = f"unclosed {{ in README: {text[start:]!r}"
    raise AssertionError(msg)


def top_level_groups(text: str) -> list[Group]:
    groups: list[Group] = []
    i = 0
    while (i := text.find("{", i)) != -1:
        groups.append(parse_group(text, i))
        i = groups[-1].end
    return groups


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s, array `items` and a nullable `oneOf` to the object schema a README list
    describes."""
    while True:
        if "oneOf" in node:
            [node] = [n for n in node["oneOf"] if n.get("type") != "null"]
        elif "$ref" in node:
            node = SCHEMA["$defs"][node["$ref"].removeprefix("#/$defs/")]
        elif node.get("type") == "array":
            node = node["items"]
        else:
            return node


def disagreements(group: Group, node: dict[str, Any], where: str) -> list[str]:
    node = resolve(node)
    properties: dict[str, Any] = node.get("properties", {})
    if not group.names:  # `{name: path}`: a map, not a list of fields
        if properties or not isinstance(node.get("additionalProperties"), dict):
            return [f"{where}: README describes a map, the schema an object of {list(properties)}"]
        return []
    found = []
    missing = [name for name in properties if name not in group.names]
    extra = [name for name in group.names if name not in properties]
    if missing:
        found.append(f"{where}: README lacks {', '.join(map(json.dumps, missing))}")
    if extra:
        found.append(f"{where}: the schema has no {', '.join(map(json.dumps, extra))}")
    for name, inner in group.nested.items():
        if name in properties:
            found += disagreements(inner, properties[name], f"{where}.{name}")
    return found


README_ROWS = readme_rows()


def test_readme_table_lists_the_schema_s_top_level_fields_in_order() -> None:
    assert [name for name, _ in README_ROWS] == list(SCHEMA["properties"])


def row_disagreements(name: str, holds: str) -> list[str]:
    """How a README row's `{"a", "b"}` lists differ from the schema's properties (empty: none)."""
    if name not in SCHEMA["properties"]:
        return [f"README row `{name}` is not a field of the schema"]
    node = SCHEMA["properties"][name]
    found: list[str] = []
    previous_end = 0
    for index, group in enumerate(top_level_groups(holds)):
        if index == 0:
            found += disagreements(group, node, name)
        else:
            # A later list belongs to the sub-field named just before it: "`differences` lists {".
            named = re.findall(r"`([a-z_][a-z0-9_]*)`", holds[previous_end : group.start])
            item = resolve(node).get("properties", {})
            if not named or named[-1] not in item:
                found.append(f"{name}: a list in README names no field of the schema before it")
            else:
                found += disagreements(group, item[named[-1]], f"{name}.{named[-1]}")
        previous_end = group.end
    return found


@pytest.mark.parametrize(("name", "holds"), README_ROWS, ids=[name for name, _ in README_ROWS])
def test_readme_row_names_the_schema_s_sub_fields(name: str, holds: str) -> None:
    assert row_disagreements(name, holds) == []


def test_the_readme_check_catches_a_row_that_disagrees() -> None:
    rows = dict(README_ROWS)
    checks = rows["checks"]
    assert '"path", ' in checks
    assert row_disagreements("checks", checks.replace('"path", ', "", 1)) == [
        'checks: README lacks "path"'
    ]
    assert row_disagreements("checks", checks.replace('"kind"', '"mode"', 1)) == [
        'checks.differences: README lacks "kind"',
        'checks.differences: the schema has no "mode"',
    ]
    # `"status": "built"|"failed"|"error"` names one field; its values are not fields.
    installables = rows["installables"]
    assert row_disagreements("installables", installables) == []
    assert row_disagreements("installables", installables.replace('"error", ', "", 1)) == [
        'installables: README lacks "error"'
    ]
    # A nested `{name: path}` is a map; fields listed there are checked against the map too.
    assert row_disagreements("installables", installables.replace("{name: path}", '{"a"}')) == [
        'installables.outputs: the schema has no "a"'
    ]
    assert row_disagreements("tool", '`{"name", "version", "commit"}`') == [
        'tool: the schema has no "commit"'
    ]
    assert row_disagreements("queried", '`{"url", "count"}`') != []
    assert row_disagreements("nonsense", "") != []
