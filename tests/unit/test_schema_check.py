"""The package's own schema check agrees with a full JSON Schema validator."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nix_cache_action.schema import report_schema, schema_errors

LOGS = Path(__file__).parent.parent / "logs"


def analyzed(name: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "nix_cache_action", "analyze", str(LOGS / name), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("name", ["rebuild-2.34.log", "fail-det3.22.log", "nar500-2.8.log"])
def test_real_reports_pass_both(name: str) -> None:
    report = analyzed(name)
    jsonschema.validate(report, report_schema(), cls=jsonschema.Draft202012Validator)
    assert schema_errors(report) == []


def breakages(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path, value in [
        (("verdict",), "great"),
        (("totals", "built"), "4"),
        (("builds", 0, "seconds"), "slow"),
        (("builds", 0, "status"), "done"),
        (("runs",), {}),
        (("schema_version",), 2),
        (("incomplete",), 1),
    ]:
        broken = copy.deepcopy(report)
        holder: Any = broken
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value
        cases.append((".".join(map(str, path)), broken))
    return cases


def test_each_breakage_is_found_by_both_and_named() -> None:
    report = analyzed("build-2.8.log")
    validator = jsonschema.Draft202012Validator(report_schema())
    for where, broken in breakages(report):
        assert list(validator.iter_errors(broken)), where
        errors = schema_errors(broken)
        assert errors, where
        shown = where.replace(".0.", "[0].")
        assert any(e.startswith(shown) for e in errors), (where, errors)
