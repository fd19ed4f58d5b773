"""`plan`, for the command line and the action alike: make the plan, write it, say it.

A plan that cannot be made (no usable Nix, a flake that does not evaluate) is still written,
holding the error and no legs: the aggregate reads it and fails the run with that reason.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from nix_cache_action import debug
from nix_cache_action.discovery import PlanOptions, check_patterns, plan_flake
from nix_cache_action.errors import EXIT_FAILED, InputError, NixCacheActionError
from nix_cache_action.files import check_target, refuse_directory, write_text
from nix_cache_action.github.workflow_commands import neutral_json
from nix_cache_action.limits import cut
from nix_cache_action.nix.commands import Nix
from nix_cache_action.nix.process import Subprocesses
from nix_cache_action.plan import ALL_SYSTEMS, Plan, parse_runners
from nix_cache_action.records import replace
from nix_cache_action.redaction import Redactor
from nix_cache_action.render.plan import render_plan_summary, render_plan_terminal
from nix_cache_action.verification import VerificationRecord, load_record

EXIT_OK = 0
UNEXPECTED = "the plan stopped on an unexpected error ({kind}: {error}); run again with --debug"
BAD_SYSTEM = "{value!r} is not a system name; write x86_64-linux,aarch64-darwin or all"

Say = Callable[[str], None]


class PlanFileError(Exception):
    """A plan file that cannot be used; the message names it and what is wrong."""


def parse_systems(text: str) -> tuple[str, ...] | None:
    """`x86_64-linux,aarch64-linux` -> a tuple; `all` -> None; empty -> () (this Nix's own)."""
    names = tuple(s for s in text.replace(",", " ").split() if s)
    if names == (ALL_SYSTEMS,):
        return None
    for name in names:
        if name == ALL_SYSTEMS or not all(c.isalnum() or c in "_-." for c in name):
            raise InputError("systems", BAD_SYSTEM.format(value=name))
    return names


def make_plan(
    options: PlanOptions, nix_factory: Callable[[], Nix], record_path: Path | None, say: Say
) -> Plan:
    """The plan, or, when it cannot be made, a plan that holds why."""
    record, note = (VerificationRecord(), None) if record_path is None else load_record(record_path)
    try:
        plan = plan_flake(nix_factory(), options, record, say)
    except NixCacheActionError as error:
        return _failed(options, str(error))
    except Exception as error:  # noqa: BLE001 - whatever it was, the plan file says the plan stopped
        debug.traceback("unexpected error", error)
        return _failed(options, UNEXPECTED.format(kind=type(error).__name__, error=error))
    return replace(plan, notes=(*plan.notes, note)) if note else plan


def _failed(options: PlanOptions, message: str) -> Plan:
    return Plan(
        flake=options.flake,
        systems=options.systems or (),
        selection=options.selection,
        errors=(cut(message),),
        max_per_leg=options.max_per_leg,
        runners=dict(options.runners),
        working_directory=options.working_directory,
    )


def write_plan(plan: Plan, path: Path, redactor: Redactor | None = None) -> None:
    """The plan file; `redactor` takes out the secrets Nix quoted into its errors."""
    # No indent: json's C encoder takes only compact output, and a plan of thousands of
    # attributes took 0.15 s to indent (`jq . plan.json` shows it laid out).
    text = json.dumps(plan.to_json())
    write_text(path, (redactor.text(text) if redactor is not None else text) + "\n")


def read_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_bytes())
    except OSError as error:
        raise PlanFileError(f"{path} cannot be read ({error.strerror or error})") from error
    except (ValueError, RecursionError) as error:
        raise PlanFileError(f"{path} is not JSON ({error}); pass the file `plan` wrote") from error
    try:
        return Plan.from_json(data)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise PlanFileError(f"{path} is not a plan of nix-cache-action ({error})") from error


def plan_command(args: argparse.Namespace, say: Say, redactor: Redactor) -> int:
    """`nix-cache-action plan`: 0 when every selected attribute evaluated, 1 when one did not
    (or the flake did not), 2 for a bad argument."""
    check_target(args.plan, "--plan", "plan.json")
    if args.matrix is not None:
        check_target(args.matrix, "--matrix", "matrix.json")
    if args.summary is not None:
        check_target(args.summary, "--summary", "summary.md")
    if args.verified is not None:
        refuse_directory(args.verified, "--verified", "verified.json")
    check_patterns(args.selection)
    try:
        runners = parse_runners(args.runner)
    except ValueError as error:
        raise InputError("--runner", str(error)) from error
    directory = args.directory
    if directory is not None and not directory.is_dir():
        raise InputError("--directory", f"{directory} is not a directory; pass an existing one")
    options = PlanOptions(
        flake=args.flake,
        selection=tuple(args.selection),
        systems=parse_systems(args.systems),
        max_per_leg=max(int(args.max_per_leg), 1),
        runners=tuple(runners.items()),
        working_directory=None if directory is None else str(directory),
    )
    runner = Subprocesses(cwd=directory)
    plan = make_plan(options, lambda: Nix.probe(args.nix, runner), args.verified, say)
    write_plan(plan, args.plan, redactor)
    if args.matrix is not None:
        matrix, _ = plan.matrix()
        write_text(args.matrix, json.dumps(matrix) + "\n")
    if args.summary is not None:
        write_text(args.summary, redactor.text(render_plan_summary(plan)))
    if args.json:
        print(neutral_json(redactor.text(json.dumps(plan.to_json()))))  # noqa: T201
    say(render_plan_terminal(plan))
    return EXIT_FAILED if plan.errors else EXIT_OK


__all__ = ["PlanFileError", "make_plan", "parse_systems", "plan_command", "read_plan", "write_plan"]
