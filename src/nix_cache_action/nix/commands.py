"""Every Nix command this project runs, one small method each, with its argv and its output read.

The argv of each command is written here and only here (the first, `--version`, which starts
before the rest of the CLI is imported, in nix/probe.py); what differs between Nix versions is
asked of `NixVersion`. The commands run through a `Runner` (nix/process.py), so tests drive them,
and the engine above them, with a fake that asserts each argv.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
from collections.abc import Sequence

from nix_cache_action.errors import NixError
from nix_cache_action.nix.attributes import (
    Described,
    apply_expression,
    attribute_path,
    read_walk,
)
from nix_cache_action.nix.derivations import Derivation, read_derivations, read_input_graph
from nix_cache_action.nix.events import strip_ansi
from nix_cache_action.nix.probe import FEATURES, LOG_FLAGS, Probe, build_argv
from nix_cache_action.nix.process import Completed, Runner, Started, Streamed, Tee
from nix_cache_action.nix.version import NixVersion
from nix_cache_action.records import record
from nix_cache_action.store_path import base_name

NIX_NOT_FOUND = (
    "`{exe}` was not found on PATH. Install Nix (on GitHub, leave the action's install-nix "
    "input at true; elsewhere see https://nixos.org/download) or put it on PATH."
)
NIX_PATH_UNUSABLE = (
    "`{exe}` does not exist or cannot be run. Pass the path of a nix executable, or leave it "
    "unset to use nix from PATH."
)
NIX_PROBE_FAILED = (
    "`{exe} --version` did not answer ({error}). Check that this Nix works from a shell, "
    "then run again."
)
TIMEOUT_NIX_VERSION = 60
# A query evaluates at most one installable (`path-info --derivation` on a large flake takes a
# minute or two); one that has not answered by then is stuck, on a lock or a dead cache. The
# builds themselves have no limit here: Nix's own `timeout` and `max-silent-time` settings and
# the job's timeout-minutes bound them.
TIMEOUT_QUERY_SECONDS = 900
QUERY_TIMED_OUT = (
    "`{command}` did not answer within {seconds} s, so the run stopped. Check that the Nix store"
    " is not locked by another process and that the caches answer, then run again."
)


_ERROR_LINE = re.compile(r"^error:\s*", re.MULTILINE)
# Longer than any store path Nix makes (its names are at most 211 characters).
MAX_PATH_CHARS = 4096


@record
class PathInfo:
    nar_hash: str
    nar_size: int | None
    download_size: int | None = None  # the compressed file's size, from a binary cache only


@record
class Evaluated:
    """An installable's derivation, or Nix's error (`error: ` removed, one line) if it has none."""

    drv: str | None
    error: str | None


@record
class Walked:
    """The derivations under one attribute of a flake, or why they could not be listed."""

    found: list[Described]
    error: str | None = None


@record
class Built:
    """A `nix build --json` run: the stream, and {drv: {output: path}} of what it built."""

    streamed: Streamed
    outputs: dict[str, dict[str, str]]
    # Why `--json` on stdout could not be read after a build that succeeded, if it could not:
    # the outputs are then asked for one installable at a time.
    unreadable: str | None = None


class Nix:
    """One Nix installation: its version, and every command this project runs with it."""

    def __init__(self, executable: str, version: NixVersion, runner: Runner) -> None:
        self.executable = executable
        self.version = version
        self.runner = runner
        # The settings query, once started (start_config), read on first use (config).
        self._config_query: Started | None = None
        self._config: dict[str, object] | None = None
        # A local `path-info` started ahead (start_path_info), told its paths on first use.
        self._path_info_query: Started | None = None

    @classmethod
    def probe(cls, executable: str, runner: Runner) -> Nix:
        """Ask `executable --version` which Nix it is; a NixError says why it cannot be used."""
        return Probe(executable, runner).nix()

    def clock(self) -> float:
        return self.runner.clock()

    def _argv(self, *args: str) -> list[str]:
        return [self.executable, *FEATURES, *args]

    def _run(self, *args: str) -> Completed:
        argv = self._argv(*args)
        try:
            return self.runner.run(argv, timeout=TIMEOUT_QUERY_SECONDS)
        except subprocess.TimeoutExpired as exc:
            command = shlex.join(argv[:1] + list(args[:3]))
            raise NixError(
                QUERY_TIMED_OUT.format(command=command, seconds=TIMEOUT_QUERY_SECONDS)
            ) from exc

    # --- building -----------------------------------------------------------------------------

    def build(
        self,
        installables: Sequence[str],
        *,
        keep_going: bool,
        fallback: bool,
        tee: Tee,
        substituters: Sequence[str] | None = None,
    ) -> Built:
        """Build, with the log streamed to `tee`; outputs from `--json` on stdout.

        `fallback` builds what a cache fails to deliver; `substituters` replaces the configured
        list for this run (a retry without a cache Nix gave up on).
        """
        argv = build_argv(
            self.executable,
            installables,
            keep_going=keep_going,
            fallback=fallback,
            substituters=substituters,
        )
        streamed = self.runner.stream(argv, tee)
        if streamed.returncode != 0:
            return Built(streamed, {})
        outputs, unreadable = _built_outputs(streamed.stdout)
        return Built(streamed, outputs, unreadable)

    def rebuild(self, targets: Sequence[str], tee: Tee, *, here: bool = False) -> Streamed:
        """Build `targets` again and let Nix compare (`--rebuild`); `--keep-failed` keeps the
        differing copy at `<output>.check`. `here` rebuilds on this machine only: where the
        configuration builds nothing locally (max-jobs = 0, every build on remote builders),
        Nix refuses a rebuild ("local builds are disabled"); one local job and no builders,
        for this run only, make it a check across machines instead."""
        argv = self._argv(
            "build", *LOG_FLAGS, "--no-link", "--rebuild", "--keep-failed", "--keep-going"
        )
        if here:
            argv += ["--option", "max-jobs", "1", "--option", "builders", ""]
        return self.runner.stream([*argv, *targets], tee)

    def rebuild_target(self, installable: str, drv: str | None, outputs: Sequence[str]) -> str:
        """What to pass to `--rebuild`: the drv with exactly the outputs built, when Nix can say
        so, which skips another evaluation of the installable; else the installable itself."""
        selected = self.version.some_outputs(drv, outputs) if drv else None
        return selected or installable

    def all_outputs(self, drv: str) -> str:
        return self.version.all_outputs(drv)

    # --- queries ------------------------------------------------------------------------------

    def start_config(self) -> None:
        """Ask for the settings now, to read them later (`config`): the question is answered
        while something else runs. By the name every Nix knows (2.20 and later answer it with
        a warning that goes nowhere)."""
        if self._config is None and self._config_query is None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._config_query = self.runner.start(self._argv("show-config", "--json"))

    def start_path_info(self) -> None:
        """Start the next `path-info` of this store now, to be told its paths when they are
        known (`--stdin`): the NAR hashes are asked right after the build, and a Nix process
        takes about 20 ms to start, most of that query's time. Nix before 2.17 is not asked
        this way (see NixVersion.reads_installables_from_stdin)."""
        if self._path_info_query is None and self.version.reads_installables_from_stdin:
            argv = self._argv("path-info", *self.version.path_info_json_flags(), "--stdin")
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._path_info_query = self.runner.start(argv, input_later=True)

    def close(self) -> None:
        """Stop what was started ahead and never asked."""
        query, self._path_info_query = self._path_info_query, None
        if query is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                query.stop()

    def config(self, *, timeout: float = TIMEOUT_QUERY_SECONDS) -> dict[str, object]:
        """Nix's settings in force ({name: value}); {} when Nix cannot say. Asked once.
        `timeout` bounds the wait for an answer asked already (a run being cancelled has
        seconds left); an answer that does not come is {}."""
        if self._config is None:
            self.start_config()
            self._config = self._read_config(timeout)
        return self._config

    def _read_config(self, timeout: float) -> dict[str, object]:
        done = None
        if self._config_query is not None:
            query, self._config_query = self._config_query, None
            try:
                done = query.result(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                if timeout < TIMEOUT_QUERY_SECONDS:
                    return {}
                done = None
        if done is None or done.returncode != 0:
            # A Nix that has dropped the old name: asked by the name this version gives it.
            done = self._run(*self.version.config_show())
        try:
            raw = json.loads(done.stdout) if done.returncode == 0 else {}
        except ValueError:
            return {}
        if not isinstance(raw, dict):
            return {}
        return {
            str(name): entry["value"]
            for name, entry in raw.items()
            if isinstance(entry, dict) and "value" in entry
        }

    def substituters(self) -> list[str]:
        """The caches Nix is configured to ask (`substituters` and `extra-substituters`)."""
        return substituters_in(self.config())

    def system(self) -> str | None:
        """The system this Nix builds for (its `system` setting)."""
        value = self.config().get("system")
        return value if isinstance(value, str) and value else None

    def walk(
        self,
        flake: str,
        root: tuple[str, ...],
        rest: tuple[str | tuple[str, ...], ...],
        max_depth: int,
    ) -> Walked:
        """Every derivation under `flake#root` (see nix/attributes.py), evaluated, not built."""
        done = self._run(
            "eval",
            "--json",
            f"{flake}#{attribute_path(root)}",
            "--apply",
            apply_expression(rest, max_depth),
        )
        if done.returncode != 0:
            return Walked([], nix_error(done.stderr) or f"nix exited with {done.returncode}")
        found = read_walk(done.stdout)
        if found is None:
            return Walked([], f"nix printed {_shown(done.stdout)}, not the list of derivations")
        return Walked(found)

    def attribute_names(self, flake: str, parts: tuple[str, ...]) -> list[str] | str:
        """The names in the attribute set `flake#parts`, or Nix's error."""
        done = self._run(
            "eval", "--json", f"{flake}#{attribute_path(parts)}", "--apply", "builtins.attrNames"
        )
        if done.returncode != 0:
            return nix_error(done.stderr) or f"nix exited with {done.returncode}"
        try:
            names = json.loads(done.stdout)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return f"nix printed {_shown(done.stdout)}, not a list of names"
        return names

    def attribute_error(self, flake: str, parts: tuple[str, ...]) -> str:
        """Why `flake#parts` has no drvPath: Nix's own message (the walk's tryEval drops it)."""
        done = self._run("eval", "--json", f"{flake}#{attribute_path(parts)}.drvPath")
        if done.returncode == 0:
            return "it is not a derivation"
        return nix_error(done.stderr) or f"nix exited with {done.returncode}"

    def derivation_inputs(self, drvs: Sequence[str]) -> dict[str, set[str]] | None:
        """{drv base name: base names of its input derivations} over the closure of `drvs`: from
        the .drv files where they can be read (nix/derivations.py), else in one `derivation show
        -r`; None when neither can say."""
        if not drvs:
            return {}
        from_files = read_input_graph(drvs)
        if from_files is not None:
            return from_files
        done = self._run(*self.version.derivation_show(), "-r", *drvs)
        if done.returncode != 0:
            return None
        try:
            raw = json.loads(done.stdout)
        except (ValueError, RecursionError):
            return None
        return _input_graph(raw)

    def derivations(self, drvs: Sequence[str]) -> dict[str, Derivation]:
        """Each of `drvs` (not their closure): from its .drv file where it can be read
        (nix/derivations.py), else from one `derivation show`; those Nix cannot show are left
        out."""
        if not drvs:
            return {}
        from_files = read_derivations(drvs)
        if from_files is not None:
            return from_files
        done = self._run(*self.version.derivation_show(), *drvs)
        if done.returncode != 0:
            return {}
        try:
            raw = json.loads(done.stdout)
        except (ValueError, RecursionError):
            return {}
        return _derivations_from_json(raw, drvs)

    def evaluate(self, installable: str) -> Evaluated:
        """The .drv behind an installable (evaluation only, nothing is built)."""
        done = self._run("path-info", "--derivation", installable)
        lines = done.stdout.strip().splitlines() if done.returncode == 0 else []
        if lines and lines[-1].strip().endswith(".drv") and _is_store_path(lines[-1].strip()):
            return Evaluated(drv=lines[-1].strip(), error=None)
        if lines:
            shown = _shown(lines[-1])
            return Evaluated(drv=None, error=f"nix printed {shown} where a .drv path belongs")
        return Evaluated(
            drv=None, error=nix_error(done.stderr) or f"nix exited with status {done.returncode}"
        )

    def outputs_of(self, installable: str) -> list[str]:
        """The output paths of an installable that are valid: evaluates, builds nothing."""
        done = self._run("path-info", installable)
        return done.stdout.split() if done.returncode == 0 else []

    def derivation_outputs(self, drvs: Sequence[str]) -> dict[str, dict[str, str]]:
        """{drv path: {output name: store path}} for derivations already in the store."""
        if not drvs:
            return {}
        done = self._run(*self.version.derivation_show(), *drvs)
        if done.returncode != 0 or not done.stdout.strip():
            return {}
        try:
            raw = json.loads(done.stdout)
        except ValueError:
            return {}  # not JSON: the outputs stay unknown
        # {drv: {outputs: {name: {path}}}} (`show-derivation` to 2.14, then `derivation show`);
        # from 2.33 wrapped in {"derivations": ...}, with base names for paths.
        if isinstance(raw, dict) and "derivations" in raw:
            raw = raw["derivations"]
        if not isinstance(raw, dict):
            return {}
        by_base = {base_name(drv): drv for drv in drvs}
        result: dict[str, dict[str, str]] = {}
        for key, body in raw.items():
            outputs = body.get("outputs") if isinstance(body, dict) else None
            if not isinstance(outputs, dict):
                continue
            drv = by_base.get(base_name(str(key)), str(key))
            store = drv.rsplit("/", 1)[0]
            # A floating content-addressed output has no path before it is built.
            paths = {
                name: out.get("path") for name, out in outputs.items() if isinstance(out, dict)
            }
            result[drv] = {
                name: path if path.startswith("/") else f"{store}/{path}"
                for name, path in paths.items()
                if isinstance(path, str)
            }
        return result

    def path_info(
        self, paths: Sequence[str], store: str | None = None, *, each_on_failure: bool = True
    ) -> dict[str, PathInfo]:
        """NAR hash and size of each valid path (in `store`, a binary cache, if given); invalid
        ones are left out. `each_on_failure=False` gives up on a failed query rather than ask
        path by path (a cache gone since would cost a timeout per path)."""
        if not paths:
            return {}
        done = self._path_info_ahead(paths) if store is None else None
        if done is None:
            where = ["--store", store] if store is not None else []
            done = self._run("path-info", *where, *self.version.path_info_json_flags(), *paths)
        if done.returncode != 0 and store is not None and len(paths) > 1 and each_on_failure:
            # Nix before 2.19 fails the whole query for one path the cache lacks: one by one.
            found: dict[str, PathInfo] = {}
            for path in paths:
                found.update(self.path_info([path], store))
            return found
        if not done.stdout.strip():
            return {}
        try:
            raw = json.loads(done.stdout)
        except ValueError:
            return {}  # not JSON: the hashes stay unknown
        if isinstance(raw, list):
            # Up to 2.18 a list of objects with `path`; from 2.19 an object keyed by path, with
            # null for a path that is not valid.
            raw = {i.get("path"): i for i in raw if isinstance(i, dict)}
        if not isinstance(raw, dict):
            return {}
        # Only what has the types Nix writes: a NAR hash is a string, a size a number.
        return {
            path: PathInfo(
                nar_hash=info["narHash"],
                nar_size=_size(info.get("narSize")),
                download_size=_size(info.get("downloadSize")),
            )
            for path, info in raw.items()
            if isinstance(path, str)
            and isinstance(info, dict)
            and isinstance(info.get("narHash"), str)
            and len(info["narHash"]) < MAX_PATH_CHARS
        }

    def _path_info_ahead(self, paths: Sequence[str]) -> Completed | None:
        """The answer of the `path-info` started ahead, told `paths`; None when there is none
        or it failed, and the question is asked the usual way (the same answer, or the same
        failure, at the cost of a process)."""
        if any(character.isspace() for path in paths for character in path):
            # Nix reads its standard input as words: such a path is not one word.
            self.close()
            return None
        query, self._path_info_query = self._path_info_query, None
        if query is None:
            return None
        try:
            done = query.result(
                stdin="".join(f"{p}\n" for p in paths), timeout=TIMEOUT_QUERY_SECONDS
            )
        except subprocess.TimeoutExpired as exc:
            command = shlex.join([self.executable, "path-info", "--stdin"])
            raise NixError(
                QUERY_TIMED_OUT.format(command=command, seconds=TIMEOUT_QUERY_SECONDS)
            ) from exc
        except (OSError, subprocess.SubprocessError):
            return None
        return done if done.returncode == 0 else None

    def hash_path(self, path: str) -> str | None:
        """The SRI NAR hash of any path, registered or not (a `.check` copy is not)."""
        done = self._run("hash", "path", path)
        return (done.stdout.strip() or None) if done.returncode == 0 else None


def _derivations_from_json(raw: object, drvs: Sequence[str]) -> dict[str, Derivation]:
    """`derivation show`'s JSON: `{drv: {inputDrvs, inputSrcs, env, ...}}` up to 2.32; from
    2.33 wrapped in `derivations`, keyed by base name, with `inputs: {drvs, srcs}`."""
    if isinstance(raw, dict) and isinstance(raw.get("derivations"), dict):
        raw = raw["derivations"]
    if not isinstance(raw, dict):
        return {}
    by_base = {base_name(drv): drv for drv in drvs}
    found: dict[str, Derivation] = {}
    for key, body in raw.items():
        drv = by_base.get(base_name(str(key)))
        if drv is None or not isinstance(body, dict):
            continue
        store = drv.rsplit("/", 1)[0]

        def full(path: object, store: str = store) -> str:
            text = str(path)
            return text if text.startswith("/") else f"{store}/{text}"

        inputs = body.get("inputs") if isinstance(body.get("inputs"), dict) else {}
        input_drvs = body.get("inputDrvs", inputs.get("drvs", {}) if inputs else {})
        input_srcs = body.get("inputSrcs", inputs.get("srcs", []) if inputs else [])
        env = body.get("env")
        outputs = body.get("outputs")
        args = body.get("args")
        found[drv] = Derivation(
            path=drv,
            input_drvs=tuple(full(d) for d in input_drvs) if isinstance(input_drvs, dict) else (),
            input_srcs=tuple(full(s) for s in input_srcs) if isinstance(input_srcs, list) else (),
            env={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
            system=str(body.get("system", "")),
            builder=str(body.get("builder", "")),
            args=tuple(str(a) for a in args) if isinstance(args, list) else (),
            outputs={
                str(name): full(out["path"]) if isinstance(out, dict) and out.get("path") else ""
                for name, out in outputs.items()
            }
            if isinstance(outputs, dict)
            else {},
        )
    return found


def _input_graph(raw: object) -> dict[str, set[str]] | None:
    """The input derivations of each derivation `derivation show` printed: `inputDrvs` up to
    2.32, `inputs.drvs` from 2.33 (where it is wrapped in `derivations` and keys are base
    names)."""
    if isinstance(raw, dict) and isinstance(raw.get("derivations"), dict):
        raw = raw["derivations"]
    if not isinstance(raw, dict):
        return None
    graph: dict[str, set[str]] = {}
    for drv, body in raw.items():
        if not isinstance(body, dict):
            return None
        inputs = body.get("inputDrvs")
        if inputs is None and isinstance(body.get("inputs"), dict):
            inputs = body["inputs"].get("drvs")
        graph[base_name(str(drv))] = (
            {base_name(str(k)) for k in inputs} if isinstance(inputs, dict) else set()
        )
    return graph


def _size(value: object) -> int | None:
    # A size is a number of bytes; anything else (a bool is an int to Python) is unknown.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def nix_error(stderr: str) -> str:
    """The `error: ...` part of Nix's stderr, ANSI-free, on one line, without `--show-trace`
    advice."""
    text = strip_ansi(stderr)
    match = _ERROR_LINE.search(text)
    body = text[match.end() :] if match else text
    lines = [ln for ln in body.strip().splitlines() if "--show-trace" not in ln]
    return " ".join(ln.strip() for ln in lines)[:1000]


def substituters_in(config: dict[str, object]) -> list[str]:
    """The caches a configuration (`Nix.config()`) asks."""
    value = config.get("substituters")
    if isinstance(value, str):
        return value.split()
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _built_outputs(stdout: str) -> tuple[dict[str, dict[str, str]], str | None]:
    """{drv: {output: path}} from `nix build --json`, and why stdout was unusable if it was
    (then each installable is asked for on its own)."""
    try:
        entries = json.loads(stdout)
    except (ValueError, RecursionError):
        return {}, f"it printed {_shown(stdout)}, not JSON"
    if not isinstance(entries, list) or not entries:
        return {}, f"it printed {_shown(stdout)}, not a list of what it built"
    outputs = {
        entry["drvPath"]: {
            name: path
            for name, path in (entry.get("outputs") or {}).items()
            if isinstance(path, str) and _is_store_path(path)
        }
        for entry in entries
        # A store-path installable has `path` and no drvPath: nothing was built for it.
        if isinstance(entry, dict)
        and isinstance(entry.get("drvPath"), str)
        and _is_store_path(entry["drvPath"])
        and isinstance(entry.get("outputs") or {}, dict)
    }
    # An output whose path is not a store path (`{"out": 5}`) makes the whole answer unusable:
    # left out, its installable would read as one whose dependency failed.
    bad_output = next(
        (
            path
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("outputs"), dict)
            for path in e["outputs"].values()
            if not (isinstance(path, str) and _is_store_path(path))
        ),
        None,
    )
    if bad_output is not None:
        return (
            outputs,
            f"it printed {_shown(json.dumps(bad_output))} where an output's path belongs",
        )
    well_formed = all(isinstance(e, dict) and ("drvPath" in e or "path" in e) for e in entries)
    if not well_formed or (
        not outputs and not any(isinstance(e, dict) and "path" in e for e in entries)
    ):
        return outputs, f"it printed {_shown(stdout)}, not the list of outputs it builds"
    return outputs, None


def _is_store_path(text: str) -> bool:
    return text.startswith("/") and len(text) < MAX_PATH_CHARS and text.isprintable()


def _shown(text: str) -> str:
    shown = json.dumps(text.strip()[:60]) if text.strip() else "nothing"
    return shown + ("..." if len(text.strip()) > 60 else "")


__all__ = [
    "Built",
    "Evaluated",
    "Nix",
    "PathInfo",
    "Walked",
    "nix_error",
    "substituters_in",
]
