"""Files the tool writes (the report, the summary, the raw log), written without surprises.

A regular file (or a new one) is replaced atomically: written beside it, then renamed, so a
reader never sees half a report. Anything else is written in place: a symlink through to its
target (the link stays), a device such as /dev/null or a named pipe as it is, since a rename
would replace the device with a regular file. A directory is refused before anything runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
from typing import TYPE_CHECKING

from nix_cache_action.errors import InputError
from nix_cache_action.limits import utf8

if TYPE_CHECKING:
    from pathlib import Path

IS_DIRECTORY = "{path} is a directory; name a file in it, e.g. {path}/{example}"
NO_DIRECTORY = (
    "{parent} does not exist and cannot be made ({error}); name a file in a directory that exists"
)


def refuse_directory(path: Path, option: str, example: str) -> None:
    """Refuse, naming `option`, a directory where a file is meant."""
    if path.is_dir():
        raise InputError(option, IS_DIRECTORY.format(path=path, example=example))


def check_target(path: Path, option: str, example: str) -> None:
    """Refuse, naming `option`, a path no file can be written at; before the run starts."""
    refuse_directory(path, option, example)
    parent = path.resolve().parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(
                option, NO_DIRECTORY.format(parent=parent, error=error.strerror or error)
            ) from error


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` as described above; OSError when that fails (the caller says it)."""
    target = path.resolve()  # through any symlinks: the link itself stays as it is
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path} is a directory")
    data = utf8(text)
    if mode is not None and not stat.S_ISREG(mode):
        with target.open("wb") as handle:  # a device or a pipe: never renamed over
            handle.write(data)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def tolerant_streams() -> None:
    """Print any text to stdout and stderr. Under a UTF-8 locale Python's streams are strict, and
    one lone surrogate (an undecodable byte of an input or a path) would stop the step before
    its summary is written: such a character is printed as its escape instead."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


__all__ = ["check_target", "tolerant_streams", "write_text"]
