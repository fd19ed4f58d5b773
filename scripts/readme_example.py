"""Write (or check) the example job summary in README.md.

The example is the project's own output: the summary `render_summary` makes from the logs in
tests/logs (recorded from the fixture flake there with Nix 2.34), analyzed and merged as
`nix-cache-action analyze` and `merge` would. `--check` exits 1 when README.md is stale; a
unit test runs it that way, so the README cannot drift from the renderer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nix_cache_action.ledger import Ledger
from nix_cache_action.render.summary import render_summary
from nix_cache_action.report import Report, merge

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "tests" / "logs"
# One cold build, its rebuild check, a failing build, and a fetch from Magic Nix Cache's address.
RUNS = ("build-2.34", "rebuild-2.34", "fail-2.34", "substitute-2.34")
START = "<!-- example-summary:start -->"
END = "<!-- example-summary:end -->"


def example_report() -> Report:
    reports = []
    for name in RUNS:
        ledger = Ledger(run="check" if name.startswith("rebuild") else "build")
        with (LOGS / f"{name}.log").open("rb") as handle:
            ledger.consume(handle)
        reports.append(ledger.report())
    return merge(reports)


def example_block() -> str:
    summary = render_summary(example_report())
    return (
        f"{START}\n<details><summary>Example job summary (made by "
        "<code>python scripts/readme_example.py</code> from the logs in tests/logs)</summary>\n\n"
        f"{summary.rstrip()}\n\n</details>\n{END}"
    )


def updated(readme: str) -> str:
    start, end = readme.index(START), readme.index(END) + len(END)
    return readme[:start] + example_block() + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
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
