"""The build start.py starts before the CLI imports `subprocess` (nix/spawn.py): started by
`os.posix_spawnp` on a real child, it must be what `subprocess.Popen` would have started, and
answer the runner as a Popen does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nix_cache_action.nix.process import stop
from nix_cache_action.nix.spawn import Spawned, spawn_streamed


def spawned(code: str) -> Spawned:
    proc = spawn_streamed([sys.executable, "-c", code], os.environ, cwd=None)
    assert isinstance(proc, Spawned)  # posix_spawn, not the Popen it falls back to
    return proc


def test_both_streams_are_piped_and_the_status_is_popens() -> None:
    proc = spawned("import sys; print('out'); sys.stderr.write('err'); sys.exit(3)")
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert (proc.stdout.read(), proc.stderr.read()) == (b"out\n", b"err")
    assert proc.wait() == 3
    assert proc.poll() == proc.returncode == 3


def test_the_child_leads_a_session_of_its_own() -> None:
    proc = spawned("import os; print(os.getsid(0) == os.getpid() == os.getpgid(0))")
    assert proc.stdout is not None
    # process.stop signals its whole group, builders included.
    assert proc.stdout.read() == b"True\n"
    assert proc.wait() == 0


def ignored_signals(proc: Spawned | subprocess.Popen[bytes]) -> int:
    """The SigIgn mask of a `cat /proc/self/status` (ignored signals survive its exec)."""
    assert proc.stdout is not None
    status = proc.stdout.read().decode()
    proc.wait()
    return int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn")), 16
    )


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_the_child_ignores_the_signals_popen_leaves_it_to_ignore_and_not_sigpipe() -> None:
    # Python ignores SIGPIPE; a Nix that ignored it would not die of a closed pipe.
    argv = ["cat", "/proc/self/status"]
    spawned_mask = ignored_signals(spawn_streamed(argv, os.environ, cwd=None))  # type: ignore[arg-type]
    popen_mask = ignored_signals(subprocess.Popen(argv, stdout=subprocess.PIPE))
    assert not spawned_mask & (1 << (signal.SIGPIPE - 1))
    # The rest as Popen leaves them; below SIGRTMIN, where glibc keeps two signals of its own
    # that its posix_spawn ignores until the program's C library sets them up.
    standard = (1 << (signal.SIGRTMIN - 3)) - 1
    assert spawned_mask & standard == popen_mask & standard


def test_no_descriptor_of_this_process_but_the_standard_three_is_inherited() -> None:
    kept, other = os.pipe()
    os.set_inheritable(kept, True)  # noqa: FBT003 - a descriptor a parent handed on, say
    try:
        proc = spawned(
            "import os, sys\n"
            f"fd = {kept}\n"
            "try:\n"
            "    os.fstat(fd)\n"
            "except OSError:\n"
            "    print('closed')\n"
            "else:\n"
            "    print('open')\n"
        )
        assert proc.stdout is not None
        assert proc.stdout.read() == b"closed\n"
        assert proc.wait() == 0
    finally:
        os.close(kept)
        os.close(other)


def test_the_environment_and_the_executable_are_this_processs() -> None:
    os.environ["NCA_SPAWN_TEST"] = "handed on"
    try:
        # A bare name, looked up on PATH as Popen does.
        proc = spawn_streamed(["env"], os.environ, cwd=None)
        assert proc.stdout is not None
        assert b"NCA_SPAWN_TEST=handed on\n" in proc.stdout.read()
        assert proc.wait() == 0
    finally:
        del os.environ["NCA_SPAWN_TEST"]


def test_a_missing_executable_is_refused_as_popen_refuses_it() -> None:
    with pytest.raises(FileNotFoundError):
        spawn_streamed(["/nonexistent/nix", "build"], os.environ, cwd=None)
    with pytest.raises(FileNotFoundError):
        subprocess.Popen(["/nonexistent/nix", "build"])


def test_a_wait_with_a_timeout_times_out_and_a_stop_ends_the_whole_group() -> None:
    # The child starts a grandchild in its group and both sleep: stop() must end both.
    proc = spawned(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    began = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.2)
    assert time.monotonic() - began >= 0.2
    assert proc.poll() is None

    stop(proc)

    assert proc.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the grandchild outlived the stop of its group")


def test_a_kill_is_reaped_as_popen_reports_it() -> None:
    proc = spawned("import time; time.sleep(60)")
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    proc.kill()  # once ended, a second kill does nothing
    assert proc.poll() == -signal.SIGKILL


def test_where_posix_spawn_cannot_start_a_session_popen_starts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unsupported(*_args: object, **_kwargs: object) -> int:
        raise NotImplementedError  # what os.posix_spawnp raises for setsid on an older macOS

    monkeypatch.setattr(os, "posix_spawnp", unsupported)
    proc = spawn_streamed([sys.executable, "-c", "print('out')"], os.environ, cwd=None)
    assert isinstance(proc, subprocess.Popen)
    assert proc.stdout is not None
    assert proc.stdout.read() == b"out\n"
    assert proc.wait() == 0


def test_a_child_reaped_elsewhere_ends_as_popen_says_it_did() -> None:
    # With SIGCHLD ignored, the system reaps children itself and their status is lost.
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        proc = spawned("import sys; sys.exit(5)")
        assert proc.wait() == 0
        assert proc.poll() == 0
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_nothing_start_py_imports_before_the_build_starts_imports_subprocess() -> None:
    # Importing it took 6 ms before the build could start.
    code = (
        "import sys\n"
        "import nix_cache_action.start, nix_cache_action.nix.probe, nix_cache_action.nix.spawn\n"
        "print('subprocess' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"


def test_a_build_in_another_directory_is_started_there_by_popen(tmp_path: Path) -> None:
    # posix_spawn cannot change directory: `-C DIR` builds are started as before.
    proc = spawn_streamed(
        [sys.executable, "-c", "import os; print(os.getcwd())"], os.environ, cwd=str(tmp_path)
    )
    assert isinstance(proc, subprocess.Popen)
    assert proc.stdout is not None
    assert proc.stdout.read().decode().strip() == str(tmp_path)
    assert proc.wait() == 0
