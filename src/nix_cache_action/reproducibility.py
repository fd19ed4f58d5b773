"""Reproducibility verdicts: what the rebuild showed per output, and, for an output that differs,
which files differ and how (with diffoscope's report when it is installed)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from nix_cache_action.diffoscope import diffoscope_text
from nix_cache_action.ledger import Ledger
from nix_cache_action.nix.commands import Nix
from nix_cache_action.records import record, replace
from nix_cache_action.report import (
    Check,
    DifferenceKind,
    FileDifference,
    Installable,
    RunLabel,
    first_copy_of,
)
from nix_cache_action.store_path import output_name

MAX_DIFFERENCES = 100

ANOTHER_OUTPUT_DIFFERED = "another output of it differed"
# Not checked by choice, or because there was nothing to check: no warning of their own.
REPRODUCIBILITY_OFF = "reproducibility is off"
BUILD_FAILED = "the build failed, so there is nothing to compare"
REBUILD_DID_NOT_RUN = "the rebuild did not run"
REBUILD_CUT_SHORT = "the rebuild was interrupted before Nix compared the outputs"
CHECK_NOT_KEPT = "the rebuilt copy was not kept (is --keep-failed honoured?)"


@record
class _Entry:
    kind: str  # "file", "dir", "symlink", "other"
    size: int | None
    digest: str | None


def _entry(path: Path) -> _Entry:
    # Imported here: only a differing output is walked, and OpenSSL takes 3 ms to load.
    import hashlib  # noqa: PLC0415

    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        target = str(path.readlink())
        return _Entry("symlink", len(target), hashlib.sha256(target.encode()).hexdigest())
    if stat.S_ISDIR(info.st_mode):
        return _Entry("dir", None, None)
    if stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        # The executable bit is part of a NAR, so it is part of the comparison.
        mode = "x" if info.st_mode & stat.S_IXUSR else ""
        return _Entry("file" + mode, info.st_size, digest.hexdigest())
    return _Entry("other", None, None)


def _walk(root: Path) -> dict[str, _Entry]:
    if not root.exists() and not root.is_symlink():
        return {}
    entries = {"": _entry(root)}
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                full = Path(dirpath) / name
                entries[str(full.relative_to(root))] = _entry(full)
    return entries


def differing_files(first: Path, rebuild: Path) -> tuple[list[FileDifference], bool]:
    """Files that differ between two trees (path, size, sha256 on each side), and truncation."""
    a, b = _walk(first), _walk(rebuild)
    diffs: list[FileDifference] = []
    for rel in sorted(set(a) | set(b)):
        left, right = a.get(rel), b.get(rel)
        if left == right:
            continue
        kind: DifferenceKind
        if left is None:
            kind = "only-in-rebuild"
        elif right is None:
            kind = "only-in-first"
        elif left.kind != right.kind:
            kind = "type"
        else:
            kind = "content"
        if left is not None and right is not None and left.kind == "dir" == right.kind:
            continue
        diffs.append(
            FileDifference(
                path=rel,
                kind=kind,
                size=left.size if left else None,
                check_size=right.size if right else None,
                sha256=left.digest if left else None,
                check_sha256=right.digest if right else None,
            )
        )
    return diffs[:MAX_DIFFERENCES], len(diffs) > MAX_DIFFERENCES


def not_checked(
    item: Installable,
    reason: str,
    *,
    output: str | None = None,
    path: str | None = None,
    run: RunLabel = "check",
) -> Check:
    return Check(
        drv=item.drv or "",
        output=output,
        path=path,
        verdict="not-checked",
        reason=reason,
        installable=item.name,
        nar_hash=item.nar_hashes.get(output) if output else None,
        run=run,
    )


def top_level_checks(
    first: Ledger, check: Ledger, built: Sequence[Installable], *, cut_short: str | None = None
) -> list[Check]:
    """One Check per output of each installable, from the rebuild's log and the first build's.

    Nix reports a difference only after the rebuild's activities have stopped, so a rebuild
    that did not finish (`cut_short` says how) proves nothing reproducible.
    """
    by_drv: dict[str, list[Check]] = {}
    for seen in check.checks():
        by_drv.setdefault(seen.drv, []).append(seen)
    substituted = {s.path: s.substituter for s in first.substitutions()}
    built_here = {b.drv for b in first.builds() if b.status == "built"}
    result = []
    for item in built:
        drv = item.drv or ""
        seen_for_drv = by_drv.get(drv, [])
        differing = {c.path for c in seen_for_drv if c.verdict == "differs"}
        for out_name, out in item.outputs.items():
            nar_hash = item.nar_hashes.get(out_name)
            first_copy = first_copy_of(out, drv, substituted, built_here)
            base = Check(
                drv=drv,
                output=out_name,
                path=out,
                verdict="not-checked",
                installable=item.name,
                nar_hash=nar_hash,
                first_copy=first_copy,
                substituter=substituted.get(out),
                run="check",
            )
            if out in differing:
                result.append(replace(base, verdict="differs"))
            elif differing:
                # Nix stops comparing a derivation's outputs at the first that differs.
                result.append(replace(base, reason=ANOTHER_OUTPUT_DIFFERED))
            elif seen_for_drv and seen_for_drv[0].verdict == "reproducible" and cut_short:
                result.append(replace(base, reason=cut_short))
            elif seen_for_drv and seen_for_drv[0].verdict == "reproducible":
                # Nix compared the NAR hashes itself and found them equal; it reports no hash
                # of the rebuild, so none is claimed.
                result.append(replace(base, verdict="reproducible"))
            else:
                reason = (
                    seen_for_drv[0].reason if seen_for_drv else cut_short or REBUILD_DID_NOT_RUN
                )
                result.append(replace(base, reason=reason))
    return result


def deep_checks(nix: Nix, ledger: Ledger) -> list[Check]:
    """Per-output checks of the deep rebuild; the log names only outputs that differ."""
    found = ledger.checks()
    outputs = nix.derivation_outputs(sorted({c.drv for c in found}))
    infos = nix.path_info([p for outs in outputs.values() for p in outs.values()])
    result = []
    for check in found:
        base = replace(check, deep=True, first_copy="built")
        if check.verdict == "differs" or not outputs.get(check.drv):
            info = infos.get(check.path or "")
            result.append(replace(base, nar_hash=info.nar_hash if info else None))
            continue
        for name, path in outputs[check.drv].items():
            info = infos.get(path)
            nar_hash = info.nar_hash if info else None
            result.append(replace(base, output=name, path=path, nar_hash=nar_hash))
    return result


def explain(nix: Nix, check: Check, env: Mapping[str, str] | None = None) -> Check:
    """For a differing output: the `.check` copy's hash and the files that differ."""
    if check.verdict != "differs" or not check.path:
        return check
    first, rebuild = Path(check.path), Path(check.path + ".check")
    nar_hash = check.nar_hash
    if nar_hash is None:
        info = nix.path_info([check.path]).get(check.path)
        nar_hash = info.nar_hash if info else None
    output = check.output or output_name(check.drv, check.path)
    if not rebuild.exists():
        return replace(check, output=output, nar_hash=nar_hash, reason=CHECK_NOT_KEPT)
    diffs, truncated = differing_files(first, rebuild)
    return replace(
        check,
        output=output,
        nar_hash=nar_hash,
        check_nar_hash=nix.hash_path(str(rebuild)),
        differences=tuple(diffs),
        differences_truncated=truncated,
        diffoscope=diffoscope_text(first, rebuild, env),
    )
