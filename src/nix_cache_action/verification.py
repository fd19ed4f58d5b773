"""The verification record: which outputs were already rebuilt and compared, kept across runs.

An output is the bytes its NAR hash names. Once a derivation's output with a given NAR hash was
rebuilt and found the same, rebuilding it again proves nothing new: `build --verified FILE`
reads this record, skips the rebuild of outputs it holds as `reproducible` with the same drv and
NAR hash, and writes what this run checked back. A `differs` entry never skips (the output is
checked again each run until it is fixed), nor does an output with another NAR hash.

The file is small JSON, versioned, and bounded: past RECORD_LIMIT entries the oldest go. A file
that cannot be read is a warning and an empty record, never a failed run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from nix_cache_action.files import write_text
from nix_cache_action.records import asdict, record
from nix_cache_action.report import FIRST_COPIES, VERDICTS, Check, Verification

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

RECORD_VERSION = 1
RECORD_LIMIT = 5000
UNREADABLE = (
    "the verification record {path} could not be used ({why}); every output is checked as if"
    " none had been before, and the record is written afresh"
)
# A path that cannot be read promises no write: whether one works is said at the end.
UNREACHABLE = (
    "the verification record {path} could not be read ({why}); every output is checked as if"
    " none had been before"
)


@record
class Where:
    """Where a check ran, for whoever reads the record later."""

    commit: str | None = None
    run_url: str | None = None
    nix: str | None = None
    system: str | None = None


def verification_from_json(data: dict[str, Any]) -> Verification:
    """One entry of the file; TypeError or ValueError when it is not one."""
    verdict, first_copy = data["verdict"], data.get("first_copy", "unknown")
    if verdict not in VERDICTS or first_copy not in FIRST_COPIES:
        raise ValueError(f"verdict {verdict!r} or first_copy {first_copy!r} is unknown")
    text = {k: data.get(k) for k in ("commit", "run_url", "nix", "system")}
    if not all(v is None or isinstance(v, str) for v in text.values()):
        raise TypeError("commit, run_url, nix and system are strings or null")
    for key in ("drv", "output", "nar_hash", "checked_at"):
        if not isinstance(data[key], str):
            raise TypeError(f"{key} must be a string")
    return Verification(
        drv=data["drv"],
        output=data["output"],
        nar_hash=data["nar_hash"],
        verdict=verdict,
        checked_at=data["checked_at"],
        first_copy=first_copy,
        **text,
    )


class VerificationRecord:
    """Checks by (drv, output): at most one, the latest, per output."""

    def __init__(self, entries: Iterable[Verification] = ()) -> None:
        self._entries: dict[tuple[str, str], Verification] = {}
        for entry in entries:
            self._entries[entry.drv, entry.output] = entry

    def __len__(self) -> int:
        return len(self._entries)

    def reproducible(self, drv: str, output: str, nar_hash: str | None) -> Verification | None:
        """The record that makes a rebuild of this output unnecessary, if there is one."""
        entry = self._entries.get((drv, output))
        if entry is None or nar_hash is None:
            return None
        if entry.verdict != "reproducible" or entry.nar_hash != nar_hash:
            return None
        return entry

    def with_checks(self, checks: Sequence[Check], where: Where, now: str) -> VerificationRecord:
        """This record plus every output this run compared (a verdict from a rebuild, with the
        NAR hash it was about); what was skipped as verified keeps its old entry."""
        updated = dict(self._entries)
        for check in checks:
            measured = check.verdict in ("reproducible", "differs")
            if not measured or check.previously_verified is not None:
                continue
            if check.output is None or check.nar_hash is None:
                continue
            updated[check.drv, check.output] = Verification(
                drv=check.drv,
                output=check.output,
                nar_hash=check.nar_hash,
                verdict=check.verdict,
                checked_at=now,
                first_copy=check.first_copy,
                **asdict(where),
            )
        # Past the limit the oldest go, but never one this run relied on: it is in use.
        used = {(c.drv, c.output) for c in checks if c.previously_verified is not None}
        newest = sorted(
            updated.values(),
            key=lambda e: ((e.drv, e.output) in used, e.checked_at),
            reverse=True,
        )
        return VerificationRecord(newest[:RECORD_LIMIT])

    def entries(self) -> list[Verification]:
        return list(self._entries.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "entries": [asdict(e) for e in self._entries.values()],
        }

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(self.to_json(), indent=1) + "\n")


def merge_records(records: Iterable[VerificationRecord]) -> VerificationRecord:
    """The records of several runs (the legs of a matrix) as one: for each output the latest
    check, bounded like any record (the newest kept)."""
    latest: dict[tuple[str, str], Verification] = {}
    for earlier in records:
        for entry in earlier.entries():
            key = (entry.drv, entry.output)
            if key not in latest or entry.checked_at >= latest[key].checked_at:
                latest[key] = entry
    newest = sorted(latest.values(), key=lambda e: e.checked_at, reverse=True)
    return VerificationRecord(newest[:RECORD_LIMIT])


def load_record(path: Path) -> tuple[VerificationRecord, str | None]:
    """The record at `path` (empty when there is none yet), and a warning if it was unusable."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return VerificationRecord(), None
    except OSError as error:
        return VerificationRecord(), UNREACHABLE.format(path=path, why=error.strerror or error)
    except ValueError as error:
        return VerificationRecord(), UNREADABLE.format(path=path, why=error)
    version = data.get("version") if isinstance(data, dict) else None
    if version != RECORD_VERSION:
        why = f"not a record of version {RECORD_VERSION} (version {version!r})"
        return VerificationRecord(), UNREADABLE.format(path=path, why=why)
    try:
        entries = [verification_from_json(e) for e in data["entries"]]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return VerificationRecord(), UNREADABLE.format(path=path, why=f"a bad entry: {error}")
    return VerificationRecord(entries), None


__all__ = [
    "RECORD_LIMIT",
    "RECORD_VERSION",
    "VerificationRecord",
    "Where",
    "load_record",
    "merge_records",
    "verification_from_json",
]
