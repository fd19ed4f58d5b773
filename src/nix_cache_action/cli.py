"""`nix-cache-action build|analyze|merge`: the same job as the action, outside GitHub."""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from nix_cache_action import __version__
from nix_cache_action.engine import EXIT_FAILED, BuildOptions, run_job
from nix_cache_action.errors import InputError, LogError, NixCacheActionError
from nix_cache_action.ledger import Ledger
from nix_cache_action.nix.commands import Nix
from nix_cache_action.nix.process import Subprocesses
from nix_cache_action.render.format import count
from nix_cache_action.render.summary import render_summary
from nix_cache_action.render.terminal import render_terminal
from nix_cache_action.report import MODES, Report, Run, load_report, merge, write_report

EXIT_USAGE = 2
NO_RECORDS = (
    "{source} holds no @nix record ({lines} lines of plain text): it is not Nix's internal-json"
    " log. Record one with `nix build --log-format internal-json ... 2> LOG`, or pipe it:"
    " `nix build --log-format internal-json ... 2>&1 | nix-cache-action analyze -`."
)
INCOMPLETE = (
    "{source} ends in the middle of a run: {count} activities never stopped, so it does not"
    " show all that happened"
)

UNCONFIRMED = (
    "{source} has a failed build, and this Nix's log does not say whether {builds} finished:"
    " without --keep-going Nix stops the builds still running, and they look finished here."
    " `nix-cache-action build` asks the store instead"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nix-cache-action",
        description="Build Nix installables, account for every cache hit and miss, "
        "and check that each build is reproducible.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build installables, rebuild them, report")
    build.add_argument("installables", nargs="*", default=[".#default"])
    build.add_argument(
        "--reproducibility",
        choices=MODES,
        default="fail",
        help="fail (default): a differing rebuild fails the run; warn: report "
        "it only; off: do not rebuild",
    )
    build.add_argument(
        "--deep", action="store_true", help="also rebuild every derivation this run built locally"
    )
    build.add_argument(
        "--keep-going",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="build what can be built when a build fails (default); --no-keep-going stops at "
        "the first failure, and the builds Nix stops are reported as cancelled",
    )
    build.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="build what a cache fails to deliver (default; Nix's --fallback); where Nix "
        "gives up on a cache error all the same, build once more without that cache",
    )
    build.add_argument(
        "--nix",
        default=os.environ.get("NIX_CACHE_ACTION_NIX", "nix"),
        help="the nix executable (default: nix on PATH)",
    )
    build.add_argument(
        "-C",
        "--directory",
        type=Path,
        default=None,
        help="run Nix in this directory (default: the current one)",
    )
    build.add_argument(
        "--log",
        type=Path,
        default=Path("nix-cache-action.log"),
        help="where the raw internal-json log is teed (default: %(default)s)",
    )
    _outputs(build)

    analyze = sub.add_parser("analyze", help="turn a recorded internal-json log into a report")
    analyze.add_argument("log", help="the log file, or - for standard input")
    analyze.add_argument(
        "--timing",
        choices=("auto", "arrival", "none"),
        default="auto",
        help="arrival: time lines as they arrive (for a live pipe); none: the "
        "log has no times; auto (default): arrival for a pipe, none for a file",
    )
    analyze.add_argument("--reproducibility", choices=MODES, default="fail")
    _outputs(analyze)

    merge_cmd = sub.add_parser("merge", help="merge JSON reports of several runs into one")
    merge_cmd.add_argument("reports", nargs="+", type=Path)
    _outputs(merge_cmd)
    return parser


def _outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--summary", type=Path, help="write the markdown summary here")
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("NIX_CACHE_ACTION_LOG_LEVEL", "WARNING"), format="%(message)s"
    )
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
        if args.command == "analyze":
            return _analyze(args)
        return _merge(args)
    except NixCacheActionError as exc:
        print(f"nix-cache-action: {exc}", file=sys.stderr)  # noqa: T201
        # Even a bad argument leaves a report saying so where one was asked for.
        _emit(Report(errors=(str(exc),), stopped=str(exc)), args, quiet=True)
        return EXIT_USAGE if isinstance(exc, InputError) else EXIT_FAILED


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - the live account goes to stderr


def _build(args: argparse.Namespace) -> int:
    directory = args.directory
    if directory is not None and not directory.is_dir():
        raise InputError("--directory", f"{directory} is not a directory; pass an existing one")
    options = BuildOptions(
        installables=tuple(args.installables),
        reproducibility=args.reproducibility,
        deep=args.deep,
        keep_going=args.keep_going,
        fallback=args.fallback,
    )
    runner = Subprocesses(cwd=directory)
    report, status = run_job(
        options, lambda: Nix.probe(args.nix, runner), log_path=args.log, say=_say
    )
    # Whatever happened, the report and summary are written with what is known.
    _emit(report, args)
    return status


def _analyze(args: argparse.Namespace) -> int:
    ledger = Ledger(run="analyze")
    if args.log == "-":
        stream: IO[bytes] = sys.stdin.buffer
        source = "standard input"
    else:
        path = Path(args.log)
        if not path.is_file():
            raise InputError("log", f"{path} is not a readable file; pass a log file or -")
        stream = path.open("rb")
        source = str(path)
    timed = args.timing == "arrival" or (args.timing == "auto" and _is_pipe(stream))
    try:
        if timed:
            for line in stream:
                ledger.feed(line, time.monotonic())
        else:
            ledger.consume(stream)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if ledger.records == 0:
        raise LogError(NO_RECORDS.format(source=source, lines=ledger.plain_lines))
    notes = _analyze_notes(ledger, source)
    report = ledger.report(
        reproducibility_mode=args.reproducibility,
        runs=(Run(label="analyze", plain_lines=ledger.plain_lines, log_path=source),),
        notes=notes,
    )
    _emit(report, args)
    return report.exit_status()


def _analyze_notes(ledger: Ledger, source: str) -> tuple[str, ...]:
    """What a recorded log leaves unknown or unread."""
    notes = []
    if ledger.incomplete:
        notes.append(INCOMPLETE.format(source=source, count=ledger.open_activities))
    unconfirmed = ledger.unconfirmed_builds()
    if unconfirmed:
        notes.append(UNCONFIRMED.format(source=source, builds=count(unconfirmed, "other build")))
    if ledger.plain_lines:
        notes.append(
            f"{ledger.plain_lines} lines of {source} were not @nix records "
            "(kept as text, not counted)"
        )
    unfinished = ledger.unfinished_substitutions()
    if unfinished:
        notes.append(f"{len(unfinished)} substitutions had not finished when the log ended")
    return tuple(notes)


def _merge(args: argparse.Namespace) -> int:
    reports = []
    for path in args.reports:
        try:
            reports.append(load_report(path))
        except (OSError, ValueError) as exc:
            raise InputError("reports", f"{path}: {exc}") from exc
    merged = merge(reports)
    _emit(merged, args)
    return merged.exit_status()


def _emit(report: Report, args: argparse.Namespace, *, quiet: bool = False) -> None:
    if args.report is not None:
        write_report(report, args.report)
    if args.summary is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(render_summary(report), encoding="utf-8")
    if args.json:
        print(json.dumps(report.to_json(), indent=2))  # noqa: T201
    elif not quiet:
        _say(render_terminal(report))


def _is_pipe(stream: IO[bytes]) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(stream.fileno())


if __name__ == "__main__":
    sys.exit(main())
