"""Real Nix for the tests in this folder: both provisioned versions, isolated stores, caches.

Every test runs against Debian's Nix 2.8 (/usr/bin/nix) and Nix 2.34 (unpacked by
scripts/provision-nix.sh), each in a store of its own under the test's tmp_path, so nothing
touches /nix or the machine's Nix configuration.

Binary caches. Store paths depend on the store directory, so a cache only serves a consumer
whose NIX_STORE_DIR is the path the cache was filled from (Nix ignores a cache whose
nix-cache-info names another StoreDir). What works, and is used here: a "producer" builds with
the shared store directory and a state directory of its own, `nix copy`s closures into
`file:///dir?secret-key=...`, then its store and state directories are deleted. Each test that
uses the caches wipes that same store directory again and starts with a fresh state directory,
so every consumer begins with an empty store at the path the caches were made for. (A fresh
state directory over a store directory that still holds the producer's files works too: Nix 2.8
and 2.34 both replace unregistered paths when they substitute them, checked here. Deleting the
files keeps each consumer's starting point plain and independent of that.)
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
HTTP_CACHE = REPO / "tests" / "support" / "http_cache.py"
# Every report a real Nix run writes is checked against the published schema.
REPORT_SCHEMA: dict[str, Any] = json.loads(
    (REPO / "src/nix_cache_action/schema/report-v1.json").read_text("utf-8")
)
FLAKES = REPO / "tests" / "fixtures" / "flakes"
SYSTEM_NIX = "/usr/bin/nix"
# Magic Nix Cache's daemon listens here; a cache on this address must be reported under its name.
MAGIC_NIX_CACHE_PORT = 37515
CLI_TIMEOUT_SECONDS = 180
# Builds run in Nix's sandbox, as on GitHub's runners; the fixtures' builders are /bin/sh, which
# Debian's static busybox stands for inside it (its applets: echo, date, head, od, ...).
SANDBOX_CONFIG = ("sandbox = true", "sandbox-paths = /bin/sh=/bin/busybox")
NO_SANDBOX_CONFIG = ("sandbox = false",)
# Determinate Nix is what GitHub users run (DeterminateSystems/nix-installer-action's default).
DETERMINATE = "det3.22"
DETERMINATE_NIX = "/opt/detnix/bin/nix"
VERSIONS = ("2.8", "2.34", DETERMINATE)

# Settings every Nix run here needs: no build users (single-user root, no daemon), no remembered
# negative narinfo answers, no evaluation cache shared between stores.
BASE_CONFIG = (
    "experimental-features = nix-command flakes",
    "build-users-group =",
    "narinfo-cache-negative-ttl = 0",
    "eval-cache = false",
)


@dataclass(frozen=True)
class NixExe:
    version: str  # "2.8", "2.34" or DETERMINATE
    path: str
    # Settings this build of Nix needs on top of BASE_CONFIG.
    config: tuple[str, ...] = ()


@dataclass(frozen=True)
class CliRun:
    """One `nix-cache-action` run: exit status, output, and the files it wrote."""

    returncode: int
    stdout: str
    stderr: str
    report_path: Path
    summary_path: Path
    log_path: Path

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.report_path.read_text(encoding="utf-8"))
        jsonschema.validate(data, REPORT_SCHEMA, cls=jsonschema.Draft202012Validator)
        return data


@dataclass
class NixEnv:
    """An isolated Nix for one test: its own store, state, logs, caches and configuration."""

    exe: NixExe
    root: Path
    store: Path
    substituters: list[str] = field(default_factory=list)
    public_keys: list[str] = field(default_factory=list)
    extra_config: list[str] = field(default_factory=list)
    # Builds go to this remote builder (max-jobs = 0); the store is then a chroot store at
    # `store`, whose store directory is /nix/store like the builder's.
    builder: RemoteBuilder | None = None
    # Off only for the fixtures whose builders need the host (a copy of /bin/sleep, /tmp).
    sandbox: bool = True

    def __post_init__(self) -> None:
        for directory in (self.state, self.logs, self.xdg_cache, self.tmp, self.conf_dir):
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def state(self) -> Path:
        return self.root / "nix-state"

    @property
    def logs(self) -> Path:
        return self.root / "nix-log"

    @property
    def xdg_cache(self) -> Path:
        # Per test: Nix remembers binary-cache answers (nix-cache-info, narinfos) in
        # $XDG_CACHE_HOME/nix, and the same URL serves different caches in different tests.
        return self.root / "xdg-cache"

    @property
    def tmp(self) -> Path:
        # Nix 2.8 puts build directories (and, with --keep-failed, failed ones) under $TMPDIR.
        if self.builder is not None:
            # Determinate Nix keeps its ssh master connection's socket there, and a socket's
            # path has at most 107 bytes: a pytest tmp_path is too long for it.
            return Path("/tmp") / f"nca-{self.root.name[-40:]}"
        return self.root / "tmp"

    @property
    def conf_dir(self) -> Path:
        return self.root / "etc-nix"

    def config(self) -> str:
        own = self.exe.config if self.builder is None else ()
        # With a builder, local builds are only a check's rebuild (max-jobs = 0 otherwise); they
        # run in the chroot store, whose builds need the sandbox's /bin/sh too.
        sandbox = SANDBOX_CONFIG if self.sandbox else NO_SANDBOX_CONFIG
        lines = [*BASE_CONFIG, *sandbox, *own, f"substituters = {' '.join(self.substituters)}"]
        if self.builder is not None:
            lines += [
                f"store = {self.store}",
                f"builders = ssh-ng://{RemoteBuilder.HOST} x86_64-linux",
                "max-jobs = 0",
                *self.builder.hook_config(self.exe),
            ]
        if self.public_keys:
            lines.append(f"trusted-public-keys = {' '.join(self.public_keys)}")
        lines.extend(self.extra_config)
        return "\n".join(lines) + "\n"

    def environ(self, path: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NIX_") and k != "TMPDIR"}
        if self.builder is None:
            env.update(
                NIX_STORE_DIR=str(self.store),
                NIX_STATE_DIR=str(self.state),
                NIX_LOG_DIR=str(self.logs),
            )
        else:
            env["NIX_SSHOPTS"] = f"-F {self.builder.ssh_config}"
        env.update(
            # Neither /etc/nix/nix.conf nor the user's nix.conf: only NIX_CONFIG counts.
            NIX_CONF_DIR=str(self.conf_dir),
            NIX_USER_CONF_FILES=str(self.conf_dir / "user.conf"),
            NIX_CONFIG=self.config(),
            XDG_CACHE_HOME=str(self.xdg_cache),
            TMPDIR=str(self.tmp),
            PYTHONPATH=str(REPO / "src"),
        )
        if path is not None:
            env["PATH"] = path
        return env

    def nix(
        self, *args: str, cwd: Path | None = None, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run this Nix directly (set-up and cross-checks, not the code under test)."""
        done = subprocess.run(
            [self.exe.path, "--extra-experimental-features", "nix-command flakes", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            env=self.environ(),
            timeout=CLI_TIMEOUT_SECONDS,
        )
        if check and done.returncode != 0:
            pytest.fail(f"nix {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done

    def path_info(self, installable: str, cwd: Path) -> dict[str, Any]:
        """{path: info} from `nix path-info --json`, whatever shape this version prints."""
        flags = ["--json", "--json-format", "1"] if self.exe.version == "2.34" else ["--json"]
        raw = json.loads(self.nix("path-info", *flags, installable, cwd=cwd).stdout)
        if isinstance(raw, list):  # Nix 2.8 to 2.18
            return {item["path"]: item for item in raw}
        return {path: info for path, info in raw.items() if info is not None}

    def flake(self, name: str, replacements: Mapping[str, str] | None = None) -> Path:
        """A copy of a fixture flake in tmp_path (Nix writes flake.lock next to flake.nix)."""
        target = self.root / "flakes" / name
        shutil.copytree(FLAKES / name, target)
        if replacements:
            flake_nix = target / "flake.nix"
            text = flake_nix.read_text(encoding="utf-8")
            for old, new in replacements.items():
                text = text.replace(old, new)
            flake_nix.write_text(text, encoding="utf-8")
        return target

    def cli_argv(self, *args: str, name: str = "run", nix: str | None = None) -> list[str]:
        out = self.root / "out" / name
        command, *rest = args
        extra: list[str] = []
        if command == "build":
            extra = ["--nix", nix or self.exe.path, "--log", str(out / "nix.log")]
        return [
            sys.executable,
            "-m",
            "nix_cache_action",
            command,
            *rest,
            *extra,
            "--report",
            str(out / "report.json"),
            "--summary",
            str(out / "summary.md"),
        ]

    def cli(
        self,
        *args: str,
        cwd: Path,
        name: str = "run",
        nix: str | None = None,
        path: str | None = None,
    ) -> CliRun:
        """`python -m nix_cache_action ARGS` in `cwd`; --nix, --log, --report, --summary added."""
        argv = self.cli_argv(*args, name=name, nix=nix)
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            env=self.environ(path),
            timeout=CLI_TIMEOUT_SECONDS,
        )
        return self.cli_result(name, done.returncode, done.stdout, done.stderr)

    def cli_result(self, name: str, returncode: int, stdout: str, stderr: str) -> CliRun:
        out = self.root / "out" / name
        return CliRun(
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            report_path=out / "report.json",
            summary_path=out / "summary.md",
            log_path=out / "nix.log",
        )


# --- Nix executables ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nix_executables() -> dict[str, NixExe]:
    """Provision the three Nix versions (idempotent, ~1 s when done already)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "provision-nix.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/provision-nix.sh failed:\n{done.stderr[-3000:]}")
    wrapper_dir = Path(done.stdout.strip().splitlines()[-1])
    return {
        "2.8": NixExe("2.8", SYSTEM_NIX),
        "2.34": NixExe("2.34", str(wrapper_dir / "nix")),
        # Unpacked outside its own store layout, it cannot start itself as the build hook.
        DETERMINATE: NixExe(DETERMINATE, DETERMINATE_NIX, ("build-hook =",)),
    }


@pytest.fixture(params=VERSIONS, ids=[f"nix{v}" for v in VERSIONS])
def nix_exe(request: pytest.FixtureRequest, nix_executables: dict[str, NixExe]) -> NixExe:
    version: str = request.param
    exe = nix_executables[version]
    if version == DETERMINATE and not Path(exe.path).is_file():
        # scripts/provision-nix.sh fails without it unless told to do without (GitHub's
        # runners, which have no copy of the shared tools).
        assert os.environ.get("NCA_WITHOUT_DETERMINATE") == "1", f"{exe.path} is missing"
        pytest.skip("NCA_WITHOUT_DETERMINATE=1: no Determinate Nix on this machine")
    return exe


@pytest.fixture
def nix_env(nix_exe: NixExe, tmp_path: Path) -> NixEnv:
    """A Nix of the parametrized version with an empty store of its own and no caches."""
    return NixEnv(exe=nix_exe, root=tmp_path, store=tmp_path / "store")


# --- a remote builder -------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteBuilder:
    """sshd on 127.0.0.1 in front of the machine's own Nix (Debian's nix-daemon on /nix/store),
    reached as `ssh-ng://HOST` through an ssh config file of its own."""

    HOST = "nca-builder"
    ssh_config: Path

    def hook_config(self, exe: NixExe) -> list[str]:
        # 2.8 finds its own hook; the unpacked 2.34 and Determinate Nix must be told (their
        # usual setting turns the hook off, see NixExe.config).
        if exe.version == "2.8":
            return []
        return [f"build-hook = {exe.path} __build-remote"]


@pytest.fixture(scope="session")
def remote_builder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteBuilder]:
    base = tmp_path_factory.mktemp("remote-builder")
    for name in ("client", "host"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)], check=True
        )
    shutil.copy(base / "client.pub", base / "authorized_keys")
    port = free_port()
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "UsePAM no\nStrictModes no\n"
        # The builder asks no cache (there is no network) and finds Nix on PATH.
        'SetEnv PATH=/usr/bin:/bin "NIX_CONFIG=substituters ="\n',
        encoding="utf-8",
    )
    ssh_config = base / "ssh_config"
    ssh_config.write_text(
        f"Host {RemoteBuilder.HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
        f"  IdentityFile {base / 'client'}\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
        encoding="utf-8",
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", str(base / "sshd_config"), "-E", str(base / "sshd.log")]
    )
    try:
        wait_until(lambda: _port_open(port) or proc.poll() is not None, 30, f"sshd on {port}")
        if proc.poll() is not None:
            pytest.fail(f"sshd exited: {(base / 'sshd.log').read_text(encoding='utf-8')}")
        yield RemoteBuilder(ssh_config)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def remote_env(nix_exe: NixExe, remote_builder: RemoteBuilder, tmp_path: Path) -> NixEnv:
    """A Nix of the parametrized version whose builds all go to the remote builder."""
    return NixEnv(exe=nix_exe, root=tmp_path, store=tmp_path / "chroot", builder=remote_builder)


# --- binary caches --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def static_server(directory: Path, port: int) -> Iterator[str]:
    """tests/support/http_cache.py serving `directory` on `port`, in a process of its own (the
    caches outlive a test's threads); yields its URL."""
    # Another run (tests/logs/record.sh, say) may hold Magic Nix Cache's port for a moment.
    wait_until(lambda: not _port_open(port), 60, f"port {port} to be free")
    proc = subprocess.Popen(
        [sys.executable, str(HTTP_CACHE), str(directory), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _port_open(port) or proc.poll() is not None, 30, f"port {port}")
        if proc.poll() is not None:
            pytest.fail(f"http.server on port {port} exited with {proc.returncode}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass(frozen=True)
class Cache:
    url: str
    directory: Path
    paths: frozenset[str]  # every store path it holds

    @property
    def name(self) -> str:
        return self.url.removeprefix("http://")

    def narinfo(self, store_path: str) -> dict[str, str]:
        hash_part = store_path.rsplit("/", 1)[-1].split("-", 1)[0]
        text = (self.directory / f"{hash_part}.narinfo").read_text(encoding="utf-8")
        return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


@dataclass(frozen=True)
class Caches:
    """Two signed HTTP binary caches, filled from the dag and outcomes fixture flakes.

    magic (127.0.0.1:37515, Magic Nix Cache's address): the closure of dag's node-2-0, and
    outcomes' nondet. other (a free port): the closure of dag's node-2-3. The two closures are
    disjoint by the dag's construction (see its flake.nix).
    """

    store: Path  # the store directory every consumer of these caches must use
    magic: Cache
    other: Cache
    public_key: str

    def env(self, exe: NixExe, root: Path, *caches: Cache) -> NixEnv:
        """A consumer: the caches' store directory, emptied; fresh state; `caches` configured."""
        shutil.rmtree(self.store, ignore_errors=True)
        return NixEnv(
            exe=exe,
            root=root,
            store=self.store,
            substituters=[c.url for c in caches],
            public_keys=[self.public_key],
        )


@pytest.fixture(scope="module")  # module: Magic Nix Cache's port is free again after it
def caches(
    nix_executables: dict[str, NixExe], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Caches]:
    base = tmp_path_factory.mktemp("caches")
    store = base / "store"
    producer = NixEnv(exe=nix_executables["2.8"], root=base / "producer", store=store)
    secret = base / "secret.key"
    secret.write_text(producer.nix("key", "generate-secret", "--key-name", "test-1").stdout)
    public_key = producer.nix(
        "key", "convert-secret-to-public", stdin=secret.read_text()
    ).stdout.strip()
    dag, outcomes = producer.flake("dag"), producer.flake("outcomes")

    def fill(directory: Path, *items: tuple[Path, str]) -> frozenset[str]:
        paths: set[str] = set()
        for flake, attr in items:
            producer.nix("copy", "--to", f"file://{directory}?secret-key={secret}", attr, cwd=flake)
            paths.update(producer.nix("path-info", "-r", attr, cwd=flake).stdout.split())
        return frozenset(paths)

    magic_paths = fill(base / "magic", (dag, ".#node-2-0"), (outcomes, ".#nondet"))
    other_paths = fill(base / "other", (dag, ".#node-2-3"))
    # The producer's store goes: consumers must fetch from the caches, not find files in place.
    shutil.rmtree(store)
    shutil.rmtree(producer.root)
    with (
        static_server(base / "magic", MAGIC_NIX_CACHE_PORT) as magic_url,
        static_server(base / "other", free_port()) as other_url,
    ):
        yield Caches(
            store=store,
            magic=Cache(magic_url, base / "magic", magic_paths),
            other=Cache(other_url, base / "other", other_paths),
            public_key=public_key,
        )


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    """Answers narinfo requests with a fixed HTTP error; nix-cache-info too when told to. With
    a cache directory, it serves the cache's own files and fails only the NAR downloads (or,
    slow, serves them all and answers each narinfo after a delay)."""

    server: FaultServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        directory = self.server.directory
        if self.server.narinfo_delay and self.path.endswith(".narinfo"):
            time.sleep(self.server.narinfo_delay)
        if directory is not None and self.server.corrupt and self.path.startswith("/nar/"):
            # The NAR itself, with bytes in its middle flipped: it does not unpack.
            file = directory / self.path.lstrip("/")
            data = bytearray(file.read_bytes() if file.is_file() else b"")
            for index in range(len(data) // 3, min(len(data), len(data) // 3 + 16)):
                data[index] ^= 0xFF
            body = bytes(data)
            self.send_response(200 if file.is_file() else 404)
        elif directory is not None and (
            not self.path.startswith("/nar/") or self.server.narinfo_delay
        ):
            file = directory / self.path.lstrip("/")
            found = file.is_file() and file.resolve().is_relative_to(directory.resolve())
            body = file.read_bytes() if found else b"not found\n"
            self.send_response(200 if found else 404)
        elif self.path == "/nix-cache-info" and not self.server.fail_cache_info:
            body = f"StoreDir: {self.server.store}\nWantMassQuery: 1\nPriority: 30\n".encode()
            self.send_response(200)
        else:
            body = b"no narinfo for you\n"
            self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Quiet: the requests are kept in `server.requests`."""


class FaultServer(http.server.ThreadingHTTPServer):
    def __init__(  # noqa: PLR0913 - one keyword per kind of fault
        self,
        store: Path,
        status: int,
        *,
        fail_cache_info: bool = False,
        directory: Path | None = None,
        corrupt: bool = False,
        narinfo_delay: float = 0.0,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.store = store
        self.status = status
        self.fail_cache_info = fail_cache_info
        self.directory = directory
        self.corrupt = corrupt
        self.narinfo_delay = narinfo_delay
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class FaultServers:
    """Starts fault servers for one test and stops them after it."""

    def __init__(self) -> None:
        self._running: list[tuple[FaultServer, threading.Thread]] = []

    def start(self, store: Path, status: int, *, fail_cache_info: bool = False) -> FaultServer:
        """A cache for `store` that answers every .narinfo (and, if told, nix-cache-info) with
        `status`."""
        return self._serve(FaultServer(store, status, fail_cache_info=fail_cache_info))

    def start_nar_failing(self, cache: Cache, status: int) -> FaultServer:
        """A copy of `cache` whose narinfos are fine and whose every NAR answers `status`."""
        return self._serve(FaultServer(Path("/unused"), status, directory=cache.directory))

    def start_corrupt(self, cache: Cache) -> FaultServer:
        """A copy of `cache` whose narinfos are fine and whose every NAR is corrupt."""
        return self._serve(
            FaultServer(Path("/unused"), 200, directory=cache.directory, corrupt=True)
        )

    def start_slow(self, cache: Cache, delay: float) -> FaultServer:
        """A copy of `cache` that serves everything and answers each narinfo after `delay`."""
        return self._serve(
            FaultServer(Path("/unused"), 200, directory=cache.directory, narinfo_delay=delay)
        )

    def _serve(self, server: FaultServer) -> FaultServer:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self._running.append((server, thread))
        return server

    def stop(self) -> None:
        for server, thread in self._running:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


@pytest.fixture
def faults() -> Iterator[FaultServers]:
    servers = FaultServers()
    try:
        yield servers
    finally:
        servers.stop()
