"""The command line's entry point (`nix-cache-action`, `python -m nix_cache_action`).

A `build` first asks Nix which it is (nix/probe.py) and, where its command line leaves no
doubt about the first `nix build`, starts that too; then it imports the rest of the CLI while
Nix answers and evaluates. Done one after the other, the imports and the version were a fifth
of a warm run (benchmarks/startup.py). Only what decides those two commands is read here, from
the command line as given; cli.main reads it all, asks again if this reading was wrong about
the executable or the directory (an abbreviated option, say), and the engine takes the early
build only if it runs the very same one (`Subprocesses.stream`), else it is stopped.
"""

from __future__ import annotations

import os
import signal
import sys

# Not `typing.TYPE_CHECKING`: importing typing (and contextlib) took 3 to 5 ms before the
# build could start; the rest of the CLI imports them later, while Nix evaluates.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from nix_cache_action.nix.probe import Probe

# What start.py reads of a `build` command line. Options with a value, and flags, that leave the
# first `nix build` as it is or set it as said; anything else (an abbreviation, --plan, --leg,
# --skip-cached, --baseline, a budget, `--`) and the build starts where it always does, once
# the whole command line has been read.
_VALUED = frozenset(
    {
        "--nix",
        "-C",
        "--directory",
        "--report",
        "--summary",
        "--log",
        "--verified",
        "--reproducibility",
    }
)
_FLAGS = frozenset({"--deep", "--recheck", "--debug", "--json"})
_TOGGLES = {
    "--keep-going": ("keep_going", True),
    "--no-keep-going": ("keep_going", False),
    "--fallback": ("fallback", True),
    "--no-fallback": ("fallback", False),
}
# Files the CLI writes or reads, refused if a directory; the log has a default.
_FILES = ("--report", "--summary", "--log", "--verified")
DEFAULT_LOG = "nix-cache-action.log"
DEFAULT_INSTALLABLE = ".#default"
MODES = ("fail", "warn", "off")  # --reproducibility's (report.MODES; a test keeps them equal)


def entry() -> NoReturn:
    """The console script and `python -m nix_cache_action`: `main`, then an exit that skips
    the interpreter's teardown. Freeing every module and object took 8 to 17 ms after the
    report was written, a tenth of a warm run's budget; by then every file is closed, every
    thread is a daemon, and every Nix command the run waited for has ended (one it did not
    wait for, such as a query of a run that stopped early, ends by itself). An exception, or
    the SystemExit of `--help`, leaves the usual way."""
    status = main()
    import contextlib  # noqa: PLC0415 - imported by the CLI by now

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(status)


def main() -> int:
    argv = sys.argv[1:]
    INTERRUPTED_BY.clear()
    _DROPPING.clear()
    # While the probe and the build start, a signal waits: raised inside Popen it would leave
    # the process started and nobody to stop it.
    received: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: received.append(signum))
    probe = None
    try:
        try:
            probe = early_probe(argv)
        finally:
            # Until a run's own handlers are in place, SIGTERM (a cancelled job) is SIGINT's
            # KeyboardInterrupt, its name noted: a `build` then writes its report as stopped
            # (`_interrupted`), and the build started early is stopped (it runs in its own
            # session) through the `finally` below, where by default this process would die
            # at once. Swapped inside the outer `try`, so that a signal right after the swap
            # is handled as one later.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, _interrupt)
        if received:
            INTERRUPTED_BY.extend(signal.Signals(signum).name for signum in received)
            return _interrupted(argv, probe)
        from nix_cache_action.cli import main as run  # noqa: PLC0415 - after the probe started

        return run(argv, probe=probe)
    except KeyboardInterrupt:
        return _interrupted(argv, probe)
    finally:
        if probe is not None:
            probe.close()


# The signals that interrupted this process before a run's own handlers were in place.
INTERRUPTED_BY: list[str] = []
# Set once signals outside a run's own handlers are dropped (`drop_signals`).
_DROPPING: list[bool] = []


def drop_signals() -> None:
    """From here on, SIGINT and SIGTERM outside a run's own handlers are dropped. Called by a
    run as its handlers take over (a signal after them comes as the run ends, when what is
    left is writing its report, which must not be replaced by one that says only
    "cancelled"), and before a cancelled build writes its report (GitHub follows its SIGINT
    with a SIGTERM): the process ends right after either."""
    _DROPPING.append(True)


def _interrupt(signum: int, _frame: object) -> None:
    if _DROPPING:
        return
    INTERRUPTED_BY.append(signal.Signals(signum).name)
    raise KeyboardInterrupt


def _interrupted(argv: Sequence[str], probe: Probe | None) -> int:
    """A signal before a run's own handlers were in place: a `build` stops the build started
    early and writes its report as cancelled; any other command says so in a line, not a
    traceback."""
    drop_signals()
    if probe is not None:
        probe.close()
    if argv[:1] == ["build"]:
        from nix_cache_action.cli import cancelled  # noqa: PLC0415 - imported again if cut

        return cancelled(argv, INTERRUPTED_BY[0] if INTERRUPTED_BY else "SIGINT")
    from nix_cache_action.errors import EXIT_INTERRUPTED  # noqa: PLC0415 - only when it happens

    print("nix-cache-action: interrupted", file=sys.stderr)  # noqa: T201
    return EXIT_INTERRUPTED


def early_probe(argv: Sequence[str]) -> Probe | None:
    """The probe of the Nix a `build` command line names, started, with the build started
    beside it where `early_build` can say which; None for anything else."""
    if not argv or argv[0] != "build" or "-h" in argv or "--help" in argv:
        return None
    reading = _read(argv[1:])
    directory = reading.directory
    if directory is not None and not os.path.isdir(directory):  # noqa: PTH112 - no pathlib yet
        return None  # refused by cli.main, with its message
    import time  # noqa: PLC0415 - only a build asks

    from nix_cache_action.nix.probe import Probe, build_argv  # noqa: PLC0415
    from nix_cache_action.nix.spawn import spawn_streamed  # noqa: PLC0415

    build = _certain_build(reading)
    early = None
    if build is not None:
        installable, keep_going, fallback = build
        # Started first, before the rest of the Nix modules are imported: it is the longest,
        # and the version is asked while it evaluates.
        argv_of_build = build_argv(
            reading.executable, [installable], keep_going=keep_going, fallback=fallback
        )
        started = time.monotonic()  # Subprocesses' clock
        try:
            early = spawn_streamed(argv_of_build, os.environ, cwd=directory)
        except (OSError, ValueError):
            early = None  # left to the run's own build to fail on, with its message
    runner = None
    try:
        from nix_cache_action.nix.process import Subprocesses  # noqa: PLC0415

        runner = Subprocesses(cwd=directory)
        if early is not None:
            proc, early = early, None  # the runner's now: it stops it if it must
            runner.take_early(argv_of_build, proc, started)
        return Probe(reading.executable, runner)
    except BaseException:
        # An error meanwhile: the build is not left running, unowned.
        if early is not None:
            from nix_cache_action.nix.process import stop  # noqa: PLC0415 - when it happens

            stop(early)
        elif runner is not None:
            runner.discard_early()
        raise


def early_build(argv: Sequence[str]) -> tuple[str, bool, bool] | None:
    """The installable, --keep-going and --fallback of a `build` whose first Nix command is
    certainly `nix build` of that installable, read as argparse reads them; None when the
    command line holds anything else, or anything the CLI could refuse before building."""
    if not argv or argv[0] != "build":
        return None
    return _certain_build(_read(argv[1:]))


class _Reading:
    """What start.py reads of a `build` command line (the words after `build`)."""

    def __init__(self) -> None:
        self.executable = os.environ.get("NIX_CACHE_ACTION_NIX", "nix")
        self.directory: str | None = None
        self.installables: list[str] = []
        self.values: dict[str, str] = {}
        self.toggles = {"keep_going": True, "fallback": True}
        # Every word read as argparse reads it, and none that start.py does not know.
        self.certain = True

    def take(self, name: str, value: str | None) -> None:
        """An option's value (None: the command line ended before it)."""
        if name == "--nix" and value is not None:
            self.executable = value
        elif name in ("-C", "--directory"):
            self.directory = value
        if value is not None:
            self.values[name] = value


def _read(words: Sequence[str]) -> _Reading:
    """The executable and the directory, whatever else the command line holds (cli.main asks
    again if this reading was wrong); the rest as far as start.py knows the words."""
    reading = _Reading()
    rest = iter(words)
    for word in rest:
        if word == "--":
            reading.certain = False
            break
        if not word.startswith("-"):
            reading.installables.append(word)
            continue
        name, equals, value = word.partition("=")
        if word.startswith("-C") and len(word) > 2 and word[2] != "=":
            name, equals, value = "-C", "=", word[2:]  # -Cdir, as argparse reads it
        if name in _VALUED:
            taken = value if equals else next(rest, None)
            if taken is None or (not equals and taken.startswith("-")):
                reading.certain = False  # argparse's to refuse
            reading.take(name, taken)
        elif word in _TOGGLES:
            key, on = _TOGGLES[word]
            reading.toggles[key] = on
        elif word not in _FLAGS:
            reading.certain = False
    return reading


def _certain_build(reading: _Reading) -> tuple[str, bool, bool] | None:
    """`early_build` of what `_read` read."""
    values = dict(reading.values)
    # More than one installable: each is evaluated on its own before anything is built.
    if (
        not reading.certain
        or len(reading.installables) > 1
        or values.get("--reproducibility", "fail") not in MODES
    ):
        return None
    values.setdefault("--log", DEFAULT_LOG)
    if not all(_writable(values[option]) for option in _FILES if option in values):
        return None
    installable = reading.installables[0] if reading.installables else DEFAULT_INSTALLABLE
    return installable, reading.toggles["keep_going"], reading.toggles["fallback"]


def _writable(path: str) -> bool:
    """Certainly taken by cli.main: not a directory, in a directory that exists."""
    parent = os.path.dirname(os.path.abspath(path))  # noqa: PTH100, PTH120 - no pathlib yet
    return not os.path.isdir(path) and os.path.isdir(parent)  # noqa: PTH112
