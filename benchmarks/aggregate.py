"""`aggregate` of 256 leg reports (GitHub's matrix limit) of 200 builds each, with their plan.

The reports are generated into the scratch folder, one artifact folder per leg as
download-artifact lays them out (`nix-cache-action-leg-<id>/report.json`): each leg built 200
derivations (1 failed, 10 rebuilt for the check, 1 of those differing), fetched 100 paths from
two caches, and checked its 4 installables; 20 derivations of each leg were also built by the
next leg (the price of a fan-out). Then, for K rounds:

  nix-cache-action aggregate LEGS --plan PLAN --report R --summary S --junit J

under GNU time. Targets: at most 2 s and 256 MB, and a summary under GitHub's 1 MiB. This
script prints the figures; it does not pass or fail.

    .venv/bin/python benchmarks/aggregate.py [--rounds 5] [--legs 256] [--builds 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.overhead import default_scratch
from benchmarks.parse import rss_probe, run_measured

from nix_cache_action.limits import GITHUB_SUMMARY_LIMIT
from nix_cache_action.plan import Attribute, Leg, Plan
from nix_cache_action.plan_command import write_plan
from nix_cache_action.report import (
    Build,
    Check,
    Installable,
    LegInfo,
    NixInfo,
    Report,
    Run,
    Substitution,
    write_report,
)

TARGET_SECONDS = 2.0
TARGET_MB = 256
STORE = "/nix/store"
CACHES = ("http://127.0.0.1:37515", "https://cache.nixos.org")
INSTALLABLES_PER_LEG = 4
SHARED_WITH_NEXT = 20


def drv(leg: int, index: int) -> str:
    return f"{STORE}/{leg:08d}{index:024d}-pkg-{leg}-{index}.drv"


def leg_report(leg: int, builds: int, system: str) -> Report:
    made: list[Build] = []
    for index in range(builds):
        # The first SHARED_WITH_NEXT are also the previous leg's last ones: built twice.
        owner = leg - 1 if index < SHARED_WITH_NEXT and leg > 0 else leg
        number = builds - SHARED_WITH_NEXT + index if owner != leg else index
        made.append(
            Build(
                drv=drv(owner, number),
                status="failed" if index == builds - 1 else "built",
                seconds=1.0 + (index % 7),
                started=float(index),
                error="builder failed with exit code 1" if index == builds - 1 else None,
                log_tail=("make: *** [all] Error 1",) * 20 if index == builds - 1 else (),
                run="build",
            )
        )
    made += [
        Build(drv=drv(leg, i), status="checked", seconds=1.0, reason=None, run="check")
        for i in range(10)
    ]
    installables = tuple(
        Installable(
            name=f".#packages.{system}.pkg-{leg}-{i}",
            drv=drv(leg, builds - 2 - i),
            outputs={"out": f"{STORE}/{leg:08d}{i:024d}-out-{leg}-{i}"},
            nar_hashes={"out": f"sha256-{'A' * 43}="},
        )
        for i in range(INSTALLABLES_PER_LEG)
    )
    checks = tuple(
        Check(
            drv=item.drv or "",
            output="out",
            path=item.outputs["out"],
            verdict="differs" if i == 0 else "reproducible",
            nar_hash=f"sha256-{'A' * 43}=",
            first_copy="built",
            installable=item.name,
            run="check",
        )
        for i, item in enumerate(installables)
    )
    substitutions = tuple(
        Substitution(
            path=f"{STORE}/{leg:08d}{i:024d}-dep-{i}",
            substituter=CACHES[i % 2],
            nar_bytes=1000 * i,
            download_bytes=500 * i,
            seconds=0.1,
            started=0.01 * i,
            run="build",
        )
        for i in range(100)
    )
    return Report(
        substitutions=substitutions,
        builds=tuple(made),
        checks=checks,
        installables=installables,
        runs=(Run(label="build", seconds=60.0 + leg % 13), Run(label="check", seconds=10.0)),
        nix=NixInfo(version="2.35.2", flavour="determinate", text="nix (Determinate Nix 3.22.2)"),
        queried=dict.fromkeys(CACHES, 150),
        configured_substituters=CACHES,
        seconds=70.0 + (leg * 37) % 300,
        leg=LegInfo(id=f"{system}-{leg}", system=system, runner="ubuntu-latest"),
    )


def generate(root: Path, legs: int, builds: int) -> tuple[Path, Path]:
    folder = root / "legs"
    plan_legs = []
    attributes = []
    for leg in range(legs):
        system = "x86_64-linux" if leg % 2 == 0 else "aarch64-linux"
        report = leg_report(leg, builds, system)
        leg_id = f"{system}-{leg}"
        target = folder / f"nix-cache-action-leg-{leg_id}" / "report.json"
        target.parent.mkdir(parents=True)
        write_report(report, target)
        names = tuple(i.name for i in report.installables)
        plan_legs.append(Leg(leg_id, system, "ubuntu-latest", names))
        attributes += [
            Attribute(
                attr=("packages", system, n.rsplit(".", 1)[-1]),
                installable=n,
                system=system,
                state="to-build",
                leg=leg_id,
            )
            for n in names
        ]
    plan = Plan(
        flake=".",
        systems=("x86_64-linux", "aarch64-linux"),
        selection=("packages",),
        attributes=tuple(attributes),
        legs=tuple(plan_legs),
    )
    plan_file = root / "plan.json"
    write_plan(plan, plan_file)
    return folder, plan_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--legs", type=int, default=256)
    parser.add_argument("--builds", type=int, default=200)
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "nix-cache-action")
    probe, probe_name = rss_probe()
    scratch = Path(tempfile.mkdtemp(prefix="nca-aggregate-", dir=default_scratch()))
    try:
        legs, plan = generate(scratch, args.legs, args.builds)
        out = scratch / "out"
        out.mkdir()
        argv = [cli, "aggregate", str(legs), "--plan", str(plan)]
        argv += ["--report", str(out / "report.json"), "--summary", str(out / "summary.md")]
        argv += ["--junit", str(out / "junit.xml")]
        samples = [run_measured(argv, probe) for _ in range(args.rounds)]
        statuses = {s.status for s in samples}
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        summary_bytes = (out / "summary.md").stat().st_size
        seconds = statistics.median(s.seconds for s in samples)
        peak = max(s.max_rss_kb for s in samples) / 1024
        totals = report["totals"]
        print(f"{args.rounds} rounds; peak RSS by {probe_name}; exit status {sorted(statuses)}")
        print(
            f"input: {args.legs} legs x {args.builds} builds; the aggregate: {len(report['legs'])}"
            f" legs, {totals['built']} built, {totals['substituted']} substituted,"
            f" {totals['failed']} failed, {len(report['duplicate_builds'])} built in two legs,"
            f" verdict {report['verdict']}"
        )
        print(
            f"aggregate: median {seconds:.3f} s (min {min(s.seconds for s in samples):.3f} s),"
            f" target <= {TARGET_SECONDS} s: {'within' if seconds <= TARGET_SECONDS else 'OVER'}"
        )
        print(
            f"peak RSS {peak:.1f} MB, target <= {TARGET_MB} MB:"
            f" {'within' if peak <= TARGET_MB else 'OVER'}"
        )
        fits = summary_bytes < GITHUB_SUMMARY_LIMIT
        print(
            f"summary {summary_bytes:,} bytes, GitHub's limit {GITHUB_SUMMARY_LIMIT:,}:"
            f" {'within' if fits else 'OVER'}"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
