"""What a user debugging a run reads on stderr: each command it runs, and the traceback of an
error nobody foresaw.

Off unless asked for: the CLI's --debug, NIX_CACHE_ACTION_LOG_LEVEL=DEBUG, or the runner's debug
logging in the action (RUNNER_DEBUG=1). Not the standard library's `logging`: importing it
costs about 9 ms of every start (it brings traceback, linecache and tokenize), a tenth of a warm
run, for lines nobody reads unless they asked. In the action, PyGithub's own log records are
still shown (github/workflow_commands.configure_logging).
"""

from __future__ import annotations

import sys

from nix_cache_action.github.workflow_commands import neutral


class _Switch:
    on = False


def enable(*, on: bool = True) -> None:
    _Switch.on = on


def enabled() -> bool:
    return _Switch.on


def debug(text: str) -> None:
    """A line for whoever debugs the run, shown only when debugging is on."""
    if _Switch.on:
        _write(text)


def warning(text: str) -> None:
    """A line shown whether debugging is on or not."""
    _write(text)


def traceback(what: str, error: BaseException) -> None:
    """`what` went wrong with `error`: its traceback, when debugging is on."""
    if _Switch.on:
        import traceback as tb  # noqa: PLC0415 - only a debugging run pays for it

        _write(f"{what}\n{''.join(tb.format_exception(error)).rstrip()}")


def _write(text: str) -> None:
    # Neutral: the line may quote an installable or Nix, and the runner reads stderr too.
    print(neutral(text), file=sys.stderr, flush=True)  # noqa: T201 - this is the debug output
