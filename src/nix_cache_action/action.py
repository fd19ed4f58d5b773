"""The action's main: which step this is (the root action builds; its sub-actions plan and
aggregate), the masks set before anything is printed, then that step.

Each action.yml sets NIX_CACHE_ACTION_COMMAND; every step reads its inputs with the one
settings module and publishes through steps/publish.py.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from nix_cache_action import debug
from nix_cache_action.errors import InputError
from nix_cache_action.github.workflow_commands import WorkflowCommands, configure_logging
from nix_cache_action.redaction import Redactor, environment_secrets
from nix_cache_action.settings import COMMAND_VARIABLE, COMMANDS, input_variable
from nix_cache_action.steps.publish import StepIO, bad_input, status_publisher

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from nix_cache_action.github.statuses import Publisher

DEBUG_VARIABLE = "RUNNER_DEBUG"
UNKNOWN_COMMAND = "{value!r} is not one of {commands}; the action.yml that runs this sets it"


# Each step imports only what it runs: a leg's build never pays for the planner or the
# aggregate (as the CLI's commands).
def _build(environ: Mapping[str, str], io: StepIO) -> int:
    from nix_cache_action.steps.build import run_build  # noqa: PLC0415

    return run_build(environ, io)


def _plan(environ: Mapping[str, str], io: StepIO) -> int:
    from nix_cache_action.steps.plan import run_plan  # noqa: PLC0415

    return run_plan(environ, io)


def _aggregate(environ: Mapping[str, str], io: StepIO) -> int:
    from nix_cache_action.steps.aggregate import run_aggregate  # noqa: PLC0415

    return run_aggregate(environ, io)


STEPS: dict[str, Callable[[Mapping[str, str], StepIO], int]] = {
    "build": _build,
    "plan": _plan,
    "aggregate": _aggregate,
}


def main(
    environ: Mapping[str, str] = os.environ,
    stdout: TextIO | None = None,
    *,
    publisher_factory: Callable[[str, str, str, str], Publisher] = status_publisher,
) -> int:
    """Run the step; the exit status is the step's, and follows the verdict.

    `publisher_factory(token, repository, api_url, sha)` makes the commit status publisher.
    """
    # Looked up now rather than as a default argument, so a replaced sys.stdout is honoured.
    stdout = sys.stdout if stdout is None else stdout
    commands = WorkflowCommands(stdout)
    debugging = environ.get(DEBUG_VARIABLE) == "1"  # the runner's "debug logging" switch
    debug.enable(on=debugging)
    if debugging:
        configure_logging("DEBUG")  # PyGithub's records too
    # Masked before anything else is printed, even if an input turns out to be wrong: Nix
    # quotes its configuration back, and the report and summary quote Nix.
    secrets = environment_secrets(environ, input_variable("github-token"))
    for secret in sorted(secrets):
        commands.add_mask(secret)
    io = StepIO(commands, stdout, Redactor.of(secrets), publisher_factory)
    command = environ.get(COMMAND_VARIABLE, "").strip() or "build"
    step = STEPS.get(command)
    if step is None:
        message = UNKNOWN_COMMAND.format(value=command, commands=", ".join(COMMANDS))
        return bad_input(InputError(COMMAND_VARIABLE, message), environ, commands, io.redactor)
    return step(environ, io)
