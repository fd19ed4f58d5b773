"""A flake's attributes without building them: the Nix expression that walks an attribute set,
and the reading of what it prints.

One `nix eval --json FLAKE#ROOT --apply WALK` call describes every derivation under ROOT (its
drvPath, outputs, name and system). The walk wraps each value in `builtins.tryEval`, so an
attribute that throws is marked and the others are still described; `tryEval` does not keep
the message, which is asked for afterwards, one failed attribute at a time. An error `tryEval`
cannot catch (an `abort`, a type error in Nix before 2.19...) fails the whole call: the caller
then evaluates the root's children one by one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from nix_cache_action.records import field, record

# The walk, applied as `(WALK) REST MAX_DEPTH` to the root's value. REST is the rest of the
# user's pattern below the root (`*` matches any name, a list any of its names); past its end,
# attribute sets that are not derivations are walked into down to MAX_DEPTH levels below the
# root. `deepSeq` forces the
# description inside tryEval, so a throw in drvPath or an output is caught there.
WALK = r"""
rest: maxDepth: root:
let
  describe = d:
    let v = {
      drvPath = d.drvPath;
      system = d.system or null;
      name = d.name or null;
      outputs = builtins.listToAttrs
        (map (o: { name = o; value = d.${o}.outPath; }) (d.outputs or [ "out" ]));
    }; in builtins.deepSeq v v;
  walk = path: rest: depth: v:
    let
      isDrv = builtins.tryEval (builtins.isAttrs v && (v.type or null) == "derivation");
      described = builtins.tryEval (describe v);
      names = builtins.tryEval (if builtins.isAttrs v then builtins.attrNames v else [ ]);
      next = if rest == [ ] then [ ] else builtins.tail rest;
      into = n: walk (path ++ [ n ]) next (depth + 1) v.${n};
    in
    if !isDrv.success then [ { attr = path; failed = true; } ]
    else if isDrv.value then
      [ (if described.success then described.value // { attr = path; }
         else { attr = path; failed = true; }) ]
    else if !names.success then [ { attr = path; failed = true; } ]
    else if rest == [ ] then
      (if depth >= maxDepth then [ ] else builtins.concatMap into names.value)
    else
      let head = builtins.head rest; in
      if builtins.isList head then
        builtins.concatMap into (builtins.filter (n: builtins.elem n head) names.value)
      else if head == "*" then builtins.concatMap into names.value
      else if builtins.elem head names.value then into head
      else [ ];
in walk [ ] rest 0 root
"""

# Attribute names that can stand bare in an attribute path; any other is quoted.
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*$")


def apply_expression(rest: tuple[str | tuple[str, ...], ...], max_depth: int) -> str:
    """The `--apply` function for one root: the walk with the pattern's rest and the depth."""
    items = " ".join(
        nix_string(part)
        if isinstance(part, str)
        else "[ " + " ".join(nix_string(p) for p in part) + " ]"
        for part in rest
    )
    return f"root: ({WALK}) [ {items} ] {max_depth} root"


def nix_string(text: str) -> str:
    """A Nix string literal holding exactly `text`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def attribute_path(parts: tuple[str, ...]) -> str:
    """`checks.x86_64-linux."a.b"`: the path as a flake installable writes it."""
    return ".".join(p if _BARE.match(p) else nix_string(p) for p in parts)


@record
class Described:
    """One derivation under a root, or an attribute whose evaluation failed (`drv` None)."""

    attr: tuple[str, ...]  # below the root
    drv: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    system: str | None = None
    # Nix's message, where it is known (the walk's tryEval drops it; a child walked on its own
    # after an uncatchable error keeps it).
    error: str | None = None


def read_walk(stdout: str) -> list[Described] | None:
    """What the walk printed; None when it is not the list the walk prints."""
    try:
        raw: Any = json.loads(stdout)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, list):
        return None
    found: list[Described] = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        attr = item.get("attr")
        if not isinstance(attr, list) or not all(isinstance(a, str) for a in attr):
            return None
        drv, outputs = item.get("drvPath"), item.get("outputs")
        if item.get("failed") is True or not isinstance(drv, str) or not isinstance(outputs, dict):
            found.append(Described(attr=tuple(attr)))
            continue
        found.append(
            Described(
                attr=tuple(attr),
                drv=drv,
                outputs={str(k): v for k, v in outputs.items() if isinstance(v, str)},
                name=item["name"] if isinstance(item.get("name"), str) else None,
                system=item["system"] if isinstance(item.get("system"), str) else None,
            )
        )
    return found


__all__ = ["WALK", "Described", "apply_expression", "attribute_path", "nix_string", "read_walk"]
