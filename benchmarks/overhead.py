"""What `nix-cache-action build` costs over the bare Nix commands it stands for.

For K rounds, alternating, each run on a cold store of its own, with a copy of the 201-derivation
fixture flake `benchmarks/flakes/wide`:

  (a) nix-cache-action build .#default --nix NIX --report R --log L
  (b) the bare sequence the action replaces (design document):
        nix build .#default && nix build .#default --rebuild \\
          && nix path-info --json .#default | jq -r '.[].narHash'

  (c) (b) with each build's internal-json log read by the least a Python CLI can be: an
      interpreter without site packages that starts the build and reads its log to the end,
      parsing nothing (LOG_READER)

Both evaluate, build 201 derivations, rebuild the top one and read its NAR hash; (a) also probes
the Nix version and its settings and parses the internal-json log. (c) / (b) is the floor of any
CLI in Python that reads Nix's log as it comes. Target: median(a) / median(b) <= 1.03. This
script prints the figures; it does not pass or fail.

    .venv/bin/python benchmarks/overhead.py [--rounds 3] [--nix-version 2.8|2.34|both]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLAKE = REPO / "benchmarks" / "flakes" / "wide"
TARGET_RATIO = 1.03
NIX_CONFIG = """\
experimental-features = nix-command flakes
substituters =
sandbox = false
build-users-group =
eval-cache = false
"""
# `.[]` reads both shapes of `nix path-info --json`: a list (up to 2.18) and an object keyed by
# path (2.19 and later).
BARE = (
    "nix build .#default && nix build .#default --rebuild && "
    "nix path-info --json .#default | jq -r '.[].narHash'"
)

# Start the command in argv, read its stderr to the end as it comes, exit with its status.
LOG_READER = (
    "import subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "while p.stderr.read1(1 << 20): pass\n"
    "sys.exit(p.wait())\n"
)
# (c): the interpreter and the reader come from the environment (PY, LOG_READER).
READ = '"$PY" -S -c "$LOG_READER"'
BARE_READ = (
    f"{READ} nix build .#default --log-format internal-json"
    f" && {READ} nix build .#default --rebuild --log-format internal-json"
    " && nix path-info --json .#default | jq -r '.[].narHash'"
)


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu_seconds: float  # user + system of the command and everything it waited for
    status: int
    detail: str


def provision() -> Path:
    """scripts/provision-nix.sh (idempotent) installs both Nix versions; its last line is the
    directory of the 2.34 wrapper."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "provision-nix.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip().splitlines()[-1]) / "nix"


def default_scratch() -> Path | None:
    """tmpfs when there is one: on this machine's virtual disk, identical runs of (b) took
    anywhere from 3 to 13 s (disk latency: their CPU time moved far less), which hides a 5%
    difference. Only the parent of a private mkdtemp directory, never a file name."""
    shm = Path("/dev/shm")  # noqa: S108
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def filesystem(path: Path) -> str:
    """The type of the file system holding `path`, from /proc/mounts (longest mount prefix)."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def nix_version(nix: str) -> str:
    done = subprocess.run([nix, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or done.stderr.strip()


def cold_env(root: Path, nix_dir: Path) -> dict[str, str]:
    """A store, state, log, cache and temporary directory of this run's own; `nix` first on PATH."""
    env = dict(os.environ)
    env.pop("NIX_REMOTE", None)
    for name in ("store", "state", "log", "cache", "config", "data", "xdg-state", "tmp"):
        (root / name).mkdir(parents=True)
    env.update(
        NIX_STORE_DIR=str(root / "store"),
        NIX_STATE_DIR=str(root / "state"),
        NIX_LOG_DIR=str(root / "log"),
        XDG_CACHE_HOME=str(root / "cache"),
        XDG_CONFIG_HOME=str(root / "config"),
        XDG_DATA_HOME=str(root / "data"),
        XDG_STATE_HOME=str(root / "xdg-state"),
        NIX_CONFIG=NIX_CONFIG,
        TMPDIR=str(root / "tmp"),  # where Nix makes the builders' working directories
        PATH=f"{nix_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
    )
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall time, CPU time (children's rusage delta), exit status, and the last lines of stdout
    (on success) or of stderr (on failure)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # On success the last line of stdout (the NAR hash for (b)); otherwise the end of stderr.
    stream = done.stdout if done.returncode == 0 else done.stderr
    tail = " | ".join(stream.decode("utf-8", "replace").strip().splitlines()[-3:])
    return seconds, cpu, done.returncode, tail


def remove(path: Path) -> None:
    # Store paths are read-only; make them writable so that a non-root user can remove them too.
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
    shutil.rmtree(path, ignore_errors=True)


def run_action(cli: str, nix: str, scratch: Path) -> Sample:
    root = scratch / "a"
    flake = root / "flake"
    shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
    env = cold_env(root / "nix", Path(nix).parent)
    report, log = root / "out" / "report.json", root / "out" / "nix.log"
    argv = [cli, "build", ".#default", "--nix", nix, "--report", str(report), "--log", str(log)]
    seconds, cpu, status, _ = timed(argv, flake, env)
    detail = describe(report, seconds)
    remove(root)
    return Sample(seconds, cpu, status, detail)


def run_bare(nix: str, scratch: Path, *, read: bool = False) -> Sample:
    """(b), or (c) with `read`."""
    root = scratch / "b"
    flake = root / "flake"
    shutil.copytree(FLAKE, flake, ignore=shutil.ignore_patterns("result*", "flake.lock"))
    env = cold_env(root / "nix", Path(nix).parent)
    env.update(PY=sys.executable, LOG_READER=LOG_READER)
    seconds, cpu, status, tail = timed(["sh", "-c", BARE_READ if read else BARE], flake, env)
    remove(root)
    return Sample(seconds, cpu, status, f"narHash {tail}" if status == 0 else tail)


def describe(report: Path, wall: float) -> str:
    """The report's own account of the run: how many builds, the verdict, where time went.

    "outside" is the wall time not spent in the two streamed Nix runs: interpreter start, the
    version probe, the per-installable evaluation, `path-info` and writing the report.
    """
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        return f"no report ({exc})"
    totals = data.get("totals", {})
    timed_runs = [r for r in data.get("runs", []) if isinstance(r.get("seconds"), (int, float))]
    runs = ", ".join(f"{r.get('label')} {r['seconds']:.2f} s" for r in timed_runs)
    outside = wall - sum(r["seconds"] for r in timed_runs)
    return (
        f"built {totals.get('built')}, reproducible {totals.get('reproducible')}, "
        f"verdict {data.get('verdict')}; streamed nix runs: {runs}; outside them {outside:.2f} s"
    )


def bench(
    cli: str, label: str, nix: str, rounds: int, scratch_dir: Path | None
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    samples: dict[str, list[Sample]] = {"a": [], "b": [], "c": []}
    with tempfile.TemporaryDirectory(prefix="nca-overhead-", dir=scratch_dir) as tmp:
        scratch = Path(tmp)
        runs = {
            "a": lambda: run_action(cli, nix, scratch),
            "b": lambda: run_bare(nix, scratch),
            "c": lambda: run_bare(nix, scratch, read=True),
        }
        for index in range(rounds):
            # Rotate which goes first, so a drift of the machine's speed hits all alike.
            order = list(runs)[index % len(runs) :] + list(runs)[: index % len(runs)]
            for name in order:
                samples[name].append(runs[name]())
            a, b, c = (samples[name][-1] for name in "abc")
            print(
                f"[{label}] round {index + 1}/{rounds}: "
                f"action {a.seconds:6.2f} s (cpu {a.cpu_seconds:5.2f}, exit {a.status})   "
                f"bare {b.seconds:6.2f} s (cpu {b.cpu_seconds:5.2f}, exit {b.status})   "
                f"read {c.seconds:6.2f} s (cpu {c.cpu_seconds:5.2f}, exit {c.status})",
                file=sys.stderr,
            )
    return samples["a"], samples["b"], samples["c"]


def summarise(label: str, version: str, a: list[Sample], b: list[Sample], c: list[Sample]) -> None:
    a_med = statistics.median(s.seconds for s in a)
    b_med = statistics.median(s.seconds for s in b)
    ratio = a_med / b_med
    per_round = statistics.median(x.seconds / y.seconds for x, y in zip(a, b, strict=True))
    cpu_ratio = statistics.median(s.cpu_seconds for s in a) / statistics.median(
        s.cpu_seconds for s in b
    )
    mark = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"-- Nix {label}: {version}")
    print(
        f"(a) action     median {a_med:6.2f} s   min {min(s.seconds for s in a):6.2f} s   "
        f"cpu median {statistics.median(s.cpu_seconds for s in a):5.2f} s"
    )
    print(
        f"(b) bare       median {b_med:6.2f} s   min {min(s.seconds for s in b):6.2f} s   "
        f"cpu median {statistics.median(s.cpu_seconds for s in b):5.2f} s"
    )
    print(f"ratio a/b      {ratio:.3f}  (target <= {TARGET_RATIO}: {mark})")
    print(f"               median of per-round ratios {per_round:.3f}; cpu ratio {cpu_ratio:.3f}")
    c_med = statistics.median(s.seconds for s in c)
    print(
        f"(c) bare, read median {c_med:6.2f} s   min {min(s.seconds for s in c):6.2f} s   "
        f"cpu median {statistics.median(s.cpu_seconds for s in c):5.2f} s"
    )
    print(f"ratio c/b      {c_med / b_med:.3f}  (the floor of a CLI in Python that reads the log)")
    print(f"(a) report     {a[-1].detail}")
    print(f"(b) output     {b[-1].detail}")
    bad = sorted({s.status for s in a + b + c} - {0})
    if bad:
        print(f"note           some runs exited with status {bad}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", "-k", type=int, default=3)
    parser.add_argument("--nix-version", choices=("2.8", "2.34", "both"), default="both")
    parser.add_argument("--nix-28", default="/usr/bin/nix", help="Nix 2.8 (Debian's nix-bin)")
    parser.add_argument(
        "--nix-234", default=None, help="Nix 2.34 (default: the wrapper provision-nix.sh makes)"
    )
    parser.add_argument(
        "--cli",
        default=str(REPO / ".venv" / "bin" / "nix-cache-action"),
        help="the nix-cache-action executable (default: the repository's venv)",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=default_scratch(),
        help="where the flake copies, stores and build directories go (default: /dev/shm if it "
        "is writable, else the system temporary directory)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which(args.cli) is None:
        parser.error(f"{args.cli} not found; create the venv (pip install -e .) or pass --cli")

    wanted = ["2.8", "2.34"] if args.nix_version == "both" else [args.nix_version]
    if ("2.34" in wanted and args.nix_234 is None) or not Path(args.nix_28).exists():
        print("running scripts/provision-nix.sh", file=sys.stderr)
        wrapper = provision()
        args.nix_234 = args.nix_234 or str(wrapper)
    executables = {"2.8": args.nix_28, "2.34": args.nix_234}

    results = {}
    for label in wanted:
        nix = str(executables[label])
        results[label] = (nix_version(nix), *bench(args.cli, label, nix, args.rounds, args.scratch))

    print("== overhead benchmark: nix-cache-action build vs bare nix build/--rebuild/path-info ==")
    print(f"fixture        {FLAKE.relative_to(REPO)} (200 derivations + default), cold store each")
    print(
        f"machine        nproc={os.cpu_count()}, {sys.implementation.name} {sys.version.split()[0]}"
    )
    print(f"rounds         {args.rounds} per version, rotating which of a, b, c goes first")
    scratch = args.scratch or Path(tempfile.gettempdir())
    print(f"scratch        {scratch} ({filesystem(scratch)})")
    for label, (version, a, b, c) in results.items():
        summarise(label, version, a, b, c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
