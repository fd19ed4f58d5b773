"""The Report: everything one or more runs found out, its vocabulary, and its versioned JSON form.

Every word the report uses for a mode, a status, a verdict or a reason is a `Literal` here and
nowhere else. The JSON form is described by `schema/report-v1.json` in this package (tests
validate real reports against it, and README's table against both). Bump SCHEMA_VERSION when
a field changes meaning or goes away; adding a field keeps the version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any, Literal, get_args

from nix_cache_action import __version__, records
from nix_cache_action.files import write_text
from nix_cache_action.intervals import covered
from nix_cache_action.records import field, record
from nix_cache_action.schema import schema_errors
from nix_cache_action.store_path import store_hash, store_name

SCHEMA_VERSION = 1
# Seconds and rates in the JSON have 4 decimals: a tenth of a millisecond.
JSON_DIGITS = 4

# How a differing rebuild counts: `fail` fails the run, `warn` reports it, `off` skips the check.
Mode = Literal["fail", "warn", "off"]
MODES: tuple[Mode, ...] = get_args(Mode)
# The run as a whole.
# `over-budget`: nothing failed or differed, but a budget (--max-built, ...) was exceeded.
RunVerdict = Literal["ok", "failed", "not-reproducible", "over-budget", "warning"]
# One derivation: built here (or on a remote builder), failed, rebuilt for the check, or
# cancelled: Nix stopped it before it finished (another build failed without --keep-going, or
# the run was interrupted), so it is neither built nor a miss.
BuildStatus = Literal["built", "failed", "checked", "cancelled"]
# Why a derivation had to be built; a rebuild for the check is not a miss and has no reason.
MissReason = Literal["not-in-cache", "cache-error"]
# One output's reproducibility.
Verdict = Literal["reproducible", "differs", "not-checked"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
# What the rebuild was compared with.
FirstCopy = Literal["substituted", "built", "present", "unknown"]
FIRST_COPIES: tuple[FirstCopy, ...] = get_args(FirstCopy)
# `cached`: with --skip-cached, all its outputs are in a cache and verified: not downloaded.
InstallableStatus = Literal["built", "failed", "error", "cached"]
DifferenceKind = Literal["content", "only-in-first", "only-in-rebuild", "type"]
Flavour = Literal["nix", "determinate", "lix"]
# A leg of a matrix: its report's verdict, or `missing` when the plan has it and it never
# reported (cancelled, or stopped before its report was uploaded).
LegVerdict = Literal["ok", "failed", "not-reproducible", "over-budget", "warning", "missing"]
# `retry`: the build once more without a cache Nix gave up on.
RunLabel = Literal["build", "retry", "check", "deep-check", "analyze"]

# Magic Nix Cache's daemon always listens here (magic-nix-cache-action's default `listen`).
MAGIC_NIX_CACHE_ADDRESSES = ("127.0.0.1:37515", "localhost:37515", "[::1]:37515")


def substituter_name(url: str) -> str:
    """A short human name for a substituter URL: Magic Nix Cache by its address, else the host."""
    bare = cache_key(url)
    host = bare.split("://", 1)[-1].split("/", 1)[0]
    if host in MAGIC_NIX_CACHE_ADDRESSES:
        return "Magic Nix Cache"
    if bare.startswith(("file://", "local")) or "://" not in bare:
        return bare
    return host


@record
class Substitution:
    path: str
    substituter: str
    nar_bytes: int | None = None
    download_bytes: int | None = None
    seconds: float | None = None
    started: float | None = None  # seconds since the run started
    run: str = ""


@record
class Build:
    drv: str
    status: BuildStatus
    seconds: float | None = None
    started: float | None = None
    reason: MissReason | None = "not-in-cache"  # None for a rebuild for the check
    reason_detail: str = ""
    machine: str = ""
    error: str | None = None
    log_tail: tuple[str, ...] = ()
    run: str = ""
    # A miss built because of these root causes (indexes into why.root_causes; why.py).
    because: tuple[int, ...] = ()


@record
class FileDifference:
    path: str  # relative to the output; "" for the output itself
    kind: DifferenceKind
    size: int | None = None
    check_size: int | None = None
    sha256: str | None = None
    check_sha256: str | None = None


@record
class Verification:
    """An earlier check of one output (see verification.py): this drv's output with this NAR
    hash was rebuilt and compared then."""

    drv: str
    output: str
    nar_hash: str
    verdict: Verdict
    checked_at: str  # ISO 8601, UTC
    commit: str | None = None
    run_url: str | None = None
    nix: str | None = None
    system: str | None = None
    # What the rebuild was compared with: `substituted` is a copy another machine built.
    first_copy: FirstCopy = "unknown"

    def when(self) -> str:
        """`on 2026-12-02 in <run URL>` (or `at commit <sha>`): enough to find that check."""
        if self.run_url:
            where = f" in {self.run_url}"
        elif self.commit:
            where = f" at commit {self.commit[:12]}"
        else:
            where = ""
        return f"on {self.checked_at[:10]}{where}"


@record
class Check:
    drv: str
    output: str | None  # the output's name (`out`, `dev`), as in Installable.outputs
    path: str | None  # its store path; the rebuild is at `<path>.check`
    verdict: Verdict
    reason: str | None = None  # why it was not checked; None, as every absent value, otherwise
    nar_hash: str | None = None
    check_nar_hash: str | None = None
    first_copy: FirstCopy = "unknown"
    substituter: str | None = None
    installable: str | None = None
    deep: bool = False
    differences: tuple[FileDifference, ...] = ()
    differences_truncated: bool = False
    diffoscope: str | None = None
    run: str = ""
    # Not rebuilt in this run: the record of the earlier check that found it reproducible.
    previously_verified: Verification | None = None


@record
class CacheError:
    substituter: str
    url: str
    status: int | None
    message: str
    retried: bool = False
    path: str | None = None  # the store path it was for, where the log tells


@record
class Installable:
    name: str
    drv: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    status: InstallableStatus = "built"
    error: str | None = None
    nar_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """Built, or (--skip-cached) in a cache and verified."""
        return self.status in ("built", "cached")


@record
class Run:
    label: RunLabel
    argv: tuple[str, ...] = ()
    exit_status: int | None = None
    seconds: float | None = None
    log_path: str | None = None
    plain_lines: int = 0  # lines that were not `@nix` records
    interrupted: bool = False


@record
class Phases:
    evaluation: float | None = None
    download: float | None = None
    build: float | None = None
    check: float | None = None
    cache_wait: float | None = None  # failed cache requests (unreachable, erroring), retries too
    # Asking the caches what they hold (narinfo look-ups that did not fail): wall time.
    cache_query: float | None = None


@record
class SubstituterTotals:
    url: str
    name: str
    substituted: int
    nar_bytes: int | None  # None when a copy's size is unknown (a recorded log of Nix 2.8)
    download_bytes: int | None
    seconds: float | None
    queried: int
    errors: int
    hit_rate: float | None  # paths served / distinct paths asked of it; None if unknown
    seconds_lost: float | None  # in its failed requests, retries included; None if unknown


@record
class Totals:
    substituted: int
    built: int
    failed: int
    cancelled: int
    checked: int
    reproducible: int
    differs: int
    not_checked: int
    hit_rate: float | None  # substituted / (substituted + built)
    nar_bytes: int | None  # None when a copy's size is unknown (a recorded log of Nix 2.8)
    download_bytes: int | None
    build_seconds: float | None
    cache_errors: int
    previously_verified: int  # outputs not rebuilt: checked before with the same NAR hash


@record
class SlowerBuild:
    name: str  # the derivation's name: its hash changes with any input
    seconds: float
    baseline_seconds: float


@record
class VerdictChange:
    installable: str
    output: str | None
    before: Verdict
    after: Verdict


@record
class CacheChange:
    url: str
    served: int
    baseline_served: int
    hit_rate: float | None
    baseline_hit_rate: float | None


@record
class Baseline:
    """This run against an earlier one (the base branch's last run): see baseline.py."""

    source: str  # where the earlier report came from
    # built, substituted, failed, hit_rate, build_seconds, seconds: the earlier run's figures
    # and this run's less those (None where either is unknown).
    totals_before: dict[str, float | None] = field(default_factory=dict)
    totals_delta: dict[str, float | None] = field(default_factory=dict)
    new_builds: tuple[str, ...] = ()  # drvs built now that the earlier run did not build
    slower: tuple[SlowerBuild, ...] = ()
    reproducibility_changes: tuple[VerdictChange, ...] = ()
    caches: tuple[CacheChange, ...] = ()


@record
class Budgets:
    """The limits a run was held to (None: no limit), and what went over them."""

    max_seconds: float | None = None
    max_build_seconds: float | None = None
    max_built: int | None = None
    min_hit_rate: float | None = None
    exceeded: tuple[str, ...] = ()
    # The most derivations one root cause may have built, itself included (why.py).
    max_per_change: int | None = None


@record
class MagicNixCache:
    """What Magic Nix Cache's daemon log says about this job."""

    log_path: str
    uploaded: int  # distinct store paths it uploaded to the GitHub Actions cache so far
    throttled: bool  # GitHub throttled it, and it stopped using the cache for the run


@record
class NixInfo:
    version: str | None = None  # the Nix version its commands follow (2.35.2 for Determinate 3.22)
    flavour: Flavour | None = None
    text: str | None = None  # what it calls itself: `nix (Determinate Nix 3.22.2) 2.35.2`


@record
class LegInfo:
    """Which leg of a planned matrix a report is for (`build --leg`)."""

    id: str
    system: str | None = None
    runner: str | None = None


@record
class LegResult:
    """One leg as the aggregate saw it: from its report, or `missing`."""

    id: str
    system: str | None
    runner: str | None
    verdict: LegVerdict
    nix: str | None = None
    seconds: float | None = None
    built: int = 0
    substituted: int = 0
    failed: int = 0
    hit_rate: float | None = None
    installables: int = 0
    why: str | None = None  # for a missing leg: what that means
    # What it builds, for a reader: the installables, the first few (LEG_NAMES_KEPT).
    names: tuple[str, ...] = ()


@record
class DuplicateBuild:
    """A derivation built in more than one leg: the price of the fan-out."""

    drv: str
    legs: tuple[str, ...]


@record
class Change:
    """What changed in a root cause's derivation since the baseline's of the same name."""

    against: str | None = None  # the baseline's drv it was compared with; None when unknown
    env: tuple[str, ...] = ()  # environment attributes added, removed or changed
    sources: tuple[str, ...] = ()  # input sources (by name) added, removed or changed
    inputs: tuple[str, ...] = ()  # input derivations (by name) added, removed or changed
    unknown: str | None = None  # why nothing can be said, when nothing can


@record
class RootCause:
    """A derivation this run built that changed in itself: none of its inputs was built."""

    drv: str
    caused: int  # misses built only because they depend on it (itself not counted)
    # The names of the derivations from it to the farthest of those, for a reader to follow.
    path: tuple[str, ...] = ()
    # The misses it caused: in the JSON, each of their builds names it (`because`), once.
    dependents: tuple[str, ...] = field(default=(), metadata={"json": False})
    change: Change | None = None  # against the baseline, where one was given


@record
class Fingerprint:
    """A built derivation, compactly, for a later run to say what changed (why.py): a short
    hash of each environment value (store paths' hashes left out), and its input sources and
    derivations by name with a short hash each. Each of the three is `key=hash key=hash`
    (keys percent-encoded): a report keeps one per miss, and JSON objects cost a third more."""

    drv: str  # the start of its derivation's hash
    name: str
    env: str = ""
    sources: str = ""
    inputs: str = ""

    def packed(self) -> str:
        """One string in the JSON, `DRV NAME|ENV|SOURCES|INPUTS`: a report keeps one per miss,
        and field names repeated in each would cost a third of it."""
        return f"{self.drv} {self.name}|{self.env}|{self.sources}|{self.inputs}"

    @classmethod
    def unpacked(cls, text: str) -> Fingerprint:
        """ValueError when `text` is not what packed() writes."""
        head, env, sources, inputs = text.split("|")
        drv, _, name = head.partition(" ")
        return cls(drv=drv, name=name, env=env, sources=sources, inputs=inputs)


@record
class Why:
    """Why the misses were built: their root causes (why.py)."""

    root_causes: tuple[RootCause, ...] = ()
    misses: int = 0  # derivations this run had to build
    unknown: tuple[str, ...] = ()  # misses whose inputs could not be read: not reckoned
    fingerprints: tuple[Fingerprint, ...] = ()  # of the misses, at most FINGERPRINTS_KEPT
    fingerprints_left_out: int = 0  # misses past that cap


@record
class Report:
    substitutions: tuple[Substitution, ...] = ()
    builds: tuple[Build, ...] = ()
    checks: tuple[Check, ...] = ()
    installables: tuple[Installable, ...] = ()
    cache_errors: tuple[CacheError, ...] = ()
    runs: tuple[Run, ...] = ()
    phases: Phases = field(default_factory=Phases)
    nix: NixInfo = field(default_factory=NixInfo)
    reproducibility_mode: Mode = "fail"
    # Distinct store paths asked of each substituter (narinfo look-ups), for per-cache hit rates.
    queried: dict[str, int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # Nix's error messages and ours, ANSI-free, bounded
    warnings: tuple[str, ...] = ()  # Nix's `warning:` messages, ANSI-free, each once, bounded
    # Why the run ended before its last step (interrupted, no usable Nix); None if it did not.
    stopped: str | None = None
    notes: tuple[str, ...] = ()  # what the tool itself noticed (skipped lines, interruptions)
    # The caches Nix was configured to ask, as its configuration says (`build` only): each has a
    # row in substituters(), also if it served nothing.
    configured_substituters: tuple[str, ...] = ()
    magic_nix_cache: MagicNixCache | None = None  # from its daemon's log, where there is one
    # Seconds each cache's failed requests took, retries included (live runs only).
    seconds_lost: dict[str, float] = field(default_factory=dict)
    # The log ends in the middle of a run (activities started and never stopped): what it
    # shows is not all that happened, so the verdict cannot be `ok`.
    incomplete: bool = False
    seconds: float | None = None  # the whole job's wall time, where it was measured
    baseline: Baseline | None = None
    budgets: Budgets | None = None
    # Where Nix ran, relative to the repository root (the action's working-directory, the
    # CLI's -C), when it is not the root: the reproduce commands start from the root.
    working_directory: str | None = None
    leg: LegInfo | None = None  # a leg's report: which leg of the plan
    legs: tuple[LegResult, ...] = ()  # the aggregate's: every leg, missing ones too
    duplicate_builds: tuple[DuplicateBuild, ...] = ()  # the aggregate's
    why: Why | None = None  # the root causes of the misses, where their inputs could be read
    # drv_name's table, made on first use: not part of the report, only of how it is shown.
    _drv_names: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    # --- derived ------------------------------------------------------------------------------

    def drv_name(self, drv: str) -> str:
        """A derivation as a reader is shown it: its name, and where two derivations of this
        report share that name (two revisions of one package) also the start of its hash, so
        that the two never read as one shown twice."""
        names = self._drv_names
        if names is None:
            names = _distinct_names(
                [b.drv for b in self.builds]
                + [c.drv for c in self.checks]
                + [i.drv for i in self.installables if i.drv]
                + ([c.drv for c in self.why.root_causes] if self.why is not None else [])
            )
            object.__setattr__(self, "_drv_names", names)  # a cache on a frozen record
        return names.get(drv) or store_name(drv)

    def totals(self) -> Totals:
        built = sum(1 for b in self.builds if b.status == "built")
        substituted = len(self.substitutions)
        miss_base = substituted + built
        # As published (JSON_DIGITS): a report read back (a baseline, merge's inputs) then has
        # the very total it was written with.
        seconds = [
            None if b.seconds is None else round(b.seconds, JSON_DIGITS)
            for b in self.builds
            if b.status != "checked"
        ]
        return Totals(
            substituted=substituted,
            built=built,
            failed=sum(1 for b in self.builds if b.status == "failed"),
            cancelled=sum(1 for b in self.builds if b.status == "cancelled"),
            checked=sum(1 for b in self.builds if b.status == "checked"),
            reproducible=sum(1 for c in self.checks if c.verdict == "reproducible"),
            differs=sum(1 for c in self.checks if c.verdict == "differs"),
            not_checked=sum(1 for c in self.checks if c.verdict == "not-checked"),
            # With no cache configured or asked a rate means nothing (0.0 would read as a cache
            # that failed): null here, so the JSON, the outputs and every renderer agree.
            hit_rate=round(substituted / miss_base, 4)
            if miss_base and self.caches_asked()
            else None,
            nar_bytes=sum_exact([s.nar_bytes for s in self.substitutions]),
            download_bytes=sum_exact([s.download_bytes for s in self.substitutions]),
            build_seconds=sum_known(seconds),
            cache_errors=len(self.cache_errors),
            previously_verified=sum(1 for c in self.checks if c.previously_verified is not None),
        )

    def caches_asked(self) -> bool:
        """Whether any cache was configured or asked: else a hit rate means nothing."""
        return bool(self.queried or self.configured_substituters or self.substitutions)

    def substituters(self) -> tuple[SubstituterTotals, ...]:
        by_url: dict[str, list[Substitution]] = {}
        for sub in self.substitutions:
            by_url.setdefault(sub.substituter, []).append(sub)
        errors: dict[str, int] = {}
        for err in self.cache_errors:
            errors[err.substituter] = errors.get(err.substituter, 0) + 1
        asked = self.queried
        seen = {cache_key(u) for u in [*by_url, *errors, *asked]}
        # Configured caches the log never names (Nix skipped them, or needed nothing) too.
        quiet = [c for c in self.configured_substituters if cache_key(c) not in seen]
        urls = list(dict.fromkeys([*by_url, *errors, *asked, *quiet]))
        lost: dict[str, float] = {}
        for cache, seconds in self.seconds_lost.items():
            lost[cache_key(cache)] = round(lost.get(cache_key(cache), 0.0) + seconds, 3)
        rows = []
        for url in urls:
            subs = by_url.get(url, [])
            n_asked = asked.get(url, 0)
            rows.append(
                SubstituterTotals(
                    url=url,
                    name=substituter_name(url),
                    substituted=len(subs),
                    nar_bytes=sum_exact([s.nar_bytes for s in subs]),
                    download_bytes=sum_exact([s.download_bytes for s in subs]),
                    seconds=wall_seconds(subs),
                    queried=n_asked,
                    errors=errors.get(url, 0),
                    hit_rate=round(min(len(subs), n_asked) / n_asked, 4) if n_asked else None,
                    seconds_lost=lost.get(cache_key(url)),
                )
            )
        return tuple(rows)

    def succeeded(self) -> bool:
        """Everything built (reproducibility is judged separately, by the mode).

        With installables (a `build` run) their outcome decides: Nix also prints errors it
        recovers from (a cache answering 418 under `fallback = true`), which must not fail a run
        that built everything. A report from a log alone has no installables, and then any error
        Nix printed counts, as does a run that never got to its installables (no usable Nix).
        """
        unfinished = {"failed", "cancelled"}
        if self.stopped is not None or self.incomplete:
            return False
        if any(leg.verdict in ("missing", "failed") for leg in self.legs):
            return False
        if any(b.status in unfinished for b in self.builds):
            return False
        if self.installables:
            return all(i.succeeded for i in self.installables)
        return not self.errors

    def verdict(self) -> RunVerdict:
        if not self.succeeded():
            return "failed"
        if any(c.verdict == "differs" for c in self.checks):
            return "not-reproducible" if self.reproducibility_mode == "fail" else "warning"
        if self.budgets is not None and self.budgets.exceeded:
            return "warning" if self.reproducibility_mode == "warn" else "over-budget"
        return "ok"

    def exit_status(self) -> int:
        return 0 if self.verdict() in {"ok", "warning"} else 1

    # --- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        body = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "nix-cache-action", "version": __version__},
            "verdict": self.verdict(),
            "reproducibility_mode": self.reproducibility_mode,
            "nix": self.nix,
            "totals": self.totals(),
            "phases": self.phases,
            "substituters": list(self.substituters()),
            "installables": list(self.installables),
            "substitutions": list(self.substitutions),
            "builds": list(self.builds),
            "checks": list(self.checks),
            "cache_errors": list(self.cache_errors),
            "runs": list(self.runs),
            "queried": dict(self.queried),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "stopped": self.stopped,
            "notes": list(self.notes),
            "configured_substituters": list(self.configured_substituters),
            "seconds_lost": dict(self.seconds_lost),
            "magic_nix_cache": self.magic_nix_cache,
            "incomplete": self.incomplete,
            "seconds": self.seconds,
            "baseline": self.baseline,
            "budgets": self.budgets,
            "working_directory": self.working_directory,
            "leg": self.leg,
            "legs": list(self.legs),
            "duplicate_builds": list(self.duplicate_builds),
            "why": self.why,
        }
        if self.why is not None:
            body["why"] = records.replace(self.why, fingerprints=())
            packed = [f.packed() for f in self.why.fingerprints]
        # One pass turns the records into JSON values and rounds the floats: asdict's deep copy
        # and a second walk took most of the time for an aggregate of 50,000 builds.
        data: dict[str, Any] = _jsonable(body)
        if self.why is not None:
            data["why"]["fingerprints"] = packed
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"report schema_version {version!r} is not {SCHEMA_VERSION}; "
                "re-create the report with this version of nix-cache-action"
            )

        def many(kind: type[Any], key: str) -> tuple[Any, ...]:
            return tuple(_from_dict(kind, item) for item in data.get(key, []))

        return cls(
            substitutions=many(Substitution, "substitutions"),
            builds=many(Build, "builds"),
            checks=many(Check, "checks"),
            installables=many(Installable, "installables"),
            cache_errors=many(CacheError, "cache_errors"),
            runs=many(Run, "runs"),
            phases=_from_dict(Phases, data.get("phases", {})),
            nix=_from_dict(NixInfo, data.get("nix", {})),
            reproducibility_mode=_mode(data.get("reproducibility_mode", "fail")),
            queried={str(k): int(v) for k, v in data.get("queried", {}).items()},
            errors=tuple(data.get("errors", [])),
            warnings=tuple(data.get("warnings", [])),
            stopped=data.get("stopped"),
            notes=tuple(data.get("notes", [])),
            configured_substituters=tuple(data.get("configured_substituters", [])),
            seconds_lost={str(k): float(v) for k, v in data.get("seconds_lost", {}).items()},
            magic_nix_cache=(
                _from_dict(MagicNixCache, data["magic_nix_cache"])
                if isinstance(data.get("magic_nix_cache"), dict)
                else None
            ),
            incomplete=bool(data.get("incomplete", False)),
            seconds=data.get("seconds"),
            baseline=_baseline(data["baseline"])
            if isinstance(data.get("baseline"), dict)
            else None,
            working_directory=data.get("working_directory"),
            budgets=_from_dict(Budgets, data["budgets"])
            if isinstance(data.get("budgets"), dict)
            else None,
            leg=_from_dict(LegInfo, data["leg"]) if isinstance(data.get("leg"), dict) else None,
            legs=many(LegResult, "legs"),
            duplicate_builds=many(DuplicateBuild, "duplicate_builds"),
            why=_why(data["why"]) if isinstance(data.get("why"), dict) else None,
        ).with_dependents()

    def with_dependents(self) -> Report:
        """Each root cause's dependents, from the builds that name it (`because`)."""
        if self.why is None or not self.why.root_causes:
            return self
        found: list[list[str]] = [[] for _ in self.why.root_causes]
        roots = [cause.drv for cause in self.why.root_causes]
        for build in self.builds:
            for index in build.because:
                in_range = 0 <= index < len(found)
                if in_range and build.drv != roots[index] and build.drv not in found[index]:
                    found[index].append(build.drv)
        causes = tuple(
            records.replace(cause, dependents=tuple(found[i]))
            for i, cause in enumerate(self.why.root_causes)
        )
        return records.replace(self, why=records.replace(self.why, root_causes=causes))


MERGED_TWICE = "{count} of the merged reports repeated another one exactly and counted once"
MERGED_MODES = (
    "the merged reports were made in different reproducibility modes ({by_mode}); the"
    " strictest, {strictest}, decides the verdict"
)


def merge(reports: list[Report]) -> Report:
    """One report for several runs (a matrix of jobs): lists are joined, totals re-derived.

    A report given twice (the same run) counts once, and a merge of reports made in different
    reproducibility modes says so: the strictest mode decides its verdict.
    """
    if not reports:
        return Report()
    unique: list[Report] = []
    for report in reports:  # by equality: a report holds dicts, so it has no hash
        if report not in unique:
            unique.append(report)
    merge_notes = []
    if len(unique) < len(reports):
        merge_notes.append(MERGED_TWICE.format(count=len(reports) - len(unique)))
    reports = unique

    def join(name: str) -> tuple[Any, ...]:
        return tuple(item for report in reports for item in getattr(report, name))

    phases = Phases(
        **{
            f.name: sum_known([getattr(r.phases, f.name) for r in reports])
            for f in records.fields(Phases)
        }
    )
    modes = {r.reproducibility_mode for r in reports}
    queried: dict[str, int] = {}
    for report in reports:
        for url, count in report.queried.items():
            queried[url] = queried.get(url, 0) + count
    return Report(
        substitutions=join("substitutions"),
        # `because` points into each run's own root causes, which a merge does not keep.
        builds=tuple(records.replace(b, because=()) for b in join("builds")),
        checks=join("checks"),
        installables=join("installables"),
        cache_errors=join("cache_errors"),
        runs=join("runs"),
        phases=phases,
        nix=reports[0].nix,
        # MODES runs from the strictest, and the strictest wins: a merged verdict must not hide
        # a failure of one job.
        reproducibility_mode=next((m for m in MODES if m in modes), "fail"),
        queried=queried,
        errors=join("errors"),
        warnings=tuple(dict.fromkeys(join("warnings"))),
        stopped=next((r.stopped for r in reports if r.stopped is not None), None),
        notes=join("notes") + tuple(merge_notes) + _modes_note(reports),
        configured_substituters=tuple(
            dict.fromkeys(c for r in reports for c in r.configured_substituters)
        ),
        incomplete=any(r.incomplete for r in reports),
        working_directory=next((r.working_directory for r in reports if r.working_directory), None),
        # Jobs of a matrix run side by side: the longest is the wall time.
        seconds=max((r.seconds for r in reports if r.seconds is not None), default=None),
        seconds_lost=sum_maps([r.seconds_lost for r in reports]),
        magic_nix_cache=next(
            (r.magic_nix_cache for r in reports if r.magic_nix_cache is not None), None
        ),
    )


def _mode(value: object) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise ValueError(f"reproducibility_mode {value!r} is not one of {', '.join(MODES)}")


def _modes_note(reports: list[Report]) -> tuple[str, ...]:
    modes = {r.reproducibility_mode for r in reports}
    if len(modes) < 2:  # one mode among them needs no word
        return ()
    by_mode = ", ".join(
        f"{sum(r.reproducibility_mode == m for r in reports)} in {m}" for m in MODES if m in modes
    )
    strictest = next(m for m in MODES if m in modes)
    return (MERGED_MODES.format(by_mode=by_mode, strictest=strictest),)


# Past this many builds and fetched paths a report is written compact: json's C encoder takes
# no indent, and indenting an aggregate of 50,000 builds took seconds (`jq .` lays it out).
INDENT_UP_TO = 5000


def write_report(report: Report, path: Path) -> None:
    """Atomically for a regular file, never half-written; OSError when it cannot be."""
    small = len(report.builds) + len(report.substitutions) <= INDENT_UP_TO
    write_text(path, json.dumps(report.to_json(), indent=2 if small else None) + "\n")


# Characters of a store hash that tell two derivations of one name apart.
DRV_HASH_CHARS = 7


def _distinct_names(drvs: Iterable[str]) -> dict[str, str]:
    """`name (hash)` for each derivation whose name another of `drvs` has too."""
    by_name: dict[str, set[str]] = {}
    for drv in drvs:
        by_name.setdefault(store_name(drv), set()).add(drv)
    return {
        drv: f"{name} ({store_hash(drv)[:DRV_HASH_CHARS]})"
        for name, same in by_name.items()
        if len(same) > 1
        for drv in same
    }


class ReportFileError(Exception):
    """A report file that cannot be used; `why` says what is wrong with it, after its path."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} {why}")
        self.path = path
        self.why = why


def read_report(path: Path) -> Report:
    """A report another run wrote (`merge`'s inputs, a baseline), checked against the schema
    first: a file from a cache or a user may be anything, and the error names what is wrong."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise ReportFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    except (ValueError, RecursionError) as exc:
        why = f"is not JSON ({exc}); pass a report file written by nix-cache-action"
        raise ReportFileError(path, why) from exc
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version")
        raise ReportFileError(
            path,
            f"has schema_version {found!r}, not {SCHEMA_VERSION}; make it again with this"
            " version of nix-cache-action",
        )
    try:
        errors = schema_errors(data)
    except RecursionError:
        errors = ["nested deeper than any report"]
    if errors:
        raise ReportFileError(path, f"is not a nix-cache-action report: {'; '.join(errors)}")
    try:
        return Report.from_json(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise ReportFileError(path, f"does not hold a report ({exc})") from exc


def sum_maps(maps: list[dict[str, float]]) -> dict[str, float]:
    """Seconds per key, added up over several runs or reports."""
    total: dict[str, float] = {}
    for one in maps:
        for key, value in one.items():
            total[key] = round(total.get(key, 0.0) + value, 3)
    return total


def cache_key(url: str) -> str:
    """A cache's URL without its query or a trailing slash: one cache, however it is written
    (the configuration keeps `?trusted=1`, logs of Nix 2.31+ drop it)."""
    return url.split("?", 1)[0].rstrip("/")


def wall_seconds(subs: list[Substitution]) -> float | None:
    """The wall time during which any of `subs` was being copied: Nix copies several paths at
    once, and a sum of their times can exceed the whole run's. None when no copy has times."""
    seconds = covered(
        (s.started, s.started + s.seconds)
        for s in subs
        if s.started is not None and s.seconds is not None
    )
    return None if seconds is None else round(seconds, 3)


def first_copy_of(
    path: str, drv: str | None, substituted: Container[str], built: Container[str]
) -> FirstCopy:
    """Where an output's copy in this run came from: a cache, a build here, or the store as it
    was."""
    if path in substituted:
        return "substituted"
    return "built" if drv in built else "present"


def sum_exact(values: list[int | None]) -> int | None:
    """The total, or None when any part is unknown: a sum of the known parts is not the figure.
    Nothing at all is 0."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def sum_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known else None


def _jsonable(value: Any) -> Any:  # noqa: ANN401 - walks the report's records and JSON
    """JSON values of the report's records (dataclasses, tuples, dicts), floats rounded."""
    if isinstance(value, float):
        # No NaN or Infinity in a report: JSON has neither, and an unknown figure is null.
        return round(value, JSON_DIGITS) if math.isfinite(value) else None
    if isinstance(value, (str, int)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    names = _field_names(value)
    return {name: _jsonable(getattr(value, name)) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(record: Any) -> tuple[str, ...]:  # noqa: ANN401 - any record
    """A record class's field names, looked up once per class."""
    return _FIELD_NAMES.get(type(record)) or _field_names_of(type(record))


def _field_names_of(kind: type) -> tuple[str, ...]:
    names = _FIELD_NAMES[kind] = tuple(
        f.name for f in records.fields(kind) if f.metadata.get("json", True)
    )
    return names


def _why(data: dict[str, Any]) -> Why:
    return Why(
        root_causes=tuple(
            replace_change(_from_dict(RootCause, d), d.get("change"))
            for d in data.get("root_causes", [])
        ),
        misses=int(data.get("misses", 0)),
        unknown=tuple(data.get("unknown", [])),
        fingerprints=tuple(Fingerprint.unpacked(f) for f in data.get("fingerprints", [])),
        fingerprints_left_out=int(data.get("fingerprints_left_out", 0)),
    )


def replace_change(cause: RootCause, change: object) -> RootCause:
    return records.replace(
        cause, change=_from_dict(Change, change) if isinstance(change, dict) else None
    )


def _baseline(data: dict[str, Any]) -> Baseline:
    return Baseline(
        source=str(data.get("source", "")),
        totals_before=dict(data.get("totals_before", {})),
        totals_delta=dict(data.get("totals_delta", {})),
        new_builds=tuple(data.get("new_builds", [])),
        slower=tuple(_from_dict(SlowerBuild, d) for d in data.get("slower", [])),
        reproducibility_changes=tuple(
            _from_dict(VerdictChange, d) for d in data.get("reproducibility_changes", [])
        ),
        caches=tuple(_from_dict(CacheChange, d) for d in data.get("caches", [])),
    )


def _from_dict(kind: type[Any], data: dict[str, Any]) -> Any:  # noqa: ANN401 - any dataclass
    names = _FIELD_NAMES.get(kind) or _field_names_of(kind)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            continue  # a newer writer's extra field
        if key == "differences":
            values[key] = tuple(_from_dict(FileDifference, d) for d in value)
        elif key == "previously_verified":
            values[key] = None if value is None else _from_dict(Verification, value)
        elif isinstance(value, list):
            values[key] = tuple(value)
        else:
            values[key] = value
    return kind(**values)
