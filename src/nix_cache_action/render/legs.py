"""The aggregate's part of the job summary: one row per leg, the critical path, and the
derivations that more than one leg built."""

from __future__ import annotations

from nix_cache_action.aggregate import critical_path
from nix_cache_action.render.format import count, percent, seconds
from nix_cache_action.render.markdown import code, details, escape_text, table
from nix_cache_action.report import LegResult, Report
from nix_cache_action.store_path import store_name

LEG_ICONS = {
    "ok": "✅",
    "failed": "❌",
    "not-reproducible": "❌",
    "over-budget": "❌",
    "warning": "⚠️",
    "missing": "❓",
}
MAX_DUPLICATES_LISTED = 50


def legs_section(report: Report, max_rows: int = 100) -> str:
    """`### Legs`: failing legs first (the aggregate sorted them), then the critical path and
    the price of the fan-out."""
    if not report.legs:
        return ""
    rows = [_row(leg) for leg in report.legs[:max_rows]]
    header = [
        "Leg",
        "System",
        "Runner",
        "Nix",
        "Verdict",
        "Wall time",
        "Built",
        "Fetched",
        "Hit rate",
    ]
    parts = [f"### {count(len(report.legs), 'leg')}", "", table(header, rows, "lllllrrrr")]
    if len(report.legs) > len(rows):
        parts.append(f"And {count(len(report.legs) - len(rows), 'more leg')} in the JSON report.\n")
    missing = [leg for leg in report.legs if leg.verdict == "missing"]
    if missing:
        names = ", ".join(code(leg.id) for leg in missing)
        why = escape_text(missing[0].why or "")
        parts.append(f"❓ {count(len(missing), 'leg')} never reported ({names}): {why}.\n")
    slowest = critical_path(report.legs)
    if slowest:
        said = ", ".join(f"{code(leg.id)} {seconds(leg.seconds)}" for leg in slowest)
        parts.append(f"**Critical path** (the slowest legs): {said}.\n")
    parts.append(_duplicates(report))
    return "\n".join(part for part in parts if part)


def _row(leg: LegResult) -> list[str]:
    icon = LEG_ICONS.get(leg.verdict, "")
    missing = leg.verdict == "missing"
    return [
        code(leg.id, in_table=True),
        escape_text(leg.system or "?"),
        escape_text(leg.runner or "?"),
        escape_text(_nix_label(leg.nix)) if leg.nix else "-",
        f"{icon} {escape_text(leg.verdict)}",
        "-" if missing else seconds(leg.seconds),
        "-" if missing else str(leg.built),
        "-" if missing else str(leg.substituted),
        "-" if missing else percent(leg.hit_rate),
    ]


def _nix_label(text: str) -> str:
    """`nix (Determinate Nix 3.22.2) 2.35.2` -> `Determinate Nix 3.22.2`; `nix (Nix) 2.34.8` ->
    `Nix 2.34.8`: a column, not a banner."""
    if "(" in text and ")" in text:
        inner = text[text.index("(") + 1 : text.index(")")]
        tail = text[text.index(")") + 1 :].strip()
        return inner if any(ch.isdigit() for ch in inner) else f"{inner} {tail}".strip()
    return text


def _duplicates(report: Report) -> str:
    twice = report.duplicate_builds
    if not twice:
        return "No derivation was built in more than one leg.\n"
    builds = sum(len(d.legs) - 1 for d in twice)
    lines = [
        f"- {code(store_name(d.drv))} in {', '.join(code(leg) for leg in d.legs)}"
        for d in twice[:MAX_DUPLICATES_LISTED]
    ]
    if len(twice) > MAX_DUPLICATES_LISTED:
        lines.append(f"- and {len(twice) - MAX_DUPLICATES_LISTED} more in the JSON report")
    title = (
        f"{count(len(twice), 'derivation')} built in more than one leg"
        f" ({count(builds, 'extra build')}: the price of the fan-out)"
    )
    return details(title, "\n".join(lines))


__all__ = ["legs_section"]
