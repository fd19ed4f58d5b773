"""The plan: a flake's attributes, each with its state, cut into legs for GitHub's matrix (pure).

`discovery.py` asks Nix what the flake holds and what the caches and the verification record
know of it; this module decides what is built where. A leg is one job of the matrix: one
system, one runner label, at most `max_per_leg` installables. Attributes that are in a cache and
verified reproducible are left out of the matrix altogether; evaluation errors go to no leg
(the aggregate reports them from the plan). Legs are cut along the dependency graph where it was
read: an attribute whose derivation another one needs goes to the same leg, and clusters that
share derivations are packed together, so two legs rarely build the same derivation.

The plan is a versioned JSON file that travels as an artifact; the matrix is the small part of it
that goes through a job output (GitHub's 1 MB limit), and a leg reads its installables from the
file when the matrix could not hold them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, get_args

from nix_cache_action import records
from nix_cache_action.limits import DEFAULT_MAX_PER_LEG
from nix_cache_action.records import field, record
from nix_cache_action.report import NixInfo, Verification
from nix_cache_action.store_path import base_name
from nix_cache_action.verification import verification_from_json

PLAN_VERSION = 1
# `nix flake check` builds checks and evaluates the rest; like garnix and `om ci`, the plan
# builds packages and devShells too.
DEFAULT_SELECTION = ("checks", "packages", "devShells")
# Outputs whose second level is a system: `checks.<system>.<name>`. formatter.<system> is one
# derivation; legacyPackages is walked one level only unless a pattern goes deeper.
SYSTEM_KEYED = ("checks", "packages", "devShells", "formatter", "legacyPackages")
# How deep below a pattern's end a nested set (hydraJobs.<job>.<system>) is walked.
NESTED_DEPTH = 3
ALL_SYSTEMS = "all"
# GitHub-hosted runners (2026) by system; a user's map adds to or replaces these.
DEFAULT_RUNNERS: Mapping[str, str] = {
    "x86_64-linux": "ubuntu-latest",
    "aarch64-linux": "ubuntu-24.04-arm",
    "aarch64-darwin": "macos-latest",
    "x86_64-darwin": "macos-13",
}
# GitHub: a matrix makes at most 256 jobs; a job's outputs are at most 1 MB together.
MAX_LEGS = 256
# max_per_leg counts distinct derivations: two names of one derivation build once.
MATRIX_LIMIT_BYTES = 900_000

# `to-build`: not all its outputs are in a cache (or no cache was asked). `cached`: every
# output is in a configured cache, and not every one is verified. `verified`: every output is
# in a cache with the NAR hash the verification record holds as reproducible: left out.
# `error`: it did not evaluate.
AttributeState = Literal["to-build", "cached", "verified", "error"]
ATTRIBUTE_STATES: tuple[AttributeState, ...] = get_args(AttributeState)

NO_RUNNER = (
    "no runner label for {system}: add `{system}=LABEL` to the runner map (the `runners` input,"
    " or --runner on the command line)"
)
LEGS_WIDENED = (
    "{count} installables at {asked} derivations per leg would make more than {limit} legs"
    " (GitHub's matrix limit): legs hold up to {used} derivations instead"
)
MATRIX_WITHOUT_INSTALLABLES = (
    "the installables did not fit in the matrix output ({size} bytes, GitHub allows 1 MB): each"
    " leg reads its own from the plan file"
)
_BARE_SYSTEM = re.compile(r"^[A-Za-z0-9_.-]+$")


@record
class Attribute:
    """One selected derivation of the flake, and what is known of it before any build."""

    attr: tuple[str, ...]  # its path in the flake's outputs: ("checks", "x86_64-linux", "fmt")
    installable: str  # `.#checks.x86_64-linux.fmt`
    system: str | None
    state: AttributeState
    drv: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    # From the caches: the NAR hash of each output found there.
    nar_hashes: dict[str, str] = field(default_factory=dict)
    # Verified outputs: the earlier check of each, from the verification record.
    verified: dict[str, Verification] = field(default_factory=dict)
    error: str | None = None
    leg: str | None = None  # the leg that builds it; None when left out or an error


@record
class Leg:
    id: str  # `x86_64-linux-1`: the artifact of its report is named after it
    system: str
    runner: str
    installables: tuple[str, ...]


@record
class LeftOut:
    """Installables of one system that no leg builds, and why."""

    system: str
    installables: tuple[str, ...]
    outputs: int
    why: str


@record
class Plan:
    flake: str
    systems: tuple[str, ...]
    selection: tuple[str, ...]
    attributes: tuple[Attribute, ...] = ()
    legs: tuple[Leg, ...] = ()
    left_out: tuple[LeftOut, ...] = ()
    max_per_leg: int = DEFAULT_MAX_PER_LEG
    runners: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    nix: NixInfo = field(default_factory=NixInfo)
    working_directory: str | None = None
    # Whether the dependency graph was read to cut the legs (it is skipped when no system
    # needs more than one leg).
    graph_read: bool = False
    # What plan/action.yml named the flake's verification record by in the Actions cache; the
    # aggregate saves the merged record under the same name.
    memory_scope: str | None = None

    def counts(self) -> dict[str, int]:
        """Attributes by state, and the legs."""
        counts: dict[str, int] = dict.fromkeys(ATTRIBUTE_STATES, 0)
        for attribute in self.attributes:
            counts[attribute.state] += 1
        counts["legs"] = len(self.legs)
        return counts

    def leg(self, leg_id: str) -> Leg | None:
        return next((leg for leg in self.legs if leg.id == leg_id), None)

    def matrix(self, limit: int = MATRIX_LIMIT_BYTES) -> tuple[dict[str, Any], str | None]:
        """`{"include": [...]}` for `strategy.matrix`, and a note when the installables were
        left out of it to keep it under `limit` bytes (each leg then reads the plan file)."""
        full = {"include": [_matrix_entry(leg, with_installables=True) for leg in self.legs]}
        text = json.dumps(full, separators=(",", ":"))
        if len(text.encode()) <= limit:
            return full, None
        bare = {"include": [_matrix_entry(leg, with_installables=False) for leg in self.legs]}
        return bare, MATRIX_WITHOUT_INSTALLABLES.format(size=len(text.encode()))

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_version": PLAN_VERSION,
            "flake": self.flake,
            "systems": list(self.systems),
            "selection": list(self.selection),
            "max_per_leg": self.max_per_leg,
            "runners": dict(self.runners),
            "counts": self.counts(),
            "legs": [records.asdict(leg) for leg in self.legs],
            "left_out": [records.asdict(left) for left in self.left_out],
            "attributes": [_attribute_json(a) for a in self.attributes],
            "notes": list(self.notes),
            "errors": list(self.errors),
            "nix": records.asdict(self.nix),
            "working_directory": self.working_directory,
            "graph_read": self.graph_read,
            "memory_scope": self.memory_scope,
        }

    @classmethod
    def from_json(cls, data: object) -> Plan:
        """A plan file read back; ValueError (or TypeError, KeyError) names what is wrong."""
        if not isinstance(data, dict):
            raise TypeError("it is not a JSON object")
        if data.get("plan_version") != PLAN_VERSION:
            raise ValueError(
                f"plan_version {data.get('plan_version')!r} is not {PLAN_VERSION}; make the plan"
                " again with this version of nix-cache-action"
            )
        return cls(
            flake=str(data["flake"]),
            systems=tuple(str(s) for s in data["systems"]),
            selection=tuple(str(s) for s in data["selection"]),
            attributes=tuple(_attribute_from_json(a) for a in data["attributes"]),
            legs=tuple(
                Leg(
                    id=str(leg["id"]),
                    system=str(leg["system"]),
                    runner=str(leg["runner"]),
                    installables=tuple(str(i) for i in leg["installables"]),
                )
                for leg in data["legs"]
            ),
            left_out=tuple(
                LeftOut(
                    system=str(left["system"]),
                    installables=tuple(str(i) for i in left["installables"]),
                    outputs=int(left["outputs"]),
                    why=str(left["why"]),
                )
                for left in data.get("left_out", [])
            ),
            max_per_leg=int(data.get("max_per_leg", DEFAULT_MAX_PER_LEG)),
            runners={str(k): str(v) for k, v in data.get("runners", {}).items()},
            notes=tuple(str(n) for n in data.get("notes", [])),
            errors=tuple(str(e) for e in data.get("errors", [])),
            nix=NixInfo(**{k: v for k, v in data.get("nix", {}).items() if k in _NIX_FIELDS}),
            working_directory=data.get("working_directory"),
            graph_read=bool(data.get("graph_read", False)),
            memory_scope=data.get("memory_scope"),
        )


_NIX_FIELDS = {f.name for f in records.fields(NixInfo)}


def _matrix_entry(leg: Leg, *, with_installables: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"leg": leg.id, "system": leg.system, "runner": leg.runner}
    if with_installables:
        entry["installables"] = " ".join(leg.installables)
    return entry


def _attribute_json(attribute: Attribute) -> dict[str, Any]:
    # By hand, not dataclasses.asdict: a plan holds thousands, and asdict's deep copy was half
    # the time of writing one (2,000 attributes).
    return {
        "attr": list(attribute.attr),
        "installable": attribute.installable,
        "system": attribute.system,
        "state": attribute.state,
        "drv": attribute.drv,
        "outputs": attribute.outputs,
        "nar_hashes": attribute.nar_hashes,
        "verified": {o: records.asdict(v) for o, v in attribute.verified.items()},
        "error": attribute.error,
        "leg": attribute.leg,
    }


def _attribute_from_json(data: Any) -> Attribute:  # noqa: ANN401 - one entry of a JSON file
    state = data["state"]
    if state not in ATTRIBUTE_STATES:
        raise ValueError(f"attribute state {state!r} is not one of {', '.join(ATTRIBUTE_STATES)}")
    return Attribute(
        attr=tuple(str(a) for a in data["attr"]),
        installable=str(data["installable"]),
        system=data.get("system"),
        state=state,
        drv=data.get("drv"),
        outputs={str(k): str(v) for k, v in data.get("outputs", {}).items()},
        nar_hashes={str(k): str(v) for k, v in data.get("nar_hashes", {}).items()},
        verified={
            str(k): verification_from_json(v) for k, v in (data.get("verified") or {}).items()
        },
        error=data.get("error"),
        leg=data.get("leg"),
    )


# --- selection --------------------------------------------------------------------------------


# One step of a walk below its root: a name, `*` for any, or a choice of names (the systems).
Step = str | tuple[str, ...]


@record
class Root:
    """One `nix eval` of the plan: everything under `parts`, filtered by `rest`."""

    parts: tuple[str, ...]
    rest: tuple[Step, ...]
    max_depth: int
    system: str | None  # the system of everything under it, when its path says so
    pattern: str  # the selection pattern it came from
    default: bool  # from the default selection: a flake without this category is fine
    # Where in an attribute's whole path its system is named (checks.<system>.name: 1).
    system_index: int | None = None

    def system_of(self, path: tuple[str, ...]) -> str | None:
        if self.system is not None:
            return self.system
        index = self.system_index
        return path[index] if index is not None and index < len(path) else None


def split_pattern(pattern: str) -> tuple[str, ...]:
    """`packages.x86_64-linux."a.b"` -> ("packages", "x86_64-linux", "a.b"); ValueError when
    it is not an attribute path."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    closed = False
    for char in pattern.strip():
        if char == '"':
            quoted = not quoted
            closed = not quoted
            continue
        if char == "." and not quoted:
            if not current and not closed:
                raise ValueError("it has an empty attribute name")
            parts.append("".join(current))
            current, closed = [], False
            continue
        current.append(char)
    if quoted:
        raise ValueError("a quote is not closed")
    if not current and not closed:
        raise ValueError("it has an empty attribute name")
    parts.append("".join(current))
    return tuple(parts)


def roots_for(pattern: str, systems: Sequence[str] | None, *, default: bool = False) -> list[Root]:
    """The roots one selection pattern asks for; `systems` None means every system. A
    per-system category is one root for all the systems asked (one `nix eval`)."""
    parts = split_pattern(pattern)
    category = parts[0]
    if category not in SYSTEM_KEYED:
        fixed = _fixed_prefix(parts)
        rest = parts[len(fixed) :]
        return [Root(fixed, rest, len(rest) + NESTED_DEPTH, None, pattern, default)]
    named = parts[1] if len(parts) > 1 else "*"
    rest = parts[2:]
    # formatter.<system> is the derivation itself; the others hold one level of them.
    depth = 0 if category == "formatter" else max(len(rest), 1)
    if named != "*":
        return [Root((category, named), rest, depth, named, pattern, default, 1)]
    choice: Step = "*" if systems is None else tuple(systems)
    return [Root((category,), (choice, *rest), depth + 1, None, pattern, default, 1)]


def _fixed_prefix(parts: tuple[str, ...]) -> tuple[str, ...]:
    fixed: list[str] = []
    for part in parts:
        if part == "*":
            break
        fixed.append(part)
    return tuple(fixed)


def parse_runners(items: Iterable[str]) -> dict[str, str]:
    """`system=label` pairs (the user's runner map) on top of the defaults; ValueError names
    the bad pair."""
    runners = dict(DEFAULT_RUNNERS)
    for item in items:
        for pair in item.replace(",", "\n").split():
            system, sep, label = pair.partition("=")
            if not sep or not system or not label or not _BARE_SYSTEM.match(system):
                raise ValueError(f"{pair!r} is not SYSTEM=LABEL (x86_64-linux=ubuntu-latest)")
            runners[system] = label
    return runners


# --- legs ---------------------------------------------------------------------------------------


def make_legs(
    attributes: Sequence[Attribute],
    *,
    max_per_leg: int,
    runners: Mapping[str, str],
    graph: Mapping[str, set[str]] | None = None,
    max_legs: int = MAX_LEGS,
) -> tuple[list[Attribute], list[Leg], list[LeftOut], list[str]]:
    """Cut the attributes to build into legs: (attributes with their leg, legs, left out,
    notes). A system without a runner label is a ValueError that names it."""
    notes: list[str] = []
    building = [a for a in attributes if a.state in ("to-build", "cached")]
    for system in sorted({a.system or "" for a in building}):
        if system not in runners:
            raise ValueError(NO_RUNNER.format(system=system or "an unknown system"))
    by_system: dict[str, list[Attribute]] = {}
    for attribute in building:
        by_system.setdefault(attribute.system or "", []).append(attribute)
    per_leg = _per_leg(by_system, max_per_leg, max_legs)
    legs = _legs(by_system, per_leg, runners, graph)
    # Clusters kept whole can waste room in a leg: widen until GitHub's matrix takes them.
    while len(legs) > max_legs:
        per_leg += max(1, per_leg // 4)
        legs = _legs(by_system, per_leg, runners, graph)
    if per_leg != max_per_leg:
        notes.append(
            LEGS_WIDENED.format(
                count=len(building), asked=max_per_leg, limit=max_legs, used=per_leg
            )
        )
    leg_of = {installable: leg.id for leg in legs for installable in leg.installables}
    placed = [records.replace(a, leg=leg_of.get(a.installable)) for a in attributes]
    return placed, legs, _left_out(attributes), notes


def _legs(
    by_system: Mapping[str, list[Attribute]],
    per_leg: int,
    runners: Mapping[str, str],
    graph: Mapping[str, set[str]] | None,
) -> list[Leg]:
    legs: list[Leg] = []
    for system in sorted(by_system):
        groups = _pack(by_system[system], per_leg, graph)
        legs.extend(
            Leg(
                id=f"{system}-{number}",
                system=system,
                runner=runners[system],
                installables=tuple(a.installable for a in group),
            )
            for number, group in enumerate(groups, start=1)
        )
    return legs


def _per_leg(by_system: Mapping[str, list[Attribute]], asked: int, max_legs: int) -> int:
    """`asked`, or the least size per leg that keeps the matrix within `max_legs` (every system
    needs legs of its own)."""

    def legs_needed(size: int) -> int:
        return sum(math.ceil(len(_units(group)) / size) for group in by_system.values())

    if legs_needed(asked) <= max_legs:
        return asked
    low, high = asked, max(sum(len(g) for g in by_system.values()), 1)
    while low < high:
        middle = (low + high) // 2
        if legs_needed(middle) <= max_legs:
            high = middle
        else:
            low = middle + 1
    return low


def _units(group: Sequence[Attribute]) -> list[list[Attribute]]:
    """Attributes with the same derivation (packages.default = packages.app) build together."""
    by_drv: dict[str, list[Attribute]] = {}
    for attribute in group:
        by_drv.setdefault(attribute.drv or attribute.installable, []).append(attribute)
    return list(by_drv.values())


def _pack(
    group: Sequence[Attribute], per_leg: int, graph: Mapping[str, set[str]] | None
) -> list[list[Attribute]]:
    """The attributes of one system in legs of at most `per_leg` distinct derivations."""
    units = _units(group)
    count = math.ceil(len(units) / per_leg)
    if count <= 1:
        return [[a for unit in units for a in unit]]
    if not graph:
        return [
            [a for unit in units[i : i + per_leg] for a in unit]
            for i in range(0, len(units), per_leg)
        ]
    closures = [_closure(base_name(unit[0].drv or ""), graph) for unit in units]
    clusters = _clusters(units, closures)
    # Derivations that nearly every unit needs (a compiler, the standard environment) say
    # nothing about where a unit belongs; only the rarer ones are weighed.
    common = _common(closures)
    legs: list[list[int]] = []
    leg_needs: list[set[str]] = []
    for cluster in sorted(clusters, key=lambda c: (-len(c), c[0])):
        for start in range(0, len(cluster), per_leg):
            chunk = cluster[start : start + per_leg]
            needs = set().union(*(closures[i] for i in chunk)) - common
            best, best_score = None, -1
            for index, members in enumerate(legs):
                if len(members) + len(chunk) > per_leg:
                    continue
                score = len(needs & leg_needs[index])
                if score > best_score or (
                    score == best_score and best is not None and len(members) < len(legs[best])
                ):
                    best, best_score = index, score
            if best is None or (best_score == 0 and len(legs) < count):
                legs.append(list(chunk))
                leg_needs.append(needs)
            else:
                legs[best].extend(chunk)
                leg_needs[best] |= needs
    return [[a for i in sorted(members) for a in units[i]] for members in legs]


def _closure(drv: str, graph: Mapping[str, set[str]]) -> set[str]:
    seen = {drv}
    stack = [drv]
    while stack:
        for parent in graph.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def _clusters(units: Sequence[list[Attribute]], closures: Sequence[set[str]]) -> list[list[int]]:
    """Unit indices grouped where one unit's derivation is in another's closure (a check of a
    package, a devShell over it): building them apart would build the shared one twice."""
    parent = list(range(len(units)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index_of = {base_name(unit[0].drv or ""): i for i, unit in enumerate(units)}
    for i, closure in enumerate(closures):
        for drv in closure:
            j = index_of.get(drv)
            if j is not None and j != i:
                parent[find(i)] = find(j)
    clusters: dict[int, list[int]] = {}
    for i in range(len(units)):
        clusters.setdefault(find(i), []).append(i)
    return list(clusters.values())


def _common(closures: Sequence[set[str]]) -> set[str]:
    counts: dict[str, int] = {}
    for closure in closures:
        for drv in closure:
            counts[drv] = counts.get(drv, 0) + 1
    half = len(closures) / 2
    return {drv for drv, n in counts.items() if n > half}


def _left_out(attributes: Sequence[Attribute]) -> list[LeftOut]:
    by_system: dict[str, list[Attribute]] = {}
    for attribute in attributes:
        if attribute.state == "verified":
            by_system.setdefault(attribute.system or "", []).append(attribute)
    return [
        LeftOut(
            system=system,
            installables=tuple(a.installable for a in group),
            outputs=sum(len(a.outputs) for a in group),
            why="every output is in a cache and was verified reproducible before",
        )
        for system, group in sorted(by_system.items())
    ]


__all__ = [
    "ALL_SYSTEMS",
    "ATTRIBUTE_STATES",
    "DEFAULT_RUNNERS",
    "DEFAULT_SELECTION",
    "MAX_LEGS",
    "PLAN_VERSION",
    "Attribute",
    "AttributeState",
    "LeftOut",
    "Leg",
    "Plan",
    "Root",
    "Step",
    "make_legs",
    "parse_runners",
    "roots_for",
    "split_pattern",
]
