"""A local stand-in for GitHub's REST API: Prism serving GitHub's own OpenAPI description.

Prism answers each documented endpoint with the description's example and answers a request
that breaks the schema with 422 (`--errors`), so a request our code builds wrongly fails here
as it would on GitHub. It is started once per session, only when a test asks for it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVISION_SCRIPT = REPO_ROOT / "scripts" / "provision-node.sh"
SPEC = Path("node_modules/@octokit/openapi/generated/api.github.com.json")
PRISM = Path("node_modules/.bin/prism")
# npm install of both packages takes about 10 s here; a slow registry may take minutes.
PROVISION_TIMEOUT_SECONDS = 900
# Prism reads the 13 MB description before it listens: seconds to half a minute here.
PRISM_START_TIMEOUT_SECONDS = 180
PRISM_STOP_TIMEOUT_SECONDS = 10


def _node_dir() -> Path:
    """Where provision-node.sh put Prism and the description (it runs it, quick if done)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.fail("bash is needed to run scripts/provision-node.sh")
    done = subprocess.run(
        [bash, str(PROVISION_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=PROVISION_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/provision-node.sh failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        pytest.fail("scripts/provision-node.sh printed no directory")
    return Path(lines[-1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http URL
            return bool(response.status)
    except urllib.error.HTTPError:
        return True  # an HTTP error is still an answer
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a Prism mock of api.github.com, for the whole session."""
    node_dir = _node_dir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    argv = [
        str(node_dir / PRISM),
        "mock",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--errors",
        str(node_dir / SPEC),
    ]
    # Prism logs every route it loads and every request: to a file, since a pipe nobody reads
    # would fill and stall it.
    with log.open("wb") as out:
        launched = time.monotonic()
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"}
        )
    try:
        while not _answers(url + "/"):
            if process.poll() is not None:
                pytest.fail(f"Prism exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() - launched > PRISM_START_TIMEOUT_SECONDS:
                pytest.fail(f"Prism did not answer within {PRISM_START_TIMEOUT_SECONDS} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=PRISM_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:])
