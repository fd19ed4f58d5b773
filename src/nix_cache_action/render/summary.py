"""Report -> the markdown of the job summary (a first plain version)."""

from __future__ import annotations

from nix_cache_action.render.terminal import human_bytes, percent, seconds
from nix_cache_action.report import Report


def render_summary(report: Report) -> str:
    totals = report.totals()
    out = [f"## nix-cache-action: {report.verdict()}", ""]
    out.append(
        f"Substituted {totals.substituted}, built {totals.built}, failed "
        f"{totals.failed}; hit rate {percent(totals.hit_rate)}."
    )
    out.append("")
    out.append("| cache | paths | bytes | seconds | errors |")
    out.append("|---|---:|---:|---:|---:|")
    out.extend(
        f"| {s.name} | {s.substituted} | {human_bytes(s.nar_bytes)} | "
        f"{seconds(s.seconds)} | {s.errors} |"
        for s in report.substituters()
    )
    out.append("")
    out.append("| output | verdict | narHash |")
    out.append("|---|---|---|")
    out.extend(
        f"| {c.installable or c.drv} | {c.verdict} | `{c.nar_hash or ''}` |" for c in report.checks
    )
    return "\n".join(out) + "\n"
