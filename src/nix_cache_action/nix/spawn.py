"""Starting a command whose log is read as it comes (a build): kept apart from nix/process.py,
which runs everything else, so that start.py can start a run's build before it imports anything.

start.py starts it with `os.posix_spawnp` where it can (`spawn_streamed`): importing
`subprocess` (threading, selectors, signal handling) took 6 ms before the build could start, a
third of the time from the CLI's own start to its build's. Where a directory is given, or
`posix_spawn` cannot start it as Popen would (`_spawned`), `subprocess.Popen` starts it.
"""

from __future__ import annotations

import os
import signal

TYPE_CHECKING = False  # typing itself costs 3 ms to import, before the build has started
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import IO, Protocol

    class StreamedProcess(Protocol):
        """What the runner uses of a started command: a `subprocess.Popen` or a `Spawned`."""

        pid: int
        returncode: int | None
        stdout: IO[bytes] | None
        stderr: IO[bytes] | None

        def poll(self) -> int | None: ...

        def wait(self, timeout: float | None = None) -> int: ...

        def kill(self) -> None: ...


# A waited-for child ends within these steps, doubling (as subprocess waits with a timeout).
_FIRST_WAIT, _LONGEST_WAIT = 0.0005, 0.05


def popen_streamed(
    args: Sequence[str], *, cwd: Path | str | None, env: Mapping[str, str] | None
) -> StreamedProcess:
    """A command with both streams piped, in its own process group: a build's builders are
    stopped with it (process.stop). Raises OSError (no such executable, say) or ValueError
    when it cannot start."""
    import subprocess  # noqa: PLC0415 - see spawn_streamed

    try:
        return subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except subprocess.SubprocessError as exc:
        raise OSError(f"could not start {args[0]}: {exc}") from exc


def spawn_streamed(
    args: Sequence[str], environ: Mapping[str, str], *, cwd: str | None
) -> StreamedProcess:
    """`popen_streamed` in `cwd` (None: here), with this process's own environment `environ`
    (os.environ, handed on by start.py), started by `os.posix_spawnp` where it can start it
    as Popen would: here, and where this system can start a new session with it. `args[0]`
    is looked up on this process's PATH, as Popen looks it up when given no environment."""
    if cwd is not None:
        return popen_streamed(args, cwd=cwd, env=None)  # posix_spawn cannot change directory
    if hasattr(os, "posix_spawnp"):
        try:
            return _spawned(list(args), environ)
        except NotImplementedError:
            pass  # no new session through posix_spawn here (an older macOS)
    return popen_streamed(args, cwd=None, env=None)


def _spawned(args: list[str], environ: Mapping[str, str]) -> Spawned:
    """`args` started as `subprocess.Popen` starts it here: stdout and stderr piped, in a
    session of its own, SIGPIPE and SIGXFSZ as their defaults (Python ignores SIGPIPE), and
    none of this process's descriptors but the three standard ones."""
    # Descriptors that cannot be listed, or a standard stream this process was started without
    # (a pipe took its number): Popen handles both.
    inherited = _inherited()
    if inherited is None:
        raise NotImplementedError
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    if min(out_write, err_write) <= 2:
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
        raise NotImplementedError
    try:
        # The pipes are not inherited (os.pipe's are close-on-exec); dup2 makes their copies
        # on 1 and 2 inherited. Anything else inherited is closed, as Popen's close_fds does.
        actions = [
            (os.POSIX_SPAWN_DUP2, out_write, 1),
            (os.POSIX_SPAWN_DUP2, err_write, 2),
            *((os.POSIX_SPAWN_CLOSE, fd) for fd in inherited),
        ]
        pid = os.posix_spawnp(
            args[0],
            args,
            environ,
            file_actions=actions,
            setsid=True,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        for fd in (out_write, err_write):
            os.close(fd)
    return Spawned(args, pid, os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb"))


def _inherited() -> list[int] | None:
    """This process's descriptors above 2 that a child would inherit; None when this system
    cannot list them."""
    try:
        names = os.listdir("/dev/fd")  # noqa: PTH208 - pathlib is not imported yet
    except OSError:
        return None
    found = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            pass  # the listing's own descriptor, closed by now
    return found


class Spawned:
    """A command started by `os.posix_spawnp`, with the part of `subprocess.Popen` the runner
    uses: its pipes, `poll`, `wait` (a timeout raises subprocess.TimeoutExpired) and `kill`.
    Waited for by one thread only (the run's), unlike Popen, which locks."""

    def __init__(self, args: list[str], pid: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.args = args
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reaped(os.WNOHANG)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                self._reaped(0)
            return self.returncode
        import time  # noqa: PLC0415 - imported by the CLI long before a stop waits

        deadline = time.monotonic() + timeout
        delay = _FIRST_WAIT
        while self.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                import subprocess  # noqa: PLC0415 - its error, as Popen.wait raises it

                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, _LONGEST_WAIT)
        assert self.returncode is not None  # noqa: S101 - poll() set it
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:  # noqa: SIM105 - contextlib is not imported before the build starts
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # ended meanwhile: reaped by the next poll or wait

    def _reaped(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:
            # Reaped elsewhere (SIGCHLD ignored, say): its status is lost, and it no longer
            # runs. 0, as Popen says then; the run reads the build's outcome from its output.
            if self.returncode is None:
                self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)
