"""Report -> the plain-text account printed at the end of a run."""

from __future__ import annotations

from nix_cache_action.report import Report


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
    return "?" if value is None else f"{value:.1f} s"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def render_terminal(report: Report) -> str:
    totals = report.totals()
    lines = [
        f"nix-cache-action: {report.verdict()}",
        (
            f"  substituted {totals.substituted}, built {totals.built}, failed {totals.failed}, "
            f"hit rate {percent(totals.hit_rate)}"
        ),
    ]
    phases = report.phases
    lines.append(
        f"  evaluation {seconds(phases.evaluation)}, download {seconds(phases.download)}, "
        f"build {seconds(phases.build)}, check {seconds(phases.check)}"
    )
    for sub in report.substituters():
        lines.append(
            f"  cache {sub.name}: {sub.substituted} paths, {human_bytes(sub.nar_bytes)}, "
            f"{seconds(sub.seconds)}" + (f", {sub.errors} errors" if sub.errors else "")
        )
    for check in report.checks:
        target = check.installable or check.drv
        lines.append(
            f"  check {target}: {check.verdict}" + (f" ({check.reason})" if check.reason else "")
        )
    lines.extend(f"  {error.splitlines()[0]}" for error in report.errors[:10])
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)
