"""A JUnit XML file for test dashboards: one testcase per installable output.

A testcase fails when its build failed (with the log tail), when it did not evaluate or its leg
never reported (an error), or when its output is not reproducible (a failure in `fail` mode);
an output not checked is skipped. The classname is the system an installable's attribute path
names (`checks.x86_64-linux.fmt`), so dashboards group by kind of runner.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from nix_cache_action.plan import SYSTEM_KEYED
from nix_cache_action.render.terminal import failed_builds
from nix_cache_action.report import Check, Installable, Report

MAX_LOG_CHARS = 20_000
NOT_CHECKED = "not checked for reproducibility"
_XML_CHAR = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(report: Report) -> str:
    system_of = _systems_of(report)
    checks_by_path = {c.path: c for c in report.checks if c.path}
    suite = ET.Element("testsuite", name="nix-cache-action")
    failures = errors = skipped = tests = 0
    logs = {b.drv: "\n".join(b.log_tail) for b in failed_builds(report)}
    for item in report.installables:
        cases = _cases(item, checks_by_path)
        for name, check in cases:
            tests += 1
            case = ET.SubElement(
                suite, "testcase", classname=system_of.get(item.name, ""), name=name
            )
            if item.status == "error":
                errors += 1
                ET.SubElement(case, "error", message=_clean(item.error or "error")).text = ""
            elif item.status == "failed":
                failures += 1
                failure = ET.SubElement(case, "failure", message=_clean(item.error or "failed"))
                # The installable's own build, else every failed build (one below it failed).
                log_text = logs.get(item.drv or "") or "\n\n".join(logs.values())
                failure.text = _clean(log_text)[-MAX_LOG_CHARS:]
            elif check is not None and check.verdict == "differs":
                failures += 1
                ET.SubElement(case, "failure", message=_clean(_differs(check))).text = ""
            elif check is None or check.verdict == "not-checked":
                skipped += 1
                why = (check.reason if check is not None else None) or NOT_CHECKED
                ET.SubElement(case, "skipped", message=_clean(why))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    if report.seconds is not None:
        suite.set("time", f"{report.seconds:.3f}")
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def _cases(item: Installable, checks: dict[str, Check]) -> list[tuple[str, Check | None]]:
    if not item.outputs:
        return [(item.name, None)]
    return [
        (item.name if name == "out" else f"{item.name}^{name}", checks.get(path))
        for name, path in item.outputs.items()
    ]


def _systems_of(report: Report) -> dict[str, str]:
    """{installable: system}, where its attribute path names one."""
    found: dict[str, str] = {}
    for item in report.installables:
        parts = item.name.split("#", 1)[-1].split(".")
        if len(parts) > 1 and parts[0] in SYSTEM_KEYED:
            found[item.name] = parts[1]
    return found


def _differs(check: Check) -> str:
    why = f" ({check.reason})" if check.reason else ""
    return f"not reproducible: the rebuild of {check.path} gave different bytes{why}"


def _clean(text: str) -> str:
    """Only the characters XML 1.0 allows: no control characters but tab, newline and
    carriage return, no surrogates, no U+FFFE or U+FFFF (a log decoded with `replace` can hold
    them)."""
    return "".join(ch for ch in text if _XML_CHAR.match(ch))


__all__ = ["render_junit"]
