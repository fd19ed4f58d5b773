"""The legs' reports as they arrive: files, or folders of downloaded artifacts (one folder per
leg, each holding a report.json). A file that cannot be read is a note, never the end of the
aggregate: its leg then counts as one that never reported."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nix_cache_action.aggregate import LegReport
from nix_cache_action.report import ReportFileError, read_report

REPORT_FILE = "report.json"
UNREADABLE = "{path} was not used ({why}); its leg counts as one that never reported"
NOTHING_FOUND = "{path} holds no {file}: no leg's report came from it"
ABSENT = "{path} does not exist: no leg's report came from it"


def collect_leg_reports(paths: Sequence[Path]) -> tuple[list[LegReport], list[str]]:
    """(the reports read, a note for each that could not be)."""
    legs: list[LegReport] = []
    notes: list[str] = []
    for path in paths:
        if not path.exists():
            notes.append(ABSENT.format(path=path))
            continue
        files = sorted(path.rglob(REPORT_FILE)) if path.is_dir() else [path]
        if path.is_dir() and not files:
            notes.append(NOTHING_FOUND.format(path=path, file=REPORT_FILE))
        for file in files:
            try:
                report = read_report(file)
            except ReportFileError as error:
                notes.append(UNREADABLE.format(path=file, why=error.why))
                continue
            # An artifact's folder is named after its leg; a file given by itself by its path
            # (two legs' bare report.json files are two legs).
            source = file.parent.name if path.is_dir() else str(file)
            legs.append(LegReport(source=source, report=report))
    return legs, notes


__all__ = ["REPORT_FILE", "collect_leg_reports"]
