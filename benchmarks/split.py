"""A split run equals a single run: the same flake built once in one job and once in legs.

A flake is generated into the scratch folder: a `core`, 5 libraries over it, N packages (each
over one library and a source of its own) and a check per package (over its package), for
x86_64-linux. `core` is put into a binary cache first (a file:// cache standing in for Magic
Nix Cache, which a previous run filled). Then, each on a fresh empty store that asks only that
cache, as separate runners would:

  single: nix-cache-action build (every package and check)
  plan:   nix-cache-action plan packages checks --max-per-leg M   (4 legs for the defaults)
  legs:   nix-cache-action build --plan PLAN --leg ID, for each leg
  aggregate of the legs' reports with the plan

The legs see the cache as it was before the run (as legs that run side by side do: none sees
what another builds), so a derivation two legs need is built by both. Printed: whether the
split built and fetched the same distinct derivations and paths as the single run, whether
every installable has the same verdict, how many derivations the split built more than once
(and how many more builds that is), and the wall times. It prints figures; it does not fail.

    .venv/bin/python benchmarks/split.py [--packages 32] [--max-per-leg 16] [--nix-version 2.34]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.overhead import cold_env, default_scratch, nix_version, provision

from nix_cache_action.store_path import store_name

LIBRARIES = 5


def flake_text(packages: int) -> str:
    return f"""{{
  outputs = {{ self }}:
    let
      system = "x86_64-linux";
      mk = name: script: deps: derivation {{
        inherit name system deps;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [ "-c" ("echo ${{name}} > $out; for d in $deps; do cat $d >> $out; done; "
          + script) ];
      }};
      core = mk "core" "" [ ];
      libs = builtins.genList (i: mk "lib-${{toString i}}" "" [ core ]) {LIBRARIES};
      lib = i: builtins.elemAt libs (i - (i / {LIBRARIES}) * {LIBRARIES});
      pkg = i: mk "pkg-${{toString i}}" "" [ (lib i) (mk "src-${{toString i}}" "" [ ]) ];
      names = builtins.genList (i: i) {packages};
      attrs = f:
        builtins.listToAttrs (map (i: {{ name = "p${{toString i}}"; value = f i; }}) names);
    in {{
      packages.${{system}} = attrs pkg;
      checks.${{system}} = attrs (i: mk "check-${{toString i}}" "" [ (pkg i) ]);
      inherit core;
    }};
}}
"""


class Bench:
    def __init__(self, scratch: Path, nix: str, cli: str) -> None:
        self.scratch, self.nix, self.cli = scratch, nix, cli
        self.flake = scratch / "flake"
        self.store = scratch / "store"
        self.cache = scratch / "cache"
        self.runs = 0

    def env(self, substituters: str) -> dict[str, str]:
        """A fresh store (at the one store directory the cache was made for) and state."""
        shutil.rmtree(self.store, ignore_errors=True)
        self.runs += 1
        env = cold_env(self.scratch / f"nix-{self.runs}", Path(self.nix).parent)
        env["NIX_STORE_DIR"] = str(self.store)
        env["NIX_CONFIG"] += f"substituters = {substituters}\nrequire-sigs = false\n"
        return env

    def run(self, argv: list[str], env: dict[str, str]) -> tuple[float, int]:
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=self.flake, env=env, capture_output=True, check=False)
        if done.returncode not in (0, 1):
            sys.exit(f"{' '.join(argv[:3])} exited {done.returncode}: {done.stderr[-2000:]!r}")
        return time.perf_counter() - started, done.returncode

    def cli_run(self, *args: str, report: Path) -> float:
        env = self.env(f"file://{self.cache}")
        report.parent.mkdir(parents=True, exist_ok=True)
        argv = [self.cli, *args, "--nix", self.nix, "--report", str(report)]
        if args[0] == "build":
            argv += ["--log", str(report.with_suffix(".log"))]
        seconds, _ = self.run(argv, env)
        return seconds


def built(report: dict[str, Any]) -> set[str]:
    return {b["drv"] for b in report["builds"] if b["status"] == "built"}


def fetched(report: dict[str, Any]) -> set[str]:
    return {s["path"] for s in report["substitutions"]}


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    checks = {c["installable"]: c["verdict"] for c in report["checks"] if c["installable"]}
    return {i["name"]: f"{i['status']}/{checks.get(i['name'])}" for i in report["installables"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=32)
    parser.add_argument("--max-per-leg", type=int, default=16)
    parser.add_argument("--nix-version", choices=("2.8", "2.34"), default="2.34")
    args = parser.parse_args()
    nix = "/usr/bin/nix" if args.nix_version == "2.8" else str(provision())
    cli = str(Path(sys.executable).parent / "nix-cache-action")
    scratch = Path(tempfile.mkdtemp(prefix="nca-split-", dir=default_scratch()))
    try:
        bench = Bench(scratch, nix, cli)
        bench.flake.mkdir()
        (bench.flake / "flake.nix").write_text(flake_text(args.packages), encoding="utf-8")
        # A previous run left `core` in the cache.
        env = bench.env("")
        bench.run([nix, "build", "--no-link", ".#core"], env)
        bench.run([nix, "copy", "--to", f"file://{bench.cache}", ".#core"], env)
        names = [
            f".#{kind}.x86_64-linux.p{i}"
            for kind in ("packages", "checks")
            for i in range(args.packages)
        ]
        out = scratch / "out"
        single_seconds = bench.cli_run("build", *names, report=out / "single.json")
        plan_file = out / "plan.json"
        env = bench.env(f"file://{bench.cache}")
        plan_argv = [cli, "plan", "packages", "checks", "--nix", nix, "--plan", str(plan_file)]
        plan_argv += ["--max-per-leg", str(args.max_per_leg)]
        plan_seconds, _ = bench.run(plan_argv, env)
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
        leg_seconds = []
        for leg in plan["legs"]:
            report = out / "legs" / leg["id"] / "report.json"
            leg_seconds.append(
                bench.cli_run("build", "--plan", str(plan_file), "--leg", leg["id"], report=report)
            )
        aggregate = out / "aggregate.json"
        bench.run(
            [
                cli,
                "aggregate",
                str(out / "legs"),
                "--plan",
                str(plan_file),
                "--report",
                str(aggregate),
            ],
            bench.env(""),
        )
        single = json.loads((out / "single.json").read_text(encoding="utf-8"))
        split = json.loads(aggregate.read_text(encoding="utf-8"))
        legs = [
            json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((out / "legs").glob("*/report.json"))
        ]
        split_built = set().union(*(built(r) for r in legs))
        split_fetched = set().union(*(fetched(r) for r in legs))
        builds_in_legs = sum(len(built(r)) for r in legs)
        print(f"Nix: {nix_version(nix)}; flake: {args.packages} packages + {args.packages} checks")
        print(
            f"single job: {len(built(single))} built, {len(fetched(single))} fetched,"
            f" {single_seconds:.2f} s, verdict {single['verdict']}"
        )
        print(
            f"split: plan {plan_seconds:.2f} s ({plan['counts']['legs']} legs, graph read:"
            f" {plan['graph_read']}), legs {', '.join(f'{s:.2f}' for s in leg_seconds)} s;"
            f" {builds_in_legs} builds, {len(split_built)} distinct; verdict {split['verdict']}"
        )
        same_built = split_built == built(single)
        same_fetched = split_fetched == fetched(single)
        same_verdicts = verdicts(split) == verdicts(single)
        print(f"same distinct derivations built: {same_built}")
        print(f"same distinct paths fetched: {same_fetched}")
        print(f"same verdict for every installable: {same_verdicts}")
        twice = split["duplicate_builds"]
        print(
            f"built in more than one leg: {len(twice)} derivations,"
            f" {builds_in_legs - len(split_built)} extra builds"
            + (f" ({', '.join(sorted(store_name(d['drv']) for d in twice)[:8])})" if twice else "")
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
