"""Why each derivation was built, against real Nix (2.8, 2.34, Determinate 3.22): the second of
two runs of the dag fixture flake names the derivations that changed at the root and counts what
each dragged along.

The dag (tests/fixtures/flakes/dag/flake.nix): 5 layers of 6 nodes, node (l, k) over (l-1, k)
and (l-1, k+1 mod 6), and `default` over the whole last layer. A first run builds it all; then
one or two leaves of layer 0 are changed in the flake, and a second run in the same store builds
only what changed and what depends on it.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import pytest

from nix_cache_action.store_path import store_name

if TYPE_CHECKING:
    from pathlib import Path

    from tests.nix.conftest import NixEnv

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
    why = report["why"]
    assert why is not None
    return {store_name(cause["drv"]): cause for cause in why["root_causes"]}


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
    assert {store_name(d) for d in cause["dependents"]} == expected
    # The path runs from the leaf, a layer at a time, to the top.
    path = [store_name(d) for d in cause["path"]]
    assert path[0] == "node-0-2"
    assert path[-1] == "dag-top"
    assert [p.split("-")[1] for p in path[:-1]] == [str(layer) for layer in range(DEPTH)]
    assert second["why"]["unknown"] == []
    # Said where a person looks: the summary leads with it, the terminal has a line.
    run = nix_env.cli_result("second", 0, "", "")
    summary = run.summary_path.read_text(encoding="utf-8")
    assert "**1 derivation changed at the root**; the other 15 were built only because" in summary
    assert "`node-0-2`: changed in itself; 15 more built because of it (node-0-2 →" in summary


def test_two_independent_changes_are_two_root_causes(nix_env: NixEnv) -> None:
    first_flake = nix_env.flake("dag")
    build(nix_env, first_flake, "first")
    shutil.rmtree(first_flake)
    second = build(nix_env, nix_env.flake("dag", changed(0, 3)), "second")
    causes = roots(second)
    assert set(causes) == {"node-0-0", "node-0-3"}
    for k in (0, 3):
        cause = causes[f"node-0-{k}"]
        assert {store_name(d) for d in cause["dependents"]} == dependents_of({k})
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
