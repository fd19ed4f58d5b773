"""Explain a difference between an output and its `.check` rebuild: which files, and how."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nix_cache_action.report import FileDifference

MAX_DIFFERENCES = 100
DIFFOSCOPE_MAX_CHARS = 20_000
DIFFOSCOPE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class _Entry:
    kind: str  # "file", "dir", "symlink", "other"
    size: int | None
    digest: str | None


def _entry(path: Path) -> _Entry:
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
                kind=kind,  # type: ignore[arg-type]
                size=left.size if left else None,
                check_size=right.size if right else None,
                sha256=left.digest if left else None,
                check_sha256=right.digest if right else None,
            )
        )
    return diffs[:MAX_DIFFERENCES], len(diffs) > MAX_DIFFERENCES


def diffoscope_text(first: Path, rebuild: Path, env: dict[str, str] | None = None) -> str | None:
    """diffoscope's text report, bounded, when diffoscope is installed; else None."""
    exe = shutil.which("diffoscope")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--text", "-", "--no-progress", str(first), str(rebuild)],
            capture_output=True,
            text=True,
            timeout=DIFFOSCOPE_TIMEOUT_SECONDS,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return f"(diffoscope did not finish within {DIFFOSCOPE_TIMEOUT_SECONDS} s)"
    text = done.stdout or done.stderr
    if len(text) > DIFFOSCOPE_MAX_CHARS:
        cut = len(text) - DIFFOSCOPE_MAX_CHARS
        text = text[:DIFFOSCOPE_MAX_CHARS] + f"\n... ({cut} more characters cut)\n"
    return text
