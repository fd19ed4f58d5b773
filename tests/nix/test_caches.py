"""Substitution from two real HTTP binary caches, and caches that answer with errors.

The caches (conftest `caches`) hold known closures of the dag fixture: Magic Nix Cache's
address holds node-2-0's closure (6 paths) and outcomes' nondet; the other cache holds
node-2-3's closure (6 paths, disjoint). Everything else must be built.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nix_cache_action.store_path import store_name

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.nix.conftest import Caches, FaultServers, NixEnv, NixExe

pytestmark = pytest.mark.nix

DAG_NAMES = {f"node-{layer}-{k}" for layer in range(5) for k in range(6)} | {"dag-top"}


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: a connection to it is refused


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose connections time out: a listener that never accepts, its backlog full."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(4):  # past the backlog the kernel drops the SYNs: connect() waits
            filler = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            filler.settimeout(0.0)  # non-blocking
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield port


def names_built(report: dict[str, Any]) -> list[str]:
    return sorted(store_name(b["drv"]) for b in report["builds"] if b["status"] == "built")


def closure_names(layer: int, k: int) -> set[str]:
    """A dag node and everything it references (node (l, k) uses (l-1, k) and (l-1, k+1))."""
    found = {f"node-{layer}-{k % 6}"}
    if layer > 0:
        found |= closure_names(layer - 1, k % 6) | closure_names(layer - 1, (k + 1) % 6)
    return found


def only(items: list[dict[str, Any]], **match: object) -> dict[str, Any]:
    found = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one item with {match}, found {found}"
    return found[0]


def test_substitutes_from_two_caches_and_builds_the_rest(
    caches: Caches, nix_exe: NixExe, tmp_path: Path
) -> None:
    env = caches.env(nix_exe, tmp_path, caches.magic, caches.other)
    flake = env.flake("dag")
    run = env.cli("build", ".#default", ".#node-2-0", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report

    from_magic, from_other = closure_names(2, 0), closure_names(2, 3)
    assert len(from_magic) == len(from_other) == 6
    assert not from_magic & from_other
    subs = report["substitutions"]
    assert {s["path"] for s in subs if s["substituter"] == caches.magic.url} == {
        p for p in caches.magic.paths if store_name(p) in from_magic
    }
    assert {s["path"] for s in subs if s["substituter"] == caches.other.url} == set(
        caches.other.paths
    )
    assert len(subs) == 12

    built = [b for b in report["builds"] if b["status"] == "built"]
    assert sorted(store_name(b["drv"]) for b in built) == sorted(
        DAG_NAMES - from_magic - from_other
    )
    assert {b["reason"] for b in built} == {"not-in-cache"}
    totals = report["totals"]
    assert (totals["substituted"], totals["built"], totals["failed"]) == (12, 19, 0)
    # substituted / (substituted + built), rounded for the JSON.
    assert totals["hit_rate"] == pytest.approx(12 / (12 + 19), abs=1e-3)
    assert totals["cache_errors"] == 0

    rows = {row["name"]: row for row in report["substituters"]}
    assert sorted(rows) == sorted(["Magic Nix Cache", caches.other.name])
    magic, other = rows["Magic Nix Cache"], rows[caches.other.name]
    assert magic["url"] == "http://127.0.0.1:37515"
    assert other["url"] == caches.other.url
    assert (magic["substituted"], other["substituted"]) == (6, 6)
    # Nix asks the caches in order and stops at the first that has a path: all 31 outputs are
    # asked of the first cache, the 25 it lacks of the second.
    assert (magic["queried"], other["queried"]) == (31, 25)
    # Sizes: the NAR's (NarSize) and the compressed file's (FileSize), as the narinfo says, on
    # every version: Nix 2.34 and Determinate say them in the log; Nix 2.8 sends no progress for
    # these copies and ties a download to its copy only when one copy is open, so the engine
    # asks each cache for what the log lacks.
    for sub in subs:
        cache = caches.magic if sub["substituter"] == caches.magic.url else caches.other
        narinfo = cache.narinfo(sub["path"])
        sizes = (int(narinfo["NarSize"]), int(narinfo["FileSize"]))
        assert (sub["nar_bytes"], sub["download_bytes"]) == sizes, sub["path"]
    for row in (magic, other):
        mine = [s for s in subs if s["substituter"] == row["url"]]
        assert row["nar_bytes"] == sum(s["nar_bytes"] for s in mine)
        assert row["download_bytes"] == sum(s["download_bytes"] for s in mine)
    assert totals["nar_bytes"] == magic["nar_bytes"] + other["nar_bytes"]

    # The top-level served by a cache is rebuilt here and compared with the cache's copy.
    node = only(report["checks"], installable=".#node-2-0")
    [(node_out, node_info)] = env.path_info(".#node-2-0", flake).items()
    assert node["verdict"] == "reproducible"
    assert node["first_copy"] == "substituted"
    assert node["substituter"] == caches.magic.url
    assert node["nar_hash"] == node_info["narHash"]
    assert node["check_nar_hash"] is None
    assert node["path"] == node_out
    top = only(report["checks"], installable=".#default")
    assert (top["verdict"], top["first_copy"], top["substituter"]) == (
        "reproducible",
        "built",
        None,
    )


def test_cross_machine_check_of_a_substituted_output_that_differs(
    caches: Caches, nix_exe: NixExe, tmp_path: Path
) -> None:
    env = caches.env(nix_exe, tmp_path, caches.magic)
    flake = env.flake("outcomes")
    run = env.cli("build", ".#nondet", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report
    assert (report["totals"]["substituted"], report["totals"]["built"]) == (1, 0)
    [sub] = report["substitutions"]
    assert sub["substituter"] == caches.magic.url
    assert sub["path"] in caches.magic.paths

    [check] = report["checks"]
    [(out, info)] = env.path_info(".#nondet", flake).items()
    assert check["path"] == out == sub["path"]
    assert check["verdict"] == "differs"
    assert check["first_copy"] == "substituted"
    assert check["substituter"] == caches.magic.url
    # The first copy is the cache's (the producer's build, earlier): its hash is the narinfo's.
    assert check["nar_hash"] == info["narHash"]
    assert check["check_nar_hash"].startswith("sha256-")
    assert check["nar_hash"] != check["check_nar_hash"]
    assert [d["path"] for d in check["differences"]] == ["stamp"]


# --- caches that answer with errors ------------------------------------------------------------


def test_without_fallback_a_cache_answering_418_stops_the_build(
    faults: FaultServers, nix_env: NixEnv
) -> None:
    env = nix_env
    teapot = faults.start(env.store, 418)
    env.substituters = [teapot.url]
    flake = env.flake("outcomes")
    run = env.cli("build", "--no-fallback", ".#good", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report
    assert "--fallback" not in report["runs"][0]["argv"]

    [error] = report["cache_errors"]
    assert error["status"] == 418
    assert error["substituter"] == teapot.url
    assert error["retried"] is False
    assert error["url"].startswith(f"{teapot.url}/")
    assert error["url"].endswith(".narinfo")
    # Only the top-level output was asked about (again by the tool's follow-up `nix path-info`,
    # which asks the caches what is missing): Nix stopped at the first answer.
    assert teapot.requests[0] == "/nix-cache-info"
    assert set(teapot.requests[1:]) == {error["url"].removeprefix(teapot.url)}
    # Nix gives up on the whole build at the first such answer: nothing is built or fetched.
    assert report["builds"] == []
    assert report["substitutions"] == []
    [message] = report["errors"]
    assert "HTTP error 418" in message
    assert error["url"] in message
    good = only(report["installables"], name=".#good")
    assert good["status"] == "failed"
    assert "HTTP error 418" in good["error"]
    row = only(report["substituters"], url=teapot.url)
    assert (row["name"], row["errors"], row["queried"], row["substituted"]) == (
        teapot.name,
        1,
        1,
        0,
    )
    assert report["verdict"] == "failed"


def test_a_cache_answering_418_never_fails_the_run(faults: FaultServers, nix_env: NixEnv) -> None:
    env = nix_env
    teapot = faults.start(env.store, 418)
    env.substituters = [teapot.url]
    flake = env.flake("outcomes")
    run = env.cli("build", ".#good", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    [error] = report["cache_errors"]
    assert (error["substituter"], error["status"]) == (teapot.url, 418)
    labels = [r["label"] for r in report["runs"]]
    if env.exe.version == "2.8":
        # Nix 2.8 aborts the whole build at the 418, --fallback or not: the engine builds once
        # more without that cache, says so, and both runs are in the report.
        assert labels == ["build", "retry", "check"]
        # It dies of an uncaught nix::SubstituterDisabled: SIGABRT.
        assert report["runs"][0]["exit_status"] == -6
        retry = report["runs"][1]["argv"]
        assert retry[retry.index("--option") :][:3] == ["--option", "substituters", ""]
        assert any("building once more without it" in n for n in report["notes"])
    else:
        # Newer Nix disables the cache and builds (--fallback): one run.
        assert labels == ["build", "check"]
    # The build Nix asked the cache about says why it was built.
    good = only(report["builds"], status="built", reason="cache-error")
    assert good["reason_detail"] == f"{teapot.url} answered HTTP 418"
    assert store_name(good["drv"]) == "good"
    assert names_built(report) == ["good", "leaf"]
    assert report["configured_substituters"] == [teapot.url]
    assert report["verdict"] == "ok"
    assert any("HTTP error 418" in e for e in report["errors"])


def test_without_fallback_a_cache_answering_500_is_retried_then_stops_the_build(
    faults: FaultServers, nix_env: NixEnv
) -> None:
    env = nix_env
    broken = faults.start(env.store, 500)
    env.substituters = [broken.url]
    # Nix's default is 5 attempts with growing pauses (~8 s here); 3 keep the test short.
    env.extra_config = ["download-attempts = 3"]
    flake = env.flake("outcomes")
    run = env.cli("build", "--no-fallback", ".#good", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report

    errors = report["cache_errors"]
    assert [(e["status"], e["retried"]) for e in errors] == [(500, True), (500, True), (500, False)]
    assert len({e["url"] for e in errors}) == 1
    narinfo = errors[0]["url"].removeprefix(broken.url)
    assert broken.requests[:4] == ["/nix-cache-info", narinfo, narinfo, narinfo]
    assert set(broken.requests[4:]) <= {narinfo}
    assert errors[0]["message"].startswith("warning:")
    assert errors[-1]["message"].startswith("error:")
    assert report["builds"] == []
    assert any("HTTP error 500" in e for e in report["errors"])
    assert "HTTP error 500" in only(report["installables"], name=".#good")["error"]
    assert only(report["substituters"], url=broken.url)["errors"] == 3


def test_without_fallback_a_cache_answering_418_fails_the_build_even_next_to_a_good_cache(
    caches: Caches, faults: FaultServers, nix_exe: NixExe, tmp_path: Path
) -> None:
    env = caches.env(nix_exe, tmp_path, caches.magic)
    teapot = faults.start(env.store, 418)
    env.substituters = [caches.magic.url, teapot.url]
    flake = env.flake("dag")
    run = env.cli("build", "--no-fallback", ".#default", cwd=flake)
    assert run.returncode == 1, run.stderr
    report = run.report
    # The top-level output is asked of both caches first; the teapot's answer ends the run
    # before anything is fetched from the good cache or built.
    assert report["queried"] == {caches.magic.url: 1, teapot.url: 1}
    assert [(e["substituter"], e["status"]) for e in report["cache_errors"]] == [(teapot.url, 418)]
    assert report["substitutions"] == []
    assert report["builds"] == []
    assert "HTTP error 418" in only(report["installables"], name=".#default")["error"]


def test_next_to_a_good_cache_a_418_costs_nothing_but_the_error(
    caches: Caches, faults: FaultServers, nix_exe: NixExe, tmp_path: Path
) -> None:
    env = caches.env(nix_exe, tmp_path, caches.magic)
    teapot = faults.start(env.store, 418)
    env.substituters = [caches.magic.url, teapot.url]
    flake = env.flake("dag")
    run = env.cli("build", ".#default", ".#node-2-0", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    # What the good cache has comes from it, the rest is built, over both runs where Nix 2.8
    # needed a second one; the teapot's one answer is its error.
    totals = report["totals"]
    assert (totals["substituted"], totals["built"], totals["failed"]) == (6, 25, 0)
    assert {s["substituter"] for s in report["substitutions"]} == {caches.magic.url}
    assert [(e["substituter"], e["status"]) for e in report["cache_errors"]] == [(teapot.url, 418)]
    rows = {row["url"]: row for row in report["substituters"]}
    assert (rows[caches.magic.url]["substituted"], rows[teapot.url]["substituted"]) == (6, 0)
    assert rows[teapot.url]["errors"] == 1
    retried = [r["label"] for r in report["runs"]] == ["build", "retry"]
    assert retried == (nix_exe.version == "2.8")
    assert report["verdict"] == "ok"


def test_cache_whose_nix_cache_info_fails_is_never_asked(
    caches: Caches, faults: FaultServers, nix_exe: NixExe, tmp_path: Path
) -> None:
    env = caches.env(nix_exe, tmp_path, caches.magic)
    dead = faults.start(env.store, 418, fail_cache_info=True)
    env.substituters = [dead.url, caches.magic.url]
    flake = env.flake("dag")
    run = env.cli("build", ".#default", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    # Nix warns about nix-cache-info, drops that cache for the run, and carries on.
    assert dead.requests == ["/nix-cache-info"]
    [error] = report["cache_errors"]
    assert (error["url"], error["status"]) == (f"{dead.url}/nix-cache-info", 418)
    assert error["message"].startswith("warning:")
    assert report["queried"] == {caches.magic.url: 31}
    assert (report["totals"]["substituted"], report["totals"]["built"]) == (6, 25)
    assert only(report["substituters"], url=dead.url)["queried"] == 0
    assert only(report["substituters"], name="Magic Nix Cache")["substituted"] == 6
    assert report["verdict"] == "ok"
    assert report["errors"] == []


def test_time_asking_a_slow_cache_is_the_caches_not_the_evaluations(
    caches: Caches, faults: FaultServers, nix_exe: NixExe, tmp_path: Path
) -> None:
    delay = 2.0
    slow = faults.start_slow(caches.magic, delay)
    env = caches.env(nix_exe, tmp_path)
    env.substituters = [slow.url]
    flake = env.flake("dag")
    run = env.cli("build", ".#node-2-0", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report

    assert {store_name(s["path"]) for s in report["substitutions"]} == closure_names(2, 0)
    phases = report["phases"]
    # Every narinfo was answered after `delay`: at least that long was spent asking.
    assert phases["cache_query"] >= delay - 0.05
    # Evaluating the dag takes a fraction of it; before, the look-ups counted as evaluation.
    assert phases["evaluation"] < delay
    assert phases["cache_wait"] is None  # nothing failed


def test_a_nar_that_fails_to_download_is_no_hit_and_explains_the_build(
    caches: Caches, faults: FaultServers, nix_exe: NixExe, tmp_path: Path
) -> None:
    failing = faults.start_nar_failing(caches.magic, 500)
    env = caches.env(nix_exe, tmp_path)
    env.substituters = [failing.url]
    env.extra_config += ["fallback = true", "download-attempts = 2"]
    flake = env.flake("dag")
    run = env.cli("build", ".#node-2-0", "--reproducibility", "off", cwd=flake)
    report = run.report

    # Nix asked for NARs and got none: nothing was substituted, and the cache served nothing.
    assert report["substitutions"] == []
    assert report["totals"]["substituted"] == 0
    [row] = report["substituters"]
    assert (row["url"], row["substituted"]) == (failing.url, 0)
    assert row["errors"] == report["totals"]["cache_errors"] > 0
    nar_errors = [e for e in report["cache_errors"] if "/nar/" in e["url"]]
    assert nar_errors
    # Each failed NAR is the failing cache's error (never a cache named `.../nar`), for a path
    # that cache holds.
    assert {e["substituter"] for e in report["cache_errors"]} == {failing.url}
    attributed = [e for e in nar_errors if e["path"] is not None]
    assert all(e["path"] in caches.magic.paths for e in attributed)
    if nix_exe.version != "2.8":
        # Where Nix ties a download to its copy (2.18+), every NAR error names its path.
        assert attributed == nar_errors
    if run.returncode != 0:
        # Nix 2.8 gives up on the path although fallback is set.
        assert report["verdict"] == "failed"
        return
    built = {store_name(b["drv"]): b for b in report["builds"] if b["status"] == "built"}
    assert set(built) == closure_names(2, 0)
    failed_first = {store_name(e["path"]) for e in attributed}
    assert failed_first
    for name in failed_first:
        assert built[name]["reason"] == "cache-error"
        assert built[name]["reason_detail"] == f"{failing.url} answered HTTP 500"
    assert report["totals"]["hit_rate"] == 0.0


def test_a_cache_that_cannot_be_reached_is_a_cache_error_with_the_time_it_cost(
    caches: Caches, nix_exe: NixExe, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"  # nothing listens there: connection refused
    env = caches.env(nix_exe, tmp_path, caches.magic)
    env.substituters = [dead, caches.magic.url]
    env.extra_config += ["download-attempts = 3"]
    flake = env.flake("dag")
    run = env.cli("build", ".#default", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report

    errors = [e for e in report["cache_errors"] if e["substituter"] == dead]
    assert errors
    assert all(e["status"] is None for e in errors)
    assert all("connect" in e["message"].lower() for e in errors)  # the cause, named
    assert any(e["retried"] for e in errors)  # Nix tried again before it gave up on it
    row = only(report["substituters"], url=dead)
    assert (row["substituted"], row["errors"]) == (0, len(errors))
    assert row["seconds_lost"] is not None
    assert row["seconds_lost"] > 0
    assert report["seconds_lost"] == {dead: row["seconds_lost"]}, report["cache_errors"]
    # The retries' wait is cache time, not evaluation.
    assert report["phases"]["cache_wait"] == pytest.approx(row["seconds_lost"], abs=0.05)
    # The good cache still served what it has; nothing of the dead one is a warning too.
    totals = report["totals"]
    assert (totals["substituted"], totals["built"]) == (6, 25)
    assert not [w for w in report["warnings"] if dead in w]
    assert f"{dead.removeprefix('http://')} could not be reached:" in run.stderr
    assert "nothing came from it" in run.summary_path.read_text(encoding="utf-8")
    assert report["verdict"] == "ok"


def test_a_cache_whose_connections_time_out_costs_every_second_nix_waited(
    caches: Caches, nix_exe: NixExe, tmp_path: Path
) -> None:
    env = caches.env(nix_exe, tmp_path, caches.magic)
    # Two attempts, each waiting the whole connect time-out before Nix gives up.
    env.extra_config += ["download-attempts = 2", "connect-timeout = 1"]
    flake = env.flake("dag")
    with unanswered_port() as port:
        silent = f"http://127.0.0.1:{port}"
        env.substituters = [silent, caches.magic.url]
        run = env.cli("build", ".#default", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    errors = [e for e in report["cache_errors"] if e["substituter"] == silent]
    assert errors
    assert all(e["status"] is None for e in errors)
    assert all("Timeout was reached" in e["message"] for e in errors), errors
    row = only(report["substituters"], url=silent)
    assert row["substituted"] == 0
    # At least the two connect time-outs; no more than the whole run.
    assert 2.0 <= row["seconds_lost"] <= sum(r["seconds"] for r in report["runs"]), row
    # Waiting on caches holds that cache's lost time (under load a little more: a slow answer
    # of the good cache counts too), and never more than the run.
    waited, lost = report["phases"]["cache_wait"], report["seconds_lost"]
    total = sum(r["seconds"] for r in report["runs"])
    assert row["seconds_lost"] - 0.05 <= waited <= total, lost
    assert (report["totals"]["substituted"], report["totals"]["built"]) == (6, 25)
    assert report["verdict"] == "ok"


@pytest.mark.parametrize("status", [429, 500])
def test_a_cache_answering_narinfos_with_an_error_never_fails_the_run(
    status: int, faults: FaultServers, nix_env: NixEnv
) -> None:
    env = nix_env
    failing = faults.start(env.store, status)
    env.substituters = [failing.url]
    # One attempt: from 2.29 Nix waits a minute and more before it asks again after a 429.
    env.extra_config = ["download-attempts = 1"]
    flake = env.flake("outcomes")
    run = env.cli("build", ".#good", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    errors = [e for e in report["cache_errors"] if e["substituter"] == failing.url]
    assert errors
    assert {e["status"] for e in errors} == {status}
    assert not any(e["url"].endswith("/nar") for e in errors)
    assert names_built(report) == ["good", "leaf"]
    assert report["substitutions"] == []
    row = only(report["substituters"], url=failing.url)
    assert (row["substituted"], row["errors"]) == (0, len(errors))
    assert report["totals"]["hit_rate"] == 0.0
    assert report["verdict"] == "ok"


def test_a_corrupt_nar_is_a_cache_error_for_its_path_and_the_path_is_built(
    caches: Caches, faults: FaultServers, nix_exe: NixExe, tmp_path: Path
) -> None:
    corrupt = faults.start_corrupt(caches.magic)
    env = caches.env(nix_exe, tmp_path)
    env.substituters = [corrupt.url]
    env.extra_config += ["download-attempts = 1"]
    flake = env.flake("dag")
    run = env.cli("build", ".#default", "--reproducibility", "off", cwd=flake)
    assert run.returncode == 0, run.stderr
    report = run.report
    # Every NAR it sends is broken: nothing came from it, all 31 derivations were built.
    assert report["substitutions"] == []
    assert (report["totals"]["substituted"], report["totals"]["built"]) == (0, 31)
    errors = [e for e in report["cache_errors"] if e["substituter"] == corrupt.url]
    assert errors
    assert all(e["path"] is not None for e in errors)
    assert all("/nar/" in e["url"] for e in errors)
    row = only(report["substituters"], url=corrupt.url)
    assert (row["substituted"], row["hit_rate"]) == (0, 0.0)
    built = {store_name(b["drv"]): b for b in report["builds"]}
    for name in {store_name(e["path"]) for e in errors}:
        assert built[name]["reason"] == "cache-error"
        assert "could not be reached" not in built[name]["reason_detail"]
    assert report["verdict"] == "ok"
