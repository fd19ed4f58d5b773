"""A warm run with nothing changed: what verify-once costs against a plain `nix build`.

For each shape of the 201-derivation fixture `benchmarks/flakes/wide` (`--shape`):
  default  the top output keeps no reference to its inputs: a warm build fetches 1 path;
  closure  each output lists its inputs' paths: a warm build fetches all 201.

Set-up, once per shape: the fixture is built and checked with `nix-cache-action build
--verified RECORD`, and the closure of its top output copied into a binary cache served over
HTTP on 127.0.0.1 (tests/support/http_cache.py). Then for K rounds, rotating the order, each
run on a fresh empty store of its own that asks only that cache:

  (a) nix-cache-action build .#SHAPE --verified RECORD (a copy of the set-up's record)
  (b) nix build .#SHAPE
  (c) nix-cache-action build .#SHAPE --verified RECORD --skip-cached
  (d) nix eval --raw .#SHAPE.drvPath (evaluation alone)
  (e) nix-cache-action build .#SHAPE --reproducibility off (no record, no check)
  (f) nix build .#SHAPE --log-format internal-json (the log the CLI reads, into a pipe)
  (g) (f) run and read by the least a Python CLI can be: an interpreter without site packages
      that starts the build and reads its log to the end, parsing nothing (LOG_READER)

(a) substitutes what (b) substitutes and, the record holding the output as reproducible with
the same NAR hash, rebuilds nothing. (c) only evaluates and asks the cache. (e) is what the CLI
costs with no verification at all, so (a) - (e) is what verify-once itself costs; (f) - (b) is
what writing the structured log costs Nix itself, and (e) - (f) what the CLI adds to that.
(g) - (b) is the floor of any CLI in Python that reads Nix's log as it comes: the CLI also asks
Nix for the output's NAR hash (a second Nix process) and reads what the log says. Targets:
median(a) / median(b) <= 1.1 with zero rebuilds in (a), median(a) - median(b) <= 0.1 s,
median(c) / median(d) <= 1.3. This
script prints the figures; it does not pass or fail.

    .venv/bin/python benchmarks/warm.py [--rounds 5] [--nix-version 2.8|2.34]
                                        [--shape default|closure|both]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Run as a script: the repository root on the path makes `benchmarks.overhead` and
# `tests.support` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.overhead import (
    FLAKE,
    LOG_READER,
    NIX_CONFIG,
    REPO,
    cold_env,
    default_scratch,
    nix_version,
    provision,
    remove,
    timed,
)
from tests.support import http_cache

TARGET_RATIO = 1.1
TARGET_SKIP_RATIO = 1.3
# The start-up issue's target: a warm run costs at most this much more than the plain build.
TARGET_EXTRA_SECONDS = 0.1
STORE = "store"  # under the scratch folder: every run's store directory, emptied in between


def warm_env(root: Path, nix: str, cache: str) -> dict[str, str]:
    """A fresh store for one run, at the one store directory the cache's paths were made in
    (store paths depend on it): emptied by `remove(root.parent / STORE)` after the run."""
    env = cold_env(root, Path(nix).parent)
    env["NIX_STORE_DIR"] = str(root.parent.parent / STORE)
    env["NIX_CONFIG"] = NIX_CONFIG.replace(
        "substituters =", f"substituters = {cache}\nrequire-sigs = false"
    )
    return env


def prepare(cli: str, nix: str, scratch: Path, target: str) -> tuple[Path, Path]:
    """The record of a checked cold build, and a binary cache holding its closure."""
    root = scratch / "prepare"
    flake = root / "flake"
    shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
    env = cold_env(root / "nix", Path(nix).parent)
    env["NIX_STORE_DIR"] = str(scratch / STORE)
    record = scratch / "verified.json"
    argv = [cli, "build", target, "--nix", nix, "--verified", str(record)]
    argv += ["--report", str(root / "report.json"), "--log", str(root / "nix.log")]
    _, _, status, tail = timed(argv, flake, env)
    if status != 0:
        sys.exit(f"the set-up build failed: {tail}")
    cache = scratch / "cache"
    copy = [nix, "copy", "--to", f"file://{cache}", target]
    subprocess.run(copy, cwd=flake, env=env, check=True, capture_output=True)
    remove(root)
    remove(scratch / STORE)
    return record, cache


def run_action(
    cli: str, nix: str, scratch: Path, record: Path | None, cache: str, *extra: str
) -> tuple[float, str]:
    """`nix-cache-action build` with `extra` (its installable first), with a copy of `record`
    as its --verified file if there is one."""
    root = scratch / "a"
    flake = root / "flake"
    shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
    report = root / "report.json"
    argv = [cli, "build", *extra, "--nix", nix]
    if record is not None:
        mine = root / "verified.json"
        shutil.copy(record, mine)
        argv += ["--verified", str(mine)]
    argv += ["--report", str(report), "--log", str(root / "nix.log")]
    seconds, _, status, tail = timed(argv, flake, warm_env(root / "nix", nix, cache))
    detail = tail if status != 0 else describe(report)
    remove(root)
    remove(scratch / STORE)
    return seconds, detail


def run_plain(nix: str, scratch: Path, cache: str, *argv: str) -> tuple[float, str]:
    root = scratch / "b"
    flake = root / "flake"
    shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
    seconds, _, status, tail = timed(list(argv), flake, warm_env(root / "nix", nix, cache))
    remove(root)
    remove(scratch / STORE)
    return seconds, "ok" if status == 0 else tail


def describe(report: Path) -> str:
    data = json.loads(report.read_text())
    totals = data["totals"]
    rebuilds = sum(1 for b in data["builds"] if b["status"] == "checked")
    labels = [r["label"] for r in data["runs"]]
    return (
        f"substituted {totals['substituted']}, built {totals['built']}, rebuilds {rebuilds},"
        f" previously verified {totals['previously_verified']}, runs {labels},"
        f" verdict {data['verdict']}"
    )


def measure(cli: str, nix: str, scratch: Path, shape: str, rounds: int) -> None:
    target = f".#{shape}"
    record, cache_dir = prepare(cli, nix, scratch, target)
    logged = (nix, "build", target, "--no-link", "--log-format", "internal-json")
    with http_cache.serve(cache_dir) as cache:
        runs = {
            "a": lambda: run_action(cli, nix, scratch, record, cache, target),
            "b": lambda: run_plain(nix, scratch, cache, nix, "build", target, "--no-link"),
            "c": lambda: run_action(cli, nix, scratch, record, cache, target, "--skip-cached"),
            "d": lambda: run_plain(nix, scratch, cache, nix, "eval", "--raw", f"{target}.drvPath"),
            "e": lambda: run_action(
                cli, nix, scratch, None, cache, target, "--reproducibility", "off"
            ),
            "f": lambda: run_plain(nix, scratch, cache, *logged),
            "g": lambda: run_plain(
                nix, scratch, cache, sys.executable, "-S", "-c", LOG_READER, *logged
            ),
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for index in range(rounds):
            # Rotate which goes first, so a drift of the machine's speed hits all alike.
            order = list(runs)[index % len(runs) :] + list(runs)[: index % len(runs)]
            said = []
            for name in order:
                took, detail = runs[name]()
                seconds[name].append(took)
                said.append(f"({name}) {took:.2f} s [{detail}]")
            print(f"  {shape} round {index + 1}:\n    " + "\n    ".join(sorted(said)))
    record.unlink()
    remove(cache_dir)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    a, b, c, d, e, f, g = (median[name] for name in "abcdefg")
    extra = "within" if a - b <= TARGET_EXTRA_SECONDS else "OVER"
    print(
        f"{shape}: median (a) {a:.3f} s, (b) {b:.3f} s, ratio {a / b:.2f} (target <="
        f" {TARGET_RATIO}), (a) - (b) = {1000 * (a - b):+.0f} ms (target <="
        f" {1000 * TARGET_EXTRA_SECONDS:.0f} ms: {extra}); (c) {c:.3f} s, (d) {d:.3f} s,"
        f" ratio {c / d:.2f} (target <="
        f" {TARGET_SKIP_RATIO}); (e) {e:.3f} s, (f) {f:.3f} s: verify-once costs (a) - (e) ="
        f" {1000 * (a - e):+.0f} ms, Nix's structured log (f) - (b) = {1000 * (f - b):+.0f} ms,"
        f" the CLI's own work (e) - (f) = {1000 * (e - f):+.0f} ms; (g) {g:.3f} s: a Python"
        f" process that only reads the log (g) - (b) = {1000 * (g - b):+.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nix-version", choices=("2.8", "2.34"), default="2.34")
    parser.add_argument("--shape", choices=("default", "closure", "both"), default="both")
    args = parser.parse_args()
    nix = "/usr/bin/nix" if args.nix_version == "2.8" else str(provision())
    cli = str(REPO / ".venv" / "bin" / "nix-cache-action")
    print(f"{nix_version(nix)}, {args.rounds} rounds")
    shapes = ("default", "closure") if args.shape == "both" else (args.shape,)
    with tempfile.TemporaryDirectory(prefix="nca-warm-", dir=default_scratch()) as tmp:
        for shape in shapes:
            measure(cli, nix, Path(tmp), shape, args.rounds)


if __name__ == "__main__":
    main()
