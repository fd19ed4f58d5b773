"""`plan`: what a flake holds, what the caches and the verification record know of it, and the
legs that build the rest.

The Nix calls are few and go through `Nix` (nix/commands.py): one `nix eval` per category and
system (nix/attributes.py walks each), one more per attribute that failed (for its message), one
`path-info` per configured cache for every output at once, and, when a system needs more than
one leg, one `derivation show -r` for the graph the legs are cut along. Everything else is the
pure `plan.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nix_cache_action.errors import InputError, NixError
from nix_cache_action.limits import DEFAULT_MAX_PER_LEG
from nix_cache_action.nix.attributes import Described, attribute_path
from nix_cache_action.nix.commands import Nix, PathInfo
from nix_cache_action.plan import (
    DEFAULT_RUNNERS,
    DEFAULT_SELECTION,
    Attribute,
    Plan,
    Root,
    make_legs,
    roots_for,
    split_pattern,
)
from nix_cache_action.records import record, replace
from nix_cache_action.report import Verification
from nix_cache_action.verification import VerificationRecord

Say = Callable[[str], None]

MISSING = "does not provide attribute"
# Each costs a whole evaluation of the flake: past this many failed attributes, the rest are
# named without Nix's message.
MAX_ERROR_MESSAGES = 50
NO_MESSAGE = "it failed to evaluate (its message was not asked for: more than {limit} failed)"
FLAKE_DOES_NOT_EVALUATE = (
    "the flake {flake} does not evaluate: {error}. Fix the flake (`nix flake show {flake}` shows"
    " the same error), then plan again"
)
NOTHING_SELECTED = (
    "the selection {patterns} matches no attribute of {flake} for {systems}; name attributes"
    " the flake has (`nix flake show` lists them), or other systems"
)
NO_SUCH_ATTRIBUTE = "{pattern}: the flake has no attribute {path}"
BAD_PATTERN = "{pattern!r} is not an attribute path ({why}); write it as checks.x86_64-linux.name"


@record
class PlanOptions:
    flake: str = "."
    selection: tuple[str, ...] = ()  # empty: DEFAULT_SELECTION
    systems: tuple[str, ...] | None = ()  # (): the system of this Nix; None: every system
    max_per_leg: int = DEFAULT_MAX_PER_LEG
    runners: tuple[tuple[str, str], ...] = tuple(DEFAULT_RUNNERS.items())
    working_directory: str | None = None


def plan_flake(
    nix: Nix, options: PlanOptions, record: VerificationRecord, say: Say = lambda _: None
) -> Plan:
    """The whole plan: discovery, states, legs. NixError when the flake does not evaluate."""
    patterns = options.selection or DEFAULT_SELECTION
    default = not options.selection
    systems = options.systems
    if systems == ():
        own = nix.system()
        if own is None:
            raise NixError("this Nix does not say which system it builds for; pass --systems")
        systems = (own,)
    roots = _roots(patterns, systems, default=default)
    attributes, errors, failures = _walk_all(nix, options.flake, roots, systems, say)
    if not attributes and failures:
        raise NixError(FLAKE_DOES_NOT_EVALUATE.format(flake=options.flake, error=failures[0]))
    attributes = _with_states(nix, attributes, record, say)
    runners = dict(options.runners)
    graph = None
    if _needs_graph(attributes, options.max_per_leg):
        drvs = [a.drv for a in attributes if a.drv and a.state in ("to-build", "cached")]
        graph = nix.derivation_inputs(drvs)
    try:
        placed, legs, left_out, notes = make_legs(
            attributes, max_per_leg=options.max_per_leg, runners=runners, graph=graph
        )
    except ValueError as error:  # a system without a runner label
        raise InputError("runners", str(error)) from error
    if not attributes and not errors:
        errors.append(
            NOTHING_SELECTED.format(
                patterns=", ".join(patterns),
                flake=options.flake,
                systems="every system" if systems is None else ", ".join(systems),
            )
        )
    return Plan(
        flake=options.flake,
        systems=tuple(sorted({a.system for a in placed if a.system}))
        if systems is None
        else tuple(systems),
        selection=tuple(patterns),
        attributes=tuple(placed),
        legs=tuple(legs),
        left_out=tuple(left_out),
        max_per_leg=options.max_per_leg,
        runners=runners,
        notes=tuple(notes),
        errors=tuple(errors),
        nix=nix.version.info(),
        working_directory=options.working_directory,
        graph_read=graph is not None,
    )


def check_patterns(patterns: Sequence[str]) -> None:
    """InputError naming the first pattern that is not an attribute path."""
    for pattern in patterns:
        try:
            split_pattern(pattern)
        except ValueError as error:
            raise InputError("selection", BAD_PATTERN.format(pattern=pattern, why=error)) from error


def _roots(patterns: Sequence[str], systems: Sequence[str] | None, *, default: bool) -> list[Root]:
    return [root for pattern in patterns for root in roots_for(pattern, systems, default=default)]


def _walk_all(
    nix: Nix, flake: str, roots: Sequence[Root], systems: Sequence[str] | None, say: Say
) -> tuple[list[Attribute], list[str], list[str]]:
    """(attributes, errors for the report, roots that failed whole)."""
    attributes: dict[tuple[str, ...], Attribute] = {}
    errors: list[str] = []
    failures: list[str] = []
    asked = 0
    for root in roots:
        say(f"evaluating {flake}#{attribute_path(root.parts)}")
        walked = nix.walk(flake, root.parts, root.rest, root.max_depth)
        found = walked.found
        if walked.error is not None:
            if MISSING in walked.error:
                # A category the flake does not have: no evaluation failed.
                if not root.default:
                    errors.append(
                        NO_SUCH_ATTRIBUTE.format(
                            pattern=root.pattern, path=attribute_path(root.parts)
                        )
                    )
                continue
            found, error = _walk_each(nix, flake, root)
            if error is not None:
                failures.append(error)
                errors.append(f"{flake}#{attribute_path(root.parts)}: {error}")
                continue
        for item in found:
            parts = root.parts + item.attr
            system = root.system_of(parts) or item.system
            if parts in attributes or (
                root.system is None and systems is not None and system not in systems
            ):
                continue  # selected twice, or of a system not asked for
            if item.drv is None:
                asked += 1
                attribute = _failed(nix, flake, parts, system, item, asked=asked)
                errors.append(attribute.error or "")
            else:
                attribute = Attribute(
                    attr=parts,
                    installable=f"{flake}#{attribute_path(parts)}",
                    system=system,
                    state="to-build",
                    drv=item.drv,
                    outputs=dict(item.outputs),
                )
            attributes[parts] = attribute
    return list(attributes.values()), errors, failures


def _failed(  # noqa: PLR0913 - the attribute, and how many were asked about before it
    nix: Nix,
    flake: str,
    parts: tuple[str, ...],
    system: str | None,
    item: Described,
    *,
    asked: int,
) -> Attribute:
    """An attribute that did not evaluate, with Nix's message (asked for, up to a limit)."""
    if item.error is not None:
        message = item.error
    elif asked <= MAX_ERROR_MESSAGES:
        message = nix.attribute_error(flake, parts)
    else:
        message = NO_MESSAGE.format(limit=MAX_ERROR_MESSAGES)
    installable = f"{flake}#{attribute_path(parts)}"
    return Attribute(
        attr=parts,
        installable=installable,
        system=system,
        state="error",
        error=f"{installable}: {last_error(message)}",
    )


def last_error(message: str) -> str:
    """Nix 2.19+ puts the evaluation trace before the error itself (`… while calling the
    'throw' builtin at ...: error: the message`): the last error is the one to read."""
    marker = " error: "
    return message.rsplit(marker, 1)[-1] if marker in message else message


def _walk_each(nix: Nix, flake: str, root: Root) -> tuple[list[Described], str | None]:
    """After an error the walk could not catch: each child of the root on its own, so one
    broken attribute does not hide the others."""
    names = nix.attribute_names(flake, root.parts)
    if isinstance(names, str):
        return [], names
    head = root.rest[0] if root.rest else "*"
    found: list[Described] = []
    for name in names:
        chosen = name in head if isinstance(head, tuple) else head in ("*", name)
        if not chosen:
            continue
        walked = nix.walk(flake, (*root.parts, name), root.rest[1:], max(root.max_depth - 1, 0))
        if walked.error is None:
            found.extend(replace(item, attr=(name, *item.attr)) for item in walked.found)
        else:
            found.append(Described(attr=(name,), error=walked.error))
    return found, None


def _with_states(
    nix: Nix, attributes: list[Attribute], record: VerificationRecord, say: Say
) -> list[Attribute]:
    """Each attribute's state: which outputs a configured cache holds (narinfo look-ups, one
    `path-info --store` per cache for all of them) and which of those the record verified."""
    paths = [p for a in attributes for p in a.outputs.values()]
    caches = nix.substituters() if paths else []
    found: dict[str, PathInfo] = {}
    for cache in caches:
        missing = [p for p in paths if p not in found]
        if not missing:
            break
        say(f"asking {cache} for {len(missing)} outputs")
        found.update(nix.path_info(missing, store=cache))
    stated = []
    for attribute in attributes:
        if attribute.state == "error" or not attribute.outputs:
            stated.append(attribute)
            continue
        hashes = {o: found[p].nar_hash for o, p in attribute.outputs.items() if p in found}
        if len(hashes) < len(attribute.outputs):
            stated.append(attribute)
            continue
        verified: dict[str, Verification] = {}
        for output, nar_hash in hashes.items():
            earlier = record.reproducible(attribute.drv or "", output, nar_hash)
            if earlier is not None:
                verified[output] = earlier
        stated.append(
            replace(
                attribute,
                state="verified" if len(verified) == len(hashes) else "cached",
                nar_hashes=hashes,
                verified=verified,
            )
        )
    return stated


def _needs_graph(attributes: Sequence[Attribute], max_per_leg: int) -> bool:
    """The graph only matters where a system needs more than one leg."""
    counts: dict[str | None, set[str]] = {}
    for attribute in attributes:
        if attribute.state in ("to-build", "cached"):
            counts.setdefault(attribute.system, set()).add(attribute.drv or attribute.installable)
    return any(len(drvs) > max_per_leg for drvs in counts.values())


__all__ = ["PlanOptions", "check_patterns", "plan_flake"]
