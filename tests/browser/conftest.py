"""Job summaries of live Nix builds, shown in a real browser as GitHub's run page shows them.

Each case runs `python -m nix_cache_action build` with Debian's Nix 2.8 in a store of its own
(the aggregate case: `plan`, a `build --plan --leg` per leg, each on a store and state of its
own as on a runner of its own, and `aggregate` of their reports), turns the summary it writes
into HTML with cmark-gfm (GitHub's own markdown renderer), wraps it in a page styled by
github-markdown-css, and hands every page to render.mjs, which opens them in headless Chromium
through playwright-core (one browser for all of them), draws the ```mermaid blocks with
mermaid 11 and prints what it measured. Into $NCA_SCREENSHOTS (default: .artifacts/screenshots/
in the checkout) go, per case, the page (CASE.html), a full-page screenshot (CASE.png) and one
of the first 900 x 900 px screen (CASE.first-screen.png), and for all cases the measurements
(measurements.json).

Chromium, the fonts and the npm packages come from scripts/provision-browser.sh (run once per
session; well under a second when done already). Nothing here touches /nix or the machine's
Nix configuration: each case has its own store, state, log and cache directories under pytest's
tmp_path, and NIX_CONFIG is the only configuration Nix reads.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from tests.support import http_cache

REPO = Path(__file__).resolve().parents[2]
PROVISION_SCRIPT = REPO / "scripts" / "provision-browser.sh"
DRIVER = Path(__file__).with_name("render.mjs")
NIX = "/usr/bin/nix"  # Debian's Nix 2.8, installed by scripts/setup.sh
# GitHub's run page gives a job summary a content box about 900 px wide; the first screen is
# taken to be as tall.
VIEWPORT_WIDTH = 900
FIRST_SCREEN_PX = 900
# apt-get install of Chromium and npm install take about 25 s here; a slow mirror, minutes.
PROVISION_TIMEOUT_SECONDS = 900
CLI_TIMEOUT_SECONDS = 180
DRIVER_TIMEOUT_SECONDS = 180

# Settings every Nix run here needs: single-user root without build users, flakes, and no
# memory of earlier answers between stores. The fixtures' builders are /bin/sh with
# PATH=/usr/bin:/bin, which build outside the sandbox with nothing but the host's tools.
BASE_CONFIG = (
    "experimental-features = nix-command flakes",
    "build-users-group =",
    "sandbox = false",
    "narinfo-cache-negative-ttl = 0",
    "eval-cache = false",
    # The test cache is unsigned (nix copy to file:// without a key).
    "require-sigs = false",
)


@dataclass
class NixStore:
    """An isolated Nix: its store, state, logs, caches and configuration under `root`."""

    root: Path
    store: Path
    substituters: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for directory in (self.root / "state", self.root / "log", self.root / "xdg", self.tmp):
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NIX_") and k != "TMPDIR"}
        config = [*BASE_CONFIG, f"substituters = {' '.join(self.substituters)}"]
        env.update(
            NIX_STORE_DIR=str(self.store),
            NIX_STATE_DIR=str(self.root / "state"),
            NIX_LOG_DIR=str(self.root / "log"),
            NIX_CONF_DIR=str(self.root / "etc"),
            NIX_USER_CONF_FILES=str(self.root / "etc" / "user.conf"),
            NIX_CONFIG="\n".join(config) + "\n",
            XDG_CACHE_HOME=str(self.root / "xdg"),
            TMPDIR=str(self.tmp),
            PYTHONPATH=str(REPO / "src"),
        )
        return env

    def nix(self, *args: str, cwd: Path) -> str:
        done = subprocess.run(
            [NIX, *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            env=self.environ(),
            timeout=CLI_TIMEOUT_SECONDS,
        )
        if done.returncode != 0:
            pytest.fail(f"nix {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done.stdout


@dataclass(frozen=True)
class Case:
    name: str  # also the screenshot's name
    flake: Path
    installables: tuple[str, ...]
    cached: tuple[str, ...] = ()  # attributes whose closures a binary cache holds
    # A warm run: a first run builds, checks and records the installables and their closures go
    # to the cache; the page shows the second run, on an empty store, with the record and the
    # first run's report as its baseline.
    warm: bool = False
    # A planned matrix: `plan` cuts the flake's legs for `systems` at one installable a leg, the
    # legs of the `reporting` systems are built one by one with `build --plan --leg`, and the
    # page shows `aggregate` of their reports with the plan: the legs of the other systems never
    # report. `installables` are then the installables the plan is to place in legs (the
    # Outputs table's rows), `legs` the ids of the legs it is to cut (the legs table's rows).
    systems: tuple[str, ...] = ()
    reporting: tuple[str, ...] = ()
    legs: tuple[str, ...] = ()


CASES = (
    # 31 derivations; a cache holds the closures of node-2-0 and node-2-3 (12 paths).
    Case(
        "dag-partial-cache",
        REPO / "tests/fixtures/flakes/dag",
        (".#default", ".#node-2-0"),
        cached=(".#node-2-0", ".#node-2-3"),
    ),
    # One reproducible output, one that differs on rebuild, one failed build.
    Case("outcomes", REPO / "tests/fixtures/flakes/outcomes", (".#good", ".#nondet", ".#fails")),
    # 201 derivations, all built.
    Case("wide", REPO / "benchmarks/flakes/wide", (".#default",)),
    # The dag's 31 derivations, all fetched, its output verified by the run before.
    Case("warm", REPO / "tests/fixtures/flakes/dag", (".#default",), warm=True),
    # Four legs of one package each: on x86_64-linux `fails` fails, `good` is reproducible,
    # `nondet` is not; the aarch64-linux leg (`good`) is never run, so it never reports.
    Case(
        "aggregate",
        REPO / "tests/fixtures/flakes/legs",
        tuple(
            f".#packages.{system}.{name}"
            for system, name in (
                ("x86_64-linux", "fails"),
                ("x86_64-linux", "good"),
                ("x86_64-linux", "nondet"),
                ("aarch64-linux", "good"),
            )
        ),
        systems=("x86_64-linux", "aarch64-linux"),
        reporting=("x86_64-linux",),
        legs=("aarch64-linux-1", "x86_64-linux-1", "x86_64-linux-2", "x86_64-linux-3"),
    ),
)


@dataclass(frozen=True)
class Rendered:
    """One case: the CLI's run, its summary, and what the browser measured of it."""

    case: Case
    returncode: int
    # Kept out of the repr: pytest prints the fixture's value with every failure.
    report: dict[str, Any] = field(repr=False)
    summary: str = field(repr=False)
    page: dict[str, Any] = field(repr=False)
    screenshot: Path = field(repr=False)


def screenshots_dir() -> Path:
    directory = Path(os.environ.get("NCA_SCREENSHOTS") or REPO / ".artifacts" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def page_html(summary: str, node_modules: Path, title: str) -> str:
    """The summary as GitHub shows it: cmark-gfm's HTML in a markdown-body article.

    Raw HTML is kept (GitHub keeps the summary's <details>, <summary> and <sub>).
    """
    body = cmarkgfm.github_flavored_markdown_to_html(summary, options=Options.CMARK_OPT_UNSAFE)
    css = (node_modules / "github-markdown-css" / "github-markdown-light.css").as_uri()
    mermaid = (node_modules / "mermaid" / "dist" / "mermaid.min.js").as_uri()
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
        f"<title>{html.escape(title)}</title>\n"
        f"<link rel='stylesheet' href='{css}'>\n"
        f"<script src='{mermaid}'></script>\n"
        "<style>html, body { margin: 0; padding: 0; background: #fff; }\n"
        f".markdown-body {{ box-sizing: border-box; width: {VIEWPORT_WIDTH}px; }}</style>\n"
        "</head><body><article class='markdown-body'>\n"
        f"{body}\n</article></body></html>\n"
    )


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """Provision Chromium and the npm packages (idempotent; quick when done)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.fail("bash is needed to run scripts/provision-browser.sh")
    done = subprocess.run(
        [bash, str(PROVISION_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=PROVISION_TIMEOUT_SECONDS,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/provision-browser.sh failed ({done.returncode}):\n{done.stderr}")
    if shutil.which("node") is None:
        pytest.fail("provision-browser.sh ran, but there is no node on PATH")
    return Path(done.stdout.strip().splitlines()[-1]) / "node_modules"


def _fill_cache(case: Case, base: Path) -> tuple[Path, Path]:
    """A binary cache (a file:// cache directory) holding the closures of `case.cached`, made by
    a producer whose store is then deleted; returns the store directory and the cache."""
    producer = NixStore(base / "producer", base / "store")
    cache = _to_cache(producer, case.cached, case.flake, base / "cache")
    shutil.rmtree(producer.root)
    return producer.store, cache


def _to_cache(producer: NixStore, attrs: Sequence[str], flake: Path, cache: Path) -> Path:
    """The closures of `attrs` copied into `cache` (file://), and the producer's store emptied:
    the consumer starts with an empty store at the same path (store paths depend on it)."""
    for attr in attrs:
        producer.nix("copy", "--to", f"file://{cache}", attr, cwd=flake)
    shutil.rmtree(producer.store)
    return cache


def _warm_up(case: Case, base: Path, flake: Path) -> tuple[Path, Path, list[str]]:
    """The first of a warm case's two runs: it builds, checks and writes the record and its
    report, and its closures go to a cache. Returns the store directory, the cache, and the
    second run's extra arguments."""
    first = NixStore(base / "first", base / "store")
    record, earlier = base / "verified.json", base / "first-report.json"
    done = _cli(case, flake, first, "--verified", str(record), "--report", str(earlier))
    if done.returncode != 0:
        pytest.fail(f"{case.name}: the first run failed:\n{done.stderr[-3000:]}")
    cache = _to_cache(first, case.installables, flake, base / "cache")
    return first.store, cache, ["--verified", str(record), "--baseline", str(earlier)]


def _cli(case: Case, flake: Path, env: NixStore, *extra: str) -> subprocess.CompletedProcess[str]:
    return _nca(env, flake, "build", *case.installables, "--nix", NIX, *extra)


def _nca(env: NixStore, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m nix_cache_action ARGS` with `env`'s Nix."""
    return subprocess.run(
        [sys.executable, "-m", "nix_cache_action", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env.environ(),
        timeout=CLI_TIMEOUT_SECONDS,
    )


def _forget(env: NixStore) -> None:
    """The store and state of a runner that is done: the next starts with nothing."""
    shutil.rmtree(env.root)
    shutil.rmtree(env.store, ignore_errors=True)


def _run_matrix(case: Case, base: Path, flake: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`plan`, a `build --plan --leg` for each leg of the reporting systems, and `aggregate` of
    their reports (a folder of one folder per leg, as the downloaded artifacts are) with the
    plan, writing out/summary.md and out/report.json.

    Every step is a runner of its own: it starts on an empty store, at the same path for all
    (store paths depend on it, and every runner's store is /nix/store), with state of its own."""
    store, plan = base / "store", out / "plan.json"
    planner = NixStore(base / "planner", store)
    systems = ",".join(case.systems)
    done = _nca(
        planner,
        flake,
        *("plan", "--nix", NIX, "--systems", systems, "--max-per-leg", "1", "--plan", str(plan)),
    )
    if done.returncode != 0:
        pytest.fail(f"{case.name}: plan exited {done.returncode}:\n{done.stderr[-3000:]}")
    _forget(planner)
    legs = out / "legs"
    for leg in json.loads(plan.read_text("utf-8"))["legs"]:
        if leg["system"] not in case.reporting:
            continue
        runner = NixStore(base / "runners" / leg["id"], store)
        files = legs / leg["id"]
        files.mkdir(parents=True)
        done = _nca(
            runner,
            flake,
            *("build", "--plan", str(plan), "--leg", leg["id"], "--nix", NIX),
            *("--log", str(files / "nix.log"), "--report", str(files / "report.json")),
            *("--summary", str(files / "summary.md")),
        )
        if not (files / "report.json").is_file():
            pytest.fail(
                f"{case.name}: leg {leg['id']} wrote no report (exit {done.returncode}):\n"
                f"{done.stderr[-3000:]}"
            )
        _forget(runner)
    return _nca(
        NixStore(base / "aggregator", store),
        flake,
        *("aggregate", str(legs), "--plan", str(plan), "--junit", str(out / "junit.xml")),
        *("--summary", str(out / "summary.md"), "--report", str(out / "report.json")),
    )


def _build(case: Case, base: Path, flake: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`build` of the case's installables, writing out/summary.md and out/report.json."""
    extra: list[str] = []
    with contextlib.ExitStack() as stack:
        if case.warm:
            store, cache, extra = _warm_up(case, base, flake)
            env = NixStore(base / "consumer", store, [stack.enter_context(http_cache.serve(cache))])
        elif case.cached:
            store, cache = _fill_cache(case, base)
            env = NixStore(base / "consumer", store, [stack.enter_context(http_cache.serve(cache))])
        else:
            env = NixStore(base / "consumer", base / "store")
        return _cli(
            case,
            flake,
            env,
            *("--log", str(out / "nix.log")),
            *("--summary", str(out / "summary.md"), "--report", str(out / "report.json")),
            *extra,
        )


def _run_case(case: Case, base: Path) -> tuple[int, Path, Path]:
    """The case's runs on a copy of its flake; returns the status, summary and report of the
    one the page shows (`build`, or for a matrix `aggregate`)."""
    flake = base / "flake"
    shutil.copytree(case.flake, flake)
    out = base / "out"
    out.mkdir()
    run = _run_matrix if case.systems else _build
    done = run(case, base, flake, out)
    summary, report = out / "summary.md", out / "report.json"
    if not summary.is_file() or not report.is_file():
        pytest.fail(
            f"{case.name}: the CLI wrote no summary or report (exit {done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )
    return done.returncode, summary, report


@pytest.fixture(scope="session")
def rendered(node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """Every case built, written, and shown in one Chromium; measurements by case name."""
    if not Path(NIX).is_file():
        pytest.fail(f"{NIX} is missing: run scripts/setup.sh (Debian's nix-bin)")
    if not Path("/usr/bin/chromium").is_file():
        pytest.fail("/usr/bin/chromium is missing after scripts/provision-browser.sh")
    base = tmp_path_factory.mktemp("browser")
    shots = screenshots_dir()
    runs: dict[str, tuple[int, Path, Path]] = {}
    pages = []
    for case in CASES:
        returncode, summary, report = _run_case(case, base / case.name)
        runs[case.name] = (returncode, summary, report)
        page = shots / f"{case.name}.html"
        page.write_text(
            page_html(summary.read_text("utf-8"), node_modules, case.name), encoding="utf-8"
        )
        pages.append(
            {
                "case": case.name,
                "html": str(page),
                "installables": list(case.installables),
                "legs": list(case.legs),
                "screenshot": str(shots / f"{case.name}.png"),
            }
        )
    jobs = base / "jobs.json"
    jobs.write_text(
        json.dumps(
            {
                "node_modules": str(node_modules.parent),
                "width": VIEWPORT_WIDTH,
                "height": FIRST_SCREEN_PX,
                "pages": pages,
            }
        ),
        encoding="utf-8",
    )
    node = shutil.which("node") or "node"
    done = subprocess.run(
        [node, str(DRIVER), str(jobs)],
        capture_output=True,
        text=True,
        check=False,
        timeout=DRIVER_TIMEOUT_SECONDS,
    )
    if done.returncode != 0:
        pytest.fail(f"render.mjs exited {done.returncode}:\n{done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    (shots / "measurements.json").write_text(json.dumps(measured, indent=2) + "\n", "utf-8")
    results = {}
    for case in CASES:
        returncode, summary, report = runs[case.name]
        results[case.name] = Rendered(
            case=case,
            returncode=returncode,
            report=json.loads(report.read_text("utf-8")),
            summary=summary.read_text("utf-8"),
            page=measured["pages"][case.name],
            screenshot=shots / f"{case.name}.png",
        )
    return results
