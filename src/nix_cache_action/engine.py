"""The build job: evaluate, build, rebuild to check, and collect everything into a Report.

`run_job` is the one way to run it, for the CLI and the action alike: it returns the Report and
the exit status, and it has the one rule for a run that cannot finish (no usable Nix, an
interruption, anything unexpected): the Session keeps what was known, the report says why the
run stopped, and the verdict is `failed`.
"""

from __future__ import annotations

import contextlib
import signal as signals
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Generic, TypeVar

from nix_cache_action import debug
from nix_cache_action.baseline import compare
from nix_cache_action.budgets import judged
from nix_cache_action.errors import EXIT_FAILED, EXIT_INTERRUPTED, NixCacheActionError, NixError
from nix_cache_action.ledger import Ledger, RunProgress
from nix_cache_action.limits import cut
from nix_cache_action.nix.commands import (
    TIMEOUT_QUERY_SECONDS,
    Built,
    Nix,
    PathInfo,
    substituters_in,
)
from nix_cache_action.nix.events import (
    ActivityStarted,
    ActivityType,
    BuildStarted,
    Event,
    Message,
    SubstituteStarted,
)
from nix_cache_action.nix.process import Interrupted, Streamed, Tee, sigterm_interrupts
from nix_cache_action.records import field, record, replace
from nix_cache_action.report import (
    Budgets,
    Check,
    Installable,
    Mode,
    NixInfo,
    Phases,
    Report,
    Run,
    cache_key,
    substituter_name,
    sum_maps,
)
from nix_cache_action.reproducibility import (
    BUILD_FAILED,
    REBUILD_CUT_SHORT,
    REPRODUCIBILITY_OFF,
    deep_checks,
    explain,
    not_checked,
    top_level_checks,
)
from nix_cache_action.store_path import output_name, store_name
from nix_cache_action.verification import VerificationRecord, Where, load_record
from nix_cache_action.why import explain_misses, misses, reckon, with_changes, with_why

if TYPE_CHECKING:
    from nix_cache_action.report import Build, RunLabel, Why


Say = Callable[[str], None]
# A streamed command gives its stream, or (a build) the stream and the outputs it built.
S = TypeVar("S", Built, Streamed)
# How long a run that stops during its build waits for Nix's settings, asked before it began.
SETTINGS_WAIT_SECONDS = 2.0
T = TypeVar("T")


class _Soon(Generic[T]):
    """A value made on another thread while this one waits on Nix; what making it raised is
    raised where it is taken."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(make,), daemon=True)
        self._thread.start()

    def _run(self, make: Callable[[], T]) -> None:
        try:
            self._value = make()
        except BaseException as error:  # noqa: BLE001 - taken, and raised, by result()
            self._error = error

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value] # set when no error was raised


# Nix's evaluation errors name the problem but not the fix; these add it for the common ones.
EVAL_FIXES = (
    (
        "does not provide attribute",
        "Check the attribute's name: `nix flake show` lists what the flake provides.",
    ),
    (
        "could not find a flake.nix file",
        (
            "Run in the directory that holds flake.nix, or name the flake's directory in the "
            "installable (path/to/flake#package)."
        ),
    ),
)
NOT_BUILT = "not built: the run stopped before this installable was built"
NO_OTHER_BUILDS = "deep check: no other derivation was built here"
STEP_INTERRUPTED = "the {label} step was interrupted; Nix was stopped"
STEP_FAILED = "the {label} step stopped on an error; Nix was stopped"
INTERRUPTED = (
    "The run was cancelled ({signal}); Nix was stopped. The report and summary hold what was"
    " known by then; run again for a verdict."
)
UNEXPECTED = (
    "nix-cache-action stopped on an unexpected error ({kind}: {error}); the report holds what"
    " was known by then. Run again, and report the error if it stays."
)
REBUILD_KILLED = "the rebuild did not finish ({how}), so nothing was compared"
REBUILD_REFUSED = "Nix refused the rebuild ({error}), so nothing was compared"
RETRY = (
    "Nix gave up on the build when {caches} answered with an error; building once more without it"
)
PLAIN_LINES = (
    "{count} lines of Nix's log in the {label} step were not @nix records (kept as text, not"
    " counted)"
)
BUILD_KILLED = (
    "nix was killed by signal {signal} during the build: nothing it reported can be trusted as"
    " finished. Look for the cause (memory, a timeout, another process) and run again"
)
NO_NAR_HASH = "nix path-info gave no NAR hash for {outputs} Nix had built: their hashes are unknown"
BUILD_JSON_UNREADABLE = (
    "nix build --json succeeded, but {why}: the outputs were asked for one installable at a time"
)
OUTPUTS_UNKNOWN = (
    "its outputs are unknown: nix build --json succeeded, but {why}, and Nix named none when"
    " asked for them alone"
)
CACHED_VERIFIED = "in a cache and verified {when}: not downloaded, not rebuilt"
# How often a live status line hears of the run (it reads the whole ledger each time).
PROGRESS_SECONDS = 0.25
# A line this often while builds run, naming at most this many of them.
HEARTBEAT_SECONDS = 30.0
HEARTBEAT_NAMES = 5
VERIFIED_BEFORE = "verified {when}, not rebuilt"
RECORD_UNWRITABLE = "the verification record could not be written to {path} ({error})"
LOG_UNWRITABLE = "the raw Nix log could not be written to {path} ({error}); it was not kept"
LOG_STOPPED = (
    "the raw Nix log stopped being written to {path} ({error}); it ends there, and the build"
    " went on"
)


@record
class BuildOptions:
    installables: tuple[str, ...]
    reproducibility: Mode = "fail"
    deep: bool = False
    keep_going: bool = True
    fallback: bool = True  # build what a cache fails to deliver (`--fallback`)
    # The verification record (verification.py): outputs it holds as reproducible, with the
    # same NAR hash, are not rebuilt; what this run checks is written back. None: no record.
    verified: Path | None = None
    recheck: bool = False  # rebuild every output, whatever the record says
    # Installables all of whose outputs are in a configured cache and verified in the record
    # are neither built nor downloaded (nix-fast-build's --skip-cached).
    skip_cached: bool = False
    where: Where = field(default_factory=Where)  # the commit and run, for the record
    budgets: Budgets = field(default_factory=Budgets)
    baseline: Report | None = None  # an earlier run's report, compared with at the end
    baseline_source: str = ""


@record(frozen=False)
class Session:
    """What is known so far; `report()` is valid at every moment."""

    options: BuildOptions
    nix: NixInfo = field(default_factory=NixInfo)
    installables: dict[str, Installable] = field(default_factory=dict)
    ledgers: list[Ledger] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    evaluation_seconds: float | None = None
    check_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    # Errors that stopped the whole run (no usable Nix, ...): they fail the verdict.
    errors: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the run ended early
    outputs_by_drv: dict[str, list[str]] = field(default_factory=dict)
    configured: list[str] = field(default_factory=list)  # the substituters Nix is set to ask
    system: str | None = None  # Nix's `system`, for the verification record
    record: VerificationRecord = field(default_factory=VerificationRecord)
    # The misses' root causes, reckoned while the check's rebuild runs (see BuildJob.run).
    reckoning: tuple[list[str], _Soon[Why | str]] | None = None

    def explained(self, report: Report, nix: Nix) -> Report:
        """`report` with the root causes of its misses: those reckoned during the rebuild,
        where the misses are the same."""
        missed = misses(report.builds)
        if self.reckoning is not None and self.reckoning[0] == missed:
            return with_why(report, self.reckoning[1].result())
        return explain_misses(report, nix.derivations)

    def stop(self, why: str) -> None:
        why = cut(why)  # an exception's text may quote anything
        self.stopped = why
        self.errors.append(why)

    def builds(self) -> list[Build]:
        """Every build of every run so far, with the outputs each installable gave."""
        return [b for ledger in self.ledgers for b in ledger.builds(self.outputs_by_drv)]

    def report(self) -> Report:
        builds = self.builds()
        substitutions = []
        cache_errors = []
        errors: list[str] = []
        warnings: list[str] = []
        queried: dict[str, set[str]] = {}
        phases = Phases(evaluation=self.evaluation_seconds, check=self.check_seconds)
        for ledger in self.ledgers:
            substitutions.extend(ledger.substitutions())
            cache_errors.extend(ledger.cache_errors)
            errors.extend(ledger.failure_errors)
            warnings.extend(ledger.messages.warnings)
            # Distinct paths over all runs: the check run asks again about the same ones.
            for url, paths in ledger.queried_paths.items():
                queried.setdefault(url, set()).update(paths)
            if ledger.run in ("build", "retry"):
                own = ledger.phases()
                phases = replace(
                    phases,
                    evaluation=_add(phases.evaluation, own.evaluation),
                    download=_add(phases.download, own.download),
                    build=_add(phases.build, own.build),
                    cache_wait=_add(phases.cache_wait, own.cache_wait),
                    cache_query=_add(phases.cache_query, own.cache_query),
                )
        installables = [
            # Still "built" without outputs: the build step never finished (interrupted).
            replace(item, status="failed", error=item.error or NOT_BUILT)
            if item.status == "built" and not item.outputs
            else item
            for item in self.installables.values()
        ]
        evaluation_errors = [i.error for i in installables if i.status == "error" and i.error]
        # The build of a single installable reports its evaluation error too; say it once.
        errors = [e for e in errors if not any(_first_line(e) in x for x in evaluation_errors)]
        errors.extend(evaluation_errors)
        errors.extend(self.errors)
        return Report(
            substitutions=tuple(substitutions),
            builds=tuple(builds),
            checks=tuple(self.checks),
            installables=tuple(installables),
            cache_errors=tuple(cache_errors),
            runs=tuple(self.runs),
            phases=phases,
            nix=self.nix,
            reproducibility_mode=self.options.reproducibility,
            queried={url: len(paths) for url, paths in queried.items()},
            errors=tuple(dict.fromkeys(errors)),
            warnings=tuple(dict.fromkeys(warnings)),
            stopped=self.stopped,
            notes=tuple(cut(note) for note in self.notes),
            configured_substituters=tuple(self.configured),
            seconds_lost=sum_maps([ledger.seconds_lost() for ledger in self.ledgers]),
            # A run stopped on purpose says so in `stopped`; this is Nix ending mid-run.
            incomplete=self.stopped is None
            and any(ledger.incomplete and not ledger.superseded for ledger in self.ledgers),
        )


def run_job(  # noqa: PLR0913 - the job, its Nix, and where its words go
    options: BuildOptions,
    open_nix: Callable[[], Nix],
    *,
    log_path: Path | None,
    say: Say,
    env: Mapping[str, str] | None = None,
    progress: Callable[[RunProgress, float], None] | None = None,
    on_signals: Callable[[], None] = lambda: None,
) -> tuple[Report, int]:
    """Run the whole job; the exit status follows the report unless the run was cut short.

    `open_nix` probes Nix (so a missing Nix is a stopped run like any other); `env` is what
    diffoscope runs with; `progress` hears where each Nix run stands, a few times a second (a
    live status line); `on_signals` is called once SIGTERM and SIGINT are the run's own.
    """
    session = Session(options)
    status: int | None = None
    clock: Callable[[], float] | None = None
    started = 0.0
    nix: Nix | None = None
    if options.verified is not None:
        session.record, warning = load_record(options.verified)
        if warning is not None:
            session.notes.append(warning)
            say(f"nix-cache-action: warning: {warning}")
    with sigterm_interrupts():
        try:
            on_signals()
            nix = open_nix()
            clock, started = nix.clock, nix.clock()
            # A build started early (start.py) is part of the run from its start.
            early = nix.runner.early_start()
            started = started if early is None else min(started, early)
            with _open_log(log_path, session) as raw_log:
                BuildJob(nix, session, raw_log=raw_log, say=say, env=env, progress=progress).run()
        except Interrupted as signal:
            session.stop(INTERRUPTED.format(signal=signal))
            say(f"nix-cache-action: {session.stopped}")
            status = EXIT_INTERRUPTED
        except NixCacheActionError as error:
            session.stop(str(error))
            say(f"nix-cache-action: {error}")
            status = EXIT_FAILED
        except Exception as error:  # noqa: BLE001 - the report says the run stopped
            # Never a verdict of `ok` after an error nobody foresaw: the run is stopped. The
            # traceback is for whoever debugs it (RUNNER_DEBUG=1, --debug), not for every log.
            debug.traceback("unexpected error", error)
            session.stop(UNEXPECTED.format(kind=type(error).__name__, error=error))
            say(f"nix-cache-action: {session.stopped}")
            status = EXIT_FAILED
    report = session.report()
    if clock is not None:
        report = replace(report, seconds=round(clock() - started, 3))
    if nix is not None and status != EXIT_INTERRUPTED:
        report = session.explained(report, nix)
    report = finish(report, options)
    if options.verified is not None:
        problem = _save_record(session, report, options)
        if problem is not None:
            say(f"nix-cache-action: warning: {problem}")
            report = replace(report, notes=(*report.notes, problem))
    return report, report.exit_status() if status is None else status


def finish(report: Report, options: BuildOptions) -> Report:
    """The comparison with the baseline and the budgets, on the report as it stands."""
    if options.baseline is not None:
        report = replace(
            report, baseline=compare(report, options.baseline, options.baseline_source)
        )
        report = with_changes(report, options.baseline)
    return judged(report, options.budgets)


def _save_record(session: Session, report: Report, options: BuildOptions) -> str | None:
    """What this run checked, added to the record: also after a failure or a cancellation,
    since every verdict in the report was measured. What went wrong, if the record could not
    be written."""
    assert options.verified is not None  # noqa: S101 - the caller checked
    where = replace(options.where, nix=report.nix.text, system=session.system)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        session.record.with_checks(report.checks, where, now).save(options.verified)
    except OSError as error:
        return RECORD_UNWRITABLE.format(path=options.verified, error=error.strerror or error)
    return None


@contextlib.contextmanager
def _open_log(path: Path | None, session: Session) -> Iterator[IO[bytes] | None]:
    """The raw log's file, or None when there is none; closing it never fails the run."""
    if path is None:
        yield None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("wb")
    except OSError as error:
        session.notes.append(LOG_UNWRITABLE.format(path=path, error=error.strerror or error))
        yield None
        return
    try:
        yield handle
    finally:
        with contextlib.suppress(OSError):  # a full disk: the tee said so already
            handle.close()


def _locked(say: Say) -> Say:
    """`say` for two threads (the run and its heartbeat): one line at a time."""
    lock = threading.Lock()

    def locked(text: str) -> None:
        with lock:
            say(text)

    return locked


class Heartbeat:
    """While Nix runs, a line every HEARTBEAT_SECONDS naming the builds still running and for
    how long: a long build prints nothing for minutes, and a silent log looks like a hung job.
    The line comes from a thread of its own; `say` is the same lock-guarded writer the run
    uses, so lines never interleave."""

    def __init__(self, ledger: Ledger, say: Say, clock: Callable[[], float]) -> None:
        self._ledger = ledger
        self._say = say
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> None:
        self._started = self._clock()
        self._thread.start()

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                running = self._ledger.progress().running
            except RuntimeError:  # the log moved on while it was read: next time
                continue
            if running:
                minutes, seconds = divmod(round(max(0.0, self._clock() - self._started)), 60)
                elapsed = f"{minutes} min {seconds:02d} s"
                names = ", ".join(running[:HEARTBEAT_NAMES])
                more = len(running) - HEARTBEAT_NAMES
                self._say(
                    f"  still building ({elapsed} in): {names}"
                    + (f" and {more} more" if more > 0 else "")
                )


class BuildJob:
    """One run of the job: Nix, what is known so far, where the raw log goes, and the live
    account (`say`). Each step fills the session, so an exception leaves it holding what was
    known."""

    def __init__(  # noqa: PLR0913 - each is optional but the first two
        self,
        nix: Nix,
        session: Session,
        *,
        raw_log: IO[bytes] | None = None,
        say: Say = print,
        env: Mapping[str, str] | None = None,
        progress: Callable[[RunProgress, float], None] | None = None,
    ) -> None:
        self.nix = nix
        self.session = session
        self.raw_log = raw_log
        self.say = _locked(say)
        self.env = env
        self.progress = progress
        self._rebuild_here = False
        self._progress_at = float("-inf")
        # Nix's errors from before it realises anything, in a build of one installable not
        # evaluated on its own: said once Nix goes on to realise (a cache's error while Nix
        # asks it), or after the build, unless the installable's own error is said instead
        # (it says the same, with the installable's name and the fix; `_build`).
        self._holding = False
        self._held: list[str] = []
        # The build's log has not yet shown the store open (`_start_ahead`).
        self._ahead = False

    @property
    def options(self) -> BuildOptions:
        return self.session.options

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.nix.close()

    def _run(self) -> None:
        session, nix = self.session, self.nix
        session.nix = nix.version.info()
        self.say(f"nix-cache-action: {nix.version.text}")
        # Nix's settings are asked now and read once the build has started (`_settings`):
        # nothing before the build needs them but --skip-cached, which asks the caches.
        nix.start_config()
        if self.options.skip_cached:
            self._settings()
        good = self._evaluate_all()
        if good and self.options.skip_cached and not self.options.recheck:
            good = self._skip_cached(good)
        if not good:
            return
        build_ledger = self._build(good)
        # The misses' root causes are reckoned on another thread while Nix rebuilds: reading
        # and fingerprinting 200 .drv files would otherwise add about 25 ms after it.
        missed = misses(session.builds())
        if missed:
            session.reckoning = (missed, _Soon(lambda: reckon(missed, nix.derivations)))
        if self.options.reproducibility == "off":
            session.checks.extend(
                not_checked(i, REPRODUCIBILITY_OFF, output=name, path=out, run="build")
                for i in session.installables.values()
                if i.status == "built"
                for name, out in i.outputs.items()
            )
            return
        session.checks.extend(
            not_checked(i, BUILD_FAILED)
            for i in session.installables.values()
            if i.status == "failed"
        )
        built = [i for i in session.installables.values() if i.status == "built"]
        if built:
            self._check(build_ledger, built)
            if self.options.deep:
                self._deep_check(build_ledger, built)

    # --- 1. evaluate --------------------------------------------------------------------------

    def _evaluate_all(self) -> list[str]:
        """Each installable on its own, so an error names it and does not stop the others.

        A single installable needs no separate evaluation: the build evaluates it anyway, and a
        second evaluation is measurable overhead (benchmarks/overhead.py); only a failed build
        asks for it (in `_record_outputs`).
        """
        session = self.session
        names = self.options.installables
        if len(names) == 1 and not self.options.skip_cached:
            session.installables[names[0]] = Installable(name=names[0])
        else:
            started = self.nix.clock()
            for name in names:
                session.installables[name] = self._evaluate(name)
            session.evaluation_seconds = self.nix.clock() - started
        return [i.name for i in session.installables.values() if i.status != "error"]

    def _evaluate(self, name: str) -> Installable:
        evaluated = self.nix.evaluate(name)
        if evaluated.drv:
            return Installable(name=name, drv=evaluated.drv)
        error = f"{name}: {_with_fix(evaluated.error or '')}"
        # Said as the report has it, so that the CLI's last lines do not say it again.
        self.say(f"error: {error}")
        return Installable(name=name, status="error", error=error)

    def _skip_cached(self, names: list[str]) -> list[str]:
        """The installables still to build: not those all of whose outputs a configured cache
        holds with the NAR hash the record verified (asked of the caches, nothing fetched)."""
        session = self.session
        items = {name: session.installables[name] for name in names}
        outputs = self.nix.derivation_outputs([i.drv for i in items.values() if i.drv])
        paths = [p for outs in outputs.values() for p in outs.values()]
        found: dict[str, PathInfo] = {}
        for cache in session.configured:
            missing = [p for p in paths if p not in found]
            if not missing:
                break
            found.update(self.nix.path_info(missing, store=cache))
        rest = []
        for name, item in items.items():
            outs = outputs.get(item.drv or "", {})
            hashes = {o: found[p].nar_hash for o, p in outs.items() if p in found}
            earlier = {
                o: session.record.reproducible(item.drv or "", o, hashes.get(o)) for o in outs
            }
            verified = {o: v for o, v in earlier.items() if v is not None}
            if not outs or len(verified) < len(outs):
                rest.append(name)
                continue
            session.installables[name] = replace(
                item, status="cached", outputs=outs, nar_hashes=hashes
            )
            session.checks.extend(
                Check(
                    drv=item.drv or "",
                    output=o,
                    path=outs[o],
                    verdict="reproducible",
                    reason=CACHED_VERIFIED.format(when=v.when()),
                    nar_hash=hashes[o],
                    installable=name,
                    previously_verified=v,
                    run="build",
                )
                for o, v in verified.items()
            )
            self.say(f"  in a cache and verified before, not downloaded: {name}")
        return rest

    # --- 2. build -----------------------------------------------------------------------------

    def _settings(self, *, timeout: float = TIMEOUT_QUERY_SECONDS) -> None:
        """Nix's settings in force, from its answer (asked once, Nix.config): the caches it
        asks, its system, whether it builds anything here."""
        config = self.nix.config(timeout=timeout)
        session = self.session
        session.configured = substituters_in(config)
        system = config.get("system")
        session.system = system if isinstance(system, str) else None
        # Every build on remote builders: the check's rebuild runs here (see Nix.rebuild).
        self._rebuild_here = str(config.get("max-jobs")) == "0"

    def _build(self, names: list[str]) -> Ledger:
        self._holding = len(names) == 1 and self.session.installables[names[0]].drv is None
        try:
            return self._build_and_record(names)
        finally:
            held = self._take_held()
            if self.session.installables[names[0]].status != "error":
                for line in held:
                    self.say(line)

    def _take_held(self) -> list[str]:
        """The errors held back so far; none is held from here on."""
        held, self._held, self._holding = self._held, [], False
        return held

    def _build_and_record(self, names: list[str]) -> Ledger:
        try:
            ledger, built = self._build_once(names, "build")
        except BaseException:
            # A run stopped in its build still says which caches were configured; Nix
            # answered that long before (a cancelled job has seconds left, not minutes).
            with contextlib.suppress(Exception):
                self._settings(timeout=SETTINGS_WAIT_SECONDS)
            raise
        self._settings()
        runs = [ledger]
        failing = self._caches_nix_gave_up_on(ledger, built)
        if failing:
            # Nix 2.8 aborts the whole build on a cache's 418 (SubstituterDisabled), fallback
            # or not: once more without that cache, so that a failing cache never fails the run.
            rest = [c for c in self.session.configured if cache_key(c) not in failing]
            said = RETRY.format(caches=", ".join(sorted(failing)))
            self.say(f"nix-cache-action: {said}")
            self.session.notes.append(said)
            first = ledger
            ledger, built = self._build_once(names, "retry", substituters=rest, after=first)
            runs.append(ledger)
        killed = _killed_by(built.streamed.returncode)
        if killed is not None:
            # Killed (SIGKILL, SIGSEGV, an OOM killer): whatever the log says, no verdict of
            # it can stand. Nix 2.8's abort on a 418 was answered by the retry already.
            raise NixError(BUILD_KILLED.format(signal=_signal_name(killed)))
        self._record_outputs(ledger, built.outputs, names, unreadable=built.unreadable)
        self._fill_sizes(runs)
        return ledger

    def _fill_sizes(self, ledgers: Sequence[Ledger]) -> None:
        """The sizes of copies the log did not give (Nix 2.8 gives no NAR size, and ties a
        download to its copy only when one copy is open), from the narinfo of the cache that
        served them: one query per cache, none when the log said it all."""
        missing: dict[str, list[str]] = {}
        for ledger in ledgers:
            for cache, paths in ledger.missing_sizes().items():
                missing.setdefault(cache, []).extend(paths)
        sizes: dict[str, tuple[int | None, int | None]] = {}
        for cache, paths in missing.items():
            infos = self.nix.path_info(
                list(dict.fromkeys(paths)), store=cache, each_on_failure=False
            )
            sizes.update({p: (i.nar_size, i.download_size) for p, i in infos.items()})
        for ledger in ledgers:
            ledger.fill_sizes(sizes)

    def _build_once(
        self,
        names: list[str],
        label: RunLabel,
        substituters: list[str] | None = None,
        after: Ledger | None = None,
    ) -> tuple[Ledger, Built]:
        ledger = Ledger(run=label)
        if after is not None:
            ledger.after(after)
        options = self.options
        built: Built = self._stream(
            ledger,
            lambda tee: self.nix.build(
                names,
                keep_going=options.keep_going,
                fallback=options.fallback,
                tee=tee,
                substituters=substituters,
            ),
        )
        if built.unreadable is not None:
            self.session.notes.append(BUILD_JSON_UNREADABLE.format(why=built.unreadable))
        if built.streamed.returncode != 0:
            self._confirm_built(ledger)
        if ledger.cache_errors:
            self._confirm_fetched(ledger)
        return ledger, built

    def _caches_nix_gave_up_on(self, ledger: Ledger, built: Built) -> set[str]:
        """The caches to leave out of a second attempt: only when fallback is on, the run
        failed with nothing failing to build, and a configured cache answered with an error."""
        if not self.options.fallback or built.streamed.returncode in (0, None):
            return set()
        if any(b.status == "failed" for b in ledger.builds()):
            return set()
        configured = {cache_key(c) for c in self.session.configured}
        return {cache_key(e.substituter) for e in ledger.cache_errors} & configured

    def _confirm_fetched(self, ledger: Ledger) -> None:
        """After cache errors, ask the store which substitutions brought their path: a failed
        download that the log cannot tie to its path (Nix before 2.18 names no parents) still
        must not count as a hit."""
        fetched = ledger.fetched()
        valid = self.nix.path_info(fetched)
        ledger.confirm_unfetched(p for p in fetched if p not in valid)

    def _confirm_built(self, ledger: Ledger) -> None:
        """After a failed run, ask the store which of the builds the log shows finished really
        made their outputs: without --keep-going Nix stops the others when one fails, and
        their activities stop just as a finished build's do."""
        done = [b.drv for b in ledger.builds() if b.status == "built"]
        outputs = self.nix.derivation_outputs(done)
        valid = self.nix.path_info([p for paths in outputs.values() for p in paths.values()])
        ledger.confirm_unbuilt(
            drv for drv, paths in outputs.items() if any(p not in valid for p in paths.values())
        )

    def _record_outputs(
        self,
        ledger: Ledger,
        by_drv: dict[str, dict[str, str]],
        names: list[str],
        *,
        unreadable: str | None = None,
    ) -> None:
        session = self.session
        for name in names:
            item = session.installables[name]
            if item.drv is None:
                # Built without a separate evaluation (a single installable).
                item = (
                    replace(item, drv=next(iter(by_drv)))
                    if len(by_drv) == 1
                    else self._evaluate(name)
                )
                session.installables[name] = item
                if item.status == "error":
                    continue
            outputs = by_drv.get(item.drv or "")
            if outputs is None:
                # The build as a whole failed (--keep-going): ask for this installable alone,
                # which evaluates and checks validity but builds nothing.
                paths = self.nix.outputs_of(name)
                outputs = {output_name(item.drv or "", p): p for p in paths}
            if not outputs:
                # A build that succeeded with an answer that could not be used is not a failed
                # dependency: the reason is the answer.
                why = (
                    OUTPUTS_UNKNOWN.format(why=unreadable)
                    if unreadable is not None
                    and not any(b.status == "failed" for b in ledger.builds())
                    else _failure_reason(item, ledger)
                )
                session.installables[name] = replace(item, status="failed", error=why)
                continue
            session.outputs_by_drv[item.drv or ""] = list(outputs.values())
            session.installables[name] = replace(item, outputs=outputs)
        # Not the cached ones (--skip-cached): their hashes came from the cache, and their
        # outputs are not in this store.
        built = [i for i in session.installables.values() if i.status != "cached"]
        paths = [p for i in built for p in i.outputs.values()]
        infos = self.nix.path_info(paths)
        missing = [p for p in dict.fromkeys(paths) if p not in infos]
        if missing:
            unhashed = f"{len(missing)} output" + ("" if len(missing) == 1 else "s")
            session.notes.append(NO_NAR_HASH.format(outputs=unhashed))
        for name, item in list(session.installables.items()):
            if item.outputs and item.status != "cached":
                hashes = {o: infos[p].nar_hash for o, p in item.outputs.items() if p in infos}
                session.installables[name] = replace(item, nar_hashes=hashes)

    # --- 3. check -----------------------------------------------------------------------------

    def _check(self, build_ledger: Ledger, all_built: list[Installable]) -> None:
        """Rebuild the installables' own derivations and compare; not those the verification
        record already holds as reproducible, with these very NAR hashes."""
        verified, built = self._verified_before(build_ledger, all_built)
        self.session.checks.extend(verified)
        if not built:
            return
        check_ledger = Ledger(run="check")
        targets = [self.nix.rebuild_target(i.name, i.drv, sorted(i.outputs)) for i in built]
        try:
            streamed = self._rebuild(check_ledger, targets)
        except Interrupted:
            # Stopping comes first: what the rebuild showed is kept, nothing more is asked of
            # Nix or diffoscope.
            self.session.checks.extend(
                top_level_checks(build_ledger, check_ledger, built, cut_short=REBUILD_CUT_SHORT)
            )
            raise
        cut_short = _unfinished(streamed, check_ledger)
        self._explained(top_level_checks(build_ledger, check_ledger, built, cut_short=cut_short))

    def _verified_before(
        self, build_ledger: Ledger, built: list[Installable]
    ) -> tuple[list[Check], list[Installable]]:
        """The checks an earlier run made (an installable all of whose outputs the record holds
        as reproducible), and the installables still to rebuild."""
        if self.options.verified is None or self.options.recheck:
            return [], built
        record = self.session.record
        done: list[Check] = []
        rest: list[Installable] = []
        for item in built:
            earlier = {
                name: record.reproducible(item.drv or "", name, item.nar_hashes.get(name))
                for name in item.outputs
            }
            if not earlier or any(v is None for v in earlier.values()):
                rest.append(item)
                continue
            # The first copy is what this run got (from a cache, built, present), as for any check.
            for check in top_level_checks(build_ledger, Ledger(run="check"), [item]):
                found = earlier[check.output or ""]
                done.append(
                    replace(
                        check,
                        verdict="reproducible",
                        reason=VERIFIED_BEFORE.format(when=found.when() if found else "before"),
                        previously_verified=found,
                        run="build",
                    )
                )
            self.say(f"  verified before, not rebuilt: {item.name}")
        return done, rest

    def _deep_check(self, build_ledger: Ledger, built: list[Installable]) -> None:
        """Every other derivation this run built here."""
        tops = {i.drv for i in built}
        here = {b.drv for b in build_ledger.builds() if b.status == "built"}
        locally = sorted(here - tops)
        if not locally:
            self.session.notes.append(NO_OTHER_BUILDS)
            return
        ledger = Ledger(run="deep-check")
        self._rebuild(ledger, [self.nix.all_outputs(d) for d in locally])
        self._explained(deep_checks(self.nix, ledger))

    def _explained(self, checks: Sequence[Check]) -> None:
        """The verdicts go on record first; then each differing one gets diffoscope's account.
        A cancellation in the middle of diffoscope keeps every verdict."""
        start = len(self.session.checks)
        self.session.checks.extend(checks)
        for index, check in enumerate(checks):
            self.session.checks[start + index] = explain(self.nix, check, self.env)

    def _rebuild(self, ledger: Ledger, targets: Sequence[str]) -> Streamed:
        started = self.nix.clock()
        try:
            here = self._rebuild_here
            return self._stream(ledger, lambda tee: self.nix.rebuild(targets, tee, here=here))
        finally:
            seconds = self.nix.clock() - started
            self.session.check_seconds = _add(self.session.check_seconds, seconds)

    # --- streaming ----------------------------------------------------------------------------

    def _stream(self, ledger: Ledger, command: Callable[[Tee], S]) -> S:
        """Run one streamed Nix command into `ledger`, on record as a Run from its start."""
        session = self.session
        session.ledgers.append(ledger)
        label: RunLabel = ledger.run
        log_name = getattr(self.raw_log, "name", None)
        log_path = str(Path(log_name).resolve()) if isinstance(log_name, str) else None
        index: list[int] = []

        def on_start(argv: tuple[str, ...]) -> None:
            session.runs.append(Run(label=label, argv=argv, log_path=log_path))
            index.append(len(session.runs) - 1)

        self._ahead = label in ("build", "retry")

        def on_lines(lines: list[bytes], now: float) -> None:
            events = ledger.feed_lines(lines, now)
            self._start_ahead(events)
            told = [line for event in events for line in self._told(event)]
            if told:
                # One write for what one read brought: 201 downloads were 201 writes.
                self.say("\n".join(told))
            self._report_progress(ledger, now)

        def on_log_error(error: OSError) -> None:
            # The log is a copy for people; the build goes on without it.
            note = LOG_STOPPED.format(path=log_path, error=error.strerror or error)
            if note not in session.notes:
                session.notes.append(note)
                self.say(f"nix-cache-action: {note}")
            self.raw_log = None

        tee = Tee(
            on_lines=on_lines,
            raw_log=self.raw_log,
            on_start=on_start,
            on_log_error=on_log_error,
            # Each read at once until the NAR hashes' query has started (`_start_ahead`).
            prompt=lambda: self._ahead,
        )
        heartbeat = Heartbeat(ledger, self.say, self.nix.clock)
        try:
            with heartbeat:
                result = command(tee)
        except BaseException as error:
            interrupted = isinstance(error, Interrupted)
            if index:
                run = session.runs[index[0]]
                session.runs[index[0]] = replace(
                    run, interrupted=interrupted, plain_lines=ledger.plain_lines
                )
            note = STEP_INTERRUPTED if interrupted else STEP_FAILED
            session.notes.append(note.format(label=label))
            raise
        streamed = result.streamed if isinstance(result, Built) else result
        if ledger.plain_lines:
            session.notes.append(PLAIN_LINES.format(count=ledger.plain_lines, label=label))
        if index:
            session.runs[index[0]] = replace(
                session.runs[index[0]],
                exit_status=streamed.returncode,
                seconds=round(streamed.seconds, 3),
                plain_lines=ledger.plain_lines,
            )
        return result

    def _start_ahead(self, events: list[Event]) -> None:
        """The outputs' NAR hashes are asked after the build of a Nix started during it
        (Nix.start_path_info), once the build has shown it opened the store: at its first
        activity. Two Nix processes that open a new local store at once can fail each other
        ("SQLite database is busy")."""
        if self._ahead and any(isinstance(event, ActivityStarted) for event in events):
            self._ahead = False
            self.nix.start_path_info()

    def _report_progress(self, ledger: Ledger, now: float) -> None:
        if self.progress is not None and now - self._progress_at >= PROGRESS_SECONDS:
            self._progress_at = now
            self.progress(ledger.progress(), now)

    def _told(self, event: Event) -> list[str]:
        """The live account in the terminal: one line per build, download and error."""
        line: str | None = None
        match event:
            case BuildStarted(drv=drv):
                verb = "checking" if event.is_check else "building"
                line = f"  {verb} {store_name(drv)}"
            case SubstituteStarted(path=path, substituter=url):
                line = f"  fetching {store_name(path)} from {substituter_name(url)}"
            case ActivityStarted(type=ActivityType.REALISE):
                # Nix evaluated: what it said so far was not an evaluation error.
                return self._take_held()
            case Message(text=text) if event.is_error and text.startswith("error:"):
                line = "  " + text.splitlines()[0]
                if self._holding:
                    self._held.append(line)
                    line = None
            case Message(text=text) if text.startswith("warning:"):
                # A retried download is Nix waiting on a cache: said as it happens.
                waiting = "unable to download" in text
                line = ("  waiting on a cache: " if waiting else "  ") + text.splitlines()[0]
            case _:
                pass
        return [] if line is None else [line]


# Signals that end a process against its will. A shell between us and Nix (a wrapper script)
# reports such a death as exit status 128 + the signal.
_FATAL_SIGNALS = frozenset(
    int(s)
    for s in (
        signals.SIGKILL,
        signals.SIGSEGV,
        signals.SIGABRT,
        signals.SIGBUS,
        signals.SIGILL,
        signals.SIGFPE,
    )
)
_SHELL_SIGNAL_BASE = 128


def _killed_by(status: int | None) -> int | None:
    """The signal that killed Nix, if one did."""
    if status is None:
        return None  # stopped by us: an interruption, said as such
    if status < 0:
        return -status
    if status - _SHELL_SIGNAL_BASE in _FATAL_SIGNALS:
        return status - _SHELL_SIGNAL_BASE
    return None


def _signal_name(number: int) -> str:
    try:
        return f"{signals.Signals(number).name} ({number})"
    except ValueError:
        return f"signal {number}"


def _unfinished(streamed: Streamed, ledger: Ledger) -> str | None:
    """Why a rebuild that Nix did not see through proves nothing, or None if it finished."""
    status = streamed.returncode
    killed = _killed_by(status)
    if killed is not None:
        return REBUILD_KILLED.format(how=f"Nix was killed by signal {_signal_name(killed)}")
    if ledger.incomplete:
        return REBUILD_KILLED.format(how=f"Nix stopped in the middle of it, exit status {status}")
    if status != 0 and not ledger.builds() and ledger.errors:
        # Nix refused the rebuild before building anything: its words are the reason.
        return REBUILD_REFUSED.format(error=_innermost(ledger.errors[0]))
    return None


def _failure_reason(item: Installable, ledger: Ledger) -> str:
    failed_drvs = {b.drv for b in ledger.builds() if b.status == "failed"}
    first_lines = [e.split("\n", 1)[0] for e in ledger.errors]
    reason = next((t for t in first_lines if (item.drv or "?") in t), None)
    if reason is None and item.drv in failed_drvs:
        reason = f"building {item.drv} failed"
    if reason is None and not failed_drvs and first_lines:
        # Nothing failed to build: Nix stopped on another error (a cache answering HTTP 418,
        # say), which is the reason, not a dependency.
        reason = first_lines[0]
    return reason or "a dependency failed to build"


def _innermost(error: str) -> str:
    """The cause in a message of Nix's: its last `error:` line (a trace of `… while` lines may
    come before it), else its first line."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("error:")]
    last = causes[-1].removeprefix("error:").strip() if causes else ""
    return last or _first_line(error)


def _first_line(error: str) -> str:
    return error.removeprefix("error:").strip().split("\n", 1)[0]


def _with_fix(message: str) -> str:
    fix = next((fix for text, fix in EVAL_FIXES if text in message), None)
    if fix is None:
        return message
    # Nix's own suggestion ("Did you mean fails?") keeps its question mark.
    ended = message.rstrip()
    return f"{ended if ended.endswith(('.', '?', '!')) else ended + '.'} {fix}"


def _add(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b
