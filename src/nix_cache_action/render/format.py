"""How numbers, counts and the recurring phrases read, in every renderer: one definition each."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence

from nix_cache_action.report import (
    Baseline,
    Check,
    Phases,
    Report,
    SubstituterTotals,
    substituter_name,
)
from nix_cache_action.store_path import store_name

MAX_HOURS_SHOWN = 999
ELLIPSIS = "\u2026"


def count(number: int, word: str, plural: str | None = None) -> str:
    """`1 path`, `2 paths`."""
    return f"{number} {word if number == 1 else plural or word + 's'}"


def human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def seconds(value: float | None) -> str:
    return "?" if value is None else duration(value)


def duration(value: float) -> str:
    """A duration with the precision that orders it: `23 ms`, `4.1 s`, `12 s`, `2 min 05 s`,
    `1 h 03 min`; sub-second builds are told apart, not all `0.0 s`."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"duration {value!r} is not a number of seconds")
    if value < 0.9995:
        millis = round(value * 1000)
        return "under 1 ms" if millis == 0 and value > 0 else f"{millis} ms"
    if value < 9.95:
        return f"{value:.1f} s"
    whole = round(value)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours > MAX_HOURS_SHOWN:
        # Keeps the text a bounded length (a commit status has 140 characters in all).
        return f"over {MAX_HOURS_SHOWN} h"
    return f"{hours} h {minutes:02d} min"


def phase_times(phases: Phases) -> list[str]:
    """`evaluation 1.2 s`, ... for each phase with a time; a phase that did not happen (no
    build, no check) or whose time is unknown (a recorded log) is left out, never `?`."""
    named = (
        ("evaluation", phases.evaluation),
        ("download", phases.download),
        ("build", phases.build),
        ("check", phases.check),
        ("asking caches", phases.cache_query),
        ("waiting on caches", phases.cache_wait),
    )
    return [f"{label} {seconds(value)}" for label, value in named if value is not None]


def times_unknown(report: Report) -> bool:
    """Something happened, and no Nix run of it has a time: a log read from a file."""
    happened = bool(report.builds or report.substitutions)
    return happened and not any(run.seconds is not None for run in report.runs)


def percent(rate: float | None, digits: int = 1) -> str:
    """A fraction as a percentage; a single miss never reads as 100 %, nor a single hit as 0."""
    if rate is None:
        return "n/a"
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate {rate!r} is not a fraction between 0 and 1")
    scale = 10**digits
    shown = round(rate * 100 * scale)
    if shown == 100 * scale and rate < 1.0:
        shown -= 1
    elif shown == 0 and rate > 0.0:
        shown = 1
    return f"{shown / scale:.{digits}f}%"


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"… ({len(text) - limit} more characters)"


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def bounded(items: Sequence[str], limit: int, what: str = "more") -> list[str]:
    """At most `limit` items, then one that says how many were left out."""
    if len(items) <= limit:
        return list(items)
    return [*items[:limit], f"and {len(items) - limit} {what}"]


# --- phrases ------------------------------------------------------------------------------------


def totals_phrase(report: Report) -> str:
    """What came from caches and what was built: the same words in every renderer. With no
    cache configured or asked, the hit rate is "n/a": 0% would read as a cache that failed."""
    totals = report.totals()
    rate = percent(totals.hit_rate) if report.caches_asked() else "n/a, no cache was asked"
    return (
        f"{count(totals.substituted, 'store path')} substituted, {totals.built} built,"
        f" {totals.failed} failed, cache hit rate {rate}"
    )


HIT_RATE_DEFINITION = "substituted ÷ (substituted + built)"


def first_copy_phrase(check: Check) -> str:
    """What a rebuild was compared with."""
    if check.first_copy == "substituted":
        where = substituter_name(check.substituter) if check.substituter else "a cache"
        return f"the copy from {where} (cross-machine)"
    if check.first_copy == "built":
        return "the copy built on the same machine"
    if check.first_copy == "present":
        return "the copy that was already in the store"
    return "the first copy"


def from_root(installable: str, working_directory: str | None) -> str:
    """The installable as it reads from the repository root, when Nix ran in a folder of it:
    `.#app` run in `nix/` is `./nix#app`. References that name no local path stay as they are."""
    if not working_directory or working_directory == ".":
        return installable
    folder = "./" + working_directory.strip("/").removeprefix("./")
    if installable == ".":
        return folder
    if installable.startswith(".#"):
        return folder + installable[1:]
    if installable.startswith("./"):
        return f"{folder}/{installable[2:]}"
    return installable


def reproduce_commands(check: Check, working_directory: str | None = None) -> list[str]:
    """The commands that repeat a check locally and compare the two copies, from the
    repository root (`working_directory`: where Nix ran, relative to it)."""
    path = check.path or check.drv
    target = (
        from_root(check.installable, working_directory) if check.installable else f"{check.drv}^*"
    )
    return [
        f"nix build {shlex.quote(target)} --rebuild --keep-failed",
        f"diffoscope {shlex.quote(path)} {shlex.quote(path + '.check')}",
    ]


def check_name(check: Check) -> str:
    """An installable's name, or the derivation's for a deep check."""
    if check.installable:
        return check.installable
    return f"{store_name(check.drv)} (deep check)" if check.deep else store_name(check.drv)


UNREACHABLE = "{name} could not be reached: {lost}, nothing came from it"
# A log without timestamps (`analyze` of a plain log) cannot say how long the attempts took.
LOST = "{seconds} lost"
LOST_UNKNOWN = "the time it cost is unknown"


def unreachable_caches(report: Report, rows: Sequence[SubstituterTotals]) -> list[str]:
    """One line per cache that never answered (every error of it without an HTTP status) and
    served nothing: what it cost. `rows` is `report.substituters()`, which callers have."""
    answered = {e.substituter for e in report.cache_errors if e.status is not None}
    silent = {e.substituter for e in report.cache_errors if e.status is None} - answered
    return [
        UNREACHABLE.format(
            name=row.name,
            lost=LOST_UNKNOWN
            if row.seconds_lost is None
            else LOST.format(seconds=seconds(row.seconds_lost)),
        )
        for row in rows
        if row.url in silent and row.substituted == 0
    ]


def baseline_phrase(baseline: Baseline) -> tuple[str, str]:
    """What changed since the earlier run, and which run that was: ("main's last run",
    "3 more built, hit rate 96% → 71%, +41 s")."""
    delta, before = baseline.totals_delta, baseline.totals_before
    parts = []
    for name, word in (("built", "built"), ("failed", "failed"), ("substituted", "substituted")):
        change = delta.get(name)
        if change:
            parts.append(f"{abs(int(change))} {'more' if change > 0 else 'fewer'} {word}")
    rate_before, rate_change = before.get("hit_rate"), delta.get("hit_rate")
    if rate_before is not None and rate_change:
        now = rate_before + rate_change
        parts.append(f"hit rate {percent(rate_before, 0)} → {percent(now, 0)}")
    seconds = delta.get("seconds")
    if seconds is not None and abs(seconds) >= 1:
        parts.append(f"{'+' if seconds > 0 else '-'}{duration(abs(seconds))}")
    changed = [c for c in baseline.reproducibility_changes if c.before != c.after]
    if changed:
        parts.append(f"{count(len(changed), 'output')} changed verdict")
    if baseline.slower:
        parts.append(f"{count(len(baseline.slower), 'build')} slower")
    said = ", ".join(parts) if parts else "no change in builds, hits or time"
    return baseline.source, said


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, its middle replaced by an ellipsis if need be.

    Both ends are kept because both say something: an installable starts with the flake and
    ends with the attribute. The end gets the larger share, since attributes tell outputs apart.
    """
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    kept = limit - len(ELLIPSIS)
    head = kept // 3
    return text[:head] + ELLIPSIS + text[len(text) - (kept - head) :]
