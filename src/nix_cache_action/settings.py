"""Action inputs and the GitHub context, read from the environment into frozen records.

The composite action forwards each input through `env:` as `INPUT_<NAME>`, the name @actions/core
reads: spaces become `_`, letters are uppercased and `-` is kept (`INPUT_DEEP-CHECK`). Values are
trimmed and an empty value means "not set", exactly as `core.getInput` treats them; the one
exception is an `installables` value made only of whitespace, which is an error (see below).

Reading `working-directory` looks at the file system (it must be an existing directory); nothing
else here touches anything but the mapping it is given and, for `commit_sha`, the event payload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nix_cache_action.errors import InputError
from nix_cache_action.limits import DEFAULT_MAX_PER_LEG
from nix_cache_action.records import field, record
from nix_cache_action.report import MODES, Budgets, LegInfo, Mode

if TYPE_CHECKING:
    from collections.abc import Mapping

INPUT_NAMES = (
    "installables",
    "reproducibility",
    "deep-check",
    "fallback",
    "summary",
    "annotations",
    "status-checks",
    "github-token",
    "working-directory",
    "install-nix",
    "magic-nix-cache",
    "extra-conf",
    "verify-once",
    "skip-cached",
    "max-seconds",
    "max-build-seconds",
    "max-built",
    "min-hit-rate",
    "max-per-change",
    "plan",
    "leg",
)
# The sub-actions' inputs that Python reads (plan/action.yml, aggregate/action.yml).
PLAN_INPUT_NAMES = (
    "flake",
    "selection",
    "systems",
    "max-per-leg",
    "runners",
    "working-directory",
    "verify-once",
    "summary",
)
AGGREGATE_INPUT_NAMES = (
    "plan",
    "reports",
    "junit",
    "summary",
    "annotations",
    "status-checks",
    "github-token",
    "verify-once",
    "max-seconds",
    "max-build-seconds",
    "max-built",
    "min-hit-rate",
)
# Which step entrypoint.py runs: each action.yml sets it (the root action: build).
COMMAND_VARIABLE = "NIX_CACHE_ACTION_COMMAND"
COMMANDS = ("build", "plan", "aggregate")

CONTEXT_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITHUB_WORKSPACE",
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "GITHUB_EVENT_NAME",
    "GITHUB_EVENT_PATH",
    "GITHUB_API_URL",
    "GITHUB_SERVER_URL",
    "GITHUB_RUN_ID",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_OUTPUT",
    "RUNNER_TEMP",
)

DEFAULT_INSTALLABLES = (".#default",)
DEFAULT_API_URL = "https://api.github.com"
# @actions/github falls back to the same two URLs when the runner does not set them.
DEFAULT_SERVER_URL = "https://github.com"

# getBooleanInput accepts exactly the YAML 1.2 core schema spellings, nothing looser.
TRUE_VALUES = ("true", "True", "TRUE")
FALSE_VALUES = ("false", "False", "FALSE")

# On these events GITHUB_SHA is the merge commit GitHub made for the test, which nobody sees on
# the pull request; statuses must go to the head commit of the pull request instead.
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})

SKIP_NEEDS_VERIFY_ONCE = (
    "true needs verify-once: true, as only the verification record says an output in a cache"
    " was checked; set verify-once to true or skip-cached to false"
)
NUMBER_MESSAGE = "{value!r} is not {what}; set it to one, or leave it empty for no budget"
RANGE_MESSAGE = "{value!r} is out of range; set it to a number {bounds}, or leave it empty"
BOOLEAN_MESSAGE = "{value!r} is not a boolean; set it to true or false (accepted: {accepted})"
MODE_MESSAGE = "{value!r} is not one of {modes}; set it to one of those"
NO_INSTALLABLES_MESSAGE = (
    "the value holds only whitespace, so there is nothing to build; list flake references such"
    " as '.#default .#checks', or remove the input to build .#default"
)
STRANGE_INSTALLABLE_MESSAGE = (
    "{value!r} is not a flake reference (it holds '::', '##[' or a control character); list"
    " references such as '.#default' or 'github:owner/repo#package'"
)
OPTION_INSTALLABLE_MESSAGE = (
    "{value!r} looks like a Nix option, not an installable; pass Nix settings through"
    " extra-conf and list only flake references here"
)
OUTSIDE_WORKSPACE_MESSAGE = (
    "{value!r} resolves to {path}, outside the workspace {workspace}; use a path inside the"
    " repository checkout, such as '.' or 'subdir'"
)
NOT_A_DIRECTORY_MESSAGE = (
    "{value!r} resolves to {path}, which is not a directory; create it or name an existing"
    " directory inside the workspace"
)
LEG_NEEDS_PLAN = (
    "is empty while {given} is set; a leg of a plan needs both: set {missing} (the plan step's"
    " plan file and the matrix's leg), or neither"
)
MAX_PER_LEG_MESSAGE = (
    f"{{value!r}} is not a whole number of 1 or more; set it to one, or leave it empty for"
    f" {DEFAULT_MAX_PER_LEG} derivations per leg"
)
FLAKE_MESSAGE = (
    "{value!r} is not a flake reference; set it to '.', a path such as './sub', or a"
    " reference such as 'github:owner/repo'"
)
REPOSITORY_MESSAGE = "{value!r} is not of the form owner/name; set it to owner/name or unset it"
EVENT_PATH_MISSING_MESSAGE = (
    "is not set although the event is {event}; run on GitHub Actions or set it to the path of"
    " the event's JSON payload"
)
EVENT_UNREADABLE_MESSAGE = (
    "cannot read the {event} payload at {path}: {reason}; point it at the event's JSON payload"
)
EVENT_NO_HEAD_MESSAGE = (
    "the {event} payload at {path} has no pull_request.head.sha; point it at the payload of a"
    " pull request event"
)


@record
class GitHubContext:
    """What the runner says about the run; every part is optional so the CLI can reuse it."""

    is_github_actions: bool = False
    workspace: Path | None = None
    repository: str | None = None
    sha: str | None = None
    event_name: str | None = None
    event_path: Path | None = None
    api_url: str = DEFAULT_API_URL
    server_url: str = DEFAULT_SERVER_URL
    run_id: str | None = None
    step_summary: Path | None = None
    output: Path | None = None
    runner_temp: Path | None = None


@record
class Settings:
    installables: tuple[str, ...]
    reproducibility: Mode
    deep_check: bool
    fallback: bool
    summary: bool
    annotations: bool
    status_checks: bool
    github_token: str = field(repr=False)
    working_directory: Path
    install_nix: bool
    magic_nix_cache: bool
    # nix.conf lines may carry secrets (`access-tokens = ...`): kept out of the repr too.
    extra_conf: str = field(repr=False)
    github: GitHubContext
    verify_once: bool = True
    skip_cached: bool = False
    budgets: Budgets = field(default_factory=Budgets)
    # A leg of a planned matrix: the plan file and the leg's id (the installables come from it).
    plan: Path | None = None
    leg: str | None = None
    leg_info: LegInfo | None = None  # filled from the plan once it is read


@record
class PlanSettings:
    """plan/action.yml's inputs."""

    flake: str
    selection: tuple[str, ...]
    systems: tuple[str, ...] | None  # (): the runner's own; None: all
    max_per_leg: int
    runners: tuple[str, ...]  # SYSTEM=LABEL lines, on top of the defaults
    working_directory: Path
    verify_once: bool
    summary: bool
    github: GitHubContext


@record
class AggregateSettings:
    """aggregate/action.yml's inputs."""

    plan: Path | None
    reports: Path | None
    junit: bool
    summary: bool
    annotations: bool
    status_checks: bool
    github_token: str = field(repr=False)
    verify_once: bool
    budgets: Budgets
    github: GitHubContext


def load_plan_settings(environ: Mapping[str, str]) -> PlanSettings:
    github = load_context(environ)
    selection = tuple(_input(environ, "selection").split())
    systems = _input(environ, "systems")
    return PlanSettings(
        flake=_flake(_input(environ, "flake") or "."),
        selection=selection,
        systems=None if systems == "all" else tuple(systems.replace(",", " ").split()),
        max_per_leg=_max_per_leg(_input(environ, "max-per-leg")),
        runners=tuple(_input(environ, "runners").split()),
        working_directory=_working_directory(
            _input(environ, "working-directory") or ".", github.workspace or Path.cwd()
        ),
        verify_once=_boolean(environ, "verify-once", default=True),
        summary=_boolean(environ, "summary", default=True),
        github=github,
    )


def load_aggregate_settings(environ: Mapping[str, str]) -> AggregateSettings:
    plan, reports = _input(environ, "plan"), _input(environ, "reports")
    return AggregateSettings(
        plan=Path(plan) if plan else None,
        reports=Path(reports) if reports else None,
        junit=_boolean(environ, "junit", default=True),
        summary=_boolean(environ, "summary", default=True),
        annotations=_boolean(environ, "annotations", default=True),
        status_checks=_boolean(environ, "status-checks", default=True),
        github_token=_input(environ, "github-token"),
        verify_once=_boolean(environ, "verify-once", default=True),
        # No max-per-change: root causes are reckoned within one leg, not across legs.
        budgets=_budgets(environ, per_change=False),
        github=load_context(environ),
    )


def load_settings(environ: Mapping[str, str]) -> Settings:
    github = load_context(environ)
    plan, leg = _input(environ, "plan"), _input(environ, "leg")
    if bool(plan) != bool(leg):
        missing, given = ("leg", "plan") if plan else ("plan", "leg")
        raise InputError(missing, LEG_NEEDS_PLAN.format(missing=missing, given=given))
    return Settings(
        installables=_installables(environ.get(input_variable("installables"), "")),
        reproducibility=_mode(_input(environ, "reproducibility")),
        deep_check=_boolean(environ, "deep-check", default=False),
        fallback=_boolean(environ, "fallback", default=True),
        summary=_boolean(environ, "summary", default=True),
        annotations=_boolean(environ, "annotations", default=True),
        status_checks=_boolean(environ, "status-checks", default=True),
        github_token=_input(environ, "github-token"),
        working_directory=_working_directory(
            _input(environ, "working-directory") or ".",
            github.workspace or Path.cwd(),
        ),
        install_nix=_boolean(environ, "install-nix", default=True),
        magic_nix_cache=_boolean(environ, "magic-nix-cache", default=True),
        extra_conf=_input(environ, "extra-conf"),
        github=github,
        verify_once=_boolean(environ, "verify-once", default=True),
        skip_cached=_skip_cached(environ),
        budgets=_budgets(environ),
        plan=Path(plan) if plan else None,
        leg=leg or None,
    )


def _budgets(environ: Mapping[str, str], *, per_change: bool = True) -> Budgets:
    return Budgets(
        max_seconds=_number(environ, "max-seconds", float),
        max_build_seconds=_number(environ, "max-build-seconds", float),
        max_built=_number(environ, "max-built", int),
        min_hit_rate=_number(environ, "min-hit-rate", float, most=1.0),
        max_per_change=_number(environ, "max-per-change", int) if per_change else None,
    )


def _max_per_leg(raw: str) -> int:
    if not raw:
        return DEFAULT_MAX_PER_LEG
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError("max-per-leg", MAX_PER_LEG_MESSAGE.format(value=raw))
    return value


def _flake(value: str) -> str:
    """A flake reference: no option, no workflow command."""
    if value.startswith("-") or not is_plain_installable(value) or " " in value:
        raise InputError("flake", FLAKE_MESSAGE.format(value=value))
    return value


def load_context(environ: Mapping[str, str]) -> GitHubContext:
    repository = _variable(environ, "GITHUB_REPOSITORY")
    if repository is not None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise InputError("GITHUB_REPOSITORY", REPOSITORY_MESSAGE.format(value=repository))
    return GitHubContext(
        is_github_actions=_variable(environ, "GITHUB_ACTIONS") == "true",
        workspace=_path_variable(environ, "GITHUB_WORKSPACE"),
        repository=repository,
        sha=_variable(environ, "GITHUB_SHA"),
        event_name=_variable(environ, "GITHUB_EVENT_NAME"),
        event_path=_path_variable(environ, "GITHUB_EVENT_PATH"),
        api_url=_variable(environ, "GITHUB_API_URL") or DEFAULT_API_URL,
        server_url=_variable(environ, "GITHUB_SERVER_URL") or DEFAULT_SERVER_URL,
        run_id=_variable(environ, "GITHUB_RUN_ID"),
        step_summary=_path_variable(environ, "GITHUB_STEP_SUMMARY"),
        output=_path_variable(environ, "GITHUB_OUTPUT"),
        runner_temp=_path_variable(environ, "RUNNER_TEMP"),
    )


def commit_sha(context: GitHubContext) -> str | None:
    """The commit that statuses and checks belong to, or None when the run names none."""
    if context.event_name not in PULL_REQUEST_EVENTS:
        return context.sha
    event = context.event_name
    if context.event_path is None:
        raise InputError("GITHUB_EVENT_PATH", EVENT_PATH_MISSING_MESSAGE.format(event=event))
    try:
        payload: object = json.loads(context.event_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            "GITHUB_EVENT_PATH",
            EVENT_UNREADABLE_MESSAGE.format(event=event, path=context.event_path, reason=error),
        ) from error
    sha = _lookup(payload, ("pull_request", "head", "sha"))
    if not isinstance(sha, str) or not sha:
        raise InputError(
            "GITHUB_EVENT_PATH",
            EVENT_NO_HEAD_MESSAGE.format(event=event, path=context.event_path),
        )
    return sha


def relative_to_workspace(directory: Path, context: GitHubContext) -> str | None:
    """A working directory relative to the checkout, None for the checkout itself (the
    reproduce commands start from the repository root)."""
    if context.workspace is None:
        return None
    try:
        relative = directory.relative_to(context.workspace.resolve())
    except ValueError:
        return None
    return None if str(relative) == "." else str(relative)


def without_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment less the action's INPUT_* variables (the token among them)."""
    return {k: v for k, v in environ.items() if not k.startswith("INPUT_")}


def input_variable(name: str) -> str:
    """The environment variable @actions/core's getInput reads for an input."""
    return f"INPUT_{name.replace(' ', '_').upper()}"


def _input(environ: Mapping[str, str], name: str) -> str:
    return environ.get(input_variable(name), "").strip()


def _variable(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name, "").strip() or None


def _path_variable(environ: Mapping[str, str], name: str) -> Path | None:
    value = _variable(environ, name)
    return None if value is None else Path(value)


def _boolean(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = _input(environ, name)
    if not value:
        return default
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    accepted = ", ".join(TRUE_VALUES + FALSE_VALUES)
    raise InputError(name, BOOLEAN_MESSAGE.format(value=value, accepted=accepted))


def _mode(value: str) -> Mode:
    if not value:
        return "fail"
    for mode in MODES:
        if value == mode:
            return mode
    raise InputError("reproducibility", MODE_MESSAGE.format(value=value, modes=", ".join(MODES)))


def _skip_cached(environ: Mapping[str, str]) -> bool:
    skip = _boolean(environ, "skip-cached", default=False)
    if skip and not _boolean(environ, "verify-once", default=True):
        raise InputError("skip-cached", SKIP_NEEDS_VERIFY_ONCE)
    return skip


N = TypeVar("N", int, float)


def _number(
    environ: Mapping[str, str], name: str, kind: type[N], most: float | None = None
) -> N | None:
    """A budget: empty for none, else a number from 0 (to `most`)."""
    raw = _input(environ, name)
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InputError(name, NUMBER_MESSAGE.format(value=raw, what=what)) from None
    if value < 0 or (most is not None and value > most):
        bounds = "0 or more" if most is None else f"from 0 to {most:g} (0.9 is 90%)"
        raise InputError(name, RANGE_MESSAGE.format(value=raw, bounds=bounds))
    return value


def is_plain_installable(name: str) -> bool:
    """No flake reference holds `::`, `##[` or a control character; a workflow command
    smuggled in through a name does."""
    return "::" not in name and "##[" not in name and name.isprintable()


def fallback_context(environ: Mapping[str, str]) -> GitHubContext:
    """Where the files go when the context itself is bad (GITHUB_REPOSITORY, say): the runner's
    own paths, each on its own, and nothing else of it."""
    return GitHubContext(
        runner_temp=_path_variable(environ, "RUNNER_TEMP"),
        step_summary=_path_variable(environ, "GITHUB_STEP_SUMMARY"),
        output=_path_variable(environ, "GITHUB_OUTPUT"),
    )


def _installables(raw: str) -> tuple[str, ...]:
    if not raw:
        return DEFAULT_INSTALLABLES
    # Flake references contain no whitespace, so any run of spaces or newlines separates them.
    found = tuple(dict.fromkeys(raw.split()))
    if not found:
        # Something was written, yet nothing is left: most likely an expression such as
        # `${{ matrix.outputs }}` came out blank. Building .#default instead would hide that.
        raise InputError("installables", NO_INSTALLABLES_MESSAGE)
    for installable in found:
        # These end up as argv of `nix build`; a leading dash would turn a value into an option.
        if installable.startswith("-"):
            raise InputError("installables", OPTION_INSTALLABLE_MESSAGE.format(value=installable))
        if not is_plain_installable(installable):
            raise InputError("installables", STRANGE_INSTALLABLE_MESSAGE.format(value=installable))
    return found


def _working_directory(value: str, workspace: Path) -> Path:
    root = workspace.resolve()
    # resolve() follows symlinks, so a link inside the checkout that points out of it is caught.
    path = (root / value).resolve()
    if not path.is_relative_to(root):
        raise InputError(
            "working-directory",
            OUTSIDE_WORKSPACE_MESSAGE.format(value=value, path=path, workspace=root),
        )
    if not path.is_dir():
        raise InputError(
            "working-directory", NOT_A_DIRECTORY_MESSAGE.format(value=value, path=path)
        )
    return path


def _lookup(payload: object, keys: tuple[str, ...]) -> object:
    for key in keys:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


__all__ = [
    "CONTEXT_VARIABLES",
    "INPUT_NAMES",
    "AggregateSettings",
    "GitHubContext",
    "PlanSettings",
    "Settings",
    "commit_sha",
    "input_variable",
    "load_aggregate_settings",
    "load_context",
    "load_plan_settings",
    "load_settings",
    "relative_to_workspace",
    "without_inputs",
]
