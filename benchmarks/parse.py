"""Parsing speed and memory of `nix-cache-action analyze` on a real million-line log.

Compares, round by round and alternating, two ways of getting at the substitutions of the
nix-output-monitor devShell log (1,026,344 lines, 95 MB, 633 substitutions):

  (a) `nix-cache-action analyze LOG --json > /dev/null`    - the whole report
  (b) `cut -c6- LOG | jq -c 'select(.action=="start" and .type==108)' > /dev/null`
                                                             - only the substitution records

Targets: median(a) / median(b) <= 0.20 and a peak RSS of (a) <= 64 MB. This script prints the
figures; it does not pass or fail. Run it from the repository root:

    .venv/bin/python benchmarks/parse.py [--rounds 5] [--profile 25]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nom-devshell-2022.nix-log.xz"
EXPECTED_SUBSTITUTIONS = 633
TARGET_RATIO = 0.20
TARGET_RSS_MB = 64.0
JQ_FILTER = 'select(.action=="start" and .type==108)'


@dataclass(frozen=True)
class Sample:
    seconds: float
    max_rss_kb: int
    status: int


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nix-cache-action" / "benchmarks"


def unpack(archive: Path, cache_dir: Path) -> Path:
    """The log unpacked once into `cache_dir` (outside the repository); reused afterwards."""
    target = cache_dir / archive.name.removesuffix(".xz")
    stamp = target.with_suffix(target.suffix + ".source-size")
    source_size = str(archive.stat().st_size)
    if target.is_file() and stamp.is_file() and stamp.read_text() == source_size:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"unpacking {archive} -> {target}", file=sys.stderr)
    with (
        lzma.open(archive, "rb") as src,
        tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)
        tmp = Path(dst.name)
    tmp.replace(target)
    stamp.write_text(source_size)
    return target


# A tiny wrapper that runs argv and prints its peak RSS (KB) from `os.wait4`, used when GNU time
# is missing. It exists because ru_maxrss must be read from a process that was small when it
# spawned the child: Linux carries the pre-exec image's high-water mark over `exec`, so a child
# spawned straight from this script (tens of MB after unpacking) would report this script's size.
_WAIT4_WRAPPER = """
import os, sys
fd = os.open(os.devnull, os.O_WRONLY)
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], dict(os.environ),
                      file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1)])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def rss_probe() -> tuple[list[str], str]:
    """The argv prefix that runs a command and writes its peak RSS (KB) to a file, and its name.

    GNU time (`/usr/bin/time -f %M`) has a floor of about 2 MB; the Python wrapper's floor is its
    own size (about 10 MB), still well under what `analyze` uses.
    """
    if Path("/usr/bin/time").is_file() and os.access("/usr/bin/time", os.X_OK):
        return ["/usr/bin/time", "-f", "%M", "-o"], "/usr/bin/time -f %M"
    return [sys.executable, "-c", _WAIT4_WRAPPER], "python os.wait4 wrapper"


def run_measured(
    argv: list[str],
    probe: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Sample:
    """Run argv (stdout to /dev/null) under the RSS probe: wall time and peak RSS of argv alone.

    For `sh -c 'a | b'` the peak is the largest of sh, a and b (each is waited for by sh).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        done = subprocess.run(
            [*probe, rss.name, *argv], stdout=subprocess.DEVNULL, cwd=cwd, env=env, check=False
        )
        seconds = time.perf_counter() - started
        text = Path(rss.name).read_text().strip().splitlines()
    # GNU time writes "Command exited with non-zero status N" before the figure.
    kb = int(text[-1]) if text and text[-1].isdigit() else -1
    return Sample(seconds, kb, done.returncode)


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except FileNotFoundError:
        return "not found"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def cli_python(cli: str) -> str:
    """The interpreter behind the CLI script (its shebang), which is what (a) really runs."""
    path = shutil.which(cli)
    if path is None:
        return "?"
    with Path(path).open("rb") as handle:
        first = handle.readline().decode("utf-8", "replace")
    if not first.startswith("#!"):
        return "?"
    return tool_version([*first[2:].split(), "--version"])


def substitution_count(cli: str, log: Path) -> tuple[int | None, str]:
    done = subprocess.run(
        [cli, "analyze", str(log), "--json"], capture_output=True, text=True, check=False
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return None, f"exit {done.returncode}: {done.stderr.strip()[:300]}"
    return len(report.get("substitutions", [])), str(report.get("verdict"))


def profile(cli: str, log: Path, top: int) -> None:
    """cProfile of one analyze run in the CLI's own interpreter; prints the top functions."""
    path = shutil.which(cli)
    if path is None:
        return
    with Path(path).open("rb") as handle:
        python = handle.readline().decode().removeprefix("#!").split()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "analyze.prof"
        command = [*python, "-m", "cProfile", "-o", str(out), "-m", "nix_cache_action"]
        command += ["analyze", str(log), "--json"]
        subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
        print(f"\ncProfile of one analyze run (top {top} by own time):")
        stats = pstats.Stats(str(out), stream=sys.stdout)
        stats.strip_dirs().sort_stats("tottime").print_stats(top)


def alternate(
    analyze: list[str], baseline: list[str], probe: list[str], rounds: int
) -> tuple[list[Sample], list[Sample]]:
    """K rounds of (a) then (b), after one untimed run of each (page cache, bytecode)."""
    run_measured(analyze, probe)
    run_measured(baseline, probe)
    a_samples: list[Sample] = []
    b_samples: list[Sample] = []
    for index in range(rounds):
        a_samples.append(run_measured(analyze, probe))
        b_samples.append(run_measured(baseline, probe))
        print(
            f"round {index + 1}/{rounds}: analyze {a_samples[-1].seconds:6.3f} s "
            f"({a_samples[-1].max_rss_kb / 1024:5.1f} MB)   "
            f"cut|jq {b_samples[-1].seconds:6.3f} s",
            file=sys.stderr,
        )
    return a_samples, b_samples


def summarise(a_samples: list[Sample], b_samples: list[Sample], probe_name: str) -> None:
    a_times = [s.seconds for s in a_samples]
    b_times = [s.seconds for s in b_samples]
    ratio = statistics.median(a_times) / statistics.median(b_times)
    per_round = statistics.median(a / b for a, b in zip(a_times, b_times, strict=True))
    rss_mb = max(s.max_rss_kb for s in a_samples) / 1024
    rss_b_mb = max(s.max_rss_kb for s in b_samples) / 1024
    print(f"(a) analyze    median {statistics.median(a_times):.3f} s   min {min(a_times):.3f} s")
    print(f"(b) cut | jq   median {statistics.median(b_times):.3f} s   min {min(b_times):.3f} s")
    mark = "within" if ratio <= TARGET_RATIO else "OVER"
    print(
        f"ratio a/b      {ratio:.3f}  (target <= {TARGET_RATIO}: {mark}); "
        f"median of per-round ratios {per_round:.3f}"
    )
    mark = "within" if rss_mb <= TARGET_RSS_MB else "OVER"
    print(
        f"peak RSS (a)   {rss_mb:.1f} MB  (target <= {TARGET_RSS_MB:.0f} MB: {mark}; "
        f"measured with {probe_name}; (b)'s largest process: {rss_b_mb:.1f} MB)"
    )
    failed = sorted({s.status for s in a_samples + b_samples} - {0})
    if failed:
        print(f"note           some runs exited with status {failed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", "-k", type=int, default=5)
    parser.add_argument("--archive", type=Path, default=DATA, help="the .nix-log.xz to unpack")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument(
        "--cli",
        default=str(REPO / ".venv" / "bin" / "nix-cache-action"),
        help="the nix-cache-action executable (default: the repository's venv)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also cProfile analyze once, top N"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which(args.cli) is None:
        parser.error(f"{args.cli} not found; create the venv (pip install -e .) or pass --cli")
    if shutil.which("jq") is None:
        parser.error("jq is not on PATH; run scripts/provision-nix.sh or apt-get install jq")

    log = unpack(args.archive, args.cache_dir)
    lines = sum(1 for _ in log.open("rb"))
    size_mb = log.stat().st_size / 1e6

    analyze = [args.cli, "analyze", str(log), "--json"]
    # The log path is passed as $1, so no quoting of it is needed inside the script.
    jq_script = f"cut -c6- \"$1\" | jq -c '{JQ_FILTER}' > /dev/null"
    baseline = ["sh", "-c", jq_script, "sh", str(log)]

    probe, probe_name = rss_probe()
    a_samples, b_samples = alternate(analyze, baseline, probe, args.rounds)
    count, verdict = substitution_count(args.cli, log)

    print("== parse benchmark: nix-cache-action analyze vs cut | jq ==")
    print(f"log            {log} ({lines:,} lines, {size_mb:.1f} MB)")
    print(
        f"machine        nproc={os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), "
        f"{cpu_model()}, {platform.system()} {platform.release()}"
    )
    print(
        f"versions       {cli_python(args.cli)} (analyze), "
        f"Python {platform.python_version()} (this script), {tool_version(['jq', '--version'])}"
    )
    print(f"rounds         {args.rounds}, alternating, after one warm-up run of each")
    summarise(a_samples, b_samples, probe_name)
    sanity = "as expected" if count == EXPECTED_SUBSTITUTIONS else "UNEXPECTED"
    print(
        f"sanity         analyze found {count} substitutions "
        f"(log has {EXPECTED_SUBSTITUTIONS}: {sanity}); verdict {verdict}"
    )
    if args.profile:
        profile(args.cli, log, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
