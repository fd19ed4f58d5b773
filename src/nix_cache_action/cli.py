"""`nix-cache-action build|analyze|merge`: the same job as the action, outside GitHub."""

from __future__ import annotations

import argparse
import functools
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TextIO

# Only what every command needs is imported here; each command imports the rest itself, so
# that `build` never pays for the planner or the aggregate (benchmarks/startup.py).
from nix_cache_action import __version__, debug, records
from nix_cache_action.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    InputError,
    LogError,
    NixCacheActionError,
)
from nix_cache_action.files import check_target, refuse_directory, tolerant_streams, write_text
from nix_cache_action.github.workflow_commands import neutral, neutral_json
from nix_cache_action.limits import DEFAULT_MAX_PER_LEG
from nix_cache_action.redaction import Redactor, environment_secrets
from nix_cache_action.report import (
    MODES,
    Budgets,
    LegInfo,
    Report,
    ReportFileError,
    merge,
    read_report,
    write_report,
)

if TYPE_CHECKING:
    from nix_cache_action.ledger import Ledger
    from nix_cache_action.nix.probe import Probe
    from nix_cache_action.plan import Plan
    from nix_cache_action.render.live import LiveLine

EXIT_USAGE = 2
FILES_HERE = (
    "Files named by options (--report, --summary, --log, --verified, --baseline, --plan) are"
    " relative to the current directory, not to -C; installables are read by Nix in -C."
)
NO_RECORDS = (
    "{source} holds no @nix record ({lines} lines of plain text): it is not Nix's internal-json"
    " log. Record one with `nix build --log-format internal-json ... 2> LOG`, or pipe it:"
    " `nix build --log-format internal-json ... 2>&1 | nix-cache-action analyze -`."
)
INCOMPLETE = (
    "{source} ends in the middle of a run: {count} activities never stopped, so it does not"
    " show all that happened"
)

CUT = (
    "{source} ends in a record cut in the middle: the log was cut, so it does not show all that"
    " happened, and its verdict cannot be ok"
)
UNCONFIRMED = (
    "{source} shows {what}, and this Nix's log does not say whether {builds} finished: Nix"
    " stops the builds still running then, and they look finished here. `nix-cache-action"
    " build` asks the store instead"
)


UNEXPECTED = (
    "stopped on an unexpected error ({kind}: {error}); run again with --debug for the"
    " traceback, and report it if it stays"
)
SKIP_NEEDS_RECORD = (
    "needs --verified FILE: only the verification record says an output in a cache was checked"
)
UNWRITABLE = "nix-cache-action: warning: could not write the {what} to {path}: {error}"
STDIN_CLOSED = "standard input is closed; pass a log file, or pipe the log in"
NIX_OPTION = (
    "{value!r} looks like a Nix option, not an installable; pass Nix settings through"
    " NIX_CONFIG and list only installables"
)


class UsageError(Exception):
    """argparse's complaint about the command line, raised instead of exiting at once, so that
    a report can still be written where one was asked for. `usage` is that of the command the
    complaint is about (`analyze`'s for `analyze`), not the top level's."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Formatter(argparse.HelpFormatter):
    """argparse's own, told the terminal's width: left to find it, argparse imports shutil
    (with bz2 and lzma, 3 ms of every start) each time it makes one, and every add_argument
    makes one."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(1).columns
        except (ValueError, OSError):
            columns = 80
        super().__init__(prog, width=max(columns, 40) - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - argparse's own
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", self.format_usage().rstrip())


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nix-cache-action",
        description="Build Nix installables, account for every cache hit and miss, "
        "and check that each build is reproducible.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    build = sub.add_parser(
        "build", help="build installables, rebuild them, report", epilog=FILES_HERE
    )
    build.add_argument(
        "installables",
        nargs="*",
        default=[".#default"],
        metavar="INSTALLABLE",
        help="what to build, as `nix build` takes it: .#hello, path/to/flake#checks.x86_64-linux"
        ".test, nixpkgs#jq (default: .#default)",
    )
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
        "--verified",
        type=Path,
        help="the verification record (JSON): outputs it holds as reproducible with the same "
        "NAR hash are not rebuilt, and what this run checks is written back",
    )
    build.add_argument(
        "--skip-cached",
        action="store_true",
        help="with --verified: an installable all of whose outputs are in a configured cache "
        "and verified is neither built nor downloaded",
    )
    build.add_argument(
        "--recheck",
        action="store_true",
        help="rebuild and compare every output, whatever --verified says",
    )
    build.add_argument(
        "--plan",
        type=Path,
        help="a plan made by `plan`: with --leg, build that leg's installables",
    )
    build.add_argument(
        "--leg", help="the leg of the plan this run is (its report says so, for `aggregate`)"
    )
    _nix_options(build)
    build.add_argument(
        "--log",
        type=Path,
        default=Path("nix-cache-action.log"),
        help="where the raw internal-json log is teed (default: %(default)s, in the current"
        " directory)",
    )
    _gates(build)
    _outputs(build, runs_nix=True)

    analyze = sub.add_parser("analyze", help="turn a recorded internal-json log into a report")
    analyze.add_argument("log", help="the log file, or - for standard input")
    analyze.add_argument(
        "--timing",
        choices=("auto", "arrival", "none"),
        default="auto",
        help="arrival: time lines as they arrive (for a live pipe); none: the "
        "log has no times; auto (default): arrival for a pipe, none for a file",
    )
    analyze.add_argument(
        "--reproducibility",
        choices=MODES,
        default="fail",
        help="fail (default): a rebuild in the log whose output differs makes the verdict"
        " not-reproducible (exit 1); warn or off: a warning (exit 0)",
    )
    _gates(analyze)
    _outputs(analyze, runs_nix=False)

    plan = sub.add_parser(
        "plan",
        help="list a flake's attributes, their states, and the legs that build them",
        epilog=FILES_HERE,
    )
    plan.add_argument(
        "selection",
        nargs="*",
        help="attribute patterns (checks, packages.x86_64-linux.*, hydraJobs); default: checks,"
        " packages and devShells",
    )
    plan.add_argument("--flake", default=".", help="the flake (default: .)")
    plan.add_argument(
        "--systems",
        default="",
        help="systems to plan, comma-separated, or `all` for every system the flake has"
        " (default: the system of this Nix)",
    )
    plan.add_argument(
        "--max-per-leg",
        type=_positive(int),
        default=DEFAULT_MAX_PER_LEG,
        help="the most installables one leg builds (default: %(default)s)",
    )
    plan.add_argument(
        "--runner",
        action="append",
        default=[],
        metavar="SYSTEM=LABEL",
        help="the runner label for a system, on top of the defaults (repeatable)",
    )
    plan.add_argument(
        "--verified", type=Path, help="the verification record: what it holds is left out"
    )
    plan.add_argument(
        "--plan",
        type=Path,
        default=Path("nix-cache-action-plan.json"),
        help="where the plan goes (default: %(default)s)",
    )
    plan.add_argument("--matrix", type=Path, help="also write the matrix JSON here")
    _nix_options(plan)
    plan.add_argument("--summary", type=Path, help="write the markdown summary here")
    plan.add_argument("--json", action="store_true", help="print the plan JSON on stdout")
    plan.add_argument(
        "--debug",
        action="store_true",
        help="print every Nix command as it starts, and a traceback on an unexpected error",
    )

    aggregate_cmd = sub.add_parser(
        "aggregate", help="add the legs of a planned matrix up into one report and verdict"
    )
    aggregate_cmd.add_argument(
        "reports",
        nargs="+",
        type=Path,
        help="the legs' reports: files, or folders searched for report.json (downloaded artifacts)",
    )
    aggregate_cmd.add_argument(
        "--plan", type=Path, help="the plan: names the legs that never reported"
    )
    aggregate_cmd.add_argument("--junit", type=Path, help="write a JUnit XML file here")
    _gates(aggregate_cmd)
    _outputs(aggregate_cmd, runs_nix=False)

    merge_cmd = sub.add_parser("merge", help="merge JSON reports of several runs into one")
    merge_cmd.add_argument(
        "reports", nargs="+", type=Path, help="the JSON reports, as --report wrote them"
    )
    _gates(merge_cmd)
    _outputs(merge_cmd, runs_nix=False)
    return parser


def _nix_options(parser: argparse.ArgumentParser) -> None:
    """Which Nix, and where it runs: for build and plan (start.py reads the same two)."""
    parser.add_argument(
        "--nix",
        default=os.environ.get("NIX_CACHE_ACTION_NIX", "nix"),
        help="the nix executable (default: nix on PATH)",
    )
    parser.add_argument(
        "-C",
        "--directory",
        type=Path,
        default=None,
        help="run Nix in this directory (default: the current one); file options stay relative"
        " to the current directory",
    )


def _gates(parser: argparse.ArgumentParser) -> None:
    """The comparison with an earlier run and the budgets: for build, analyze and merge."""
    parser.add_argument(
        "--baseline",
        type=Path,
        help="an earlier run's JSON report (the base branch's last run) to compare with",
    )
    parser.add_argument(
        "--max-seconds", type=_positive(float), help="budget: the whole run's wall time"
    )
    parser.add_argument(
        "--max-build-seconds", type=_positive(float), help="budget: seconds in builds, added up"
    )
    parser.add_argument(
        "--max-built", type=_positive(int), help="budget: derivations built (not substituted)"
    )
    parser.add_argument(
        "--min-hit-rate",
        type=_fraction,
        help="budget: the lowest cache hit rate, a fraction from 0 to 1",
    )
    parser.add_argument(
        "--max-per-change",
        type=_positive(int),
        help="budget: the most derivations one root cause may have built, itself included",
    )


def _positive(kind: type[float | int]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} is below 0")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not from 0 to 1 (0.9 is 90%)")
    return value


def _budgets(args: argparse.Namespace) -> Budgets:
    return Budgets(
        max_seconds=args.max_seconds,
        max_build_seconds=args.max_build_seconds,
        max_built=args.max_built,
        min_hit_rate=args.min_hit_rate,
        max_per_change=args.max_per_change,
    )


def _baseline(args: argparse.Namespace) -> Report | None:
    return None if args.baseline is None else _read_report(args.baseline, "--baseline")


def _gated(report: Report, args: argparse.Namespace) -> Report:
    from nix_cache_action.baseline import compare  # noqa: PLC0415 - see the imports above
    from nix_cache_action.budgets import judged  # noqa: PLC0415
    from nix_cache_action.why import with_changes  # noqa: PLC0415

    baseline = _baseline(args)
    if baseline is not None:
        report = records.replace(report, baseline=compare(report, baseline, str(args.baseline)))
        report = with_changes(report, baseline)
    return judged(report, _budgets(args))


def _outputs(parser: argparse.ArgumentParser, *, runs_nix: bool) -> None:
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--summary", type=Path, help="write the markdown summary here")
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print every Nix command as it starts, and a traceback on an unexpected error"
        if runs_nix
        else "print a traceback on an unexpected error",
    )


def main(argv: Sequence[str] | None = None, *, probe: Probe | None = None) -> int:
    """The command line; `probe` is Nix's, started before this module was imported (start.py)."""
    tolerant_streams()
    _SAID.clear()
    _redactor.cache_clear()  # the secrets of this run's environment
    argv = list(sys.argv[1:] if argv is None else argv)
    debug.enable(
        on="--debug" in argv or os.environ.get("NIX_CACHE_ACTION_LOG_LEVEL", "").upper() == "DEBUG"
    )
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        print(_shown(error.usage), file=sys.stderr)  # noqa: T201
        print(_shown(str(error)), file=sys.stderr)  # noqa: T201
        # Even a bad argument leaves a report saying so where one was asked for.
        asked = _asked_report(argv)
        if asked is not None:
            stopped = _stopped(str(error))
            _write(lambda: write_report(stopped, asked), "report", asked)
        return EXIT_USAGE
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "build": _build,
        "analyze": _analyze,
        "plan": _plan,
        "aggregate": _aggregate,
        "merge": _merge,
    }
    try:
        args.probe = probe
        return commands[args.command](args)
    except NixCacheActionError as exc:
        print(_shown(f"nix-cache-action: {exc}"), file=sys.stderr)  # noqa: T201
        if args.command != "plan":  # a plan that stopped is written by plan_command itself
            # Not into the file the refusal is about (a --report that is a directory): said
            # once, not again as a failed write.
            refused = exc.name if isinstance(exc, InputError) else None
            _emit(_stopped(str(exc)), args, quiet=True, refused=refused)
        return EXIT_USAGE if isinstance(exc, InputError) else EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - whatever it was, the report says the run stopped
        debug.traceback("unexpected error", exc)
        message = UNEXPECTED.format(kind=type(exc).__name__, error=exc)
        print(_shown(f"nix-cache-action: {message}"), file=sys.stderr)  # noqa: T201
        if args.command != "plan":
            _emit(_stopped(message), args, quiet=True)
        return EXIT_FAILED


def _stopped(message: str) -> Report:
    return Report(errors=(message,), stopped=message)


def _asked_report(argv: Sequence[str]) -> Path | None:
    """The --report of a command line argparse refused, if it names one."""
    for index, arg in enumerate(argv):
        if arg == "--report" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if arg.startswith("--report="):
            return Path(arg.removeprefix("--report="))
    return None


def _check_targets(args: argparse.Namespace) -> None:
    """Files the run will write, refused now rather than after the build."""
    if args.report is not None:
        check_target(args.report, "--report", "report.json")
    if args.summary is not None:
        check_target(args.summary, "--summary", "summary.md")
    if getattr(args, "log", None) is not None and args.command == "build":
        check_target(args.log, "--log", "nix.log")


@functools.cache
def _redactor() -> Redactor:
    return Redactor.of(environment_secrets(os.environ, ""))


def _shown(text: str) -> str:
    """Every line the CLI prints: secrets of the configuration it runs with removed (Nix
    quotes its configuration back, in errors too), workflow commands neutralised."""
    return neutral(_redactor().text(text))


# What the live account has printed in this run (main empties it): its last lines leave out
# an error, warning or note already said, so that each is said once.
_SAID: set[str] = set()


def _said(text: str) -> None:
    # The engine says what one read of Nix's log brought in one text, a line each.
    _SAID.add(text)
    _SAID.update(text.split("\n"))


def _say(text: str) -> None:
    # The live account goes to stderr; it quotes Nix, so never as a workflow command.
    _said(text)
    print(_shown(text), file=sys.stderr, flush=True)  # noqa: T201


def _live_say(live: LiveLine) -> Callable[[str], None]:
    """`_say` above a live status line."""

    def say(text: str) -> None:
        _said(text)
        live.say(_shown(text))

    return say


def _plan(args: argparse.Namespace) -> int:
    from nix_cache_action.plan_command import plan_command  # noqa: PLC0415 - see the imports above

    return plan_command(args, say=_say, redactor=_redactor())


def cancelled(argv: Sequence[str], signal_name: str) -> int:
    """A `build` cancelled before its run's own handlers were in place (the build start.py
    started is stopped by then): the report and summary say so."""
    from nix_cache_action.engine import INTERRUPTED  # noqa: PLC0415 - see the imports above

    message = INTERRUPTED.format(signal=signal_name)
    print(_shown(f"nix-cache-action: {message}"), file=sys.stderr)  # noqa: T201
    try:
        args = _parser().parse_args(argv)
    except UsageError:
        asked = _asked_report(argv)
        if asked is not None:
            _write(lambda: write_report(_stopped(message), asked), "report", asked)
    else:
        _emit(_stopped(message), args, quiet=True)
    return EXIT_INTERRUPTED


def _build(args: argparse.Namespace) -> int:
    from nix_cache_action.nix.probe import Probe  # noqa: PLC0415 - see the imports above
    from nix_cache_action.nix.process import Subprocesses  # noqa: PLC0415

    _check_targets(args)
    if args.verified is not None:
        # Read, then written back: refused now, not found unusable at the start and unwritable
        # at the end.
        refuse_directory(args.verified, "--verified", "verified.json")
    if args.skip_cached and args.verified is None:
        raise InputError("--skip-cached", SKIP_NEEDS_RECORD)
    for installable in args.installables:
        # argv of `nix build`: after `--`, an option would reach Nix as one.
        if installable.startswith("-"):
            raise InputError("installables", NIX_OPTION.format(value=installable))
    directory = args.directory
    if directory is not None and not directory.is_dir():
        raise InputError("--directory", f"{directory} is not a directory; pass an existing one")
    installables, leg = _leg(args)
    # Which Nix this is is asked now, if start.py has not asked it already of this very Nix in
    # this very directory: the answer comes while the engine is imported.
    probe = args.probe
    if probe is None or not probe.asks(args.nix, directory):
        if probe is not None:
            probe.close()  # its early build, if any, is of the wrong Nix or directory
        probe = Probe(args.nix, Subprocesses(cwd=directory))
    from nix_cache_action import start  # noqa: PLC0415
    from nix_cache_action.engine import BuildOptions, run_job  # noqa: PLC0415
    from nix_cache_action.render.live import LiveLine  # noqa: PLC0415

    options = BuildOptions(
        installables=installables,
        reproducibility=args.reproducibility,
        deep=args.deep,
        keep_going=args.keep_going,
        fallback=args.fallback,
        verified=args.verified,
        recheck=args.recheck,
        skip_cached=args.skip_cached,
        budgets=_budgets(args),
        baseline=_baseline(args),
        baseline_source="" if args.baseline is None else str(args.baseline),
    )
    # On a terminal, one live status line under the account; plain lines anywhere else.
    live = LiveLine(sys.stderr) if sys.stderr.isatty() else None
    try:
        report, status = run_job(
            options,
            probe.nix,
            log_path=args.log,
            say=_say if live is None else _live_say(live),
            progress=live.update if live is not None else None,
            on_signals=start.drop_signals,
        )
    finally:
        if live is not None:
            live.close()
    if directory is not None:
        report = records.replace(report, working_directory=str(directory))
    report = records.replace(report, leg=leg)
    # Whatever happened, the report and summary are written with what is known; a signal now
    # comes too late to change them (start.drop_signals, from the run's start).
    _emit(report, args)
    return status


def _analyze(args: argparse.Namespace) -> int:
    from nix_cache_action.ledger import Ledger  # noqa: PLC0415 - see the imports above
    from nix_cache_action.nix.derivations import read_derivations  # noqa: PLC0415
    from nix_cache_action.report import Run  # noqa: PLC0415
    from nix_cache_action.why import explain_misses  # noqa: PLC0415

    _check_targets(args)
    ledger = Ledger(run="analyze")
    if args.log == "-":
        if sys.stdin is None or _closed(sys.stdin):
            raise InputError("log", STDIN_CLOSED)
        stream: IO[bytes] = sys.stdin.buffer
        source = "standard input"
    else:
        path = Path(args.log)
        if not path.is_file():
            raise InputError("log", f"{path} is not a readable file; pass a log file or -")
        # Read a MiB at a time: a million-line log is read in a third less time than with
        # the default 8 KiB (benchmarks/parse.py).
        stream = path.open("rb", buffering=1 << 20)
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
    # Where the log was recorded on this machine, its derivations are still in the store: the
    # root causes come from their files (no Nix is run for a log).
    report = explain_misses(report, lambda drvs: read_derivations(drvs) or {})
    report = _gated(report, args)
    _emit(report, args)
    return report.exit_status()


def _analyze_notes(ledger: Ledger, source: str) -> tuple[str, ...]:
    """What a recorded log leaves unknown or unread."""
    from nix_cache_action.render.format import count  # noqa: PLC0415 - see the imports above

    notes = []
    if ledger.ends_cut:
        notes.append(CUT.format(source=source))
    elif ledger.incomplete:
        notes.append(INCOMPLETE.format(source=source, count=ledger.open_activities))
    unconfirmed = ledger.unconfirmed_builds()
    if unconfirmed:
        what = "an interrupted run" if ledger.messages.interrupted else "a failed build"
        builds = count(unconfirmed, "other build")
        notes.append(UNCONFIRMED.format(source=source, what=what, builds=builds))
    if ledger.plain_lines:
        notes.append(
            f"{ledger.plain_lines} lines of {source} were not @nix records "
            "(kept as text, not counted)"
        )
    unfinished = ledger.unfinished_substitutions()
    if unfinished:
        notes.append(f"{len(unfinished)} substitutions had not finished when the log ended")
    return tuple(notes)


def _leg(args: argparse.Namespace) -> tuple[tuple[str, ...], LegInfo | None]:
    """The installables to build and the leg this run is, from --plan and --leg."""
    if args.plan is None:
        leg = None if args.leg is None else LegInfo(id=args.leg)
        return tuple(args.installables), leg
    if args.leg is None:
        raise InputError("--leg", "--plan needs --leg: name the leg of the plan to build")
    plan = _read_plan(args.plan)
    planned = plan.leg(args.leg)
    if planned is None:
        legs = ", ".join(leg.id for leg in plan.legs) or "none"
        raise InputError("--leg", f"{args.leg!r} is not a leg of {args.plan} (its legs: {legs})")
    return planned.installables, LegInfo(planned.id, planned.system, planned.runner)


def _read_plan(path: Path) -> Plan:
    from nix_cache_action.plan_command import PlanFileError, read_plan  # noqa: PLC0415

    try:
        return read_plan(path)
    except PlanFileError as error:
        raise InputError("--plan", str(error)) from error


def _aggregate(args: argparse.Namespace) -> int:
    from nix_cache_action.aggregate import aggregate  # noqa: PLC0415 - see the imports above
    from nix_cache_action.leg_reports import collect_leg_reports  # noqa: PLC0415

    _check_targets(args)
    if args.junit is not None:
        check_target(args.junit, "--junit", "junit.xml")
    plan = None if args.plan is None else _read_plan(args.plan)
    legs, unreadable = collect_leg_reports(args.reports)
    report = aggregate(plan, legs)
    report = records.replace(report, notes=(*report.notes, *unreadable))
    report = _gated(report, args)
    _emit(report, args)
    if args.junit is not None:
        from nix_cache_action.render.junit import render_junit  # noqa: PLC0415

        junit = render_junit(report)
        _write(lambda: write_text(args.junit, junit), "JUnit file", args.junit)
    return report.exit_status()


def _merge(args: argparse.Namespace) -> int:
    _check_targets(args)
    reports = [_read_report(path) for path in args.reports]
    merged = _gated(merge(reports), args)
    _emit(merged, args)
    return merged.exit_status()


def _read_report(path: Path, option: str = "reports") -> Report:
    """A report another run wrote, refused with the field that is wrong."""
    try:
        return read_report(path)
    except ReportFileError as exc:
        raise InputError(option, str(exc)) from exc


def _write(write: Callable[[], None], what: str, path: Path) -> None:
    """A file that cannot be written is a warning: the verdict is what the exit status says."""
    try:
        write()
    except OSError as exc:
        warning = UNWRITABLE.format(what=what, path=path, error=exc.strerror or exc)
        print(_shown(warning), file=sys.stderr)  # noqa: T201


def _emit(
    report: Report, args: argparse.Namespace, *, quiet: bool = False, refused: str | None = None
) -> None:
    # Nix quotes its configuration back (a malformed access-tokens line, say).
    report = _redactor().report(report)
    if args.report is not None and refused != "--report":
        _write(lambda: write_report(report, args.report), "report", args.report)
    if args.summary is not None and refused != "--summary":
        # Imported here: only --summary needs it, and it is a tenth of every run's import time.
        from nix_cache_action.render.summary import render_summary  # noqa: PLC0415

        summary = render_summary(report)
        _write(lambda: write_text(args.summary, summary), "summary", args.summary)
    if args.json:
        print(neutral_json(json.dumps(report.to_json(), indent=2)))  # noqa: T201 - redacted above
    elif not quiet:
        from nix_cache_action.render.terminal import render_terminal  # noqa: PLC0415

        _say(render_terminal(report, said=frozenset(_SAID)))


def _closed(stream: TextIO) -> bool:
    try:
        os.fstat(stream.fileno())
    except (OSError, ValueError):
        return True
    return False


def _is_pipe(stream: IO[bytes]) -> bool:
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(stream.fileno())


if __name__ == "__main__":
    sys.exit(main())
