"""A stand-in for `nix`: the real Debian Nix 2.8 in an isolated store, misbehaving on purpose.

Put on PATH as `nix` (for the action) or passed with `--nix` (the CLI), through a small shell
wrapper that the hostile tier's conftest writes. Every call runs the REAL /usr/bin/nix (or
NCA_HOSTILE_REAL_NIX) with a store, state, log and configuration of its own under
NCA_HOSTILE_ROOT, the way tests/nix/conftest.py isolates Nix (NIX_STORE_DIR, NIX_STATE_DIR,
NIX_LOG_DIR, NIX_CONF_DIR, NIX_USER_CONF_FILES, XDG_CACHE_HOME and NIX_CONFIG with flakes on, no
sandbox, no build users, no substituters). Whatever NIX_CONFIG the caller had comes first, so a
malformed line in it still reaches Nix.

NCA_HOSTILE_MODE says how to misbehave, NCA_HOSTILE_WHEN for which kind of call (`build`,
`rebuild`, `eval` for `path-info --derivation`, `path-info` for `path-info --json`, `outputs`
for a plain `path-info`, `version`, `config`, `derivation`, `hash`, or `any`), and
NCA_HOSTILE_MATCH, when set, limits it to calls whose argv holds that text. Every call is
appended to NCA_HOSTILE_CALLS (one JSON argv per line) when that is set; NCA_HOSTILE_READY is a
file touched when a `hang` starts, so a test knows when to send its signal.

Only the standard library: it runs under `python -S`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Run as a script, this folder is sys.path[0]; mypy names it from the repository's root.
if TYPE_CHECKING:
    from tests.hostile.hostile_payloads import PAYLOADS
else:
    from hostile_payloads import PAYLOADS

REAL_NIX = os.environ.get("NCA_HOSTILE_REAL_NIX", "/usr/bin/nix")
ISOLATION = (
    "experimental-features = nix-command flakes",
    "sandbox = false",
    "build-users-group =",
    "substituters =",
    "narinfo-cache-negative-ttl = 0",
    "eval-cache = false",
)
HUGE = 20_000_000


def isolated_env() -> dict[str, str]:
    env = dict(os.environ)
    root = Path(env.get("NCA_HOSTILE_ROOT", "/tmp/nca-hostile-nix"))
    for name, sub in (
        ("NIX_STORE_DIR", "store"),
        ("NIX_STATE_DIR", "state"),
        ("NIX_LOG_DIR", "log"),
        ("NIX_CONF_DIR", "etc"),
        ("XDG_CACHE_HOME", "xdg-cache"),
    ):
        env[name] = str(root / sub)
        (root / sub).mkdir(parents=True, exist_ok=True)
    env["NIX_USER_CONF_FILES"] = str(root / "etc" / "user.conf")
    before = env.get("NIX_CONFIG", "")
    env["NIX_CONFIG"] = (before.rstrip("\n") + "\n" if before else "") + "\n".join(ISOLATION)
    return env


def kind(argv: list[str]) -> str:  # noqa: PLR0911 - one answer per kind of call
    words = [a for a in argv if not a.startswith("-")]
    if "--version" in argv:
        return "version"
    if "build" in words:
        return "rebuild" if "--rebuild" in argv else "build"
    if "path-info" in words:
        if "--derivation" in argv:
            return "eval"
        return "path-info" if "--json" in argv else "outputs"
    if "show-config" in words or "config" in words:
        return "config"
    if "show-derivation" in words or "derivation" in words:
        return "derivation"
    if "hash" in words:
        return "hash"
    return "other"


def err(data: bytes | str) -> None:
    sys.stderr.buffer.write(data.encode() if isinstance(data, str) else data)
    sys.stderr.buffer.flush()


def out(data: bytes | str) -> None:
    sys.stdout.buffer.write(data.encode() if isinstance(data, str) else data)
    sys.stdout.buffer.flush()


def record(obj: object) -> str:
    return "@nix " + json.dumps(obj, separators=(",", ":")) + "\n"


def run_real(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """The real Nix with stderr passed through and stdout kept for the caller to change."""
    return subprocess.run([REAL_NIX, *argv], env=env, stdout=subprocess.PIPE, check=False)


def exec_real(argv: list[str], env: dict[str, str]) -> None:
    os.execve(REAL_NIX, [REAL_NIX, *argv], env)  # noqa: S606 - the real Nix, an argv list


BROKEN_RECORDS: dict[str, bytes] = {
    "truncated": b'@nix {"action":"start","id":12,"level":3,"text":"building',
    "list": b"@nix []",
    "string": b'@nix "hello"',
    "wrong-types": b'@nix {"action":"start","id":"x","level":"3","type":"105","fields":"zzz"}',
    "wrong-fields": b'@nix {"action":"result","id":1,"type":101,"fields":[null,{}]}',
    "msg-list": b'@nix {"action":"msg","level":"error","msg":["PWNED"]}',
    "stop-object": b'@nix {"action":"stop","id":{}}',
    "nan": b'@nix {"action":"result","id":NaN,"type":105,"fields":[Infinity,-Infinity,1e999,0]}',
    "nested": b"@nix " + b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "bytes": b'@nix {"action":"msg","level":3,"msg":"\xff\xfe\x00\x1b[31m"}',
    "empty": b"@nix ",
    "null-id": b'@nix {"action":"start","id":null,"type":null,"fields":[null]}',
    "huge-id": b'@nix {"action":"start","id":' + b"9" * 5000 + b',"type":105,"fields":["x"]}',
}

JSON_STDOUT: dict[str, bytes] = {
    "whitespace": b"  \n\t \n",
    "empty-list": b"[]\n",
    "string": b'"x"\n',
    "object": b"{}\n",
    "null": b"null\n",
    "invalid": b'[{"drvPath": \n',
    "nothing": b"",
    "bytes": b"\xff\xfe\x00\n",
    "wrong-types": b'[{"drvPath": 5, "outputs": []}, 7, null]\n',
    "nested": b"[" * 100_000 + b"]" * 100_000 + b"\n",
}


def misbehave(mode: str, argv: list[str], env: dict[str, str]) -> None:  # noqa: C901, PLR0912, PLR0915
    name, _, variant = mode.partition(":")
    if name == "inject":
        # Attacker text from a build, as plain lines and as Nix's own messages; then a real run.
        for payload in PAYLOADS.values():
            err(payload + "\n")
            err(record({"action": "msg", "level": 3, "msg": payload}))
        exec_real(argv, env)
    elif name == "inject-fail":
        # Nix fails, and its error quotes the attacker's text.
        for payload in PAYLOADS.values():
            err(record({"action": "msg", "level": 0, "msg": f"error: {payload}"}))
            err(payload + "\n")
        sys.exit(1)
    elif name == "quote-config":
        # Nix quoting its configuration back, as it does for a setting it cannot use.
        quoted = " | ".join(os.environ.get("NIX_CONFIG", "").splitlines()[:4])
        err(record({"action": "msg", "level": 0, "msg": f"error: cannot use settings {quoted}"}))
        err(f"error: cannot use settings {quoted}\n")
        sys.exit(1)
    elif name == "error-bytes":
        err(b'@nix {"action":"msg","level":0,"msg":"error: bad \xff\xfe bytes from Nix"}\n')
        err(b"error: plain \xff\xfe\x00 bytes\n")
        sys.exit(1)
    elif name == "trace-bytes":
        err(b'@nix {"action":"msg","level":0,"msg":"trace: \xff\xfe not UTF-8"}\n')
        exec_real(argv, env)
    elif name == "plain-bytes":
        err(b"\xff\xfe\x00\x1b[31mplain bytes\r\n")
        exec_real(argv, env)
    elif name == "broken":
        err(BROKEN_RECORDS[variant] + b"\n")
        exec_real(argv, env)
    elif name == "json":
        done = run_real(argv, env)
        if done.returncode != 0:
            out(done.stdout)
            sys.exit(done.returncode)
        if variant == "output-number":
            # Nix's own answer, with every output's path a number.
            entries = json.loads(done.stdout)
            for entry in entries:
                entry["outputs"] = dict.fromkeys(entry.get("outputs") or {"out": 0}, 5)
            out(json.dumps(entries).encode() + b"\n")
        else:
            out(JSON_STDOUT[variant])
        sys.exit(0)
    elif name == "signal":
        signum = getattr(signal, variant or "SIGSEGV")
        if "after" in env.get("NCA_HOSTILE_SIGNAL_WHEN", ""):
            done = run_real(argv, env)
            out(done.stdout)
        if signum != signal.SIGKILL:  # SIGKILL has no handler to reset, and needs none
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(5)
        sys.exit(99)
    elif name == "huge-line":
        err(b"y" * HUGE + b"\n")
        exec_real(argv, env)
    elif name == "huge-error":
        err(record({"action": "msg", "level": 0, "msg": "error: " + "z" * HUGE}))
        sys.exit(1)
    elif name == "hang":
        err(record({"action": "start", "id": 1, "level": 3, "type": 0, "text": "hanging"}))
        ready = env.get("NCA_HOSTILE_READY")
        if ready:
            Path(ready).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(600)
        sys.exit(98)
    elif name == "garbage":
        out(b"\xff\xfe garbage \x00\n")
        sys.exit(0)
    elif name == "empty":
        sys.exit(0)
    elif name == "fail":
        err(b"error: the stand-in was told to fail\n")
        sys.exit(1)
    elif name == "eval-garbage":
        out(b"not-a-store-path\n")
        sys.exit(0)
    elif name == "path-info":
        done = run_real(argv, env)
        out(_corrupt_path_info(done.stdout, variant))
        sys.exit(done.returncode)
    else:
        err(f"standin_nix: unknown NCA_HOSTILE_MODE {mode!r}\n")
        sys.exit(97)


def _corrupt_path_info(stdout: bytes, variant: str) -> bytes:
    if variant == "not-json":
        return b"<html>not json</html>\n"
    if variant == "string":
        return b'"x"\n'
    data = json.loads(stdout or b"null")
    entries = data if isinstance(data, list) else list((data or {}).values())
    for entry in entries:
        if isinstance(entry, dict):
            entry["narHash"] = 12345 if variant == "wrong-types" else {"x": 1}
            entry["narSize"] = "big"
    return json.dumps(data).encode() + b"\n"


def main() -> None:
    argv = sys.argv[1:]
    env = isolated_env()
    calls = env.get("NCA_HOSTILE_CALLS")
    if calls:
        with Path(calls).open("a", encoding="utf-8") as file:
            file.write(json.dumps(argv) + "\n")
    mode = env.get("NCA_HOSTILE_MODE", "")
    when = env.get("NCA_HOSTILE_WHEN", "build")
    match = env.get("NCA_HOSTILE_MATCH", "")
    call = kind(argv)
    applies = bool(mode) and (when in ("any", call)) and (not match or match in " ".join(argv))
    if applies:
        misbehave(mode, argv, env)
    exec_real(argv, env)


if __name__ == "__main__":
    main()
