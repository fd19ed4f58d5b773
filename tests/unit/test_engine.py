"""The build job (engine.run_job) against the fake Nix, through the real `Nix` commands.

The streamed runs answer with the logs this project recorded from Nix 2.8 and 2.34
(tests/logs/README.md), so every figure in these reports comes from real Nix output. The one
change made to them: their store directory, /tmp/nca-record/store, is moved under the test's
tmp_path, so that the `<output>.check` copy the engine looks for after a difference is a file
the test controls (absent, unless a test makes it).

Each test's script is the exact sequence of Nix commands the engine must issue; the fake fails
on any other, and `assert_done()` on any left out.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nix_cache_action import reproducibility
from nix_cache_action.engine import (
    EVAL_FIXES,
    INTERRUPTED,
    LOG_UNWRITABLE,
    NO_OTHER_BUILDS,
    NOT_BUILT,
    REBUILD_KILLED,
    RETRY,
    STEP_INTERRUPTED,
    UNEXPECTED,
    BuildOptions,
    run_job,
)
from nix_cache_action.ledger.reader import INTERRUPTED_CHECK
from nix_cache_action.nix.commands import NIX_NOT_FOUND, Nix
from nix_cache_action.nix.process import Interrupted, Tee
from nix_cache_action.records import replace
from nix_cache_action.render.summary import render_summary
from nix_cache_action.report import (
    Check,
    FileDifference,
    Installable,
    Report,
    Run,
    substituter_name,
)
from nix_cache_action.reproducibility import (
    BUILD_FAILED,
    CHECK_NOT_KEPT,
    REBUILD_CUT_SHORT,
    REPRODUCIBILITY_OFF,
)
from nix_cache_action.store_path import store_name

# pytest puts this folder on sys.path (tests are not a package); mypy names it from the root.
if TYPE_CHECKING:
    from tests.unit.fake_nix import FakeNix, RunCall, StreamCall
else:
    from fake_nix import FakeNix, RunCall, StreamCall

LOGS = Path(__file__).parent.parent / "logs"
RECORDED_STORE = b"/tmp/nca-record/store"
MAGIC_NIX_CACHE = "http://127.0.0.1:37515"

VERSION_TEXT = {"2.8": "nix (Nix) 2.8.0", "2.34": "nix (Nix) 2.34.8"}
NIX = ["nix", "--extra-experimental-features", "nix-command flakes"]
BUILD = [
    *NIX,
    *("build", "--log-format", "internal-json", "--no-link", "--json"),
    *("--keep-going", "--fallback"),
]
REBUILD = [
    *NIX,
    *("build", "--log-format", "internal-json", "--no-link"),
    *("--rebuild", "--keep-failed", "--keep-going"),
]

HASHES = {
    "top": "sha256-KHIDZcXnR2oBHk9DrAA+5fFiR6JjudYjqoXtMR1zvzk=",
    "nondet": "sha256-eGvKohc+3NzAmtXHAsD3r374Wt0z2lXkHqf4DlURDa4=",
    "leaf": "sha256-n5EWH0NDPkmm3m22gNefYBWfLkrJFyYhoShGQoFYRAs=",
    "mid": "sha256-kKwWeD+8VMNonGOzq4mznOoo+HQ6iP805qHGHtdG0OI=",
}
CHECK_HASH = "sha256-RRAirJfEex2wTG5lUuZSqk7si/80zFZevv21laQ/AuA="


class Store:
    """The recorded flake's store paths (tests/logs/flake), in the test's store directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        at = f"{root}/".__add__
        # Base names as in the recorded logs. No log names mid's output (nothing fetched or
        # compared it), so that one is made up, in the same form.
        self.leaf_drv = at("0q9gzaw9b6m0jldhp01qdim5g95cfd3b-leaf.drv")
        self.leaf = at("dwxiqmfq7bjln32nfk37ym276i0y5l02-leaf")
        self.mid_drv = at("50p3i41g2nfx4j5mgx3asnhlpgm97knn-mid.drv")
        self.mid = at("hx4q6m3f0s0yl9l2ql5d8r1g0c9ai5zk-mid")
        self.top_drv = at("3sf67aw2myg3v13xkfsci3yis6dlghn3-top.drv")
        self.top = at("d4l9kfdrck7mk1ys32jz0khzllnaa1lh-top")
        self.nondet_drv = at("m0h70q3ymdhh4kjqd9qkfv4qwfvx9lil-nondet.drv")
        self.nondet = at("c58gmhjnwp7mhvqvj0gwwqnic2chckmf-nondet")
        self.fails_drv = at("wrii8fydpz9ljs42f0np0gcfsh0q62a0-fails.drv")
        self.fails = at("3bpkc1siqqm57vq292h7plsvmyp361pd-fails")
        # The .drv files, as a local store holds them: the engine reads the misses' inputs from
        # them (why.py) instead of asking Nix. The flake's graph: top over mid over leaf;
        # nondet and fails over leaf.
        root.mkdir(parents=True, exist_ok=True)
        for drv, out, inputs in (
            (self.leaf_drv, self.leaf, ()),
            (self.mid_drv, self.mid, (self.leaf_drv,)),
            (self.top_drv, self.top, (self.mid_drv,)),
            (self.nondet_drv, self.nondet, (self.leaf_drv,)),
            (self.fails_drv, self.fails, (self.leaf_drv,)),
        ):
            Path(drv).write_text(_aterm(drv, out, inputs), encoding="utf-8")

    def log(self, name: str, version: str) -> list[bytes]:
        """A recorded log, line by line, in this store."""
        raw = (LOGS / f"{name}-{version}.log").read_bytes()
        return raw.replace(RECORDED_STORE, str(self.root).encode()).splitlines(keepends=True)

    def rebuild_of_top(self, version: str) -> list[bytes]:
        """The recorded rebuild (of .#default and .#nondet) less every record about nondet:
        the log of a rebuild of .#default alone, for runs that built only that."""
        lines = self.log("rebuild", version)
        # nondet's activities, whose other records (stop, progress) do not name it; and the note
        # on the build directory --keep-failed kept of its differing build (2.34 names the
        # directory by a number).
        ids = {_record(ln)["id"] for ln in lines if b"nondet" in ln and b'"start"' in ln}
        return [
            ln
            for ln in lines
            if b"nondet" not in ln
            and b"keeping build directory" not in ln
            and _record(ln).get("id", "none") not in ids
        ]

    def checking(self, drvs: Sequence[str]) -> list[bytes]:
        """A rebuild that checked `drvs` and found nothing different: the recorded rebuild's
        own `checking outputs of` start and stop records of top, once per drv. No recorded log
        rebuilt leaf or mid, which a deep check does."""
        lines = self.log("rebuild", "2.34")
        start = next(ln for ln in lines if b"checking outputs of" in ln and b"-top.drv" in ln)
        activity = str(_record(start)["id"]).encode()
        stop = next(ln for ln in lines if b'"action":"stop"' in ln and activity in ln)
        result = []
        for number, drv in enumerate(drvs, start=1):
            new_id = str(int(activity) + 100 * number).encode()
            result.append(
                start.replace(self.top_drv.encode(), drv.encode()).replace(activity, new_id)
            )
            result.append(stop.replace(activity, new_id))
        return result


def _aterm(drv: str, out: str, inputs: Sequence[str]) -> str:
    """A .drv file in Nix's ATerm form, with what why.py reads of it."""
    name = drv.rsplit("-", 1)[-1].removesuffix(".drv")
    drvs = ",".join(f'("{i}",["out"])' for i in inputs)
    env = f'("builder","/bin/sh"),("name","{name}"),("out","{out}"),("system","x86_64-linux")'
    return (
        f'Derive([("out","{out}","","")],[{drvs}],[],"x86_64-linux","/bin/sh",["-c","true"],'
        f"[{env}])"
    )


def _record(line: bytes) -> dict[str, object]:
    data: dict[str, object] = json.loads(line.removeprefix(b"@nix "))
    return data


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


# --- what Nix answers ---------------------------------------------------------------------------


def version_call(version: str) -> RunCall:
    return RunCall(["nix", "--version"], stdout=VERSION_TEXT[version] + "\n")


def config_call(version: str, substituters: Sequence[str] = ()) -> RunCall:
    """The configuration query each run starts with the version's (which caches it asks), by
    the name every Nix knows: the version is not known yet."""
    del version  # the same for every version
    command = ["show-config", "--json"]
    answer = {"substituters": {"value": list(substituters), "defaultValue": []}}
    return RunCall([*NIX, *command], stdout=json.dumps(answer))


def start_calls(version: str) -> list[RunCall]:
    return [version_call(version), config_call(version)]


def evaluate_call(installable: str, drv: str) -> RunCall:
    return RunCall([*NIX, "path-info", "--derivation", installable], stdout=drv + "\n")


def substituted_and_checked(s: Store, *, read: int = 1) -> list[RunCall | StreamCall]:
    """`.#default` built with `top` fetched from a cache (Nix 2.34), then its rebuild: the
    log fed `read` lines at a time."""
    return [
        StreamCall(
            [*BUILD, ".#default"],
            lines=s.log("substitute", "2.34"),
            stdout=build_json({s.top_drv: s.top}),
            read=read,
        ),
        path_info_call("2.34", {s.top: HASHES["top"]}),
        StreamCall([*REBUILD, f"{s.top_drv}^out"], lines=s.rebuild_of_top("2.34")),
    ]


def build_json(outputs: dict[str, str]) -> str:
    """`nix build --json` stdout for {drv: out}."""
    return json.dumps([{"drvPath": drv, "outputs": {"out": out}} for drv, out in outputs.items()])


def path_info_call(version: str, paths: dict[str, str], *, ahead: bool = True) -> RunCall:
    """`nix path-info --json` of {path: hash}, in the shape and with the flags of `version`:
    from 2.15 the first of a run is the one started with it and told the paths later (`ahead`,
    Nix.start_path_info)."""
    infos = {p: {"narHash": h, "narSize": 120, "references": []} for p, h in paths.items()}
    if version == "2.8":
        argv = [*NIX, "path-info", "--json", *paths]
        stdout = json.dumps([{"path": p, **info} for p, info in infos.items()])
        return RunCall(argv, stdout=stdout)
    flags = [*NIX, "path-info", "--json", "--json-format", "1"]
    stdout = json.dumps(infos)
    if ahead:
        return RunCall([*flags, "--stdin"], stdout=stdout, stdin=told(paths))
    return RunCall([*flags, *paths], stdout=stdout)


# The `path-info` a run of Nix 2.15 or later starts with it, to be told its paths later.
PATH_INFO_AHEAD = (*NIX, "path-info", "--json", "--json-format", "1", "--stdin")


def told(paths: Iterable[str]) -> str:
    """What a query started ahead is told: one path a line."""
    return "".join(f"{p}\n" for p in paths)


def sizes_call(cache: str, sizes: dict[str, tuple[int, int]]) -> RunCall:
    """Nix 2.8's `path-info --store CACHE --json`: what the serving cache's narinfos say of the
    copies whose sizes Nix 2.8's log does not give."""
    infos = [
        {"path": p, "narHash": "sha256-x", "narSize": nar, "downloadSize": download}
        for p, (nar, download) in sizes.items()
    ]
    return RunCall(
        [*NIX, "path-info", "--store", cache, "--json", *sizes], stdout=json.dumps(infos)
    )


def selected(version: str, drv: str, installable: str) -> str:
    """The rebuild target of an installable built with one output `out`: no `^` on 2.8."""
    return installable if version == "2.8" else f"{drv}^out"


def run(
    fake: FakeNix,
    *installables: str,
    options: BuildOptions | None = None,
    log_path: Path | None = None,
) -> tuple[Report, int, list[str]]:
    """run_job as the CLI calls it, with this Nix; then every expected call must have been made."""
    said: list[str] = []
    report, status = run_job(
        options or BuildOptions(installables),
        lambda: Nix.probe("nix", fake),
        log_path=log_path,
        say=said.append,
    )
    fake.assert_done()
    return report, status, said


def first_line_with(lines: Sequence[bytes], *parts: bytes) -> int:
    return next(i for i, ln in enumerate(lines) if all(p in ln for p in parts))


# --- whole runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.8", "2.34"])
def test_one_installable_builds_hashes_and_rebuilds_without_a_separate_evaluation(
    store: Store, version: str
) -> None:
    s = store
    fake = FakeNix(
        [
            *start_calls(version),
            # No `path-info --derivation` first: the build evaluates it anyway.
            StreamCall(
                [*BUILD, ".#default"],
                lines=s.log("substitute", version),
                stdout=build_json({s.top_drv: s.top}),
            ),
            path_info_call(version, {s.top: HASHES["top"]}),
            # Nix 2.8 gives no NAR size: the cache that served the copies is asked.
            *(
                [sizes_call(MAGIC_NIX_CACHE, {s.leaf: (120, 128), s.top: (176, 184)})]
                * (version == "2.8")
            ),
            StreamCall(
                [*REBUILD, selected(version, s.top_drv, ".#default")],
                lines=s.rebuild_of_top(version),
            ),
        ]
    )
    report, status, said = run(fake, ".#default")
    assert (status, report.verdict(), report.stopped) == (0, "ok", None)
    # From 2.15 the NAR hashes came from the path-info started with the run, told the output.
    assert fake.started_ahead == ([] if version == "2.8" else [PATH_INFO_AHEAD])
    assert fake.stopped == []
    sizes = sorted((sub.nar_bytes, sub.download_bytes) for sub in report.substitutions)
    assert sizes == [(120, 128), (176, 184)]  # from the log on 2.34, from the cache on 2.8
    assert report.installables == (
        Installable(
            ".#default", drv=s.top_drv, outputs={"out": s.top}, nar_hashes={"out": HASHES["top"]}
        ),
    )
    # The first copy came from the cache at Magic Nix Cache's address: a cross-machine check.
    assert report.checks == (
        Check(
            drv=s.top_drv,
            output="out",
            path=s.top,
            verdict="reproducible",
            nar_hash=HASHES["top"],
            check_nar_hash=None,  # Nix compared the two itself; the rebuild's hash is unknown
            first_copy="substituted",
            substituter=MAGIC_NIX_CACHE,
            installable=".#default",
            run="check",
        ),
    )
    totals = report.totals()
    assert (totals.substituted, totals.built, totals.checked, totals.hit_rate) == (2, 0, 1, 1.0)
    assert [(r.label, r.argv, r.exit_status) for r in report.runs] == [
        ("build", tuple(fake.calls[2]), 0),
        ("check", tuple(fake.calls[-1]), 0),
    ]
    assert report.nix.version == VERSION_TEXT[version].rsplit(" ", 1)[1]
    assert said[0] == f"nix-cache-action: {VERSION_TEXT[version]}"
    assert "  fetching top from Magic Nix Cache" in said
    assert "  checking top" in said


@pytest.mark.parametrize("version", ["2.8", "2.34"])
def test_several_installables_are_each_evaluated_first_and_a_difference_fails_the_run(
    store: Store, version: str
) -> None:
    s = store
    build_lines = s.log("build", version)
    fake = FakeNix(
        [
            *start_calls(version),
            evaluate_call(".#default", s.top_drv),
            evaluate_call(".#nondet", s.nondet_drv),
            StreamCall(
                [*BUILD, ".#default", ".#nondet"],
                lines=build_lines,
                stdout=build_json({s.top_drv: s.top, s.nondet_drv: s.nondet}),
            ),
            path_info_call(version, {s.top: HASHES["top"], s.nondet: HASHES["nondet"]}),
            # Nix exits 1 on a difference; the log says which output differed.
            StreamCall(
                [
                    *REBUILD,
                    selected(version, s.top_drv, ".#default"),
                    selected(version, s.nondet_drv, ".#nondet"),
                ],
                lines=s.log("rebuild", version),
                returncode=1,
            ),
            # The `.check` copy is absent: nothing more to ask (its hash, the files).
        ]
    )
    report, status, _ = run(fake, ".#default", ".#nondet")
    assert (status, report.verdict()) == (1, "not-reproducible")
    top, nondet = report.checks
    assert (top.drv, top.verdict, top.first_copy) == (s.top_drv, "reproducible", "built")
    assert nondet == Check(
        drv=s.nondet_drv,
        output="out",
        path=s.nondet,
        verdict="differs",
        reason=CHECK_NOT_KEPT,
        nar_hash=HASHES["nondet"],
        first_copy="built",
        installable=".#nondet",
        run="check",
    )
    totals = report.totals()
    assert (totals.built, totals.checked, totals.reproducible, totals.differs) == (4, 2, 1, 1)
    # The mismatch message stands for the differing check, not for a failure.
    assert report.errors == ()
    # The run's time is read from the runner's clock: a reading at the start, one per line, one
    # at the end.
    assert report.runs[0].seconds == len(build_lines) + 1


def test_a_kept_check_copy_is_hashed_and_compared_file_by_file(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = store
    # `date +%s%N > $out`, twice.
    store.root.mkdir(exist_ok=True)
    Path(s.nondet).write_bytes(b"1764612001123456789\n")
    Path(s.nondet + ".check").write_bytes(b"1764612002987654321\n")
    # diffoscope is an outside tool; its place in the check is what is shown here.
    monkeypatch.setattr(reproducibility, "diffoscope_text", lambda *_: "--- diffoscope report")
    fake = FakeNix(
        [
            *start_calls("2.34"),
            evaluate_call(".#default", s.top_drv),
            evaluate_call(".#nondet", s.nondet_drv),
            StreamCall(
                [*BUILD, ".#default", ".#nondet"],
                lines=s.log("build", "2.34"),
                stdout=build_json({s.top_drv: s.top, s.nondet_drv: s.nondet}),
            ),
            path_info_call("2.34", {s.top: HASHES["top"], s.nondet: HASHES["nondet"]}),
            StreamCall(
                [*REBUILD, f"{s.top_drv}^out", f"{s.nondet_drv}^out"],
                lines=s.log("rebuild", "2.34"),
                returncode=1,
            ),
            # The `.check` copy is not registered, so `nix hash path`, not path-info.
            RunCall([*NIX, "hash", "path", s.nondet + ".check"], stdout=CHECK_HASH + "\n"),
        ]
    )
    report, status, _ = run(fake, ".#default", ".#nondet")
    assert status == 1
    nondet = report.checks[1]
    assert (nondet.verdict, nondet.reason) == ("differs", None)
    assert (nondet.nar_hash, nondet.check_nar_hash) == (HASHES["nondet"], CHECK_HASH)
    assert nondet.differences == (
        FileDifference(
            path="",
            kind="content",
            size=20,
            check_size=20,
            sha256=hashlib.sha256(b"1764612001123456789\n").hexdigest(),
            check_sha256=hashlib.sha256(b"1764612002987654321\n").hexdigest(),
        ),
    )
    assert nondet.diffoscope == "--- diffoscope report"


def test_an_unknown_hash_of_a_differing_output_is_asked_for_again(store: Store) -> None:
    s = store
    fake = FakeNix(
        [
            *start_calls("2.34"),
            evaluate_call(".#default", s.top_drv),
            evaluate_call(".#nondet", s.nondet_drv),
            StreamCall(
                [*BUILD, ".#default", ".#nondet"],
                lines=s.log("build", "2.34"),
                stdout=build_json({s.top_drv: s.top, s.nondet_drv: s.nondet}),
            ),
            # An answer that is not JSON: the hashes stay unknown, the run goes on.
            RunCall(
                [*NIX, "path-info", "--json", "--json-format", "1", "--stdin"],
                stdout="warning: you don't have Internet access\n",
                stdin=told([s.top, s.nondet]),
            ),
            StreamCall(
                [*REBUILD, f"{s.top_drv}^out", f"{s.nondet_drv}^out"],
                lines=s.log("rebuild", "2.34"),
                returncode=1,
            ),
            path_info_call("2.34", {s.nondet: HASHES["nondet"]}, ahead=False),
        ]
    )
    report, _, _ = run(fake, ".#default", ".#nondet")
    assert [i.nar_hashes for i in report.installables] == [{}, {}]
    assert [(c.verdict, c.nar_hash) for c in report.checks] == [
        ("reproducible", None),
        ("differs", HASHES["nondet"]),
    ]


def test_reproducibility_off_builds_without_a_rebuild_and_says_why_nothing_was_checked(
    store: Store,
) -> None:
    s = store
    fake = FakeNix(
        [
            *start_calls("2.34"),
            StreamCall(
                [*BUILD, ".#default"],
                lines=s.log("substitute", "2.34"),
                stdout=build_json({s.top_drv: s.top}),
            ),
            path_info_call("2.34", {s.top: HASHES["top"]}),
        ]
    )
    options = BuildOptions((".#default",), reproducibility="off")
    report, status, _ = run(fake, options=options)
    assert (status, report.verdict(), report.reproducibility_mode) == (0, "ok", "off")
    assert report.checks == (
        Check(
            drv=s.top_drv,
            output="out",
            path=s.top,
            verdict="not-checked",
            reason=REPRODUCIBILITY_OFF,
            nar_hash=HASHES["top"],
            installable=".#default",
            run="build",
        ),
    )
    assert [r.label for r in report.runs] == ["build"]


def test_deep_check_rebuilds_every_other_local_build_with_all_its_outputs(store: Store) -> None:
    s = store
    fake = FakeNix(
        [
            *start_calls("2.34"),
            evaluate_call(".#default", s.top_drv),
            evaluate_call(".#nondet", s.nondet_drv),
            StreamCall(
                [*BUILD, ".#default", ".#nondet"],
                lines=s.log("build", "2.34"),
                stdout=build_json({s.top_drv: s.top, s.nondet_drv: s.nondet}),
            ),
            path_info_call("2.34", {s.top: HASHES["top"], s.nondet: HASHES["nondet"]}),
            StreamCall(
                [*REBUILD, f"{s.top_drv}^out", f"{s.nondet_drv}^out"],
                lines=s.log("rebuild", "2.34"),
                returncode=1,
            ),
            # leaf and mid were built here too (the cold build log built all four).
            StreamCall(
                [*REBUILD, f"{s.leaf_drv}^*", f"{s.mid_drv}^*"],
                lines=s.checking([s.leaf_drv, s.mid_drv]),
            ),
            # The log names no outputs of a reproducible drv: they are asked of Nix, which
            # (2.33+) answers with base names inside {"derivations": ...}.
            RunCall(
                [*NIX, "derivation", "show", s.leaf_drv, s.mid_drv],
                stdout=json.dumps(
                    {
                        "derivations": {
                            Path(drv).name: {"outputs": {"out": {"path": Path(out).name}}}
                            for drv, out in [(s.leaf_drv, s.leaf), (s.mid_drv, s.mid)]
                        },
                        "version": 4,
                    }
                ),
            ),
            path_info_call("2.34", {s.leaf: HASHES["leaf"], s.mid: HASHES["mid"]}, ahead=False),
        ]
    )
    options = BuildOptions((".#default", ".#nondet"), reproducibility="warn", deep=True)
    report, status, _ = run(fake, options=options)
    # warn: the differing nondet is reported, and the run passes.
    assert (status, report.verdict()) == (0, "warning")
    deep = [c for c in report.checks if c.deep]
    assert deep == [
        Check(
            drv=drv,
            output="out",
            path=out,
            verdict="reproducible",
            nar_hash=HASHES[name],
            first_copy="built",
            deep=True,
            run="deep-check",
        )
        for name, drv, out in [("leaf", s.leaf_drv, s.leaf), ("mid", s.mid_drv, s.mid)]
    ]
    assert [r.label for r in report.runs] == ["build", "check", "deep-check"]


def test_deep_check_with_nothing_else_built_here_is_a_note(store: Store) -> None:
    s = store
    fake = FakeNix(
        [
            *start_calls("2.34"),
            *substituted_and_checked(s),
            # No deep rebuild: everything else came from the cache.
        ]
    )
    report, status, _ = run(fake, options=BuildOptions((".#default",), deep=True))
    assert (status, report.notes) == (0, (NO_OTHER_BUILDS,))


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("2.8", "error: builder for '{drv}' failed with exit code 3"),
        ("2.34", "error: Cannot build '{drv}'."),
    ],
)
def test_a_failed_build_asks_each_installable_and_does_not_rebuild_the_failed_one(
    store: Store, version: str, reason: str
) -> None:
    s = store
    fake = FakeNix(
        [
            *start_calls(version),
            evaluate_call(".#fails", s.fails_drv),
            evaluate_call(".#default", s.top_drv),
            StreamCall(
                [*BUILD, ".#fails", ".#default"], lines=s.log("fail", version), returncode=1
            ),
            # The build as a whole failed: which installables have their outputs?
            RunCall(
                [*NIX, "path-info", ".#fails"],
                returncode=1,
                stderr=f"error: path '{s.fails}' is not valid\n",
            ),
            RunCall([*NIX, "path-info", ".#default"], stdout=s.top + "\n"),
            path_info_call(version, {s.top: HASHES["top"]}),
            StreamCall(
                [*REBUILD, selected(version, s.top_drv, ".#default")],
                lines=s.rebuild_of_top(version),
            ),
        ]
    )
    report, status, _ = run(fake, ".#fails", ".#default")
    assert (status, report.verdict()) == (1, "failed")
    fails, default = report.installables
    assert (fails.status, fails.error) == ("failed", reason.format(drv=s.fails_drv))
    assert (default.status, default.outputs) == ("built", {"out": s.top})
    assert [(c.installable, c.verdict, c.reason, c.first_copy) for c in report.checks] == [
        (".#fails", "not-checked", BUILD_FAILED, "unknown"),
        # Already in the store before this run: neither built nor fetched.
        (".#default", "reproducible", None, "present"),
    ]
    assert report.totals().failed == 1
    assert report.errors[0].startswith(reason.format(drv=s.fails_drv))


def test_an_evaluation_error_names_the_installable_adds_the_fix_and_the_rest_is_built(
    store: Store,
) -> None:
    s = store
    stderr = (
        "\x1b[31;1merror:\x1b[0m flake '\x1b[35;1mpath:/tmp/nca-record/flake\x1b[0m' does not"
        " provide attribute 'packages.x86_64-linux.nope', 'legacyPackages.x86_64-linux.nope' or"
        " 'nope'\n"
    )
    fake = FakeNix(
        [
            *start_calls("2.34"),
            evaluate_call(".#default", s.top_drv),
            RunCall([*NIX, "path-info", "--derivation", ".#nope"], returncode=1, stderr=stderr),
            # Only what evaluated is built.
            *substituted_and_checked(s),
        ]
    )
    report, status, said = run(fake, ".#default", ".#nope")
    fix = dict(EVAL_FIXES)["does not provide attribute"]
    message = (
        "flake 'path:/tmp/nca-record/flake' does not provide attribute"
        f" 'packages.x86_64-linux.nope', 'legacyPackages.x86_64-linux.nope' or 'nope'. {fix}"
    )
    assert (status, report.verdict()) == (1, "failed")
    assert report.installables[1] == Installable(
        ".#nope", status="error", error=f".#nope: {message}"
    )
    assert report.errors == (f".#nope: {message}",)
    assert f"error: .#nope: {message}" in said
    assert [c.installable for c in report.checks] == [".#default"]


MISSING_NOPE = "flake 'path:/tmp/nca-record/flake' does not provide attribute 'nope'"


@pytest.mark.parametrize(
    ("error", "restated"),
    [
        (MISSING_NOPE, f"{MISSING_NOPE}."),
        (
            f"{MISSING_NOPE} Did you mean none?",
            f"{MISSING_NOPE} Did you mean none?",  # no full stop after Nix's question
        ),
    ],
)
def test_a_single_installable_that_does_not_evaluate_is_evaluated_alone_to_name_the_error(
    error: str, restated: str
) -> None:
    # What the failed build prints: one error record, in the recorded logs' form.
    line = json.dumps({"action": "msg", "level": 0, "msg": f"\x1b[31;1merror:\x1b[0m {error}"})
    fake = FakeNix(
        [
            *start_calls("2.34"),
            StreamCall([*BUILD, ".#nope"], lines=[f"@nix {line}\n".encode()], returncode=1),
            RunCall(
                [*NIX, "path-info", "--derivation", ".#nope"],
                returncode=1,
                stderr=f"error: {error}\n",
            ),
            # Nothing was built: no path-info, no rebuild.
        ]
    )
    report, status, said = run(fake, ".#nope")
    assert (status, report.verdict()) == (1, "failed")
    # No path-info was started during the build: its log never showed the store open.
    assert fake.started_ahead == []
    assert report.installables[0].status == "error"
    # Said once, though both the build's log and the evaluation said it: with the
    # installable's name and the fix, in the live account as in the report.
    fix = dict(EVAL_FIXES)["does not provide attribute"]
    assert report.errors == (f".#nope: {restated} {fix}",)
    assert [line for line in said if "does not provide" in line] == [
        f"error: .#nope: {restated} {fix}"
    ]


@pytest.mark.parametrize("realised", [False, True])
def test_an_error_before_realising_is_still_said_when_the_installable_evaluates(
    *, realised: bool
) -> None:
    # Nix's error comes before it realises anything (a cache's, while Nix asks it), yet the
    # installable evaluates: not an evaluation error, so said as Nix said it; as soon as Nix
    # goes on to realise, if it does, else after the build.
    error = "error: unable to download 'http://127.0.0.1:1/x.narinfo': HTTP error 418"
    drv = "/nix/store/" + "a" * 32 + "-x.drv"
    records: list[dict[str, object]] = [{"action": "msg", "level": 0, "msg": error}]
    if realised:
        records += [
            {"action": "start", "id": 1, "level": 0, "parent": 0, "text": "", "type": 102},
            {
                "action": "start",
                "fields": [drv, "", 1, 1],
                "id": 2,
                "level": 3,
                "parent": 1,
                "text": f"building '{drv}'",
                "type": 105,
            },
        ]
    lines = [f"@nix {json.dumps(r)}\n".encode() for r in records]
    fake = FakeNix(
        [
            *start_calls("2.34"),
            StreamCall([*BUILD, ".#x"], lines=lines, returncode=1),
            RunCall([*NIX, "path-info", "--derivation", ".#x"], stdout=f"{drv}\n"),
            RunCall([*NIX, "path-info", ".#x"], returncode=1),
        ]
    )
    report, status, said = run(fake, ".#x")
    assert (status, report.verdict()) == (1, "failed")
    assert report.installables[0].status == "failed"
    assert said.count(f"  {error}") == 1
    if realised:
        assert said.index(f"  {error}") < said.index("  building x")
    # The path-info started at the build's first activity (none before it realised) was never
    # asked, nothing having been built: stopped at the run's end.
    started = [PATH_INFO_AHEAD] if realised else []
    assert (fake.started_ahead, fake.stopped) == (started, started)


def test_when_nothing_evaluates_nothing_is_built() -> None:
    fake = FakeNix(
        [
            *start_calls("2.34"),
            RunCall([*NIX, "path-info", "--derivation", ".#a"], returncode=1, stderr="error: a\n"),
            RunCall([*NIX, "path-info", "--derivation", ".#b"], returncode=1, stderr="error: b\n"),
        ]
    )
    report, status, _ = run(fake, ".#a", ".#b")
    assert (status, report.verdict(), report.runs) == (1, "failed", ())
    assert fake.started_ahead == []
    assert [i.error for i in report.installables] == [".#a: a", ".#b: b"]


# --- runs that stop -----------------------------------------------------------------------------


def test_a_missing_nix_stops_the_run_with_exit_1_and_the_fix() -> None:
    fake = FakeNix([RunCall(["nix", "--version"], error=FileNotFoundError(2, "No such file"))])
    report, status, said = run(fake, ".#default")
    assert (status, report.verdict(), report.exit_status()) == (1, "failed", 1)
    assert report.stopped == NIX_NOT_FOUND.format(exe="nix")
    assert report.errors == (report.stopped,)
    assert said == [f"nix-cache-action: {report.stopped}"]
    assert (report.runs, report.nix.version) == ((), None)


def test_a_too_old_nix_stops_the_run() -> None:
    fake = FakeNix([RunCall(["nix", "--version"], stdout="nix (Nix) 2.3.16\n")])
    report, status, _ = run(fake, ".#default")
    assert status == 1
    assert report.stopped is not None
    assert report.stopped.startswith("nix 2.3.16 is too old")


def test_interrupted_during_the_build_exits_130_with_what_was_parsed(
    store: Store, tmp_path: Path
) -> None:
    s = store
    lines = s.log("substitute", "2.34")
    # SIGTERM as top's substitution starts: leaf's has finished.
    cut = first_line_with(lines, b'"type":108', b"-top")
    argv = [*BUILD, ".#default"]
    start = [version_call("2.34"), config_call("2.34", [MAGIC_NIX_CACHE])]
    fake = FakeNix([*start, StreamCall(argv, lines=lines, raise_at=cut)])
    log_path = tmp_path / "nix.log"
    report, status, _ = run(fake, ".#default", log_path=log_path)
    assert (status, report.verdict()) == (130, "failed")
    # The settings, asked before the build and read after it, are read when it is cut short.
    assert report.configured_substituters == (MAGIC_NIX_CACHE,)
    # The report alone says a failure; 130 is the process's own word for the interruption.
    assert report.exit_status() == 1
    assert report.stopped == INTERRUPTED.format(signal="SIGTERM")
    assert report.runs == (
        Run(label="build", argv=tuple(argv), log_path=str(log_path), interrupted=True),
    )
    assert report.notes == (STEP_INTERRUPTED.format(label="build"),)
    assert [(sub.path, sub.substituter) for sub in report.substitutions] == [
        (s.leaf, MAGIC_NIX_CACHE)
    ]
    assert report.installables == (Installable(".#default", status="failed", error=NOT_BUILT),)
    # The raw log holds every line Nix wrote before it was stopped.
    assert log_path.read_bytes() == b"".join(lines[:cut])


def two_installables_until_the_rebuild(s: Store) -> list[RunCall | StreamCall]:
    return [
        *start_calls("2.34"),
        evaluate_call(".#default", s.top_drv),
        evaluate_call(".#nondet", s.nondet_drv),
        StreamCall(
            [*BUILD, ".#default", ".#nondet"],
            lines=s.log("build", "2.34"),
            stdout=build_json({s.top_drv: s.top, s.nondet_drv: s.nondet}),
        ),
        path_info_call("2.34", {s.top: HASHES["top"], s.nondet: HASHES["nondet"]}),
    ]


def test_interrupted_during_the_rebuild_keeps_the_checks_found_so_far(store: Store) -> None:
    s = store
    lines = s.log("rebuild", "2.34")
    # SIGTERM while Nix checks nondet, before top's check starts.
    cut = first_line_with(lines, b"checking outputs of", b"-nondet.drv") + 1
    fake = FakeNix(
        [
            *two_installables_until_the_rebuild(s),
            StreamCall(
                [*REBUILD, f"{s.top_drv}^out", f"{s.nondet_drv}^out"], lines=lines, raise_at=cut
            ),
            # Nothing more: no hashes, no diffoscope once stopping.
        ]
    )
    report, status, _ = run(fake, ".#default", ".#nondet")
    assert (status, report.verdict()) == (130, "failed")
    assert [(c.installable, c.verdict, c.reason, c.nar_hash) for c in report.checks] == [
        (".#default", "not-checked", REBUILD_CUT_SHORT, HASHES["top"]),
        (".#nondet", "not-checked", INTERRUPTED_CHECK, HASHES["nondet"]),
    ]
    assert [(r.label, r.exit_status, r.interrupted) for r in report.runs] == [
        ("build", 0, False),
        ("check", None, True),
    ]
    assert report.notes == (STEP_INTERRUPTED.format(label="check"),)
    assert report.phases.check is not None  # the cut-short rebuild's time is counted
    # What the build found is all there.
    assert [i.status for i in report.installables] == ["built", "built"]


def test_interrupted_before_nix_reported_the_difference_claims_no_reproducible_output(
    store: Store,
) -> None:
    s = store
    lines = s.log("rebuild", "2.34")
    # Both check activities have stopped; only the last line, the mismatch message, is missing.
    cut = first_line_with(lines, b"may not be deterministic")
    assert cut == len(lines) - 1
    fake = FakeNix(
        [
            *two_installables_until_the_rebuild(s),
            StreamCall(
                [*REBUILD, f"{s.top_drv}^out", f"{s.nondet_drv}^out"], lines=lines, raise_at=cut
            ),
        ]
    )
    report, status, _ = run(fake, ".#default", ".#nondet")
    assert status == 130
    nondet = next(c for c in report.checks if c.installable == ".#nondet")
    assert nondet.verdict != "reproducible"


def test_an_unexpected_error_from_the_runner_stops_the_run_and_never_passes(store: Store) -> None:
    s = store
    fake = FakeNix(
        [
            *two_installables_until_the_rebuild(s),
            StreamCall(
                [*REBUILD, f"{s.top_drv}^out", f"{s.nondet_drv}^out"],
                raise_at=0,
                error=OSError(errno.EMFILE, "Too many open files"),  # a runner's own failure
            ),
        ]
    )
    report, status, _ = run(fake, ".#default", ".#nondet")
    assert (status, report.verdict(), report.exit_status()) == (1, "failed", 1)
    error = OSError(errno.EMFILE, "Too many open files")
    assert report.stopped == UNEXPECTED.format(kind="OSError", error=error)
    # Everything had built: only the stop keeps the verdict from `ok`.
    assert [i.status for i in report.installables] == ["built", "built"]
    assert replace(report, stopped=None, errors=()).verdict() == "ok"


def test_a_raw_log_that_cannot_be_opened_is_a_note_and_the_run_goes_on(
    store: Store, tmp_path: Path
) -> None:
    s = store
    (tmp_path / "a-file").write_text("not a directory\n")
    log_path = tmp_path / "a-file" / "nix.log"
    fake = FakeNix(
        [
            *start_calls("2.34"),
            *substituted_and_checked(s),
        ]
    )
    report, status, _ = run(fake, ".#default", log_path=log_path)
    assert (status, report.verdict()) == (0, "ok")
    (note,) = report.notes
    # The OS's own words for why (here: a file where a folder must be) are in the middle.
    before, _, after = LOG_UNWRITABLE.partition("{error}")
    assert note.startswith(before.format(path=log_path))
    assert note.endswith(after)
    assert "Not a directory" in note or "File exists" in note
    assert [r.log_path for r in report.runs] == [None, None]


def test_the_raw_log_holds_every_line_of_every_run_and_each_run_names_it(
    store: Store, tmp_path: Path
) -> None:
    s = store
    build_lines, rebuild_lines = s.log("substitute", "2.34"), s.rebuild_of_top("2.34")
    fake = FakeNix(
        [
            *start_calls("2.34"),
            StreamCall(
                [*BUILD, ".#default"], lines=build_lines, stdout=build_json({s.top_drv: s.top})
            ),
            path_info_call("2.34", {s.top: HASHES["top"]}),
            StreamCall([*REBUILD, f"{s.top_drv}^out"], lines=rebuild_lines),
        ]
    )
    log_path = tmp_path / "logs" / "nix.log"  # its folder is made
    report, _, _ = run(fake, ".#default", log_path=log_path)
    assert log_path.read_bytes() == b"".join([*build_lines, *rebuild_lines])
    assert [r.log_path for r in report.runs] == [str(log_path.resolve())] * 2


def test_the_fake_interrupt_is_the_engines_interrupted() -> None:
    # The engine tells an interruption from other errors by this class: the fake must raise it.
    fake = FakeNix([StreamCall(["nix"], lines=[b"x\n"], raise_at=0)])
    with pytest.raises(Interrupted, match="SIGTERM"):
        fake.stream(["nix"], Tee(on_lines=lambda *_: None))


def test_a_cache_nix_gives_up_on_is_left_out_of_one_more_build(store: Store) -> None:
    """Nix 2.8 aborts the whole build on a cache's 418, fallback or not (cache418-2.8.log): the
    engine builds once more without that cache and reports both runs."""
    s = store
    teapot, good = "http://127.0.0.1:37516", "http://127.0.0.1:37515?trusted=1"
    fake = FakeNix(
        [
            version_call("2.8"),
            config_call("2.8", [teapot, good]),
            StreamCall([*BUILD, ".#default"], lines=s.log("cache418", "2.8"), returncode=1),
            StreamCall(
                [*BUILD, "--option", "substituters", good, ".#default"],
                lines=s.log("substitute", "2.8"),
                stdout=build_json({s.top_drv: s.top}),
            ),
            path_info_call("2.8", {s.top: HASHES["top"]}),
            sizes_call("http://127.0.0.1:37515", {s.leaf: (120, 128), s.top: (176, 184)}),
            StreamCall([*REBUILD, ".#default"], lines=s.rebuild_of_top("2.8")),
        ]
    )
    report, status, said = run(fake, ".#default")
    assert (status, report.verdict()) == (0, "ok")
    assert [(r.label, r.exit_status) for r in report.runs] == [
        ("build", 1),
        ("retry", 0),
        ("check", 0),
    ]
    # Both runs count: the teapot's 418 from the first, what the second fetched from the other.
    assert [(e.substituter, e.status) for e in report.cache_errors] == [(teapot, 418)]
    assert sorted(store_name(sub.path) for sub in report.substitutions) == ["leaf", "top"]
    assert report.configured_substituters == (teapot, good)
    assert {row.url: row.substituted for row in report.substituters()} == {
        "http://127.0.0.1:37515": 2,
        teapot: 0,
    }
    note = RETRY.format(caches=teapot)
    assert note in report.notes
    assert f"nix-cache-action: {note}" in said


def test_a_rebuild_nix_did_not_see_through_proves_nothing(store: Store) -> None:
    """Nix killed (SIGKILL, as the OOM killer does) after both check activities stopped and
    before it compared: no output is called reproducible, and the reason says what happened."""
    s = store
    lines = s.log("rebuild", "2.34")
    cut = first_line_with(lines, b"may not be deterministic")
    fake = FakeNix(
        [
            *two_installables_until_the_rebuild(s),
            StreamCall(
                [*REBUILD, f"{s.top_drv}^out", f"{s.nondet_drv}^out"],
                lines=lines[:cut],
                returncode=-9,
            ),
        ]
    )
    report, _, _ = run(fake, ".#default", ".#nondet")
    assert {c.verdict for c in report.checks} == {"not-checked"}
    reason = REBUILD_KILLED.format(how="Nix was killed by signal SIGKILL (9)")
    assert {c.reason for c in report.checks} == {reason}
    assert "could not be checked" in render_summary(report)
    assert "every output was checked" not in render_summary(report)


def test_the_heartbeat_names_the_builds_still_running(monkeypatch: pytest.MonkeyPatch) -> None:
    import time  # noqa: PLC0415

    from nix_cache_action import engine  # noqa: PLC0415
    from nix_cache_action.ledger import Ledger  # noqa: PLC0415

    monkeypatch.setattr(engine, "HEARTBEAT_SECONDS", 0.02)
    ledger = Ledger(run="build")
    drv = "/nix/store/" + "a" * 32 + "-slow.drv"
    start = {"action": "start", "id": 7, "level": 3, "type": 105, "fields": [drv, "", 1, 1]}
    ledger.feed(b"@nix " + json.dumps(start).encode() + b"\n", 0.0)
    said: list[str] = []
    with engine.Heartbeat(ledger, said.append, lambda: 125.0):
        time.sleep(0.2)
    assert said
    assert said[0].startswith("  still building (")
    assert said[0].endswith("): slow")
    # Nothing is said once the build stopped.
    ledger.feed(b'@nix {"action":"stop","id":7}\n', 1.0)
    said.clear()
    with engine.Heartbeat(ledger, said.append, lambda: 1.0):
        time.sleep(0.1)
    assert said == []


def test_a_rebuild_nix_refused_says_nixs_reason() -> None:
    """A check run that Nix refused before building anything (recent Nix with max-jobs = 0:
    "local builds are disabled") gives the innermost of Nix's words as the reason, not "the
    rebuild did not run"."""
    from nix_cache_action.engine import _unfinished  # noqa: PLC0415 - one private helper
    from nix_cache_action.ledger.reader import Ledger  # noqa: PLC0415
    from nix_cache_action.nix.process import Streamed  # noqa: PLC0415

    ledger = Ledger(run="check")
    said = (
        "error:\n       … while building\n\n       error: local builds are disabled (max-jobs = 0)"
    )
    record = {"action": "msg", "level": 0, "msg": said}
    ledger.feed(b"@nix " + json.dumps(record).encode() + b"\n")
    refused = Streamed(("nix",), 1, "", 0.1, interrupted=False)
    assert _unfinished(refused, ledger) == (
        "Nix refused the rebuild (local builds are disabled (max-jobs = 0)),"
        " so nothing was compared"
    )
    # The same words from a run that exited 0 are no refusal.
    assert _unfinished(Streamed(("nix",), 0, "", 0.1, interrupted=False), ledger) is None


def test_what_one_read_of_the_log_brings_is_said_in_one_write(store: Store) -> None:
    s = store
    fake = FakeNix(
        [
            *start_calls("2.34"),
            *substituted_and_checked(s, read=100_000),  # the whole log in one read
        ]
    )
    report, status, said = run(fake, ".#default")
    assert (status, report.verdict()) == (0, "ok")
    fetching = [text for text in said if "fetching" in text]
    assert len(fetching) == 1  # one write
    assert fetching[0].split("\n") == [
        f"  fetching {store_name(sub.path)} from {substituter_name(sub.substituter)}"
        for sub in report.substitutions
    ]
