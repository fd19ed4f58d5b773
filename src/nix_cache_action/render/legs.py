"""The aggregate's part of the job summary: one row per leg, the critical path, and the
derivations that more than one leg built."""

from __future__ import annotations

from nix_cache_action.aggregate import critical_path
from nix_cache_action.render.format import count, percent, seconds
from nix_cache_action.render.markdown import code, details, escape_text, table
from nix_cache_action.report import LegResult, Report

LEG_ICONS = {
    "ok": "✅",
    "failed": "❌",
    "not-reproducible": "❌",
    "over-budget": "❌",
    "warning": "⚠️",
    "missing": "❌",
}
MAX_DUPLICATES_LISTED = 50


def legs_section(report: Report, max_rows: int = 100) -> str:
    """`### N legs`: failing legs first (the aggregate sorted them), what each built, then the
    slowest leg and the price of the fan-out."""
    if not report.legs:
        return ""
    versions = {leg.nix for leg in report.legs if leg.nix}
    # The Nix column only where the legs differ; the system is in each leg's id.
    with_nix = len(versions) > 1
    rows = [_row(leg, with_nix=with_nix) for leg in report.legs[:max_rows]]
    header = ["Leg", "Runner", *(["Nix"] if with_nix else []), "Verdict", "Time", "Built"]
    header += ["Fetched", "Hit rate"]
    align = "ll" + ("l" if with_nix else "") + "lrrrr"
    parts = [f"### {count(len(report.legs), 'leg')}", "", table(header, rows, align)]
    if len(report.legs) > len(rows):
        parts.append(f"And {count(len(report.legs) - len(rows), 'more leg')} in the JSON report.\n")
    if len(versions) == 1:
        parts.append(f"Every leg ran {escape_text(_nix_label(versions.pop()))}.\n")
    parts.extend(_missing_line(leg) for leg in report.legs if leg.verdict == "missing")
    slowest = critical_path(report.legs)
    if slowest:
        leg = slowest[0]
        parts.append(
            f"**Slowest leg:** {code(leg.id)}, {seconds(leg.seconds)}: the matrix took at least"
            " this long.\n"
        )
    parts.append(_duplicates(report))
    return "\n".join(part for part in parts if part)


def _missing_line(leg: LegResult) -> str:
    where = f" ({escape_text(leg.runner)})" if leg.runner else ""
    what = count(leg.installables, "installable")
    return (
        f"❌ Leg {code(leg.id)}{where} never reported: cancelled, timed out, or stopped before"
        f" it uploaded its report; its {what} {'counts' if leg.installables == 1 else 'count'}"
        " as failed.\n"
    )


def _row(leg: LegResult, *, with_nix: bool) -> list[str]:
    missing = leg.verdict == "missing"
    verdict = "never reported" if missing else leg.verdict.replace("-", " ")
    return [
        f"{code(leg.id, in_table=True)} {escape_text(_what(leg))}".rstrip(),
        escape_text(leg.runner or "?"),
        *([escape_text(_nix_label(leg.nix)) if leg.nix else "-"] if with_nix else []),
        f"{LEG_ICONS.get(leg.verdict, '')} {escape_text(verdict)}",
        "-" if missing else seconds(leg.seconds),
        "-" if missing else str(leg.built),
        "-" if missing else str(leg.substituted),
        "-" if missing else percent(leg.hit_rate),
    ]


def _what(leg: LegResult) -> str:
    """`fails, good and 3 more`: the last part of each installable's attribute path."""
    short = [name.rsplit("#", 1)[-1].rsplit(".", 1)[-1].strip('"') for name in leg.names[:2]]
    rest = leg.installables - len(short)
    return ", ".join(short) + (f" and {rest} more" if rest > 0 else "")


def legs_headline(report: Report) -> str:
    """`4 legs: 1 failed, 1 not reproducible, 1 never reported, 1 ok`."""
    order = ("missing", "failed", "not-reproducible", "over-budget", "warning", "ok")
    counts = {v: sum(1 for leg in report.legs if leg.verdict == v) for v in order}
    said = [
        f"{n} {'never reported' if v == 'missing' else v.replace('-', ' ')}"
        for v, n in counts.items()
        if n
    ]
    return f"{count(len(report.legs), 'leg')}: {', '.join(said)}"


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
        f"- {code(report.drv_name(d.drv))} in {', '.join(code(leg) for leg in d.legs)}"
        for d in twice[:MAX_DUPLICATES_LISTED]
    ]
    if len(twice) > MAX_DUPLICATES_LISTED:
        lines.append(f"- and {len(twice) - MAX_DUPLICATES_LISTED} more in the JSON report")
    title = (
        f"{count(len(twice), 'derivation')} built in more than one leg"
        f" ({count(builds, 'extra build')}: the price of the fan-out)"
    )
    return details(title, "\n".join(lines))


__all__ = ["legs_headline", "legs_section"]
