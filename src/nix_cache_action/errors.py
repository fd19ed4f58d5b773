"""The project's small error hierarchy.

Only the entry points (cli.main, the action's main) catch these. Every message is meant for the
user: it names what is wrong and ends with the fix.
"""

from __future__ import annotations

# The exit statuses a run ends with, besides 0 and a verdict's 1: a run that stopped on an error
# also exits 1; one cancelled by a signal exits as a shell reports SIGINT.
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class NixCacheActionError(Exception):
    """Base of every error the user should see as a plain message (no traceback)."""


class InputError(NixCacheActionError):
    """A setting, command-line argument or action input has a value we cannot use."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class NixError(NixCacheActionError):
    """Nix is missing, too old, or failed in a way that stops the whole run."""


class LogError(NixCacheActionError):
    """A log file cannot be read at all (a broken line is not an error: it becomes text)."""
