"""The question every run asks Nix first (which Nix it is), asked before anything else.

Kept apart from nix/commands.py, which holds every other command, so that asking it costs only
this module and nix/process.py: the CLI asks while it is still importing itself.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs 3 ms to import: start.py imports this before the build
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from nix_cache_action.nix.commands import Nix
    from nix_cache_action.nix.process import Runner, Started

# Flakes and the new CLI are experimental in upstream Nix; the extra- form adds to the user's own
# setting instead of replacing it. Determinate Nix and Lix accept it too.
FEATURES = ("--extra-experimental-features", "nix-command flakes")
# No -v: the JSON logger sends every activity and result whatever the verbosity, and -v only
# adds talkative messages ("evaluating file ...", thousands of lines on nixpkgs) that nothing
# here reads but that Nix must format and this process must parse.
LOG_FLAGS = ("--log-format", "internal-json")


def build_argv(
    executable: str,
    installables: Sequence[str],
    *,
    keep_going: bool,
    fallback: bool,
    substituters: Sequence[str] | None = None,
) -> list[str]:
    """The `nix build` of a run: here, as start.py starts it early with the same words as
    `Nix.build`."""
    flags = ["--keep-going"] if keep_going else []
    if fallback:
        flags.append("--fallback")
    if substituters is not None:
        flags += ["--option", "substituters", " ".join(substituters)]
    build = ["build", *LOG_FLAGS, "--no-link", "--json", *flags, *installables]
    return [executable, *FEATURES, *build]


class Probe:
    """The first question every run asks: which Nix this is. Started as soon as the
    executable is known (`nix-cache-action build` starts it before the rest of the CLI is
    imported, start.py), and read when the run needs the answer. Its settings are asked later,
    while Nix builds (`Nix.start_config`): asked here too, the two questions and the imports
    shared two cores and each took longer.
    """

    def __init__(self, executable: str, runner: Runner) -> None:
        self.executable = executable
        self.runner = runner
        self._version: Started | None = None
        self._error: Exception | None = None
        # Imported here: start.py reads build_argv before the build starts, and subprocess
        # by then would cost it 6 ms (nix/spawn.py); nix/process.py has imported it since.
        import subprocess  # noqa: PLC0415

        try:
            self._version = runner.start([executable, "--version"])
        except (OSError, subprocess.SubprocessError) as exc:
            self._error = exc  # raised, as a NixError, where the run asks for its Nix

    def close(self) -> None:
        """Stop the build started beside the probe, if the run never took it."""
        self.runner.discard_early()

    def asks(self, executable: str, directory: Path | None) -> bool:
        """Whether this probe asks `executable`, run in `directory` (None: here)."""
        if self.executable != executable:
            return False
        cwd = getattr(self.runner, "cwd", None)  # Subprocesses' (a fake runner has none)
        if cwd is None or directory is None:
            return cwd is None and directory is None
        # os.path, as in start.py: this module is imported before pathlib is.
        return os.path.samefile(cwd, directory)  # noqa: PTH121

    def nix(self) -> Nix:
        """The Nix that answered; a NixError says why it cannot be used."""
        # Imported here: the probe starts before the rest of the CLI is imported.
        import subprocess  # noqa: PLC0415

        from nix_cache_action.errors import NixError  # noqa: PLC0415
        from nix_cache_action.nix.commands import (  # noqa: PLC0415
            NIX_NOT_FOUND,
            NIX_PATH_UNUSABLE,
            NIX_PROBE_FAILED,
            TIMEOUT_NIX_VERSION,
            Nix,
        )
        from nix_cache_action.nix.version import parse_version  # noqa: PLC0415

        executable = self.executable
        try:
            if self._error is not None:
                raise self._error
            assert self._version is not None  # noqa: S101 - set whenever there is no error
            done = self._version.result(timeout=TIMEOUT_NIX_VERSION)
        except (FileNotFoundError, PermissionError) as exc:
            # A bare name was looked up on PATH; a path was given by the user and is wrong.
            template = NIX_PATH_UNUSABLE if os.sep in executable else NIX_NOT_FOUND
            raise NixError(template.format(exe=executable)) from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NixError(NIX_PROBE_FAILED.format(exe=executable, error=exc)) from exc
        version = parse_version(done.stdout or done.stderr)
        return Nix(executable, version, self.runner)
