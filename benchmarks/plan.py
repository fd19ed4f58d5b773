"""`plan` on a generated flake of 2,000 attributes (2 systems x 1,000 packages) against Nix's own
evaluation of the same drvPaths.

The flake is written into the scratch folder (not the repository): `packages.<system>.p<i>` for
x86_64-linux and aarch64-linux, each a small derivation depending on one of 10 shared leaves, as
a flake's packages share their libraries. After one untimed run of each (which writes the .drv
files into the store, so both then evaluate against the same store), for K rounds alternating:

  (a) nix-cache-action plan packages --systems x86_64-linux,aarch64-linux
  (b) nix eval --json .#packages --apply 'mapAttrs (_: mapAttrs (_: d: d.drvPath))'

Both run under GNU time for the peak RSS (of the process and its children: (a)'s is the larger of
Python and the `nix eval` it runs). With the default --max-per-leg 32 each system needs 32 legs,
so (a) also reads the dependency graph (`nix derivation show -r`) to cut them. No cache is
configured: (a) asks none. Targets: median(a) / median(b) <= 1.3, peak(a) - peak(b) <= 64 MB.
This script prints the figures; it does not pass or fail.

    .venv/bin/python benchmarks/plan.py [--rounds 5] [--attributes 1000] [--nix-version 2.8|2.34]
                                        [--max-per-leg 32] [--eval-work 0]
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

from benchmarks.overhead import cold_env, default_scratch, nix_version, provision
from benchmarks.parse import rss_probe, run_measured

TARGET_RATIO = 1.3
TARGET_EXTRA_MB = 64
SYSTEMS = ("x86_64-linux", "aarch64-linux")
LEAVES = 10
EVAL_ONLY = "ps: builtins.mapAttrs (_: builtins.mapAttrs (_: d: d.drvPath)) ps"


def flake_text(attributes: int, eval_work: int = 0) -> str:
    # eval_work > 0 gives each derivation an attribute built from that many strings: work per
    # attribute in the evaluator, as a real package's many attributes are (0: none).
    flags = (
        'flags = builtins.concatStringsSep " "'
        f' (builtins.genList (j: "-f${{toString j}}-${{name}}") {eval_work});'
        if eval_work
        else ""
    )
    return f"""{{
  outputs = {{ self }}:
    let
      forSystem = system:
        let
          mk = name: deps: derivation {{
            inherit name system deps;
            {flags}
            builder = "/bin/sh";
            args = [ "-c" "echo $name > $out" ];
          }};
          leaves = builtins.genList (i: mk "leaf-${{toString i}}" [ ]) {LEAVES};
          leaf = i: builtins.elemAt leaves (i - (i / {LEAVES}) * {LEAVES});
        in builtins.listToAttrs (builtins.genList (i: {{
          name = "p${{toString i}}";
          value = mk "p${{toString i}}" [ (leaf i) ];
        }}) {attributes});
    in {{
      packages = builtins.listToAttrs
        (map (s: {{ name = s; value = forSystem s; }}) [ {" ".join(f'"{s}"' for s in SYSTEMS)} ]);
    }};
}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--attributes", type=int, default=1000, help="per system")
    parser.add_argument("--nix-version", choices=("2.8", "2.34"), default="2.34")
    parser.add_argument("--max-per-leg", type=int, default=32)
    parser.add_argument(
        "--eval-work", type=int, default=0, help="strings built per derivation (default: 0)"
    )
    args = parser.parse_args()
    nix = "/usr/bin/nix" if args.nix_version == "2.8" else str(provision())
    cli = str(Path(sys.executable).parent / "nix-cache-action")
    probe, probe_name = rss_probe()
    scratch = Path(tempfile.mkdtemp(prefix="nca-plan-", dir=default_scratch()))
    try:
        flake = scratch / "flake"
        flake.mkdir()
        (flake / "flake.nix").write_text(
            flake_text(args.attributes, args.eval_work), encoding="utf-8"
        )
        env = cold_env(scratch / "nix", Path(nix).parent)
        plan_file = scratch / "plan.json"
        a = [
            cli,
            "plan",
            "packages",
            "--nix",
            nix,
            "--systems",
            ",".join(SYSTEMS),
            "--max-per-leg",
            str(args.max_per_leg),
            "--plan",
            str(plan_file),
        ]
        b = [nix, "--extra-experimental-features", "nix-command flakes", "eval", "--json"]
        b += [".#packages", "--apply", EVAL_ONLY]

        def run(argv: list[str]) -> tuple[float, int, int]:
            sample = run_measured(argv, probe, cwd=flake, env=env)
            return sample.seconds, sample.max_rss_kb, sample.status

        for argv in (a, b):  # warm-up: the .drv files are written once
            _, _, status = run(argv)
            if status != 0:
                print(f"FAILED: {' '.join(argv[:4])} exited {status}", file=sys.stderr)
                return 1
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
        times: dict[str, list[float]] = {"a": [], "b": []}
        peaks: dict[str, list[int]] = {"a": [], "b": []}
        for index in range(args.rounds):
            order = [("a", a), ("b", b)] if index % 2 == 0 else [("b", b), ("a", a)]
            for name, argv in order:
                seconds, kb, _ = run(argv)
                times[name].append(seconds)
                peaks[name].append(kb)
        ma, mb = statistics.median(times["a"]), statistics.median(times["b"])
        pa, pb = max(peaks["a"]) / 1024, max(peaks["b"]) / 1024
        counts = plan["counts"]
        print(f"Nix: {nix_version(nix)}; {args.rounds} rounds; peak RSS by {probe_name}")
        print(
            f"flake: {len(SYSTEMS)} systems x {args.attributes} packages ="
            f" {len(SYSTEMS) * args.attributes} attributes; plan: {counts['to-build']} to build,"
            f" {counts['legs']} legs, graph read: {plan['graph_read']};"
            f" eval work {args.eval_work} strings per derivation"
        )
        print(f"(a) plan        median {ma:.3f} s  min {min(times['a']):.3f} s  peak {pa:.1f} MB")
        print(f"(b) nix eval    median {mb:.3f} s  min {min(times['b']):.3f} s  peak {pb:.1f} MB")
        ratio = ma / mb
        extra = pa - pb
        print(
            f"(a)/(b) = {ratio:.2f}x, target <= {TARGET_RATIO}x:"
            f" {'within' if ratio <= TARGET_RATIO else 'OVER'}"
        )
        print(
            f"peak(a) - peak(b) = {extra:+.1f} MB, target <= {TARGET_EXTRA_MB} MB:"
            f" {'within' if extra <= TARGET_EXTRA_MB else 'OVER'}"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
