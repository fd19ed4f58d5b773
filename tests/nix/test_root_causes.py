"""Why each derivation was built, against real Nix (2.8, 2.34, Determinate 3.22): the second of
two runs of the dag fixture flake names the derivations that changed at the root and counts what
each dragged along.

The dag (tests/fixtures/flakes/dag/flake.nix): 5 layers of 6 nodes, node (l, k) over (l-1, k)
and (l-1, k+1 mod 6), and `default` over the whole last layer. A first run builds it all; then
one or two leaves of layer 0 are changed in the flake, and a second run in the same store builds
only what changed and what depends on it.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from nix_cache_action.report import Report
from nix_cache_action.store_path import store_hash, store_name
from nix_cache_action.why import NOT_IN_BASELINE, with_changes

if TYPE_CHECKING:
    from pathlib import Path

    from tests.nix.conftest import CliRun, NixEnv

pytestmark = pytest.mark.nix

WIDTH, DEPTH = 6, 5
LEAF = 'then mk "node-0-${toString k}" "echo leaf ${toString k} > $out" [ ]'


def changed(*leaves: int) -> dict[str, str]:
    """A flake text replacement that changes the script of the given layer-0 nodes only."""
    which = " || ".join(f"k == {k}" for k in leaves)
    return {
        LEAF: 'then mk "node-0-${toString k}" ("echo leaf ${toString k} > $out"'
        f' + (if {which} then "; echo changed >> $out" else "")) [ ]'
    }


def dependents_of(leaves: set[int]) -> set[str]:
    """Every node built over one of `leaves` (and `default`), worked out from the dag's shape."""
    reached = {f"node-0-{k}" for k in leaves}
    found: set[str] = set()
    for layer in range(1, DEPTH):
        for k in range(WIDTH):
            inputs = {f"node-{layer - 1}-{k}", f"node-{layer - 1}-{(k + 1) % WIDTH}"}
            if inputs & reached:
                found.add(f"node-{layer}-{k}")
        reached |= found
    return found | {"dag-top"}


def build(env: NixEnv, flake: Path, name: str) -> dict[str, Any]:
    done = env.cli("build", ".#default", "--reproducibility", "off", cwd=flake, name=name)
    assert done.returncode == 0, done.stderr
    return done.report


def roots(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Root causes by name, each with the names of the misses built because of it (the builds
    that name it in `because`, itself left out)."""
    why = report["why"]
    assert why is not None
    found = {}
    for index, cause in enumerate(why["root_causes"]):
        dependents = {
            store_name(b["drv"])
            for b in report["builds"]
            if index in b.get("because", []) and b["drv"] != cause["drv"]
        }
        found[store_name(cause["drv"])] = {**cause, "dependents": dependents}
    return found


def test_one_changed_leaf_is_the_only_root_cause_and_its_dependents_are_counted(
    nix_env: NixEnv,
) -> None:
    first_flake = nix_env.flake("dag")
    first = build(nix_env, first_flake, "first")
    # A cold build: every leaf is a root cause, and together they caused all the rest.
    assert set(roots(first)) == {f"node-0-{k}" for k in range(WIDTH)}
    assert first["why"]["misses"] == WIDTH * DEPTH + 1
    shutil.rmtree(first_flake)
    second_flake = nix_env.flake("dag", changed(2))
    second = build(nix_env, second_flake, "second")
    built = {store_name(b["drv"]) for b in second["builds"] if b["status"] == "built"}
    expected = dependents_of({2})
    assert built == expected | {"node-0-2"}
    (cause,) = roots(second).values()
    assert store_name(cause["drv"]) == "node-0-2"
    assert cause["caused"] == len(expected) == 15
    assert cause["dependents"] == expected
    # The path runs from the leaf, a layer at a time, to the top.
    path = cause["path"]  # names, as the report keeps them
    assert path[0] == "node-0-2"
    assert path[-1] == "dag-top"
    assert [p.split("-")[1] for p in path[:-1]] == [str(layer) for layer in range(DEPTH)]
    assert second["why"]["unknown"] == []
    # Said where a person looks: the summary leads with it, the terminal has a line.
    run = nix_env.cli_result("second", 0, "", "")
    summary = run.summary_path.read_text(encoding="utf-8")
    assert (
        "**1 derivation was built at the root** (none of its inputs was built here);"
        " the other 15 were built only because" in summary
    )
    assert "`node-0-2`: 15 more built because of it (node-0-2 →" in summary


def test_two_independent_changes_are_two_root_causes(nix_env: NixEnv) -> None:
    first_flake = nix_env.flake("dag")
    build(nix_env, first_flake, "first")
    shutil.rmtree(first_flake)
    second = build(nix_env, nix_env.flake("dag", changed(0, 3)), "second")
    causes = roots(second)
    assert set(causes) == {"node-0-0", "node-0-3"}
    for k in (0, 3):
        cause = causes[f"node-0-{k}"]
        assert cause["dependents"] == dependents_of({k})
        assert cause["caused"] == len(dependents_of({k}))
    # Misses are the two leaves and what depends on either, each once.
    assert second["why"]["misses"] == 2 + len(dependents_of({0}) | dependents_of({3}))


def test_a_change_a_cache_already_holds_is_no_miss_and_no_root_cause(nix_env: NixEnv) -> None:
    """node-0-2 changed, but its new output is in a binary cache: it is fetched, and what
    depends on it is built with it as an input that was not built here."""
    first_flake = nix_env.flake("dag")
    build(nix_env, first_flake, "first")
    shutil.rmtree(first_flake)
    flake = nix_env.flake("dag", changed(2))
    # Its new output into a cache, then out of the store again.
    nix_env.nix("build", "--no-link", ".#node-0-2", cwd=flake)
    leaf = nix_env.nix("path-info", ".#node-0-2", cwd=flake).stdout.strip()
    cache = nix_env.root / "cache"
    nix_env.nix("copy", "--to", f"file://{cache}", leaf, cwd=flake)
    nix_env.nix("store", "delete", leaf, cwd=flake)
    nix_env.substituters = [f"file://{cache}"]
    nix_env.extra_config.append("require-sigs = false")
    second = build(nix_env, flake, "second")
    assert leaf in {s["path"] for s in second["substitutions"]}
    causes = roots(second)
    assert "node-0-2" not in causes
    # The two nodes of layer 1 over node-0-2 are what changed among the builds.
    assert set(causes) == {"node-1-1", "node-1-2"}
    built = {store_name(b["drv"]) for b in second["builds"] if b["status"] == "built"}
    assert built == dependents_of({2})


def test_a_change_that_drags_along_more_than_the_budget_fails_the_run(nix_env: NixEnv) -> None:
    first_flake = nix_env.flake("dag")
    build(nix_env, first_flake, "first")
    shutil.rmtree(first_flake)
    flake = nix_env.flake("dag", changed(2))
    # node-0-2 and its 15 dependents: 16 builds for one change.
    over = nix_env.cli(
        "build", ".#default", "--reproducibility", "off", "--max-per-change", "15", cwd=flake
    )
    assert over.returncode == 1, over.stderr
    report = over.report
    assert report["verdict"] == "over-budget"
    (message,) = report["budgets"]["exceeded"]
    assert message.startswith("max-per-change 15: ")
    assert "node-0-2 (16 with it)" in message
    # Nothing new to build now: the same budget passes.
    again = nix_env.cli(
        "build",
        ".#default",
        "--reproducibility",
        "off",
        "--max-per-change",
        "15",
        cwd=flake,
        name="again",
    )
    assert again.returncode == 0, again.stderr
    assert again.report["budgets"]["exceeded"] == []


VERSIONED = "inherit deps;"


def with_version(node_4_version: str) -> dict[str, str]:
    """Every derivation gets `version = "1"`; node-0-4 gets `node_4_version`."""
    return {
        VERSIONED: 'inherit deps; version = if name == "node-0-4"'
        f' then "{node_4_version}" else "1";'
    }


def test_against_the_baseline_the_root_cause_says_what_changed(nix_env: NixEnv) -> None:
    """Once the script of node-0-2 (its builder's arguments), once the version attribute of
    node-0-4: the second report, compared with the first, names that and nothing else."""
    first_flake = nix_env.flake("dag", with_version("1"))
    build(nix_env, first_flake, "first")
    baseline = nix_env.root / "out" / "first" / "report.json"
    shutil.rmtree(first_flake)
    second_flake = nix_env.flake("dag", {**with_version("1"), **changed(2)})

    def against_first(flake: Path, name: str) -> CliRun:
        run = nix_env.cli(
            "build",
            ".#default",
            "--reproducibility",
            "off",
            "--baseline",
            str(baseline),
            cwd=flake,
            name=name,
        )
        assert run.returncode == 0, run.stderr
        return run

    second = against_first(second_flake, "second")
    (cause,) = second.report["why"]["root_causes"]
    assert store_name(cause["drv"]) == "node-0-2"
    change = cause["change"]
    assert change["unknown"] is None
    # The first run's node-0-2, by the hash of its derivation.
    # Its fingerprints are "DRV NAME|ENV|SOURCES|INPUTS".
    first_leaf = next(
        f.split(" ", 1)[0]
        for f in json.loads(baseline.read_text())["why"]["fingerprints"]
        if f.split("|", 1)[0].endswith(" node-0-2")
    )
    assert change["against"] == first_leaf != store_hash(cause["drv"])[:12]
    assert (change["env"], change["sources"], change["inputs"]) == (["(args)"], [], [])
    summary = second.summary_path.read_text(encoding="utf-8")
    assert "`node-0-2`: changed since the baseline: its builder's arguments; 15 more" in summary
    # Now the version of another leaf, against the first run, which built every node: the
    # version is named, and only it.
    shutil.rmtree(second_flake)
    third_flake = nix_env.flake("dag", {**with_version("2"), **changed(2)})
    third = against_first(third_flake, "third")
    (cause,) = third.report["why"]["root_causes"]
    assert store_name(cause["drv"]) == "node-0-4"
    assert cause["caused"] == len(dependents_of({4}))
    assert (cause["change"]["env"], cause["change"]["inputs"]) == (["version"], [])
    summary = third.summary_path.read_text(encoding="utf-8")
    assert "`node-0-4`: changed since the baseline: version; " in summary
    # Against the second run, which did not build node-0-4 (it was in the store), nothing can
    # be said, and exactly that is said.
    against_second = with_changes(Report.from_json(third.report), Report.from_json(second.report))
    assert against_second.why is not None
    (unknown,) = against_second.why.root_causes
    assert unknown.change is not None
    assert unknown.change.unknown == NOT_IN_BASELINE.format(name="node-0-4")


def test_the_report_grows_by_at_most_200_bytes_per_miss(nix_env: NixEnv) -> None:
    """What the reckoning adds to a report (its `why` and each build's `because`), divided by
    the derivations built: the issue's bound, on a cold build where every leaf is a root."""
    flake = nix_env.flake("dag")
    report = build(nix_env, flake, "first")
    misses = report["why"]["misses"]
    assert misses == WIDTH * DEPTH + 1
    added = len(json.dumps(report["why"], separators=(",", ":")))
    added += sum(len(f',"because":{json.dumps(b["because"])}') for b in report["builds"])
    assert added / misses <= 200, (added, misses)
