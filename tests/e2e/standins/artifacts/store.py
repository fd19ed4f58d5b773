"""The artifact stand-ins' store: a folder per artifact under $STANDIN_ARTIFACT_DIR (offline tests).

GitHub's artifact service cannot run here, and the real actions/upload-artifact and
actions/download-artifact (JavaScript actions whose code is in their own repositories) cannot be
fetched by a test offline. This keeps their contract as the legs and the aggregate use it: an
artifact's name is unique within the run and cannot be replaced; several paths are stored
relative to their least common ancestor; a download by name puts the files in `path`, a download
by pattern puts each matching artifact in `path/<name>/` (or all in `path` with merge-multiple).
STANDIN_ARTIFACT_LOSE (a glob) names uploads to lose, for a leg that must never report.
"""

import fnmatch
import os
import shutil
import sys
from pathlib import Path


def root() -> Path:
    where = os.environ.get("STANDIN_ARTIFACT_DIR")
    if not where:
        sys.exit("::error title=artifact stand-in::STANDIN_ARTIFACT_DIR is not set")
    return Path(where)


def upload(name: str, paths: list[str], if_no_files_found: str) -> None:
    lost = os.environ.get("STANDIN_ARTIFACT_LOSE", "")
    if lost and fnmatch.fnmatchcase(name, lost):
        # The test's way to have a leg never report: its upload is lost, as when the runner
        # never started or was cancelled before its upload (act runs every leg on this host).
        print(f"upload-artifact stand-in: {name} is lost on purpose (STANDIN_ARTIFACT_LOSE)")
        return
    named = [p.strip() for p in paths if p.strip()]
    files = [Path(p) for p in named if Path(p).exists()]
    if not files:
        message = f"no files were found at {', '.join(named)}; no artifact {name} uploaded"
        if if_no_files_found == "error":
            sys.exit(f"::error title=upload-artifact stand-in::{message}")
        if if_no_files_found == "warn":
            print(f"::warning title=upload-artifact stand-in::{message}")
        return
    target = root() / name
    if target.exists():
        sys.exit(f"::error title=upload-artifact stand-in::an artifact named {name} exists already")
    base = Path(os.path.commonpath([str(p.parent if p.is_file() else p) for p in files]))
    for path in files:
        destination = target / path.relative_to(base)
        if path.is_dir():
            shutil.copytree(path, destination, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    print(f"upload-artifact stand-in: uploaded {name} ({len(files)} paths from {base})")


def download(name: str, pattern: str, path: Path, *, merge: bool) -> None:
    stored = sorted(p.name for p in root().iterdir()) if root().is_dir() else []
    if name:
        if name not in stored:
            sys.exit(f"::error title=download-artifact stand-in::no artifact named {name}")
        shutil.copytree(root() / name, path, dirs_exist_ok=True)
        print(f"download-artifact stand-in: {name} into {path}")
        return
    chosen = [n for n in stored if fnmatch.fnmatchcase(n, pattern or "*")]
    for found in chosen:
        shutil.copytree(root() / found, path if merge else path / found, dirs_exist_ok=True)
    print(f"download-artifact stand-in: {len(chosen)} artifacts matching {pattern!r} into {path}")


def main() -> None:
    mode = sys.argv[1]
    if mode == "upload":
        upload(sys.argv[2], sys.argv[3].split("\n"), sys.argv[4])
    else:
        download(sys.argv[2], sys.argv[3], Path(sys.argv[4]), merge=sys.argv[5] == "true")


if __name__ == "__main__":
    main()
