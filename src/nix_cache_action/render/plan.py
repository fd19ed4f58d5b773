"""A plan as a person reads it: a few lines on a terminal, a short job summary on GitHub."""

from __future__ import annotations

from nix_cache_action.plan import Plan
from nix_cache_action.render.format import count
from nix_cache_action.render.markdown import code, escape_text, table

MAX_LISTED = 20


def plan_headline(plan: Plan) -> str:
    """`12 legs for 2 systems: 300 to build, 40 cached, 600 verified (left out), 2 errors`."""
    counts = plan.counts()
    parts = [f"{counts['to-build']} to build"]
    if counts["cached"]:
        parts.append(f"{counts['cached']} in a cache, to check")
    if counts["verified"]:
        parts.append(f"{counts['verified']} cached and verified (left out)")
    if counts["error"]:
        parts.append(count(counts["error"], "evaluation error"))
    systems = sorted({leg.system for leg in plan.legs})
    if not plan.legs:
        outputs = sum(left.outputs for left in plan.left_out)
        lead = (
            f"nothing to build: {count(outputs, 'output')} cached and verified"
            if outputs and not counts["to-build"] and not counts["cached"]
            else "no legs"
        )
    else:
        lead = f"{count(len(plan.legs), 'leg')} for {count(len(systems), 'system')}"
    return f"{lead}: {', '.join(parts)}"


def render_plan_terminal(plan: Plan) -> str:
    lines = [f"nix-cache-action plan of {plan.flake}: {plan_headline(plan)}"]
    for leg in plan.legs:
        shown = ", ".join(leg.installables[:3])
        more = f" and {len(leg.installables) - 3} more" if len(leg.installables) > 3 else ""
        lines.append(f"  {leg.id} on {leg.runner}: {shown}{more}")
    for left in plan.left_out:
        lines.append(
            f"  left out ({left.system}): {count(len(left.installables), 'installable')},"
            f" {left.why}"
        )
    lines.extend(f"  error: {error}" for error in plan.errors[:MAX_LISTED])
    if len(plan.errors) > MAX_LISTED:
        lines.append(f"  ... and {len(plan.errors) - MAX_LISTED} more errors")
    lines.extend(f"  note: {note}" for note in plan.notes)
    return "\n".join(lines)


def render_plan_summary(plan: Plan) -> str:
    """The plan job's summary: what goes where, what was left out, what did not evaluate."""
    parts = [f"## Plan: {escape_text(plan_headline(plan))}\n"]
    if plan.legs:
        rows = []
        for leg in plan.legs:
            shown = ", ".join(code(i, in_table=True) for i in leg.installables[:5])
            more = f" and {len(leg.installables) - 5} more" if len(leg.installables) > 5 else ""
            rows.append(
                [
                    escape_text(leg.id),
                    escape_text(leg.system),
                    escape_text(leg.runner),
                    shown + more,
                ]
            )
        parts.append(table(["leg", "system", "runner", "installables"], rows))
    parts.extend(
        f"Left out on {escape_text(left.system)}:"
        f" {count(len(left.installables), 'installable')} ({count(left.outputs, 'output')}),"
        f" {escape_text(left.why)}.\n"
        for left in plan.left_out
    )
    if plan.errors:
        parts.append("### Did not evaluate\n")
        parts.append("\n".join(f"- {escape_text(e)}" for e in plan.errors[:MAX_LISTED]) + "\n")
    parts.extend(f"> {escape_text(note)}\n" for note in plan.notes)
    return "\n".join(parts)


__all__ = ["plan_headline", "render_plan_summary", "render_plan_terminal"]
