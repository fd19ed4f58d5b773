"""The plan (plan.py): selection patterns split into attribute paths and into the roots one
`nix eval` each walks, the runner map, the cut of a flake's attributes into the legs of GitHub's
matrix (per system, along the dependency graph, widened to stay within the matrix limit), the
matrix output and the plan file's JSON form."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

import pytest

from nix_cache_action.plan import (
    DEFAULT_RUNNERS,
    LEGS_WIDENED,
    MATRIX_WITHOUT_INSTALLABLES,
    NESTED_DEPTH,
    PLAN_VERSION,
    Attribute,
    AttributeState,
    LeftOut,
    Leg,
    Plan,
    Root,
    make_legs,
    parse_runners,
    roots_for,
    split_pattern,
)
from nix_cache_action.report import NixInfo, Verification
from nix_cache_action.store_path import base_name

LINUX = "x86_64-linux"
DARWIN = "aarch64-darwin"
RUNNERS = {LINUX: "ubuntu-latest", DARWIN: "macos-latest"}


def drv(name: str) -> str:
    """A derivation path whose hash follows from its name: distinct names, distinct drvs."""
    return f"/nix/store/{hashlib.sha256(name.encode()).hexdigest()[:32]}-{name}.drv"


def node(name: str) -> str:
    """The graph's key for a derivation: its base name, `<hash>-name.drv`."""
    return base_name(drv(name))


def attribute(  # noqa: PLR0913 - each keyword is one fact an attribute may carry
    name: str,
    system: str = LINUX,
    *,
    category: str = "packages",
    state: AttributeState = "to-build",
    drv_of: str | None = None,
    outputs: Sequence[str] = ("out",),
    verified: dict[str, Verification] | None = None,
    error: str | None = None,
) -> Attribute:
    """`drv_of` gives it another attribute's derivation (packages.default = packages.app)."""
    return Attribute(
        attr=(category, system, name),
        installable=f".#{category}.{system}.{name}",
        system=system,
        state=state,
        drv=None if state == "error" else drv(drv_of or name),
        outputs={o: f"/nix/store/{'o' * 32}-{name}-{o}" for o in outputs}
        if state != "error"
        else {},
        verified=verified or {},
        error=error,
    )


def leg_of(legs: Sequence[Leg], installable: str) -> str:
    found = [leg.id for leg in legs if installable in leg.installables]
    assert len(found) == 1, f"{installable} is in {found}"
    return found[0]


def verification(output: str = "out") -> Verification:
    return Verification(
        drv=drv("lib"),
        output=output,
        nar_hash="sha256-" + "A" * 43 + "=",
        verdict="reproducible",
        checked_at="2026-03-01T12:00:00Z",
        commit="0123456789abcdef0123456789abcdef01234567",
        run_url="https://github.com/o/r/actions/runs/1",
        nix="2.35.2",
        system=LINUX,
        first_copy="substituted",
    )


# --- split_pattern ------------------------------------------------------------------------------


def test_split_pattern_splits_a_dotted_path() -> None:
    assert split_pattern("checks.x86_64-linux.fmt") == ("checks", "x86_64-linux", "fmt")
    assert split_pattern("checks") == ("checks",)
    assert split_pattern("  hydraJobs.*.x86_64-linux  ") == ("hydraJobs", "*", "x86_64-linux")


def test_split_pattern_keeps_dots_inside_quotes() -> None:
    # A package named `a.b` is one attribute, not two.
    assert split_pattern('packages.x86_64-linux."a.b"') == ("packages", "x86_64-linux", "a.b")
    assert split_pattern('"a.b".c') == ("a.b", "c")
    assert split_pattern('packages."x".y') == ("packages", "x", "y")


@pytest.mark.parametrize("pattern", ["checks..x", "checks.x.", ".checks", ""])
def test_split_pattern_refuses_an_empty_name(pattern: str) -> None:
    with pytest.raises(ValueError, match="empty attribute name"):
        split_pattern(pattern)


def test_split_pattern_refuses_an_unclosed_quote() -> None:
    with pytest.raises(ValueError, match="quote is not closed"):
        split_pattern('packages.x86_64-linux."a.b')


# --- roots_for ----------------------------------------------------------------------------------


def test_a_category_is_one_root_for_the_systems_asked() -> None:
    # One `nix eval` per category: the systems are a choice at the first step of the walk.
    assert roots_for("checks", (LINUX,)) == [
        Root(("checks",), ((LINUX,),), 2, None, "checks", default=False, system_index=1)
    ]
    # `checks.*` is the same as `checks`.
    (root,) = roots_for("checks.*", (LINUX, DARWIN))
    assert root.parts == ("checks",)
    assert root.rest == ((LINUX, DARWIN),)
    # The system of an attribute is the second part of its path.
    assert root.system_of(("checks", DARWIN, "fmt")) == DARWIN


def test_every_system_is_any_name_below_the_category() -> None:
    (root,) = roots_for("checks", None, default=True)
    assert root.rest == ("*",)
    assert root.default
    assert root.system_of(("checks", "riscv64-linux", "unit")) == "riscv64-linux"


def test_a_pattern_that_names_a_system_keeps_it() -> None:
    # The pattern names aarch64-linux: the systems asked do not filter it away.
    assert roots_for("packages.aarch64-linux.*", (LINUX,)) == [
        Root(
            ("packages", "aarch64-linux"),
            ("*",),
            1,
            "aarch64-linux",
            "packages.aarch64-linux.*",
            default=False,
            system_index=1,
        )
    ]


def test_the_formatter_is_the_derivation_itself() -> None:
    (root,) = roots_for("formatter", (LINUX, DARWIN))
    # formatter.<system> is a derivation: one level below the category, no more.
    assert (root.parts, root.rest, root.max_depth) == (("formatter",), ((LINUX, DARWIN),), 1)


def test_an_output_not_keyed_by_system_is_walked_deeper() -> None:
    assert roots_for("hydraJobs", (LINUX,)) == [
        Root(("hydraJobs",), (), NESTED_DEPTH, None, "hydraJobs", default=False)
    ]
    (root,) = roots_for("hydraJobs.*.x86_64-linux", (LINUX,))
    assert root.parts == ("hydraJobs",)
    assert root.rest == ("*", "x86_64-linux")
    assert root.system is None  # the system is below a wildcard: the walk finds it
    assert root.max_depth == 2 + NESTED_DEPTH


# --- parse_runners ------------------------------------------------------------------------------


def test_the_default_runners() -> None:
    runners = parse_runners([])
    assert runners["x86_64-linux"] == "ubuntu-latest"
    assert runners["aarch64-linux"] == "ubuntu-24.04-arm"
    assert runners["aarch64-darwin"] == "macos-latest"
    assert runners["x86_64-darwin"] == "macos-13"
    assert runners == dict(DEFAULT_RUNNERS)


def test_a_users_runner_replaces_the_default() -> None:
    runners = parse_runners(["x86_64-linux=self-hosted"])
    assert runners["x86_64-linux"] == "self-hosted"
    assert runners["aarch64-darwin"] == "macos-latest"  # the others stay
    # The defaults themselves are not changed by it.
    assert DEFAULT_RUNNERS["x86_64-linux"] == "ubuntu-latest"


def test_runner_pairs_separated_by_commas_or_newlines() -> None:
    runners = parse_runners(
        ["x86_64-linux=big-box,riscv64-linux=riscv-box", "aarch64-linux=arm-box\ni686-linux=old"]
    )
    assert runners["x86_64-linux"] == "big-box"
    assert runners["riscv64-linux"] == "riscv-box"
    assert runners["aarch64-linux"] == "arm-box"
    assert runners["i686-linux"] == "old"


@pytest.mark.parametrize("pair", ["nolabel", "=x", "x86_64-linux=", "x86/64=a"])
def test_a_bad_runner_pair_is_named(pair: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{pair!r} is not SYSTEM=LABEL")):
        parse_runners([f"aarch64-linux=arm, {pair}"])


# --- make_legs: per system ----------------------------------------------------------------------


def test_legs_per_system_with_their_runner() -> None:
    attributes = [
        attribute("a"),
        attribute("b"),
        attribute("c"),
        attribute("d", DARWIN),
        attribute("e", DARWIN),
    ]
    placed, legs, left_out, notes = make_legs(attributes, max_per_leg=2, runners=RUNNERS)
    assert [(leg.id, leg.system, leg.runner) for leg in legs] == [
        ("aarch64-darwin-1", DARWIN, "macos-latest"),
        ("x86_64-linux-1", LINUX, "ubuntu-latest"),
        ("x86_64-linux-2", LINUX, "ubuntu-latest"),
    ]
    # Each leg holds installables of its own system only.
    for leg in legs:
        assert all(f".{leg.system}." in name for name in leg.installables)
    # Every attribute says its leg, the one that holds it.
    assert [a.leg for a in placed] == [leg_of(legs, a.installable) for a in attributes]
    assert placed[3].leg == "aarch64-darwin-1"
    assert left_out == []
    assert notes == []


def test_at_most_max_per_leg_derivations_in_a_leg() -> None:
    attributes = [attribute(f"p{i}") for i in range(7)]
    _, legs, _, _ = make_legs(attributes, max_per_leg=3, runners=RUNNERS)
    assert [len(leg.installables) for leg in legs] == [3, 3, 1]
    # Every installable is built once.
    assert sorted(i for leg in legs for i in leg.installables) == sorted(
        a.installable for a in attributes
    )


def test_one_derivation_under_two_names_counts_once() -> None:
    attributes = [
        attribute("app"),
        attribute("tool"),
        attribute("default", drv_of="app"),  # packages.default = packages.app
    ]
    _, legs, _, _ = make_legs(attributes, max_per_leg=1, runners=RUNNERS)
    # Two derivations, two legs: the alias is not a third.
    assert len(legs) == 2
    assert leg_of(legs, attributes[0].installable) == leg_of(legs, attributes[2].installable)
    assert leg_of(legs, attributes[1].installable) != leg_of(legs, attributes[0].installable)
    # And the alias does not make its leg exceed one derivation: the other leg holds tool alone.
    assert legs[1].installables == (attributes[1].installable,)


def test_verified_attributes_are_left_out() -> None:
    verified = {"out": verification("out"), "dev": verification("dev")}
    attributes = [
        attribute("a"),
        attribute("lib", state="verified", outputs=("out", "dev"), verified=verified),
        attribute("zlib", state="verified"),
        attribute("mac", DARWIN, state="verified"),
        attribute("b", state="cached"),  # cached but not verified: built (and checked)
    ]
    placed, legs, left_out, _ = make_legs(attributes, max_per_leg=32, runners=RUNNERS)
    assert [leg.installables for leg in legs] == [
        (attributes[0].installable, attributes[4].installable)
    ]
    assert [a.leg for a in placed] == ["x86_64-linux-1", None, None, None, "x86_64-linux-1"]
    assert [(lo.system, lo.installables, lo.outputs) for lo in left_out] == [
        (DARWIN, (attributes[3].installable,), 1),
        (LINUX, (attributes[1].installable, attributes[2].installable), 3),
    ]
    assert all(isinstance(lo, LeftOut) and "verified" in lo.why for lo in left_out)


def test_errors_go_to_no_leg() -> None:
    attributes = [
        attribute("a"),
        attribute("broken", state="error", error="error: undefined variable 'x'"),
        # No runner for this system, but it did not evaluate: nothing to run, nothing to refuse.
        attribute("odd", "riscv64-linux", state="error", error="error: boom"),
    ]
    placed, legs, left_out, _ = make_legs(attributes, max_per_leg=32, runners=RUNNERS)
    assert [leg.installables for leg in legs] == [(attributes[0].installable,)]
    assert [a.leg for a in placed] == ["x86_64-linux-1", None, None]
    assert left_out == []


def test_a_system_without_a_runner_is_named() -> None:
    attributes = [attribute("a"), attribute("b", "riscv64-linux")]
    with pytest.raises(ValueError, match=r"no runner label for riscv64-linux: add `riscv64-linux="):
        make_legs(attributes, max_per_leg=32, runners=RUNNERS)


# --- make_legs: along the dependency graph ------------------------------------------------------


def test_a_check_goes_to_the_leg_of_the_package_it_needs() -> None:
    attributes = [
        attribute("app"),
        attribute("lib"),
        attribute("tool"),
        attribute("zed"),
        attribute("app-test", category="checks"),
    ]
    graph = {
        node("app-test"): {node("app"), node("stdenv")},
        node("app"): {node("stdenv")},
        node("lib"): {node("stdenv")},
        node("tool"): {node("stdenv")},
        node("zed"): {node("stdenv")},
    }
    app, check = attributes[0].installable, attributes[4].installable
    # In order alone, the check would land in a leg of its own, and build app a second time.
    _, blind, _, _ = make_legs(attributes, max_per_leg=2, runners=RUNNERS)
    assert leg_of(blind, app) != leg_of(blind, check)

    placed, legs, _, _ = make_legs(attributes, max_per_leg=2, runners=RUNNERS, graph=graph)
    assert len(legs) == 3  # max_per_leg 2 forces several legs
    assert leg_of(legs, app) == leg_of(legs, check)
    assert all(len(leg.installables) <= 2 for leg in legs)
    assert sorted(i for leg in legs for i in leg.installables) == sorted(
        a.installable for a in attributes
    )
    assert {a.installable: a.leg for a in placed}[check] == leg_of(legs, app)


def test_clusters_that_share_a_rare_dependency_are_packed_together() -> None:
    # a1 and b1 both need `rare`; c1 needs `other`, d1 nothing more; all need stdenv, which says
    # nothing about where one belongs.
    attributes = [attribute("a1"), attribute("c1"), attribute("b1"), attribute("d1")]
    graph = {
        node("a1"): {node("rare"), node("stdenv")},
        node("b1"): {node("rare"), node("stdenv")},
        node("c1"): {node("other"), node("stdenv")},
        node("d1"): {node("stdenv")},
    }
    a1, c1, b1, d1 = (a.installable for a in attributes)
    _, blind, _, _ = make_legs(attributes, max_per_leg=2, runners=RUNNERS)
    assert leg_of(blind, a1) == leg_of(blind, c1)  # in order: a1 with the unrelated c1

    _, legs, _, _ = make_legs(attributes, max_per_leg=2, runners=RUNNERS, graph=graph)
    assert len(legs) == 2
    assert leg_of(legs, a1) == leg_of(legs, b1)
    assert leg_of(legs, c1) == leg_of(legs, d1)
    assert leg_of(legs, a1) != leg_of(legs, c1)


# --- make_legs: GitHub's matrix limit -----------------------------------------------------------


def test_legs_are_widened_to_stay_within_the_matrix_limit() -> None:
    attributes = [attribute(f"p{i:03d}") for i in range(600)]
    placed, legs, _, notes = make_legs(attributes, max_per_leg=1, runners=RUNNERS, max_legs=256)
    assert len(legs) <= 256
    # 600 in 256 legs: 3 a leg is the least that fits.
    assert max(len(leg.installables) for leg in legs) == 3
    assert notes == [LEGS_WIDENED.format(count=600, asked=1, limit=256, used=3)]
    assert "legs hold up to 3 derivations instead" in notes[0]
    assert all(a.leg is not None for a in placed)
    assert len({i for leg in legs for i in leg.installables}) == 600


def test_each_system_needs_legs_of_its_own_within_the_limit() -> None:
    # 3 + 3 at 1 a leg is 6 legs; within 4, each system needs 2 legs of 2.
    attributes = [attribute(f"l{i}") for i in range(3)] + [
        attribute(f"d{i}", DARWIN) for i in range(3)
    ]
    _, legs, _, notes = make_legs(attributes, max_per_leg=1, runners=RUNNERS, max_legs=4)
    assert len(legs) == 4
    assert {leg.system for leg in legs} == {LINUX, DARWIN}
    assert notes == [LEGS_WIDENED.format(count=6, asked=1, limit=4, used=2)]


def test_no_note_within_the_limit() -> None:
    attributes = [attribute(f"p{i}") for i in range(256)]
    _, legs, _, notes = make_legs(attributes, max_per_leg=1, runners=RUNNERS, max_legs=256)
    assert len(legs) == 256
    assert notes == []


# --- the Plan -----------------------------------------------------------------------------------


def a_plan() -> Plan:
    attributes = [
        attribute("a"),
        attribute("b", state="cached"),
        attribute("c", DARWIN),
        attribute(
            "lib",
            state="verified",
            outputs=("out", "dev"),
            verified={"out": verification("out"), "dev": verification("dev")},
        ),
        attribute("broken", state="error", error="error: attribute 'x' missing"),
    ]
    placed, legs, left_out, notes = make_legs(attributes, max_per_leg=1, runners=RUNNERS)
    return Plan(
        flake=".",
        systems=(LINUX, DARWIN),
        selection=("checks", "packages"),
        attributes=tuple(placed),
        legs=tuple(legs),
        left_out=tuple(left_out),
        max_per_leg=1,
        runners=dict(RUNNERS),
        notes=(*notes, "a note"),
        errors=("error: one system did not evaluate",),
        nix=NixInfo(version="2.35.2", flavour="determinate", text="nix (Determinate Nix 3.22.2)"),
        working_directory="sub/dir",
        graph_read=True,
    )


def test_the_matrix_names_each_legs_installables() -> None:
    plan = a_plan()
    matrix, note = plan.matrix()
    assert note is None
    assert matrix == {
        "include": [
            {
                "leg": "aarch64-darwin-1",
                "system": DARWIN,
                "runner": "macos-latest",
                "installables": ".#packages.aarch64-darwin.c",
            },
            {
                "leg": "x86_64-linux-1",
                "system": LINUX,
                "runner": "ubuntu-latest",
                "installables": ".#packages.x86_64-linux.a",
            },
            {
                "leg": "x86_64-linux-2",
                "system": LINUX,
                "runner": "ubuntu-latest",
                "installables": ".#packages.x86_64-linux.b",
            },
        ]
    }


def test_the_installables_are_space_joined() -> None:
    leg = Leg("x86_64-linux-1", LINUX, "ubuntu-latest", (".#a", ".#b", ".#c"))
    plan = Plan(flake=".", systems=(LINUX,), selection=("packages",), legs=(leg,))
    matrix, _ = plan.matrix()
    assert matrix["include"][0]["installables"] == ".#a .#b .#c"


def test_a_matrix_too_big_leaves_the_installables_to_the_plan_file() -> None:
    plan = a_plan()
    full, _ = plan.matrix()
    size = len(json.dumps(full, separators=(",", ":")).encode())
    matrix, note = plan.matrix(limit=10)
    assert matrix == {
        "include": [
            {"leg": leg.id, "system": leg.system, "runner": leg.runner} for leg in plan.legs
        ]
    }
    assert note == MATRIX_WITHOUT_INSTALLABLES.format(size=size)
    # At the limit exactly it still fits.
    assert plan.matrix(limit=size) == (full, None)


def test_the_counts() -> None:
    assert a_plan().counts() == {"to-build": 2, "cached": 1, "verified": 1, "error": 1, "legs": 3}
    assert Plan(flake=".", systems=(), selection=()).counts() == {
        "to-build": 0,
        "cached": 0,
        "verified": 0,
        "error": 0,
        "legs": 0,
    }


def test_the_plan_file_round_trips() -> None:
    plan = a_plan()
    assert plan.left_out  # the verified attribute, with its Verification, is in it
    data = json.loads(json.dumps(plan.to_json()))
    assert data["plan_version"] == PLAN_VERSION
    assert data["counts"] == plan.counts()
    assert Plan.from_json(data) == plan


def test_a_plan_file_of_another_version_is_refused() -> None:
    data = a_plan().to_json()
    data["plan_version"] = 99
    with pytest.raises(ValueError, match="plan_version 99"):
        Plan.from_json(data)
    with pytest.raises(TypeError):
        Plan.from_json([data])


def test_a_plan_file_with_an_unknown_state_is_refused() -> None:
    data = a_plan().to_json()
    data["attributes"][0]["state"] = "maybe"
    with pytest.raises(ValueError, match="'maybe'"):
        Plan.from_json(data)


def test_a_leg_by_its_id() -> None:
    plan = a_plan()
    found = plan.leg("x86_64-linux-2")
    assert found is not None
    assert found.installables == (".#packages.x86_64-linux.b",)
    assert plan.leg("x86_64-linux-9") is None
