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

import json
import re
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from nix_cache_action import records
from nix_cache_action.errors import NixCacheActionError
from nix_cache_action.report import Build, Change, Fingerprint, Report, RootCause, Why
from nix_cache_action.store_path import store_hash, store_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from nix_cache_action.nix.derivations import Derivation

# A report keeps the fingerprints of this many misses (the first built), and says how many more.
FINGERPRINTS_KEPT = 1000
# Hex digits of a hash in a fingerprint: enough to see that a value changed, short enough that
# a derivation's fingerprint stays a few hundred bytes.
SHORT = 6
# Characters of a derivation's hash that name it in a fingerprint (32^12 of them).
DRV_KEY = 12
WHY_UNREAD = (
    "the derivations this run built could not be read ({error}): their root causes are not reckoned"
)
NO_FINGERPRINTS = "the baseline report keeps no fingerprints (made before they existed)"
NOT_IN_BASELINE = (
    "the baseline built no derivation named {name}: it was fetched there, or it is new"
)
NOT_KEPT_HERE = "this run kept no fingerprint of it (past the cap)"
NOT_KEPT = (
    "the baseline built no derivation named {name} among the {kept} it kept fingerprints of"
    " ({left_out} more were left out)"
)
SAME = "the very derivation the baseline built: it did not change; no cache held it this time"


def explain_misses(
    report: Report, derivations: Callable[[Sequence[str]], Mapping[str, Derivation]]
) -> Report:
    """The root causes of the misses, from their .drv files as `derivations` reads them: a
    reckoning that cannot be made is a note, never a lost report."""
    missed = misses(report.builds)
    return with_why(report, reckon(missed, derivations)) if missed else report


def reckon(
    missed: Sequence[str], derivations: Callable[[Sequence[str]], Mapping[str, Derivation]]
) -> Why | str:
    """The root causes of `missed` with their fingerprints, or the note that says why they
    could not be reckoned."""
    try:
        found = derivations(missed)
    except (NixCacheActionError, OSError) as error:
        return WHY_UNREAD.format(error=error)
    inputs = {drv: found[drv].input_drvs for drv in missed if drv in found}
    kept, left_out = fingerprints([found[drv] for drv in missed if drv in found])
    return records.replace(
        explain(missed, inputs), fingerprints=kept, fingerprints_left_out=left_out
    )


def with_why(report: Report, why: Why | str) -> Report:
    """`report` with the reckoning of its misses (`reckon`), or its note."""
    if isinstance(why, str):
        return records.replace(report, notes=(*report.notes, why))
    return records.replace(report, why=why, builds=with_because(report.builds, why))


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
                # By name: the path is for a reader, and full paths of every root's path would
                # cost a cold build's report more than its fingerprints.
                path=tuple(name_of(d) for d in _farthest_path(root, children)),
                dependents=dependents,
            )
        )
    causes.sort(key=lambda c: (-c.caused, c.drv))
    return Why(root_causes=tuple(causes), misses=len(missed), unknown=unknown)


def name_of(drv: str) -> str:
    """`/nix/store/<hash>-hello-2.12.drv` -> `hello-2.12`."""
    return store_name(drv)


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


def with_because(builds: Sequence[Build], why: Why) -> tuple[Build, ...]:
    """Each miss's build naming the root causes it was built for (a root cause, itself), as
    indexes into `why.root_causes`: said once per miss, not once per root cause."""
    by_miss: dict[str, list[int]] = {}
    for index, cause in enumerate(why.root_causes):
        for drv in (cause.drv, *cause.dependents):
            by_miss.setdefault(drv, []).append(index)
    return tuple(
        records.replace(b, because=tuple(by_miss.get(b.drv, ())))
        if b.status in ("built", "failed") and b.reason is not None
        else b
        for b in builds
    )


def fingerprints(derivations: Sequence[Derivation]) -> tuple[tuple[Fingerprint, ...], int]:
    """The fingerprints a report keeps of its misses, and how many were left out."""
    kept = tuple(fingerprint(d) for d in derivations[:FINGERPRINTS_KEPT])
    return kept, max(0, len(derivations) - FINGERPRINTS_KEPT)


def fingerprint(derivation: Derivation) -> Fingerprint:
    """What later runs compare with. Store paths in the environment lose their hashes first:
    an input that changed is said once, as an input, not again in every variable naming it."""
    # Imported here: only a run that built something fingerprints, and OpenSSL takes 3 ms to load.
    import hashlib  # noqa: PLC0415

    store = derivation.path.rsplit("/", 1)[0]
    hashes = re.compile(re.escape(store) + r"/[0-9a-z]{32}-")

    def short(value: str) -> str:
        plain = hashes.sub(store + "/", value)
        return hashlib.sha256(plain.encode("utf-8", "replace")).hexdigest()[:SHORT]

    # Its outputs' paths change with anything else, and its name is said apart.
    left_out = {*derivation.outputs, "name"}
    # The parts outside the environment are keyed `(args)` and `(builder)`; a variable whose
    # own name starts with `(` gets one more, so that none is taken for the other.
    env = {
        f"({k}" if k.startswith("(") else k: short(v)
        for k, v in derivation.env.items()
        if k not in left_out
    }
    # The builder and its arguments are part of the derivation too, outside its environment
    # (the builder usually in it as well).
    if derivation.env.get("builder") != derivation.builder:
        env["(builder)"] = short(derivation.builder)
    # As a JSON list: no arguments and one empty argument are two things.
    env["(args)"] = short(json.dumps(list(derivation.args)))
    return Fingerprint(
        drv=_drv_key(derivation.path),
        name=derivation.name or store_name(derivation.path),
        env=pack(env),
        sources=pack(_by_name(derivation.input_srcs)),
        inputs=pack(_by_name(derivation.input_drvs)),
    )


def pack(values: Mapping[str, str]) -> str:
    """`key=value key=value`, keys percent-encoded (a key may hold a space or an `=`)."""
    return " ".join(f"{quote(k, safe='()')}={v}" for k, v in sorted(values.items()))


def unpack(text: str) -> dict[str, str]:
    found = {}
    for item in text.split():
        key, _, value = item.partition("=")
        found[unquote(key)] = value
    return found


def _drv_key(drv: str) -> str:
    """A derivation in a fingerprint: the start of its hash, enough to tell two apart."""
    return store_hash(drv)[:DRV_KEY]


def _by_name(paths: Sequence[str]) -> dict[str, str]:
    """{name: short hash} of store paths; two of one name share a key, their hashes joined."""
    found: dict[str, list[str]] = {}
    for path in paths:
        found.setdefault(store_name(path), []).append(store_hash(path)[:SHORT])
    return {name: "+".join(sorted(hashes)) for name, hashes in sorted(found.items())}


def with_changes(report: Report, baseline: Report) -> Report:
    """Each root cause with what changed since the baseline's derivation of the same name;
    never a guess: what the baseline's fingerprints cannot tell is said as unknown."""
    why = report.why
    if why is None or not why.root_causes:
        return report
    mine = {f.drv: f for f in why.fingerprints}
    # An installable's derivation is also found by the installable's name: its attribute.
    attribute = {i.drv: i.name for i in report.installables if i.drv}
    earlier_of = {i.name: i.drv for i in baseline.installables if i.drv}
    causes = tuple(
        records.replace(
            cause,
            change=_change(
                cause,
                mine.get(_drv_key(cause.drv)),
                baseline,
                earlier_of.get(attribute.get(cause.drv, "")),
            ),
        )
        for cause in why.root_causes
    )
    return records.replace(report, why=records.replace(why, root_causes=causes))


def _change(
    cause: RootCause, now: Fingerprint | None, baseline: Report, same_attribute: str | None
) -> Change:
    name = now.name if now is not None else store_name(cause.drv)
    earlier, unknown = _earlier(name, baseline, same_attribute)
    if earlier is None:
        return Change(unknown=unknown)
    if earlier.drv == _drv_key(cause.drv):
        return Change(against=earlier.drv, unknown=SAME)
    if now is None:
        return Change(against=earlier.drv, unknown=NOT_KEPT_HERE)
    return Change(
        against=earlier.drv,
        env=_differing(unpack(now.env), unpack(earlier.env)),
        sources=_differing(unpack(now.sources), unpack(earlier.sources)),
        inputs=_differing(unpack(now.inputs), unpack(earlier.inputs)),
    )


def _earlier(
    name: str, baseline: Report, same_attribute: str | None
) -> tuple[Fingerprint | None, str]:
    """The baseline's fingerprint of `name` (its last), else of the derivation the same
    installable had there, else of the one name it has of the same package at another version
    (`hello-2.12` for `hello-2.13`: the name without its version, as Nix's parseDrvName splits
    it), or why there is none."""
    if baseline.why is None:
        return None, NO_FINGERPRINTS
    kept = baseline.why.fingerprints
    earlier = next((f for f in reversed(kept) if f.name == name), None)
    if earlier is None and same_attribute is not None:
        # The baseline's derivation of the same installable, under whatever name it had.
        key = _drv_key(same_attribute)
        earlier = next((f for f in reversed(kept) if f.drv == key), None)
    if earlier is None:
        # Only where one name of the baseline's is that package: node-0-4 and node-1-2 both
        # read as `node`, and picking one would be a guess.
        package = package_name(name)
        same = [f for f in kept if package_name(f.name) == package]
        if len({f.name for f in same}) == 1:
            earlier = same[-1]
    if earlier is not None:
        return earlier, ""
    left_out = baseline.why.fingerprints_left_out
    if left_out:
        return None, NOT_KEPT.format(name=name, kept=len(kept), left_out=left_out)
    return None, NOT_IN_BASELINE.format(name=name)


_VERSION_START = re.compile(r"-(?=[0-9])")


def package_name(name: str) -> str:
    """`hello-2.12` -> `hello`; `node-0-4` -> `node`: the part before the first dash that a
    digit follows (Nix's builtins.parseDrvName)."""
    return _VERSION_START.split(name, maxsplit=1)[0]


def _differing(now: Mapping[str, str], before: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(sorted(k for k in {*now, *before} if now.get(k) != before.get(k)))


__all__ = [
    "FINGERPRINTS_KEPT",
    "explain",
    "fingerprint",
    "fingerprints",
    "misses",
    "pack",
    "unpack",
    "with_because",
    "with_changes",
]
