"""The CLI's own cost: the modules it imports, and its time outside the Nix commands it runs.

(1) Imports. One real `nix-cache-action build` (the warm run below) runs under
    `python -X importtime`, which lists every module the run imported, lazily imported ones
    included. Then, alternating for 10 x K rounds: `python -c "import <those modules>"` and
    `python -c pass`; the difference of the medians is the import time. Target: 40 ms.
(2) Own time. `nix-cache-action build` on two fixtures, with `--nix` a bash wrapper around the
    real Nix that notes when each Nix command started and ended (bash's $EPOCHREALTIME, no fork):
      cold  benchmarks/flakes/wide on an empty store: 201 builds and the check's rebuild;
      warm  the same flake's `default` from a local binary cache (1 path) with the record of
            an earlier checked run (verify-once: nothing rebuilt).
    Own time = the CLI's wall time measured from outside (interpreter start included) minus
    the union of its Nix commands' intervals (concurrent ones count once). The wrapper's own
    start (about 1 ms a command) counts as the CLI's: the figure errs high. Target: 0.10 s on
    both. The timeline of the last run of each is printed, command by command.

This script prints the figures; it does not pass or fail.

    .venv/bin/python benchmarks/startup.py [--rounds 5] [--nix-version 2.8|2.34]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.overhead import (
    FLAKE,
    REPO,
    cold_env,
    default_scratch,
    nix_version,
    provision,
    remove,
)
from benchmarks.warm import STORE, prepare, warm_env
from tests.support import http_cache

TARGET_IMPORT_MS = 40
TARGET_OWN_SECONDS = 0.10
PYTHON = str(REPO / ".venv" / "bin" / "python")
WRAPPER = """#!/bin/bash
s=$EPOCHREALTIME
"{nix}" "$@"
rc=$?
printf '%s %s %s\\n' "$s" "$EPOCHREALTIME" "$1 $2 $3 $4" >>"{log}"
exit $rc
"""


def wrapper(folder: Path, nix: str) -> tuple[Path, Path]:
    """A `nix` that notes each command's start and end in a log."""
    log = folder / "nix-times.log"
    script = folder / "nix"
    script.write_text(WRAPPER.format(nix=nix, log=log))
    script.chmod(0o755)
    return script, log


def union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def own_time(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, str]:
    """The CLI's time outside its Nix commands, and the timeline of this run."""
    log.unlink(missing_ok=True)
    started = time.time()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    wall = time.time() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")
    spans = []
    lines = []
    for line in log.read_text().splitlines():
        start, stop, what = line.split(" ", 2)
        spans.append((float(start), float(stop)))
        offset = 1000 * (float(start) - started)
        took = 1000 * (float(stop) - float(start))
        lines.append(f"      at {offset:6.1f} ms  {took:7.1f} ms  nix {what.strip()}")
    own = wall - union(spans)
    timeline = "\n".join(
        [*sorted(lines), f"      wall {1000 * wall:.1f} ms, own {1000 * own:.1f} ms"]
    )
    return own, timeline


def cold_run(cli: str, nix: str, scratch: Path) -> tuple[float, str]:
    root = scratch / "cold"
    flake = root / "flake"
    shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
    fake, log = wrapper(scratch, nix)
    env = cold_env(root / "nix", Path(nix).parent)
    argv = [cli, "build", ".#default", "--nix", str(fake)]
    argv += ["--report", str(root / "report.json"), "--log", str(root / "nix.log")]
    result = own_time(argv, flake, env, log)
    remove(root)
    return result


def warm_run(cli: str, nix: str, scratch: Path, record: Path, cache: str) -> tuple[float, str]:
    root = scratch / "a"
    flake = root / "flake"
    shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
    fake, log = wrapper(scratch, nix)
    mine = root / "verified.json"
    shutil.copy(record, mine)
    argv = [cli, "build", ".#default", "--nix", str(fake), "--verified", str(mine)]
    argv += ["--report", str(root / "report.json"), "--log", str(root / "nix.log")]
    result = own_time(argv, flake, warm_env(root / "nix", nix, cache), log)
    remove(root)
    remove(scratch / STORE)
    return result


def imported_modules(importtime: str) -> list[str]:
    """The top-level modules of a `-X importtime` listing (importing them imports the rest)."""
    names = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        name = line.rsplit("|", 1)[1]
        if not name.startswith("  "):
            names.append(name.strip())
    return names


def biggest(importtime: str, count: int) -> list[str]:
    rows = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line[len("import time:") :].split("|")
            rows.append((int(own), name.strip()))
    return [f"{name} {own / 1000:.1f} ms" for own, name in sorted(rows, reverse=True)[:count]]


def import_time(modules: list[str], rounds: int) -> float:
    bare: list[float] = []
    full: list[float] = []
    code = "import " + ", ".join(modules)
    for _ in range(rounds):
        for argv, into in (([PYTHON, "-c", "pass"], bare), ([PYTHON, "-c", code], full)):
            started = time.perf_counter()
            subprocess.run(argv, check=True)
            into.append(time.perf_counter() - started)
    return float(statistics.median(full) - statistics.median(bare))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nix-version", choices=("2.8", "2.34"), default="2.34")
    args = parser.parse_args()
    nix = "/usr/bin/nix" if args.nix_version == "2.8" else str(provision())
    cli = str(REPO / ".venv" / "bin" / "nix-cache-action")
    print(f"{nix_version(nix)}, {args.rounds} rounds, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="nca-startup-", dir=default_scratch()) as tmp:
        scratch = Path(tmp)
        record, cache_dir = prepare(cli, nix, scratch, ".#default")
        with http_cache.serve(cache_dir) as cache:
            # (1) what a warm build imports, lazily imported modules included
            root = scratch / "imports"
            flake = root / "flake"
            shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
            shutil.copy(record, root / "verified.json")
            argv = [PYTHON, "-X", "importtime", "-m", "nix_cache_action", "build", ".#default"]
            argv += ["--nix", nix, "--verified", str(root / "verified.json")]
            argv += ["--report", str(root / "report.json"), "--log", str(root / "nix.log")]
            env = warm_env(root / "nix", nix, cache)
            done = subprocess.run(argv, cwd=flake, env=env, check=True, capture_output=True)
            text = done.stderr.decode("utf-8", "replace")
            remove(root)
            remove(scratch / STORE)
            modules = imported_modules(text)
            seconds = import_time(modules, 10 * args.rounds)
            verdict = "within" if 1000 * seconds <= TARGET_IMPORT_MS else "OVER"
            print(
                f"imports        {1000 * seconds:.1f} ms for {len(modules)} top-level modules"
                f" (target <= {TARGET_IMPORT_MS} ms: {verdict})"
            )
            print(f"               biggest own times: {', '.join(biggest(text, 8))}")
            # (2) own time, cold and warm
            for label in ("cold", "warm"):
                owns, timeline = [], ""
                for _ in range(args.rounds):
                    if label == "cold":
                        own, timeline = cold_run(cli, nix, scratch)
                    else:
                        own, timeline = warm_run(cli, nix, scratch, record, cache)
                    owns.append(own)
                median = statistics.median(owns)
                verdict = "within" if median <= TARGET_OWN_SECONDS else "OVER"
                print(
                    f"own time {label}  median {1000 * median:.1f} ms, min {1000 * min(owns):.1f}"
                    f" ms (target <= {1000 * TARGET_OWN_SECONDS:.0f} ms: {verdict});"
                    f" the last run:\n{timeline}"
                )
        remove(cache_dir)
        record.unlink()


if __name__ == "__main__":
    main()
