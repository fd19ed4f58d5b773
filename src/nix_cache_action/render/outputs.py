"""Report -> the step outputs: every output action.yml declares, as strings."""

from __future__ import annotations

import json
from pathlib import Path

from nix_cache_action.report import Report

OUTPUT_NAMES = (
    "reproducible",
    "hit-rate",
    "substituted",
    "built",
    "failed",
    "build-seconds",
    "out-paths",
    "nar-hashes",
    "report",
    "previously-verified",
    "over-budget",
)


def outputs_for(report: Report, report_path: Path) -> dict[str, str]:
    """Every output, empty where a figure is unknown."""
    totals = report.totals()
    compared = [c for c in report.checks if c.verdict != "not-checked"]
    reproducible = "" if not compared else "false" if totals.differs else "true"
    outputs = {
        "reproducible": reproducible,
        "hit-rate": _number(totals.hit_rate),
        "substituted": str(totals.substituted),
        "built": str(totals.built),
        "failed": str(totals.failed),
        "build-seconds": _number(totals.build_seconds),
        "out-paths": _json({i.name: i.outputs for i in report.installables}),
        "nar-hashes": _json({i.name: i.nar_hashes for i in report.installables}),
        "report": str(report_path),
        "previously-verified": str(totals.previously_verified),
        "over-budget": "true"
        if report.budgets is not None and report.budgets.exceeded
        else "false",
    }
    assert tuple(outputs) == OUTPUT_NAMES  # noqa: S101 - action.yml declares exactly these
    return outputs


def _number(value: float | None) -> str:
    return "" if value is None else str(value)


def _json(value: object) -> str:
    # One line: easy to pass on with fromJSON() and to read in a log.
    return json.dumps(value, separators=(",", ":"))
