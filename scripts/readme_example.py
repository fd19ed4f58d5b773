"""Write (or check) the example job summary in README.md, and record the run it shows.

The example is the project's own output from a real live build: `--record` builds the fixture
flake tests/fixtures/flakes/outcomes with Nix 2.34 (scripts/provision-nix.sh) on an empty store
that asks a binary cache on 127.0.0.1 holding `good`'s closure, three installables at once:
`.#good` (from the cache, then rebuilt and compared: a cross-machine check), `.#nondet` (built,
and its rebuild differs) and `.#fails` (its builder exits 3). It keeps that run's JSON report in
tests/fixtures/example-report.json. The README block is `render_summary` of that report, so
`--check` (exit 1 when README.md is stale; a unit test runs it that way) keeps the README in
step with the renderer without building anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script: the repository root on the path makes `tests.support` importable.
sys.path.insert(0, str(ROOT))

from tests.support import http_cache  # noqa: E402

from nix_cache_action.render.summary import render_summary  # noqa: E402 - after the path
from nix_cache_action.report import Report  # noqa: E402

REPORT = ROOT / "tests" / "fixtures" / "example-report.json"
FLAKE = ROOT / "tests" / "fixtures" / "flakes" / "outcomes"
START = "<!-- example-summary:start -->"
END = "<!-- example-summary:end -->"
# The store directory the example's paths show: short, and not a real store.
STORE = Path("/tmp/nca-example/store")  # noqa: S108 - a throw-away store, made afresh
NIX_CONFIG = (
    "experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\n"
    "narinfo-cache-negative-ttl = 0\neval-cache = false\nrequire-sigs = false\n"
)


def example_report() -> Report:
    return Report.from_json(json.loads(REPORT.read_text(encoding="utf-8")))


def example_block() -> str:
    summary = render_summary(example_report())
    return (
        f"{START}\n<details><summary>Example job summary (made by "
        "<code>python scripts/readme_example.py</code> from a live build)</summary>\n\n"
        f"{summary.rstrip()}\n\n</details>\n{END}"
    )


def updated(readme: str) -> str:
    start, end = readme.index(START), readme.index(END) + len(END)
    return readme[:start] + example_block() + readme[end:]


def _env(state: Path, substituters: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIX_")}
    env.update(
        NIX_STORE_DIR=str(STORE),
        NIX_STATE_DIR=str(state / "state"),
        NIX_LOG_DIR=str(state / "log"),
        NIX_CONF_DIR=str(state / "etc"),
        NIX_USER_CONF_FILES=str(state / "etc" / "user.conf"),
        XDG_CACHE_HOME=str(state / "xdg"),
        NIX_CONFIG=NIX_CONFIG + f"substituters = {substituters}\n",
    )
    return env


def record() -> None:
    """The live build the example shows, its report kept in tests/fixtures."""
    provisioned = subprocess.run(
        ["bash", str(ROOT / "scripts" / "provision-nix.sh")],
        capture_output=True,
        text=True,
        check=True,
    )
    nix = str(Path(provisioned.stdout.strip().splitlines()[-1]) / "nix")
    shutil.rmtree(STORE.parent, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="nca-example-") as tmp:
        work = Path(tmp)
        flake = work / "flake"
        shutil.copytree(FLAKE, flake)
        producer = _env(work / "producer", "")
        nix_ = [nix, "--extra-experimental-features", "nix-command flakes"]
        for argv in (
            ["build", "--no-link", ".#good"],
            ["copy", "--to", f"file://{work / 'cache'}", ".#good"],
        ):
            subprocess.run([*nix_, *argv], cwd=flake, env=producer, check=True, capture_output=True)
        subprocess.run(["chmod", "-R", "u+w", str(STORE.parent)], check=False)
        shutil.rmtree(STORE.parent)
        with http_cache.serve(work / "cache") as url:
            argv = [
                sys.executable,
                "-m",
                "nix_cache_action",
                "build",
                ".#good",
                ".#nondet",
                ".#fails",
            ]
            argv += ["--nix", nix, "--report", str(REPORT), "--log", str(work / "nix.log")]
            env = _env(work / "consumer", url)
            env["PYTHONPATH"] = str(ROOT / "src")
            subprocess.run(argv, cwd=flake, env=env, check=False, capture_output=True)
    subprocess.run(["chmod", "-R", "u+w", str(STORE.parent)], check=False)
    shutil.rmtree(STORE.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    parser.add_argument(
        "--record", action="store_true", help="run the live build again and keep its report"
    )
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    if args.record:
        record()
    current = args.readme.read_text(encoding="utf-8")
    fresh = updated(current)
    if args.check:
        if fresh != current:
            print(
                f"{args.readme}: the example job summary is stale; run "
                "python scripts/readme_example.py",
                file=sys.stderr,
            )
            return 1
        return 0
    args.readme.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
