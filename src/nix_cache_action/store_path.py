"""Names of store paths: `/nix/store/<hash>-<name>`, in any store directory."""

from __future__ import annotations


def store_name(path: str) -> str:
    """`/nix/store/<hash>-name` -> `name` (a `.drv` suffix removed)."""
    base = path.rsplit("/", 1)[-1]
    name = base.split("-", 1)[1] if "-" in base else base
    return name.removesuffix(".drv")


def store_hash(path: str) -> str:
    """`/nix/store/<hash>-name` -> `<hash>`, the part a binary cache's `.narinfo` is named by."""
    return path.rsplit("/", 1)[-1].split("-", 1)[0]


def base_name(path: str) -> str:
    """The last component: the same derivation in two notations (full path or base name)."""
    return path.rsplit("/", 1)[-1]


def output_name(drv: str, path: str) -> str:
    """The output an output path belongs to: `<hash>-<drv name>-<output>`, `out` without one."""
    drv_name = store_name(drv)
    out_name = base_name(path).split("-", 1)[-1]
    if out_name.startswith(drv_name + "-"):
        return out_name[len(drv_name) + 1 :]
    return "out"
