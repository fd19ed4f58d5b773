"""The command line's entry point (`nix-cache-action`, `python -m nix_cache_action`).

A `build` first asks Nix which it is (nix/probe.py), then imports the rest of the CLI while
Nix answers: the two take about as long, and done one after the other they were a fifth of a
warm run (benchmarks/startup.py). Only the executable and the directory are read
here, from the command line as given; cli.main reads it all, and asks again if this reading was
wrong about either (an abbreviated option, say).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nix_cache_action.nix.probe import Probe


def main() -> int:
    argv = sys.argv[1:]
    probe = early_probe(argv)
    from nix_cache_action.cli import main as run  # noqa: PLC0415 - after the probe started

    return run(argv, probe=probe)


def early_probe(argv: Sequence[str]) -> Probe | None:
    """The probe of the Nix a `build` command line names, started; None for anything else."""
    if not argv or argv[0] != "build" or "-h" in argv or "--help" in argv:
        return None
    executable = os.environ.get("NIX_CACHE_ACTION_NIX", "nix")
    directory: str | None = None
    words = iter(argv[1:])
    for word in words:
        if word == "--":
            break
        name, equals, value = word.partition("=")
        if name == "--nix":
            executable = value if equals else next(words, executable)
        elif name in ("-C", "--directory"):
            directory = value if equals else next(words, None)
        elif word.startswith("-C") and len(word) > 2:
            directory = word[2:]
    if directory is not None and not os.path.isdir(directory):  # noqa: PTH112 - no pathlib yet
        return None  # refused by cli.main, with its message
    from nix_cache_action.nix.probe import Probe  # noqa: PLC0415 - only a build asks
    from nix_cache_action.nix.process import Subprocesses  # noqa: PLC0415

    return Probe(executable, Subprocesses(cwd=directory))
