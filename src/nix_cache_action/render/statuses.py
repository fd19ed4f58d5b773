"""Report -> commit statuses: one per installable, its verdict in GitHub's 140 characters.

`CommitStatus` is what github/statuses.py posts; the wording and its sizing to GitHub's limits
are here.
"""

from __future__ import annotations

import hashlib
from typing import Literal, get_args

from nix_cache_action import records
from nix_cache_action.records import record
from nix_cache_action.render.format import duration, percent, shorten
from nix_cache_action.report import Report, Verdict
from nix_cache_action.settings import GitHubContext

State = Literal["success", "failure", "error", "pending"]
STATES: frozenset[str] = frozenset({"success", "failure", "error", "pending"})
VERDICTS: frozenset[str] = frozenset(get_args(Verdict))

# GitHub refuses a commit status whose description is longer than this.
DESCRIPTION_LIMIT = 140
CONTEXT_PREFIX = "nix-cache-action / "
# GitHub documents no limit for a context, but the checks list shows it on one line: past this
# many characters the installable is shortened.
CONTEXT_INSTALLABLE_LIMIT = 100
# Hex digits of the whole name's hash in a shortened context: 1 in 16^8 for a collision.
CONTEXT_HASH_LENGTH = 8


@record
class CommitStatus:
    context: str
    state: State
    description: str
    target_url: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"commit status state {self.state!r} is not one of {sorted(STATES)}")
        if len(self.description) > DESCRIPTION_LIMIT:
            raise ValueError(
                f"commit status description has {len(self.description)} characters;"
                f" GitHub takes at most {DESCRIPTION_LIMIT}"
            )


def status_for(
    installable: str,
    *,
    verdict: str,
    hit_rate: float | None,
    seconds: float | None,
    failed: bool,
) -> CommitStatus:
    """The status for one installable; `hit_rate` is a fraction (0.0 to 1.0) of store paths.

    No target_url: add one with `records.replace(status, target_url=run_url)`.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of {sorted(VERDICTS)}")
    if failed:
        state: State = "failure"
        headline = "build failed"
    elif verdict == "differs":
        state, headline = "failure", "NOT reproducible"
    elif verdict == "reproducible":
        state, headline = "success", "reproducible"
    else:
        state, headline = "success", "built, reproducibility not checked"
    took = "time n/a" if seconds is None else duration(seconds)
    figures = f" (cache hits {percent(hit_rate, 0)}, {took})"
    room = DESCRIPTION_LIMIT - len(headline) - len(": ") - len(figures)
    description = f"{headline}: {shorten(installable, room)}{figures}"
    return CommitStatus(context_for(installable), state, description)


def context_for(installable: str) -> str:
    """The status context of an installable: the name itself when it fits; else shortened with
    a hash of the whole name at the end, so that two names differing only in the part cut out
    still get two contexts (one would overwrite the other's status)."""
    if len(installable) <= CONTEXT_INSTALLABLE_LIMIT:
        return CONTEXT_PREFIX + installable
    digest = hashlib.sha256(installable.encode("utf-8", "replace")).hexdigest()[
        :CONTEXT_HASH_LENGTH
    ]
    suffix = f" #{digest}"
    return CONTEXT_PREFIX + shorten(installable, CONTEXT_INSTALLABLE_LIMIT - len(suffix)) + suffix


STATUS_SETUP_WARNING = (
    "Commit statuses not posted: {reason}. The build verdict stands; the job summary and the"
    " JSON report have it."
)
EMPTY_CREDENTIALS_NOTE = "nix-cache-action: commit statuses skipped: github-token is empty"
NO_COMMIT_NOTE = "nix-cache-action: commit statuses skipped: the run names no commit (GITHUB_SHA)"
POSTED_NOTE = "nix-cache-action: commit status posted: {context}"


def statuses_for(report: Report, context: GitHubContext) -> list[CommitStatus]:
    """One status per installable: its own verdict, the run's hit rate and time."""
    target_url = (
        f"{context.server_url}/{context.repository}/actions/runs/{context.run_id}"
        if context.repository and context.run_id
        else None
    )
    totals = report.totals()
    seconds = _wall_seconds(report)
    statuses = []
    for item in report.installables:
        verdict = _installable_verdict(report, item.name)
        failed = not item.succeeded
        status = status_for(
            item.name, verdict=verdict, hit_rate=totals.hit_rate, seconds=seconds, failed=failed
        )
        if verdict == "differs" and not failed and report.reproducibility_mode != "fail":
            # reproducibility: warn passes the job; a red status would block the pull request
            # all the same. The description still says NOT reproducible.
            status = records.replace(status, state="success")
        statuses.append(records.replace(status, target_url=target_url))
    return statuses


FLAKE_CONTEXT = CONTEXT_PREFIX + "flake"


def flake_status(report: Report, context: GitHubContext) -> list[CommitStatus]:
    """The aggregate's one status for the whole flake: its verdict, the legs, the outputs, the
    hit rate and the critical path (the slowest leg)."""
    verdict = report.verdict()
    state: State = "success" if report.exit_status() == 0 else "failure"
    totals = report.totals()
    missing = sum(1 for leg in report.legs if leg.verdict == "missing")
    failed = sum(1 for item in report.installables if not item.succeeded)
    facts = [f"{len(report.legs)} legs"]
    if missing:
        facts.append(f"{missing} never reported")
    if failed:
        facts.append(f"{failed} installables failed")
    if totals.differs:
        facts.append(f"{totals.differs} not reproducible")
    outputs = sum(len(item.outputs) for item in report.installables if item.succeeded)
    facts.append(f"{outputs} outputs")
    facts.append(f"cache hits {percent(totals.hit_rate, 0)}")
    if report.seconds is not None:
        facts.append(f"slowest leg {duration(report.seconds)}")
    description = shorten(f"{verdict}: {', '.join(facts)}", DESCRIPTION_LIMIT)
    target_url = (
        f"{context.server_url}/{context.repository}/actions/runs/{context.run_id}"
        if context.repository and context.run_id
        else None
    )
    return [CommitStatus(FLAKE_CONTEXT, state, description, target_url)]


def _installable_verdict(report: Report, name: str) -> str:
    checks = [c for c in report.checks if c.installable == name and not c.deep]
    if any(c.verdict == "differs" for c in checks):
        return "differs"
    if checks and all(c.verdict == "reproducible" for c in checks):
        return "reproducible"
    return "not-checked"


def _wall_seconds(report: Report) -> float | None:
    # The Nix runs only: phases.evaluation overlaps the build run's own seconds.
    known = [r.seconds for r in report.runs if r.seconds is not None]
    return sum(known) if known else None
