"""Why each derivation was built: the few that changed at the root, and what they dragged along.

A miss is a derivation this run had to build (not in any cache, or a cache failed it): built
or failed, never a rebuild for the check. Among the misses, a root cause is one none of whose
input derivations is a miss too: it changed in itself (its source, its flags, its own
attributes), not because something below it did. Every other miss was built because it depends,
through other misses, on one or more root causes; each root cause counts those and shows the
path to the farthest of them, so a reader can follow it.

Pure: the inputs of each miss come from its .drv (nix/derivations.py), read by the caller.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from nix_cache_action.report import Build, RootCause, Why

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def misses(builds: Sequence[Build]) -> list[str]:
    """The derivations this run had to build, each once, in the order they were built."""
    return list(
        dict.fromkeys(
            b.drv for b in builds if b.status in ("built", "failed") and b.reason is not None
        )
    )


def explain(missed: Sequence[str], inputs_of: Mapping[str, Sequence[str]]) -> Why:
    """The root causes of `missed`, given the input derivations of each (full .drv paths).

    A miss whose inputs are not known is left out of the reckoning and named in `unknown`: a
    guess would be worse than no answer.
    """
    known = [d for d in missed if d in inputs_of]
    unknown = tuple(d for d in missed if d not in inputs_of)
    # Every miss counts as an input, those whose own inputs are unknown too: a miss built over
    # one of them is no root cause, and is owed to no root cause that cannot be seen.
    among = set(missed)
    unreadable = set(unknown)
    parents = {
        d: sorted({i for i in inputs_of.get(d, ()) if i in among and i != d}) for d in missed
    }
    children: dict[str, list[str]] = {d: [] for d in missed}
    for drv, above in parents.items():
        for parent in above:
            children[parent].append(drv)
    roots_of: dict[str, frozenset[str]] = {}
    for drv in _topological(missed, parents, children):
        above = parents[drv]
        if drv in unreadable:
            roots_of[drv] = frozenset()
        elif not above:
            roots_of[drv] = frozenset({drv})
        else:
            roots_of[drv] = frozenset().union(*(roots_of[p] for p in above))
    causes = []
    for root in (d for d in known if not parents[d]):
        dependents = tuple(d for d in known if d != root and root in roots_of[d])
        causes.append(
            RootCause(
                drv=root,
                caused=len(dependents),
                path=_farthest_path(root, children),
                dependents=dependents,
            )
        )
    causes.sort(key=lambda c: (-c.caused, c.drv))
    return Why(root_causes=tuple(causes), misses=len(missed), unknown=unknown)


def _topological(
    drvs: Sequence[str], parents: Mapping[str, Sequence[str]], children: Mapping[str, list[str]]
) -> list[str]:
    """Inputs before the derivations that use them (a derivation graph has no cycles)."""
    waiting = {d: len(parents[d]) for d in drvs}
    ready = deque(d for d in drvs if waiting[d] == 0)
    order = []
    while ready:
        drv = ready.popleft()
        order.append(drv)
        for child in children[drv]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return order


def _farthest_path(root: str, children: Mapping[str, list[str]]) -> tuple[str, ...]:
    """The root, then each miss on the way to the one farthest from it (breadth first: the
    first found among the farthest, in build order)."""
    came_from: dict[str, str | None] = {root: None}
    queue = deque([(root, 0)])
    farthest, deepest = root, 0
    while queue:
        drv, depth = queue.popleft()
        if depth > deepest:  # the first of each new depth: the first found among the farthest
            farthest, deepest = drv, depth
        for child in children[drv]:
            if child not in came_from:
                came_from[child] = drv
                queue.append((child, depth + 1))
    path = []
    at: str | None = farthest
    while at is not None:
        path.append(at)
        at = came_from[at]
    return tuple(reversed(path))


__all__ = ["explain", "misses"]
