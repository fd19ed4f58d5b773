"""`merge` given files that are not reports, reports of the wrong shape, the same report twice,
and reports of different reproducibility modes: exit 2 naming the file and the field for what
it cannot use, a note for what it can, never a traceback."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.hostile.conftest import Hostile


def put(hostile: Hostile, name: str, content: bytes | dict[str, Any]) -> Path:
    path = hostile.tmp / "reports" / name
    path.parent.mkdir(exist_ok=True)
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    path.write_bytes(data)
    return path


def refused(hostile: Hostile, path: Path, *fields: str, others: tuple[Path, ...] = ()) -> None:
    run = hostile.cli("merge", *map(str, others), str(path))

    def names_file_and_field(data: dict[str, Any]) -> None:
        stopped = data.get("stopped") or ""
        assert str(path) in stopped or path.name in stopped, f"the file is not named: {stopped}"
        for field in fields:
            assert field in stopped, f"the field {field!r} is not named: {stopped}"
        assert path.name in run.stderr, "the error on stderr does not name the file"

    run.check(exit=2, verdict="failed", stopped=True, also=[names_file_and_field])


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not json at all\n", id="text"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe{\x00}", id="bytes"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested"),
        pytest.param(b'{"schema_version": 1, "phases": {"build": NaN}}', id="nan"),
    ],
)
def test_not_json(hostile: Hostile, sample_reports: dict[str, Any], content: bytes) -> None:
    good = put(hostile, "good.json", sample_reports["ok"])
    refused(hostile, put(hostile, "bad.json", content), others=(good,))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[]", id="list"),
        pytest.param(b'"report"', id="string"),
        pytest.param(b"3", id="number"),
    ],
)
def test_json_that_is_not_an_object(hostile: Hostile, content: bytes) -> None:
    refused(hostile, put(hostile, "bad.json", content))


def test_a_directory(hostile: Hostile) -> None:
    directory = hostile.tmp / "reports" / "a-directory.json"
    directory.mkdir(parents=True)
    refused(hostile, directory)


def test_missing_schema_version(hostile: Hostile, sample_reports: dict[str, Any]) -> None:
    data = copy.deepcopy(sample_reports["ok"])
    del data["schema_version"]
    refused(hostile, put(hostile, "bad.json", data), "schema_version")


WRONG_FIELDS = [
    pytest.param("schema_version", "1", ("schema_version",), id="version-string"),
    pytest.param("installables", "x", ("installables",), id="installables-string"),
    pytest.param("errors", "oops", ("errors",), id="errors-string"),
    pytest.param("notes", {"a": 1}, ("notes",), id="notes-object"),
    pytest.param(
        "phases",
        {
            **dict.fromkeys(("evaluation", "download", "check", "cache_wait", "cache_query")),
            "build": "fast",
        },
        ("phases", "build"),
        id="phase-string",
    ),
    pytest.param("builds", None, ("builds",), id="builds-null"),
    pytest.param("totals", [], ("totals",), id="totals-list"),
    pytest.param("reproducibility_mode", "maybe", ("reproducibility_mode",), id="mode"),
]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param('"seconds": Infinity', ("seconds", "finite"), id="infinity"),
        pytest.param('"seconds": NaN', ("seconds", "finite"), id="nan"),
        pytest.param('"seconds": -1.5', ("seconds", "below 0"), id="negative-seconds"),
        pytest.param(
            '"phases": {"evaluation": -3, "download": null, "build": null, "check": null,'
            ' "cache_wait": null, "cache_query": null}',
            ("phases.evaluation", "below 0"),
            id="negative-phase",
        ),
    ],
)
def test_a_number_that_is_no_time_or_size_is_refused(
    hostile: Hostile, sample_reports: dict[str, Any], text: str, named: tuple[str, ...]
) -> None:
    """Python's JSON reader takes NaN and Infinity; neither, nor a negative time, reaches a
    sum or the summary: the file and the field are named (exit 2)."""
    data = copy.deepcopy(sample_reports["ok"])
    key = text.split(":", 1)[0].strip('"')
    data[key] = "PLACEHOLDER"
    raw = json.dumps(data).replace(f'"{key}": "PLACEHOLDER"', text).encode()
    good = put(hostile, "good.json", sample_reports["failed"])
    refused(hostile, put(hostile, "bad.json", raw), *named, others=(good,))


@pytest.mark.parametrize(("field", "value", "named"), WRONG_FIELDS)
def test_field_of_the_wrong_type(
    hostile: Hostile,
    sample_reports: dict[str, Any],
    field: str,
    value: object,
    named: tuple[str, ...],
) -> None:
    data = copy.deepcopy(sample_reports["ok"])
    data[field] = value
    good = put(hostile, "good.json", sample_reports["failed"])
    refused(hostile, put(hostile, "bad.json", data), *named, others=(good,))


def test_run_label_of_the_wrong_type(hostile: Hostile, sample_reports: dict[str, Any]) -> None:
    data = copy.deepcopy(sample_reports["ok"])
    data["runs"][0]["label"] = 5
    refused(hostile, put(hostile, "bad.json", data), "runs", "label")


def test_check_of_the_wrong_shape(hostile: Hostile, sample_reports: dict[str, Any]) -> None:
    data = copy.deepcopy(sample_reports["ok"])
    data["checks"] = [{"drv": 5, "verdict": ["differs"]}]
    refused(hostile, put(hostile, "bad.json", data), "checks")


def repeat_noted(merged: dict[str, Any], single: dict[str, Any]) -> bool:
    new = [n.lower() for n in merged["notes"] if n not in single["notes"]]
    words = ("once", "twice", "repeat", "same", "duplicate", "job.json", "link.json")
    return any(word in note for note in new for word in words)


def _merged(hostile: Hostile, *paths: Path) -> dict[str, Any]:
    run = hostile.cli("merge", *map(str, paths))
    return run.check(exit={0, 1})


def test_same_report_twice_is_counted_once(
    hostile: Hostile, sample_reports: dict[str, Any]
) -> None:
    single = sample_reports["failed"]
    path = put(hostile, "job.json", single)
    data = _merged(hostile, path, path)
    assert data["totals"] == single["totals"], "the same report was counted twice"
    assert len(data["installables"]) == len(single["installables"])
    assert repeat_noted(data, single), f"no note about the repeated report: {data['notes']}"


@pytest.mark.parametrize("spelling", ["dotdot", "symlink"])
def test_same_report_by_another_name_is_counted_once(
    hostile: Hostile, sample_reports: dict[str, Any], spelling: str
) -> None:
    single = sample_reports["failed"]
    path = put(hostile, "job.json", single)
    if spelling == "dotdot":
        other = path.parent / ".." / path.parent.name / path.name
    else:
        other = path.parent / "link.json"
        other.symlink_to(path)
    data = _merged(hostile, path, other)
    assert data["totals"] == single["totals"], "the same report was counted twice"
    assert repeat_noted(data, single), f"no note about the repeated report: {data['notes']}"


def test_different_reproducibility_modes_are_noted(
    hostile: Hostile, sample_reports: dict[str, Any]
) -> None:
    strict = put(hostile, "fail.json", sample_reports["ok"])
    lenient = put(hostile, "warn.json", sample_reports["warn"])
    data = _merged(hostile, strict, lenient)
    assert data["reproducibility_mode"] == "fail"
    new = [n for n in data["notes"] if n not in sample_reports["ok"]["notes"]]
    assert any("warn" in n and "fail" in n for n in new), f"no note about the modes: {new}"


def test_a_failed_job_fails_the_merge(hostile: Hostile, sample_reports: dict[str, Any]) -> None:
    ok = put(hostile, "ok.json", sample_reports["ok"])
    failed = put(hostile, "failed.json", sample_reports["failed"])
    run = hostile.cli("merge", str(ok), str(failed))
    run.check(exit=1, verdict="failed")


def test_a_stopped_job_stays_stopped(hostile: Hostile, sample_reports: dict[str, Any]) -> None:
    stopped = copy.deepcopy(sample_reports["ok"])
    stopped["stopped"] = "The run was cancelled (SIGTERM)"
    stopped["verdict"] = "failed"
    ok = put(hostile, "ok.json", sample_reports["ok"])
    run = hostile.cli("merge", str(ok), str(put(hostile, "stopped.json", stopped)))
    data = run.check(exit=1, verdict="failed", stopped=True)
    assert "SIGTERM" in data["stopped"]


def test_a_claimed_verdict_is_not_trusted(hostile: Hostile, sample_reports: dict[str, Any]) -> None:
    lying = copy.deepcopy(sample_reports["failed"])
    lying["verdict"] = "ok"
    run = hostile.cli("merge", str(put(hostile, "lying.json", lying)))
    # Either refused (the verdict contradicts the report) or re-derived: never `ok`.
    data = run.check(exit={1, 2}, verdict="failed")
    assert data["verdict"] == "failed"
