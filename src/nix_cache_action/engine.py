"""The build job: evaluate, build, rebuild to check, and collect everything into a Report.

The Session holds what is known so far, so that an interruption or a failure at any step still
leaves a report with everything found up to that point.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from nix_cache_action.ledger import Ledger
from nix_cache_action.nix.events import (
    BuildStarted,
    Event,
    Message,
    SubstituteStarted,
)
from nix_cache_action.nix.runner import Interrupted, Nix, Streamed
from nix_cache_action.report import (
    Build,
    Check,
    FirstCopy,
    Installable,
    NixInfo,
    Phases,
    Report,
    Run,
    substituter_name,
)
from nix_cache_action.reproducibility import differing_files, diffoscope_text

# No -v: the JSON logger sends every activity and result whatever the verbosity, and -v only
# adds talkative messages ("evaluating file ...", thousands of lines on nixpkgs) that nothing
# here reads but that Nix must format and this process must parse.
LOG_FLAGS = ("--log-format", "internal-json")
Say = Callable[[str], None]

_ERROR_LINE = re.compile(r"^error:\s*", re.MULTILINE)
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


@dataclass(frozen=True)
class BuildOptions:
    installables: tuple[str, ...]
    reproducibility: str = "fail"  # "fail", "warn" or "off"
    deep: bool = False
    keep_going: bool = True


@dataclass
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
    stopped: str | None = None  # why the run ended early (interrupted, no usable Nix)
    outputs_by_drv: dict[str, list[str]] = field(default_factory=dict)

    def report(self) -> Report:
        builds: list[Build] = []
        substitutions = []
        cache_errors = []
        errors: list[str] = []
        queried: dict[str, set[str]] = {}
        phases = Phases(evaluation=self.evaluation_seconds, check=self.check_seconds)
        for ledger in self.ledgers:
            builds.extend(ledger.builds(self.outputs_by_drv))
            substitutions.extend(ledger.substitutions())
            cache_errors.extend(ledger.cache_errors)
            errors.extend(ledger.failure_errors)
            # Distinct paths over all runs: the check run asks again about the same ones.
            for url, paths in ledger.queried_paths.items():
                queried.setdefault(url, set()).update(paths)
            if ledger.run == "build":
                own = ledger.phases()
                phases = replace(
                    phases,
                    evaluation=_add(phases.evaluation, own.evaluation),
                    download=own.download,
                    build=own.build,
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
            stopped=self.stopped,
            notes=tuple(self.notes),
        )


def run_build(
    nix: Nix, session: Session, *, raw_log: IO[bytes] | None = None, say: Say = print
) -> None:
    """Fill `session` step by step; exceptions leave it holding what was known."""
    options = session.options
    session.nix = NixInfo(version=nix.version.label, flavour=nix.version.flavour)
    say(f"nix-cache-action: {nix.version.text}")

    # 1. Evaluate each installable on its own, so an error names the installable and does not
    # stop the others. A single installable needs no separate evaluation: the build evaluates
    # it anyway, and a second evaluation is measurable overhead (benchmarks/overhead.py); only
    # a failed build asks for it (in _record_outputs).
    started = nix.clock()
    if len(options.installables) == 1:
        session.installables[options.installables[0]] = Installable(name=options.installables[0])
    else:
        for name in options.installables:
            session.installables[name] = _evaluate(nix, name, say)
        session.evaluation_seconds = nix.clock() - started
    good = [i.name for i in session.installables.values() if i.status != "error"]
    if not good:
        return

    # 2. Build.
    build_ledger = Ledger(run="build")
    session.ledgers.append(build_ledger)
    result = _stream(
        nix,
        session,
        build_ledger,
        [
            "build",
            *LOG_FLAGS,
            "--no-link",
            "--json",
            *(["--keep-going"] if options.keep_going else []),
            *good,
        ],
        "build",
        raw_log,
        say,
    )
    _record_outputs(nix, session, build_ledger, result, good, say)
    if options.reproducibility == "off":
        session.checks.extend(
            _not_checked(i, "reproducibility is off", out, i.nar_hashes.get(name), "build")
            for i in session.installables.values()
            if i.status == "built"
            for name, out in i.outputs.items()
        )
        return

    # 3. Rebuild the top-level derivations and compare.
    built = [i for i in session.installables.values() if i.status == "built"]
    session.checks.extend(
        _not_checked(i, "the build failed, so there is nothing to compare")
        for i in session.installables.values()
        if i.status == "failed"
    )
    if not built:
        return
    check_ledger = Ledger(run="check")
    targets = [_rebuild_target(nix, i) for i in built]
    try:
        _rebuild(nix, session, check_ledger, targets, raw_log, say)
    except Interrupted:
        # Stopping comes first: what the rebuild showed is kept, nothing more is asked of Nix.
        session.checks.extend(
            _top_level_checks(nix, build_ledger, check_ledger, built, explain=False)
        )
        raise
    session.checks.extend(_top_level_checks(nix, build_ledger, check_ledger, built, explain=True))

    # 4. Deep: every other derivation this run built here.
    if options.deep:
        tops = {i.drv for i in built}
        locally = sorted({b.drv for b in build_ledger.builds() if b.status == "built"} - tops)
        if not locally:
            session.notes.append("deep check: no other derivation was built here")
            return
        deep_ledger = Ledger(run="deep-check")
        _rebuild(
            nix, session, deep_ledger, [nix.version.all_outputs(d) for d in locally], raw_log, say
        )
        session.checks.extend(_deep_checks(nix, deep_ledger))


def _rebuild(  # noqa: PLR0913, PLR0917 - each argument is a separate concern of one call
    nix: Nix,
    session: Session,
    ledger: Ledger,
    targets: list[str],
    raw_log: IO[bytes] | None,
    say: Say,
) -> None:
    """Build `targets` again and let Nix compare (`--rebuild`); `--keep-failed` keeps `.check`."""
    session.ledgers.append(ledger)
    started = nix.clock()
    try:
        _stream(
            nix,
            session,
            ledger,
            [
                "build",
                *LOG_FLAGS,
                "--no-link",
                "--rebuild",
                "--keep-failed",
                "--keep-going",
                *targets,
            ],
            ledger.run,
            raw_log,
            say,
        )
    finally:
        session.check_seconds = _add(session.check_seconds, nix.clock() - started)


def _not_checked(
    item: Installable,
    reason: str,
    output: str | None = None,
    nar_hash: str | None = None,
    run: str = "check",
) -> Check:
    return Check(
        drv=item.drv or "",
        output=output,
        verdict="not-checked",
        reason=reason,
        installable=item.name,
        nar_hash=nar_hash,
        run=run,
    )


def _rebuild_target(nix: Nix, item: Installable) -> str:
    """What to pass to `--rebuild`: the drv with exactly the outputs built, when Nix can say so.

    Naming the derivation skips a third evaluation of the installable (the bare shell sequence
    pays it; this tool need not). `drv^out,dev` exists from 2.13; before it only the
    installable itself selects the same outputs.
    """
    if item.drv and item.outputs and nix.version.at_least(2, 13):
        return f"{item.drv}^{','.join(sorted(item.outputs))}"
    return item.name


def _identify(
    nix: Nix, item: Installable, by_drv: dict[str, dict[str, str]], say: Say
) -> Installable:
    """The drv of an installable built without a separate evaluation (a single one)."""
    if len(by_drv) == 1:
        return replace(item, drv=next(iter(by_drv)))
    return _evaluate(nix, item.name, say)


def _evaluate(nix: Nix, name: str, say: Say) -> Installable:
    done = nix.derivation_of(name)
    drv = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout else ""
    if drv:
        return Installable(name=name, drv=drv)
    message = _with_fix(_nix_error(done.stderr) or f"nix exited with status {done.returncode}")
    say(f"error: cannot evaluate {name}: {message}")
    return Installable(name=name, status="error", error=f"{name}: {message}")


def _stream(  # noqa: PLR0913, PLR0917 - each argument is a separate concern of one call
    nix: Nix,
    session: Session,
    ledger: Ledger,
    args: list[str],
    label: str,
    raw_log: IO[bytes] | None,
    say: Say,
) -> Streamed:
    def on_line(line: bytes, now: float) -> None:
        event = ledger.feed(line, now)
        if event is not None:
            _tell(event, say)

    log_name = getattr(raw_log, "name", None)
    run = Run(
        label=label,
        argv=tuple(nix.argv(*args)),
        log_path=str(Path(log_name).resolve()) if isinstance(log_name, str) else None,
    )
    session.runs.append(run)
    index = len(session.runs) - 1
    try:
        result = nix.stream(args, on_line, raw_log)
    except BaseException:
        session.runs[index] = replace(run, interrupted=True, plain_lines=ledger.plain_lines)
        session.notes.append(f"the {label} step was interrupted; Nix was stopped")
        raise
    session.runs[index] = replace(
        run,
        exit_status=result.returncode,
        seconds=round(result.seconds, 3),
        plain_lines=ledger.plain_lines,
    )
    return result


def _tell(event: Event, say: Say) -> None:
    """The live account in the terminal: one line per build, download and error."""
    if isinstance(event, BuildStarted):
        verb = "checking" if event.is_check else "building"
        say(f"  {verb} {event.drv.rsplit('/', 1)[-1].removesuffix('.drv')}")
    elif isinstance(event, SubstituteStarted):
        name = event.path.rsplit("/", 1)[-1]
        say(f"  fetching {name} from {substituter_name(event.substituter)}")
    elif isinstance(event, Message) and event.is_error and event.text.startswith("error:"):
        say("  " + event.text.splitlines()[0])


def _record_outputs(  # noqa: PLR0913, PLR0917 - the build step's whole context
    nix: Nix, session: Session, ledger: Ledger, result: Streamed, names: list[str], say: Say
) -> None:
    by_drv = _built_outputs(result)
    for name in names:
        item = session.installables[name]
        if item.drv is None:
            item = session.installables[name] = _identify(nix, item, by_drv, say)
            if item.status == "error":
                continue
        outputs = by_drv.get(item.drv or "")
        if outputs is None:
            # The build as a whole failed (--keep-going): ask for this installable alone, which
            # evaluates and checks validity but builds nothing.
            done = nix.run("path-info", name)
            paths = done.stdout.split() if done.returncode == 0 else []
            outputs = {_output_name(item.drv or "", p): p for p in paths}
        if not outputs:
            session.installables[name] = replace(
                item, status="failed", error=_failure_reason(item, ledger)
            )
            continue
        session.outputs_by_drv[item.drv or ""] = list(outputs.values())
        session.installables[name] = replace(item, outputs=outputs)
    paths = [p for i in session.installables.values() for p in i.outputs.values()]
    infos = nix.path_info(paths)
    for name, item in list(session.installables.items()):
        if item.outputs:
            hashes = {o: infos[p].nar_hash for o, p in item.outputs.items() if p in infos}
            session.installables[name] = replace(item, nar_hashes=hashes)


def _built_outputs(result: Streamed) -> dict[str, dict[str, str]]:
    """{drv: {output: path}} from `nix build --json` on stdout; {} when there is none."""
    if result.returncode != 0 or not result.stdout.strip():
        return {}
    try:
        entries = json.loads(result.stdout)
    except ValueError:
        return {}  # then each installable is asked for on its own
    return {
        entry["drvPath"]: dict(entry.get("outputs") or {})
        for entry in (entries if isinstance(entries, list) else [])
        # A store-path installable has `path` and no drvPath: nothing was built for it.
        if isinstance(entry, dict) and isinstance(entry.get("drvPath"), str)
    }


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


def _top_level_checks(
    nix: Nix, first: Ledger, check: Ledger, built: list[Installable], *, explain: bool
) -> list[Check]:
    """One Check per output of each installable, from the rebuild's log and the first build's."""
    by_drv: dict[str, list[Check]] = {}
    for seen in check.checks():
        by_drv.setdefault(seen.drv, []).append(seen)
    substituted = {s.path: s.substituter for s in first.substitutions()}
    built_here = {b.drv for b in first.builds() if b.status == "built"}
    result = []
    for item in built:
        drv = item.drv or ""
        seen_for_drv = by_drv.get(drv, [])
        differing = {c.output for c in seen_for_drv if c.verdict == "differs"}
        for out_name, out in item.outputs.items():
            nar_hash = item.nar_hashes.get(out_name)
            first_copy: FirstCopy = (
                "substituted" if out in substituted else "built" if drv in built_here else "present"
            )
            base = Check(
                drv=drv,
                output=out,
                verdict="not-checked",
                installable=item.name,
                nar_hash=nar_hash,
                first_copy=first_copy,
                substituter=substituted.get(out),
                run="check",
            )
            if out in differing:
                differs = replace(base, verdict="differs")
                result.append(_explain(nix, differs) if explain else differs)
            elif differing:
                # Nix stops comparing a derivation's outputs at the first that differs.
                result.append(replace(base, reason="another output of it differed"))
            elif seen_for_drv and seen_for_drv[0].verdict == "reproducible":
                # Nix compared the NAR hashes itself and found them equal.
                result.append(replace(base, verdict="reproducible", check_nar_hash=nar_hash))
            else:
                reason = seen_for_drv[0].reason if seen_for_drv else "the rebuild did not run"
                result.append(replace(base, reason=reason))
    return result


def _deep_checks(nix: Nix, ledger: Ledger) -> list[Check]:
    """Per-output checks of the deep rebuild; the log names only outputs that differ."""
    found = ledger.checks()
    outputs = nix.derivation_outputs(sorted({c.drv for c in found}))
    infos = nix.path_info([p for outs in outputs.values() for p in outs.values()])
    result = []
    for check in found:
        base = replace(check, deep=True, first_copy="built")
        if check.verdict == "differs" or not outputs.get(check.drv):
            info = infos.get(check.output or "")
            result.append(_explain(nix, replace(base, nar_hash=info.nar_hash if info else None)))
            continue
        for path in outputs[check.drv].values():
            info = infos.get(path)
            nar_hash = info.nar_hash if info else None
            same = check.verdict == "reproducible"
            result.append(
                replace(
                    base, output=path, nar_hash=nar_hash, check_nar_hash=nar_hash if same else None
                )
            )
    return result


def _explain(nix: Nix, check: Check) -> Check:
    """For a differing output: the `.check` copy's hash and the files that differ."""
    if check.verdict != "differs" or not check.output:
        return check
    first, rebuild = Path(check.output), Path(check.output + ".check")
    nar_hash = check.nar_hash
    if nar_hash is None:
        info = nix.path_info([check.output]).get(check.output)
        nar_hash = info.nar_hash if info else None
    if not rebuild.exists():
        return replace(
            check,
            nar_hash=nar_hash,
            reason="the rebuilt copy was not kept (is --keep-failed honoured?)",
        )
    diffs, truncated = differing_files(first, rebuild)
    return replace(
        check,
        nar_hash=nar_hash,
        check_nar_hash=nix.hash_path(str(rebuild)),
        differences=tuple(diffs),
        differences_truncated=truncated,
        diffoscope=diffoscope_text(first, rebuild, nix.env),
    )


def _nix_error(stderr: str) -> str:
    """The `error: ...` part of Nix's stderr, ANSI-free, without `--show-trace` advice."""
    from nix_cache_action.nix.events import strip_ansi  # noqa: PLC0415 - keep the import local

    text = strip_ansi(stderr)
    match = _ERROR_LINE.search(text)
    body = text[match.end() :] if match else text
    lines = [ln for ln in body.strip().splitlines() if "--show-trace" not in ln]
    return " ".join(ln.strip() for ln in lines)[:1000]


def _first_line(error: str) -> str:
    return error.removeprefix("error:").strip().split("\n", 1)[0]


def _with_fix(message: str) -> str:
    fix = next((fix for text, fix in EVAL_FIXES if text in message), None)
    return message if fix is None else f"{message.rstrip('.')}. {fix}"


def _output_name(drv: str, path: str) -> str:
    drv_name = drv.rsplit("/", 1)[-1].split("-", 1)[-1].removesuffix(".drv")
    out_name = path.rsplit("/", 1)[-1].split("-", 1)[-1]
    if out_name.startswith(drv_name + "-"):
        return out_name[len(drv_name) + 1 :]
    return "out"


def _add(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b
