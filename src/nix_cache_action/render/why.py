"""The root causes of a run's misses (why.py) as a reader meets them: a paragraph that leads the
summary's "Why N derivations had to be built", and a line each on the terminal."""

from __future__ import annotations

from nix_cache_action.render.format import count
from nix_cache_action.render.markdown import code, escape_text
from nix_cache_action.report import Change, Report, RootCause
from nix_cache_action.why import SAME

ROOT_CAUSES_SHOWN = 10
PATH_SHOWN = 5


def root_causes_markdown(report: Report) -> str:
    """`**3 derivations were built at the root** (none of their inputs was built here); the
    other 297 were built only because they depend on them` and a line per root cause; empty
    without a reckoning."""
    why = report.why
    if why is None or not why.root_causes:
        return ""
    roots = why.root_causes
    dragged = len({d for cause in roots for d in cause.dependents})
    # "At the root", not "changed": without a baseline, a root cause may as well be one that no
    # cache held; what changed in it is said where a baseline tells.
    one = len(roots) == 1
    head = f"**{count(len(roots), 'derivation')} {'was' if one else 'were'} built at the root**"
    head += f" (none of {'its' if one else 'their'} inputs was built here)"
    if dragged:
        them = "it" if len(roots) == 1 else "them"
        head += f"; the other {dragged} {'was' if dragged == 1 else 'were'} built only because"
        head += f" {'it depends' if dragged == 1 else 'they depend'} on {them}"
    lines = [head + ":", ""]
    for cause in roots[:ROOT_CAUSES_SHOWN]:
        lines.append(f"- {code(report.drv_name(cause.drv))}: {escape_text(_dragged(cause))}")
    if len(roots) > ROOT_CAUSES_SHOWN:
        rest = len(roots) - ROOT_CAUSES_SHOWN
        lines.append(f"- and {count(rest, 'more root cause')} in the JSON report")
    if why.unknown:
        unread = count(len(why.unknown), "derivation")
        lines += ["", f"The inputs of {unread} could not be read: left out of this reckoning."]
    return "\n".join(lines) + "\n"


def root_causes_terminal(report: Report) -> list[str]:
    why = report.why
    if why is None or not why.root_causes:
        return []
    return [
        f"  root cause: {report.drv_name(cause.drv)}: {_dragged(cause)}"
        for cause in why.root_causes[:ROOT_CAUSES_SHOWN]
    ]


def _dragged(cause: RootCause) -> str:
    changed = _change_phrase(cause.change)
    if not cause.caused:
        return f"{changed}nothing else built here depends on it"
    names = list(cause.path)
    if len(names) > PATH_SHOWN:
        names = [*names[:2], "…", *names[-2:]]
    return f"{changed}{cause.caused} more built because of it ({' → '.join(names)})"


# How the parts of a derivation outside its environment read.
_PARTS = {"(args)": "its builder's arguments", "(builder)": "its builder"}


def _change_phrase(change: Change | None) -> str:
    """`changed since the baseline: version, input derivation lib; ` or why that is unknown;
    nothing without a baseline."""
    if change is None:
        return ""
    if change.unknown == SAME:
        return "unchanged since the baseline, and no cache held it this time; "
    if change.unknown:
        return f"what changed since the baseline is unknown ({change.unknown}); "
    said = [_PARTS.get(key, key) for key in change.env]
    said += [f"input source {name}" for name in change.sources]
    said += [f"input derivation {name}" for name in change.inputs]
    return f"changed since the baseline: {', '.join(said) or 'nothing its fingerprint shows'}; "


__all__ = ["root_causes_markdown", "root_causes_terminal"]
