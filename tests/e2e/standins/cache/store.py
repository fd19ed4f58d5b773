"""The actions/cache stand-in's store: a folder of entries, one per saved key (offline tests).

GitHub's cache service cannot run here. This keeps what actions/cache/save gives it in
$STANDIN_CACHE_DIR and gives it back to actions/cache/restore as GitHub does: the exact key
first, else for each restore key in turn the newest entry whose key starts with it. Without
STANDIN_CACHE_DIR it restores and saves nothing, and says so.
"""

import os
import shutil
import sys
import time
from pathlib import Path


def entries(root: Path) -> list[tuple[float, str, Path]]:
    found = []
    for entry in root.glob("entry-*"):
        key_file = entry / "key"
        if key_file.is_file():
            found.append((float((entry / "saved").read_text()), key_file.read_text(), entry))
    return sorted(found, reverse=True)  # newest first


def restore(root: Path, path: Path, key: str, restore_keys: list[str]) -> str:
    stored = entries(root)
    match = next((e for e in stored if e[1] == key), None)
    for prefix in restore_keys:
        if match is None:
            match = next((e for e in stored if e[1].startswith(prefix)), None)
    if match is None:
        return ""
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(match[2] / "content", path)
    return match[1]


def save(root: Path, path: Path, key: str) -> bool:
    if any(e[1] == key for e in entries(root)) or not path.is_dir():
        return False  # GitHub refuses a key that exists; an absent path saves nothing
    entry = root / f"entry-{time.time_ns()}"
    shutil.copytree(path, entry / "content")
    (entry / "key").write_text(key)
    (entry / "saved").write_text(repr(time.time()))
    return True


def main() -> None:
    mode, path, key = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    where = os.environ.get("STANDIN_CACHE_DIR")
    if not where:
        print(f"actions/cache stand-in: nothing restored or saved for {path} (key {key})")
        return
    root = Path(where)
    root.mkdir(parents=True, exist_ok=True)
    if mode == "restore":
        keys = [k.strip() for k in sys.argv[4].splitlines() if k.strip()]
        matched = restore(root, path, key, keys)
        print(f"actions/cache stand-in: restored {matched or 'nothing'} into {path}")
        with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as out:
            out.write(f"cache-hit={'true' if matched == key else 'false'}\n")
            out.write(f"cache-matched-key={matched}\n")
    else:
        done = save(root, path, key)
        print(f"actions/cache stand-in: {'saved' if done else 'did not save'} {path} as {key}")


if __name__ == "__main__":
    main()
