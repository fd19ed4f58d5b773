"""What changed since the baseline (why.py): each miss's compact fingerprint, how it is packed
into `key=hash` text, how a root cause is compared with the baseline's derivation of the same
name (or exactly why it cannot be), how each miss's build names its root causes (`because`),
the JSON round trip that rebuilds each root cause's dependents from those, and how
render/why.py says a change.

Expected hashes are worked out here from what the docstrings promise (sha256 of the value with
store paths' hashes taken out, its first 6 hex digits), not read back from the code under test.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from nix_cache_action import why as why_module
from nix_cache_action.nix.derivations import Derivation
from nix_cache_action.records import replace
from nix_cache_action.render.why import root_causes_markdown, root_causes_terminal
from nix_cache_action.report import (
    Build,
    Change,
    Fingerprint,
    Installable,
    Report,
    RootCause,
    Why,
)
from nix_cache_action.schema import schema_errors
from nix_cache_action.why import (
    FINGERPRINTS_KEPT,
    explain,
    fingerprint,
    fingerprints,
    misses,
    name_of,
    pack,
    unpack,
    with_because,
    with_changes,
)

STORE = "/nix/store"


def hashed(seed: str) -> str:
    """A 32-character store hash made of `seed`, repeated."""
    return (seed * 32)[:32]


def path(seed: str, name: str) -> str:
    return f"{STORE}/{hashed(seed)}-{name}"


def short(text: str) -> str:
    """What a fingerprint keeps of a value: the start of its sha256."""
    return hashlib.sha256(text.encode()).hexdigest()[:6]


HELLO_DRV = path("0123456789abcdfghijklmnpqrsvwxyz", "hello-2.12.drv")
BASH = path("b", "bash-5.2") + "/bin/bash"
SRC = path("s", "source")
BUILDER_SH = path("k", "builder.sh")
LIB = path("l", "lib.drv")
GCC = path("g", "gcc-13.drv")
OUT = path("o", "hello-2.12")
DEV = path("d", "hello-2.12-dev")


def hello(**changes: Any) -> Derivation:
    """A derivation as parse_aterm gives it, with `changes` made."""
    base = Derivation(
        path=HELLO_DRV,
        input_drvs=(LIB, GCC),
        input_srcs=(SRC, BUILDER_SH),
        env={
            "name": "hello-2.12",
            "out": OUT,
            "dev": DEV,
            "outputs": "out dev",
            "builder": BASH,
            "version": "2.12",
            "deps": f"{path('z', 'zlib-1.3')} {path('p', 'openssl-3.0')}",
        },
        system="x86_64-linux",
        builder=BASH,
        args=("-e", BUILDER_SH),
        outputs={"out": OUT, "dev": DEV},
    )
    return replace(base, **changes)


def env_of(derivation: Derivation) -> dict[str, str]:
    return unpack(fingerprint(derivation).env)


def with_env(**values: str) -> Derivation:
    """hello with these environment values set (or added)."""
    return hello(env={**hello().env, **values})


# --- fingerprint(): the environment -------------------------------------------------------------


def test_store_hashes_are_taken_out_of_environment_values_before_hashing() -> None:
    # Only the hash part of zlib's path differs: the value is the same for the fingerprint.
    other_zlib = with_env(deps=f"{path('y', 'zlib-1.3')} {path('p', 'openssl-3.0')}")
    assert env_of(other_zlib)["deps"] == env_of(hello())["deps"]
    # The hash is of the value with each `<hash>-` gone from the store paths.
    assert env_of(hello())["deps"] == short("/nix/store/zlib-1.3 /nix/store/openssl-3.0")
    # Another name in the path is another value.
    newer_zlib = with_env(deps=f"{path('z', 'zlib-1.4')} {path('p', 'openssl-3.0')}")
    assert env_of(newer_zlib)["deps"] != env_of(hello())["deps"]
    # Any other text in the value counts too.
    assert env_of(with_env(version="2.13"))["version"] != env_of(hello())["version"]
    assert env_of(hello())["version"] == short("2.12")


def test_only_a_whole_store_hash_in_the_derivations_own_store_is_taken_out() -> None:
    # A "hash" of the wrong length is text like any other.
    stub = f"{STORE}/abc-zlib"
    assert env_of(with_env(deps=stub))["deps"] == short(stub)
    # The store is the derivation's own: one elsewhere loses the hashes of its own paths.
    elsewhere = hello(path=f"/tmp/store/{hashed('q')}-hello-2.12.drv")
    value = f"/tmp/store/{hashed('z')}-zlib-1.3"
    moved = replace(elsewhere, env={**elsewhere.env, "deps": value})
    assert env_of(moved)["deps"] == short("/tmp/store/zlib-1.3")


def test_output_paths_and_the_name_are_left_out_of_the_environment() -> None:
    keys = set(env_of(hello()))
    assert keys == {"outputs", "builder", "version", "deps", "(args)"}
    # New output paths (they change with anything else) change nothing in the environment.
    moved = with_env(out=path("x", "hello-2.12"), dev=path("y", "hello-2.12-dev"))
    assert fingerprint(moved).env == fingerprint(hello()).env
    # The name is said apart, and is the store name when the environment has none.
    assert fingerprint(hello()).name == "hello-2.12"
    nameless = hello(env={k: v for k, v in hello().env.items() if k != "name"})
    assert fingerprint(nameless).name == "hello-2.12"
    assert fingerprint(nameless).env == fingerprint(hello()).env
    # An environment value named like no output stays, though its value is a store path.
    extra = hello(outputs={"out": OUT})
    assert "dev" in env_of(extra)
    assert env_of(extra)["dev"] == short("/nix/store/hello-2.12-dev")


def test_the_builder_is_said_apart_only_where_the_environment_does_not_say_it() -> None:
    assert "(builder)" not in env_of(hello())
    other = path("c", "coreutils-9.5") + "/bin/sh"
    differs = hello(builder=other)
    assert env_of(differs)["(builder)"] == short("/nix/store/coreutils-9.5/bin/sh")
    assert env_of(differs)["builder"] == env_of(hello())["builder"]
    # No `builder` in the environment: the builder is said apart.
    without = hello(env={k: v for k, v in hello().env.items() if k != "builder"})
    assert env_of(without)["(builder)"] == short("/nix/store/bash-5.2/bin/bash")
    assert "builder" not in env_of(without)


def test_the_builders_arguments_are_one_value_that_changes_with_them() -> None:
    args = env_of(hello())["(args)"]
    # The arguments as a JSON list, store paths' hashes taken out.
    assert args == short('["-e", "/nix/store/builder.sh"]')
    assert env_of(hello(args=("-ex", BUILDER_SH)))["(args)"] != args
    assert env_of(hello(args=("-e", BUILDER_SH, "--more")))["(args)"] != args
    assert env_of(hello(args=(BUILDER_SH, "-e")))["(args)"] != args
    # Split differently, the same characters are other arguments.
    assert env_of(hello(args=("-e /nix/store/builder.sh",)))["(args)"] != args
    # A store path's hash is taken out of the arguments as well.
    assert env_of(hello(args=("-e", path("j", "builder.sh"))))["(args)"] == args
    # No arguments at all still say `(args)`: the hash of an empty list.
    assert env_of(hello(args=()))["(args)"] == short("[]")


def test_no_arguments_and_one_empty_argument_are_told_apart() -> None:
    assert env_of(hello(args=()))["(args)"] != env_of(hello(args=("",)))["(args)"]


def test_an_environment_variable_named_like_a_part_outside_it_is_not_lost() -> None:
    one, other = with_env(**{"(args)": "one"}), with_env(**{"(args)": "other"})
    assert fingerprint(one).env != fingerprint(other).env


# --- fingerprint(): sources, inputs and the derivation itself -----------------------------------


def test_inputs_and_sources_are_by_name_with_a_short_hash() -> None:
    print_ = fingerprint(hello())
    assert unpack(print_.inputs) == {"lib": hashed("l")[:6], "gcc-13": hashed("g")[:6]}
    assert unpack(print_.sources) == {"source": hashed("s")[:6], "builder.sh": hashed("k")[:6]}
    # Written sorted by name.
    assert print_.inputs == f"gcc-13={hashed('g')[:6]} lib={hashed('l')[:6]}"
    assert print_.sources == f"builder.sh={hashed('k')[:6]} source={hashed('s')[:6]}"


def test_two_sources_of_one_name_share_a_key_their_hashes_sorted_and_joined() -> None:
    two = hello(input_srcs=(path("z", "source"), path("a", "source")), input_drvs=())
    assert fingerprint(two).sources == f"source={hashed('a')[:6]}+{hashed('z')[:6]}"
    # The order they are listed in does not matter.
    swapped = hello(input_srcs=(path("a", "source"), path("z", "source")), input_drvs=())
    assert fingerprint(swapped).sources == fingerprint(two).sources
    # Input derivations the same way (two outputs' worth of one name).
    both = hello(input_drvs=(path("9", "lib.drv"), path("1", "lib.drv")))
    assert unpack(fingerprint(both).inputs) == {"lib": f"{hashed('1')[:6]}+{hashed('9')[:6]}"}
    # Nothing at all: empty text.
    bare = hello(input_srcs=(), input_drvs=())
    assert (fingerprint(bare).sources, fingerprint(bare).inputs) == ("", "")


def test_the_derivation_is_named_by_the_first_12_characters_of_its_hash() -> None:
    assert fingerprint(hello()).drv == "0123456789ab"
    assert fingerprint(hello(path=path("7", "hello-2.12.drv"))).drv == "7" * 12


def test_a_fingerprint_in_a_report_validates_against_the_schema() -> None:
    odd = with_env(**{"key with space": "x", "a=b": "y", "100%": "z"})
    kept = (fingerprint(hello()), fingerprint(odd))
    data = Report(why=Why(misses=2, fingerprints=kept)).to_json()
    assert schema_errors(data) == []
    # One string per miss: DRV NAME|ENV|SOURCES|INPUTS.
    assert data["why"]["fingerprints"][0] == (
        f"0123456789ab hello-2.12|{kept[0].env}|{kept[0].sources}|{kept[0].inputs}"
    )
    assert Report.from_json(data).why == Why(misses=2, fingerprints=kept)


# --- pack and unpack ----------------------------------------------------------------------------


def test_pack_and_unpack_round_trip_any_key() -> None:
    values = {
        "version": "abc123",
        "key with space": "000001",
        "a=b": "000002",
        "100%": "000003",
        "%20": "000004",
        "(args)": "000005",
        "(builder)": "000006",
        "tab\there": "000007",
        "line\nbreak": "000008",
        "plus+sign": "000009",
        "ünïcode": "00000a",
        "src": "aaaaaa+zzzzzz",
    }
    text = pack(values)
    assert unpack(text) == values
    # One item per key: a key's space or `=` never splits or cuts an item.
    assert len(text.split()) == len(values)
    assert all(item.count("=") == 1 for item in text.split())


def test_pack_encodes_only_what_must_be_and_sorts() -> None:
    items = pack({"version": "1", "key with space": "2", "a=b": "3", "100%": "4"}).split()
    assert items == ["100%25=4", "a%3Db=3", "key%20with%20space=2", "version=1"]
    # The parts outside the environment stay readable.
    assert pack({"(builder)": "b", "(args)": "a"}) == "(args)=a (builder)=b"
    assert pack({}) == ""
    assert unpack("") == {}


# --- fingerprints(): the cap --------------------------------------------------------------------


def numbered(i: int) -> Derivation:
    return hello(path=f"{STORE}/{i:032}-n{i}.drv", env={"name": f"n{i}"})


def test_fingerprints_keeps_the_first_up_to_the_cap_and_counts_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert FINGERPRINTS_KEPT == 1000
    monkeypatch.setattr(why_module, "FINGERPRINTS_KEPT", 3)
    five = [numbered(i) for i in range(5)]
    kept, left_out = fingerprints(five)
    assert [f.name for f in kept] == ["n0", "n1", "n2"]
    assert kept == tuple(fingerprint(d) for d in five[:3])
    assert left_out == 2
    assert fingerprints(five[:3]) == (tuple(fingerprint(d) for d in five[:3]), 0)
    assert fingerprints(five[:1]) == ((fingerprint(five[0]),), 0)
    assert fingerprints([]) == ((), 0)


# --- with_changes(): against the baseline -------------------------------------------------------

# The baseline's hello: another version, a flag since dropped, another zlib (hash only: not an
# environment change, its input is), another source and lib, an input since dropped; not yet
# `patches` nor the patch source.
BEFORE = hello(
    path=path("e", "hello-2.12.drv"),
    env={
        **{k: v for k, v in hello().env.items() if k != "version"},
        "version": "2.11",
        "oldFlag": "1",
        "deps": f"{path('y', 'zlib-1.3')} {path('p', 'openssl-3.0')}",
    },
    input_srcs=(path("r", "source"), BUILDER_SH),
    input_drvs=(path("m", "lib.drv"), GCC, path("w", "old-dep.drv")),
)
# This run's: `patches` and its source added.
NOW = replace(
    with_env(patches=path("f", "fix.patch")), input_srcs=(SRC, BUILDER_SH, path("f", "fix.patch"))
)
OTHER = hello(path=path("x", "curl-8.7.drv"), env={"name": "curl-8.7"})


def run_with(
    *causes: RootCause, kept: tuple[Fingerprint, ...] = (), builds: tuple[Build, ...] = ()
) -> Report:
    return Report(builds=builds, why=Why(root_causes=causes, misses=len(causes), fingerprints=kept))


def baseline_with(*kept: Derivation, left_out: int = 0) -> Report:
    prints = tuple(fingerprint(d) for d in kept)
    return Report(why=Why(fingerprints=prints, fingerprints_left_out=left_out))


def change_of(report: Report) -> Change | None:
    assert report.why is not None
    (cause,) = report.why.root_causes
    return cause.change


NOW_CAUSE = RootCause(drv=NOW.path, caused=0, path=(name_of(NOW.path),))
NOW_RUN = run_with(NOW_CAUSE, kept=(fingerprint(OTHER), fingerprint(NOW)))


def test_a_change_lists_exactly_what_differs_from_the_baselines_derivation_of_that_name() -> None:
    changed = with_changes(NOW_RUN, baseline_with(OTHER, BEFORE))
    assert change_of(changed) == Change(
        against=fingerprint(BEFORE).drv,
        env=("oldFlag", "patches", "version"),  # removed, added, changed; deps only by hash
        sources=("fix.patch", "source"),  # added, changed; builder.sh is the same
        inputs=("lib", "old-dep"),  # changed, removed; gcc-13 is the same
        unknown=None,
    )
    assert fingerprint(BEFORE).drv == "e" * 12
    # Nothing else of the report or its root cause moved.
    assert changed.why is not None
    assert NOW_RUN.why is not None
    assert replace(changed.why.root_causes[0], change=None) == NOW_CAUSE
    assert replace(changed.why, root_causes=NOW_RUN.why.root_causes) == NOW_RUN.why
    assert replace(changed, why=NOW_RUN.why) == NOW_RUN


def test_the_builder_and_its_arguments_are_compared_too() -> None:
    now = hello(builder=path("c", "coreutils-9.5") + "/bin/sh", args=("-x",))
    cause = RootCause(drv=now.path, caused=0, path=(name_of(now.path),))
    before = hello(path=path("e", "hello-2.12.drv"))
    change = change_of(
        with_changes(run_with(cause, kept=(fingerprint(now),)), baseline_with(before))
    )
    assert change == Change(against="e" * 12, env=("(args)", "(builder)"))


def test_a_derivation_the_baseline_built_itself_did_not_change() -> None:
    change = change_of(with_changes(NOW_RUN, baseline_with(NOW)))
    assert change == Change(against=fingerprint(NOW).drv, unknown=why_module.SAME)
    assert change.unknown is not None
    assert change.unknown.startswith("the very derivation the baseline built")


def test_a_baseline_without_fingerprints_cannot_tell() -> None:
    change = change_of(with_changes(NOW_RUN, Report()))
    assert change == Change(
        against=None,
        unknown="the baseline report keeps no fingerprints (made before they existed)",
    )


def test_a_name_the_baseline_did_not_build_cannot_be_compared() -> None:
    change = change_of(with_changes(NOW_RUN, baseline_with(OTHER)))
    assert change == Change(
        against=None,
        unknown="the baseline built no derivation named hello-2.12: it was fetched there,"
        " or it is new",
    )
    # An empty list of fingerprints is no different.
    assert change_of(with_changes(NOW_RUN, baseline_with())) == change


def test_a_name_absent_from_a_capped_baseline_says_how_many_were_kept() -> None:
    change = change_of(with_changes(NOW_RUN, baseline_with(OTHER, numbered(1), left_out=7)))
    assert change == Change(
        against=None,
        unknown="the baseline built no derivation named hello-2.12 among the 2 it kept"
        " fingerprints of (7 more were left out)",
    )


def test_a_root_cause_without_a_fingerprint_here_is_not_guessed_at() -> None:
    past_the_cap = run_with(NOW_CAUSE, kept=(fingerprint(OTHER),))
    change = change_of(with_changes(past_the_cap, baseline_with(BEFORE)))
    assert change == Change(
        against=fingerprint(BEFORE).drv,
        unknown="this run kept no fingerprint of it (past the cap)",
    )
    # Its name comes from its store path: absent from the baseline, that is said instead.
    assert change_of(with_changes(past_the_cap, baseline_with(OTHER))) == Change(
        unknown=why_module.NOT_IN_BASELINE.format(name="hello-2.12")
    )


def test_the_baselines_last_fingerprint_of_a_name_is_the_one_compared_with() -> None:
    # Built twice there (a retry after a change): the later one is what the baseline ended on.
    older = with_env(version="2.0")
    older = replace(older, path=path("a", "hello-2.12.drv"))
    later = replace(with_env(oldFlag="1"), path=path("c", "hello-2.12.drv"))
    changed = with_changes(NOW_RUN, baseline_with(older, OTHER, later))
    change = change_of(changed)
    assert change is not None
    assert change.against == "c" * 12
    assert change.env == ("oldFlag", "patches")
    assert change.sources == ("fix.patch",)
    assert change.inputs == ()
    # Either of them may be this very derivation: only the last one decides.
    assert change_of(with_changes(NOW_RUN, baseline_with(NOW, later))) == change
    last_is_same = change_of(with_changes(NOW_RUN, baseline_with(later, NOW)))
    assert last_is_same == Change(against=fingerprint(NOW).drv, unknown=why_module.SAME)


def test_each_root_cause_gets_its_own_change() -> None:
    curl_now = replace(OTHER, path=path("9", "curl-8.7.drv"), env={**OTHER.env, "version": "8"})
    curl_cause = RootCause(
        drv=curl_now.path, caused=1, path=(name_of(curl_now.path), name_of(NOW.path))
    )
    report = run_with(NOW_CAUSE, curl_cause, kept=(fingerprint(NOW), fingerprint(curl_now)))
    changed = with_changes(report, baseline_with(OTHER, BEFORE))
    assert changed.why is not None
    now_change, curl_change = (cause.change for cause in changed.why.root_causes)
    assert now_change is not None
    assert now_change.against == "e" * 12
    assert curl_change == Change(against="x" * 12, env=("version",))
    assert changed.why.root_causes[1].path == (name_of(curl_now.path), name_of(NOW.path))


def test_a_report_without_root_causes_is_returned_as_it_is() -> None:
    baseline = baseline_with(BEFORE)
    nothing = Report()
    assert with_changes(nothing, baseline) is nothing
    unknown_only = Report(why=Why(misses=1, unknown=(NOW.path,), fingerprints=(fingerprint(NOW),)))
    assert with_changes(unknown_only, baseline) is unknown_only
    assert with_changes(unknown_only, Report()) is unknown_only


# --- with_because(): each miss names its root causes --------------------------------------------


def drv(name: str) -> str:
    return f"{STORE}/{name:0>32}-{name}.drv"


# b-root dragged b1, b2 and c; a-root dragged a1 and c: b-root first (the larger), c under both.
A_ROOT, A1 = drv("a-root"), drv("a1")
B_ROOT, B1, B2 = drv("b-root"), drv("b1"), drv("b2")
C = drv("c")
UNREAD, CANCELLED = drv("unread"), drv("cancelled")
INPUTS = {A_ROOT: [], A1: [A_ROOT], B_ROOT: [], B1: [B_ROOT], B2: [B1], C: [A1, B2]}
BUILDS = (
    Build(drv=A_ROOT, status="built"),
    Build(drv=B_ROOT, status="built"),
    Build(drv=A1, status="built"),
    Build(drv=B1, status="built"),
    Build(drv=UNREAD, status="built"),
    Build(drv=B2, status="built"),
    Build(drv=C, status="failed", error="boom"),
    Build(drv=A_ROOT, status="checked", reason=None),  # a rebuild for the check
    Build(drv=CANCELLED, status="cancelled"),  # stopped before it finished
    Build(drv=C, status="built", run="retry"),
    Build(drv=B_ROOT, status="built", run="retry", reason="cache-error"),
)
WHY = explain(misses(BUILDS), INPUTS)


def test_the_graph_is_the_one_the_tests_below_expect() -> None:
    assert [cause.drv for cause in WHY.root_causes] == [B_ROOT, A_ROOT]
    assert WHY.root_causes[0].dependents == (B1, B2, C)
    assert WHY.root_causes[1].dependents == (A1, C)
    assert WHY.unknown == (UNREAD,)


def test_each_miss_names_the_indexes_of_its_root_causes() -> None:
    becauses = [(b.drv, b.status, b.because) for b in with_because(BUILDS, WHY)]
    assert becauses == [
        (A_ROOT, "built", (1,)),  # a root names itself
        (B_ROOT, "built", (0,)),
        (A1, "built", (1,)),
        (B1, "built", (0,)),
        (UNREAD, "built", ()),  # not reckoned: under nothing that can be seen
        (B2, "built", (0,)),
        (C, "failed", (0, 1)),  # under both, in the roots' order
        (A_ROOT, "checked", ()),  # a rebuild for the check is no miss
        (CANCELLED, "cancelled", ()),
        (C, "built", (0, 1)),  # each build of a miss says it
        (B_ROOT, "built", (0,)),
    ]
    # Nothing else of a build changes.
    assert tuple(replace(b, because=()) for b in with_because(BUILDS, WHY)) == BUILDS


def test_a_check_or_a_cancelled_build_keeps_what_it_had() -> None:
    checked = Build(drv=B1, status="checked", reason=None)
    cancelled = Build(drv=B2, status="cancelled")
    no_reason = Build(drv=C, status="built", reason=None)
    assert with_because((checked, cancelled, no_reason), WHY) == (checked, cancelled, no_reason)
    assert with_because((), WHY) == ()
    # No root causes: every miss is under none.
    assert with_because(BUILDS, Why()) == BUILDS


# --- the JSON round trip ------------------------------------------------------------------------


def keys_in(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def explained_report() -> Report:
    change = Change(against="e" * 12, env=("version",), inputs=("lib",))
    causes = (
        replace(WHY.root_causes[0], change=change),
        replace(WHY.root_causes[1], change=Change(unknown=why_module.NO_FINGERPRINTS)),
    )
    kept = tuple(fingerprint(hello(path=d, env={"name": d.split("-", 1)[1]})) for d in INPUTS)
    why = replace(WHY, root_causes=causes, fingerprints=kept, fingerprints_left_out=2)
    return Report(builds=with_because(BUILDS, why), why=why)


def test_the_json_names_no_dependents_and_reading_it_back_rebuilds_them() -> None:
    report = explained_report()
    data = report.to_json()
    assert schema_errors(data) == []
    assert "dependents" not in keys_in(data)
    assert "dependents" not in json.dumps(data)
    assert [b["because"] for b in data["builds"]] == [
        [1],
        [0],
        [1],
        [0],
        [],
        [0],
        [0, 1],
        [],
        [],
        [0, 1],
        [0],
    ]
    assert data["why"]["root_causes"][0] == {
        "drv": B_ROOT,
        "caused": 3,
        "path": [name_of(d) for d in (B_ROOT, B1, B2, C)],
        "change": {
            "against": "e" * 12,
            "env": ["version"],
            "sources": [],
            "inputs": ["lib"],
            "unknown": None,
        },
    }
    back = Report.from_json(json.loads(json.dumps(data)))
    assert back == report
    assert back.why is not None
    # In build order, each once, the root itself left out (built twice, and checked).
    assert back.why.root_causes[0].dependents == (B1, B2, C)
    assert back.why.root_causes[1].dependents == (A1, C)


def test_with_dependents_follows_the_builds_order_and_leaves_the_root_out() -> None:
    roots = (RootCause(drv=A_ROOT, caused=2), RootCause(drv=B_ROOT, caused=1))
    builds = (
        Build(drv=C, status="built", because=(0, 1)),
        Build(drv=A_ROOT, status="built", because=(0,)),
        Build(drv=A1, status="built", because=(0,)),
        Build(drv=C, status="built", because=(0, 1), run="retry"),
        Build(drv=B_ROOT, status="built", because=(1,)),
    )
    rebuilt = Report(builds=builds, why=Why(root_causes=roots)).with_dependents()
    assert rebuilt.why is not None
    assert [cause.dependents for cause in rebuilt.why.root_causes] == [(C, A1), (C,)]


# --- render/why.py: a change, said ----------------------------------------------------------------


HELLO_ROOT = RootCause(drv=NOW.path, caused=0, path=(name_of(NOW.path),))
ALONE = "nothing else built here depends on it"


def line_for(change: Change | None, cause: RootCause = HELLO_ROOT) -> str:
    text = root_causes_markdown(Report(why=Why(root_causes=(replace(cause, change=change),))))
    (item,) = [line for line in text.splitlines() if line.startswith("- ")]
    return item


def test_a_change_reads_as_what_changed() -> None:
    change = Change(against="e" * 12, env=("version",), sources=("src",), inputs=("lib",))
    assert line_for(change) == (
        "- `hello-2.12`: changed since the baseline: version, input source src,"
        f" input derivation lib; {ALONE}"
    )
    # The parts outside the environment by what they are; the environment's keys as they are.
    many = Change(against="e", env=("(args)", "(builder)", "patches"), inputs=("a", "b"))
    assert line_for(many) == (
        "- `hello-2.12`: changed since the baseline: its builder's arguments, its builder,"
        f" patches, input derivation a, input derivation b; {ALONE}"
    )


def test_a_change_comes_before_what_the_root_dragged_along() -> None:
    dragged = RootCause(drv=NOW.path, caused=1, path=(name_of(NOW.path), name_of(drv("app"))))
    change = Change(against="e", env=("version",))
    assert line_for(change, dragged) == (
        "- `hello-2.12`: changed since the baseline: version; 1 more built"
        " because of it (hello-2.12 → app)"
    )


def test_an_unknown_change_reads_as_unknown_and_why() -> None:
    for reason in (
        why_module.NO_FINGERPRINTS,
        why_module.NOT_KEPT_HERE,
        why_module.NOT_IN_BASELINE.format(name="hello-2.12"),
        why_module.NOT_KEPT.format(name="hello-2.12", kept=2, left_out=7),
    ):
        assert line_for(Change(unknown=reason)) == (
            f"- `hello-2.12`: what changed since the baseline is unknown ({reason}); {ALONE}"
        )
    # The very derivation the baseline built: it did not change.
    same = Change(against="e" * 12, unknown=why_module.SAME)
    assert line_for(same) == (
        f"- `hello-2.12`: unchanged since the baseline, and no cache held it this time; {ALONE}"
    )


def test_no_change_says_nothing_of_the_baseline_and_an_empty_one_says_so() -> None:
    assert line_for(None) == f"- `hello-2.12`: {ALONE}"
    assert "baseline" not in line_for(None)
    assert line_for(Change(against="e" * 12)) == (
        f"- `hello-2.12`: changed since the baseline: nothing its fingerprint shows; {ALONE}"
    )


def test_a_change_on_the_terminal_is_the_same_words_unescaped() -> None:
    change = Change(against="e", env=("NIX_CFLAGS_COMPILE",), sources=("src",))
    report = Report(why=Why(root_causes=(replace(HELLO_ROOT, change=change),)))
    assert root_causes_terminal(report) == [
        (
            "  root cause: hello-2.12: changed since the baseline: NIX_CFLAGS_COMPILE,"
            f" input source src; {ALONE}"
        )
    ]
    assert "NIX\\_CFLAGS\\_COMPILE, input source src" in root_causes_markdown(report)


def test_a_change_found_against_a_baseline_reads_end_to_end() -> None:
    text = root_causes_markdown(with_changes(NOW_RUN, baseline_with(OTHER, BEFORE)))
    assert (
        "- `hello-2.12`: changed since the baseline: oldFlag, patches, version,"
        " input source fix.patch, input source source, input derivation lib,"
        f" input derivation old-dep; {ALONE}"
    ) in text
    same = root_causes_markdown(with_changes(NOW_RUN, baseline_with(NOW)))
    assert "- `hello-2.12`: unchanged since the baseline, and no cache held it" in same


def test_a_package_at_another_version_is_compared_with_its_one_earlier_version() -> None:
    """hello-2.13 against the baseline's hello-2.12: the version is what changed."""
    now = fingerprint(hello(env={**hello().env, "name": "hello-2.13", "version": "2.13"}))
    before = fingerprint(hello(env={**hello().env, "name": "hello-2.12", "version": "2.12"}))
    cause = RootCause(HELLO_DRV, 0)
    report = Report(why=Why(root_causes=(cause,), fingerprints=(now,)))
    baseline = Report(why=Why(fingerprints=(replace(before, drv="x" * 12),)))
    changed = with_changes(report, baseline)
    assert changed.why is not None
    change = changed.why.root_causes[0].change
    assert change is not None
    assert change.unknown is None
    assert "version" in change.env


def test_two_names_of_one_package_in_the_baseline_are_no_match() -> None:
    """node-0-4 against node-0-2 and node-1-1: both read as `node`; choosing one would guess."""
    now = fingerprint(hello(env={**hello().env, "name": "node-0-4"}))
    others = tuple(
        replace(fingerprint(hello(env={**hello().env, "name": n})), drv=n[-3:] * 4)
        for n in ("node-0-2", "node-1-1")
    )
    report = Report(why=Why(root_causes=(RootCause(HELLO_DRV, 0),), fingerprints=(now,)))
    changed = with_changes(report, Report(why=Why(fingerprints=others)))
    assert changed.why is not None
    change = changed.why.root_causes[0].change
    assert change is not None
    assert change.unknown is not None
    assert change.unknown.startswith("the baseline built no derivation named node-0-4")


def test_an_installable_renamed_is_compared_through_its_attribute() -> None:
    """The same installable, its derivation renamed (hello-2.12 to greeting-3): found through
    the installable, and compared."""
    now = hello(env={**hello().env, "name": "greeting-3", "version": "3"})
    now = replace(now, path=path("n", "greeting-3.drv"))
    before = hello(path=path("b", "hello-2.12.drv"))
    report = Report(
        installables=(Installable(name=".#hello", drv=now.path),),
        why=Why(root_causes=(RootCause(now.path, 0),), fingerprints=(fingerprint(now),)),
    )
    baseline = Report(
        installables=(Installable(name=".#hello", drv=before.path),),
        why=Why(fingerprints=(fingerprint(before),)),
    )
    changed = with_changes(report, baseline)
    assert changed.why is not None
    change = changed.why.root_causes[0].change
    assert change is not None
    assert change.unknown is None
    assert change.against == fingerprint(before).drv
    assert "version" in change.env
