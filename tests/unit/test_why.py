"""Why each derivation was built (why.py): the misses of a run, their root causes, what each root
dragged along and the path to the farthest of it; how render/why.py says that; and the .drv
files (nix/derivations.py) the inputs of the misses are read from.

A miss is a derivation the run had to build (built or failed, with a reason); a root cause is a
miss none of whose input derivations is a miss. The expected answers are worked out by hand or,
for the generated graph, by a plain reachability walk that shares no code with why.py.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from nix_cache_action.nix.derivations import (
    Derivation,
    parse_aterm,
    read_derivations,
    read_input_graph,
)
from nix_cache_action.records import replace
from nix_cache_action.render.why import root_causes_markdown, root_causes_terminal
from nix_cache_action.report import Build, Report, RootCause, Why
from nix_cache_action.why import explain, misses, name_of


def names(*drvs: str) -> tuple[str, ...]:
    """A path as the report keeps it: the derivations' names."""
    return tuple(name_of(d) for d in drvs)


def drv(name: str) -> str:
    """A store path whose hash differs with the name: two names are never one derivation."""
    return f"/nix/store/{name:0>32}-{name}.drv"


def numbered(i: int) -> str:
    return f"/nix/store/{str(i).zfill(32)}-n{i}.drv"


def build(path: str, status: Any = "built", reason: Any = "not-in-cache", run: str = "") -> Build:
    return Build(drv=path, status=status, reason=reason, run=run)


def roots(why: Why) -> list[str]:
    return [cause.drv for cause in why.root_causes]


def cause_of(why: Why, root: str) -> RootCause:
    (found,) = [cause for cause in why.root_causes if cause.drv == root]
    return found


A, B, C, D = drv("a"), drv("b"), drv("c"), drv("d")
# Derivations that are inputs but not misses: substituted from a cache, or already in the store.
SUBSTITUTED = drv("glibc")
IN_STORE = drv("bash")


# --- the shapes of a graph ----------------------------------------------------------------------


def test_a_chain_has_one_root_that_caused_the_rest() -> None:
    # c is built over b, b over a: only a changed in itself.
    why = explain([A, B, C], {A: [SUBSTITUTED], B: [A], C: [B, IN_STORE]})
    assert why == Why(
        root_causes=(RootCause(drv=A, caused=2, path=names(A, B, C), dependents=(B, C)),),
        misses=3,
        unknown=(),
    )


def test_the_order_the_misses_are_listed_in_does_not_change_the_answer() -> None:
    # After a retry the first build of a derivation can come late in the list; the graph decides.
    why = explain([C, A, B], {A: [], B: [A], C: [B]})
    assert roots(why) == [A]
    cause = why.root_causes[0]
    assert cause.caused == 2
    assert cause.path == names(A, B, C)
    assert sorted(cause.dependents) == sorted([B, C])


def test_a_diamond_counts_each_dependent_once() -> None:
    # b and c are both over a, d over both: d is reached twice but built once.
    why = explain([A, B, C, D], {A: [], B: [A], C: [A], D: [B, C]})
    assert roots(why) == [A]
    cause = why.root_causes[0]
    assert cause.caused == 3
    assert sorted(cause.dependents) == sorted([B, C, D])
    assert len(cause.dependents) == 3  # no repeats
    assert len(cause.path) == 3
    assert cause.path[0] == name_of(A)
    assert cause.path[1] in names(B, C)
    assert cause.path[-1] == name_of(D)


def test_two_independent_changes_each_count_a_miss_over_both() -> None:
    x, x1 = drv("x"), drv("x1")
    y, y1, y2 = drv("y"), drv("y1"), drv("y2")
    z = drv("z")  # over x1 and y2: there because of both changes
    inputs = {x: [], x1: [x], y: [], y1: [y], y2: [y1], z: [x1, y2]}
    why = explain([x, y, x1, y1, y2, z], inputs)
    # y dragged y1, y2 and z (3); x dragged x1 and z (2): the larger first.
    assert roots(why) == [y, x]
    assert cause_of(why, y).caused == 3
    assert sorted(cause_of(why, y).dependents) == sorted([y1, y2, z])
    assert cause_of(why, x).caused == 2
    assert sorted(cause_of(why, x).dependents) == sorted([x1, z])
    assert cause_of(why, y).path == names(y, y1, y2, z)
    assert cause_of(why, x).path == names(x, x1, z)
    assert why.misses == 6


def test_inputs_that_are_not_misses_do_not_make_a_miss_a_dependent() -> None:
    # b's inputs were substituted or already there: b changed in itself although it has inputs.
    why = explain([B], {B: [SUBSTITUTED, IN_STORE]})
    assert why.root_causes == (RootCause(drv=B, caused=0, path=names(B), dependents=()),)
    # Only the direct inputs count: c is over a substituted s, which is over the miss a, so
    # neither a nor c was built because of the other.
    s = drv("s")
    why = explain([A, C], {A: [], s: [A], C: [s]})
    assert sorted(roots(why)) == sorted([A, C])
    assert all(cause.caused == 0 for cause in why.root_causes)


def test_a_failed_build_is_a_miss_and_what_was_never_attempted_is_not() -> None:
    # b failed, so c (over b) was never attempted and is not in the builds at all.
    builds = [build(A), build(B, status="failed")]
    missed = misses(builds)
    assert missed == [A, B]
    why = explain(missed, {A: [], B: [A], C: [B]})
    assert why.root_causes == (RootCause(drv=A, caused=1, path=names(A, B), dependents=(B,)),)
    assert why.misses == 2


def test_a_failed_root_with_nothing_after_it_caused_nothing() -> None:
    why = explain(misses([build(A, status="failed")]), {A: [SUBSTITUTED]})
    assert why.root_causes == (RootCause(drv=A, caused=0, path=names(A), dependents=()),)


def test_the_path_goes_to_the_first_built_of_equally_far_misses() -> None:
    # b and c are both one step from a; _farthest_path's docstring promises "the first found
    # among the farthest, in build order": b, built first.
    why = explain([A, B, C], {A: [], B: [A], C: [A]})
    assert why.root_causes[0].path == names(A, B)


# --- which builds are misses --------------------------------------------------------------------


def test_misses_are_built_or_failed_builds_with_a_reason_each_once() -> None:
    e, f = drv("e"), drv("f")
    builds = [
        build(A),
        build(B, status="checked", reason=None),  # a rebuild for the check
        build(C, status="cancelled"),  # stopped before it finished: not known to be needed
        build(D, status="failed", reason="cache-error"),
        build(A, run="retry"),  # built again in the retry run: still one miss
        build(e, status="built", reason=None),  # no reason: not a miss
        build(f, reason="cache-error", run="retry"),
        build(D, status="built", run="retry"),  # failed, then built: one miss
    ]
    assert misses(builds) == [A, D, f]
    assert misses([]) == []
    assert misses([build(B, status="checked", reason=None), build(C, status="cancelled")]) == []


# --- misses whose inputs are not known ----------------------------------------------------------


def test_a_miss_with_unknown_inputs_is_named_and_left_out() -> None:
    u = drv("u")
    why = explain([A, u, B], {A: [], B: [A]})
    assert why.unknown == (u,)
    assert why.misses == 3  # every miss, the unknown one too
    assert roots(why) == [A]
    assert u not in cause_of(why, A).dependents
    assert cause_of(why, A).caused == 1
    # Nothing known at all: every miss unknown, no root causes.
    why = explain([A, B], {})
    assert why == Why(root_causes=(), misses=2, unknown=(A, B))


def test_a_miss_over_a_miss_with_unknown_inputs_is_not_a_root() -> None:
    # c's inputs are known and one of them, u, is a miss: by the definition c did not change in
    # itself, whatever u's own inputs are. Calling it a root would be a guess.
    u = drv("u")
    why = explain([A, u, C], {A: [], C: [u]})
    assert why.unknown == (u,)
    assert C not in roots(why)


# --- a larger generated graph -------------------------------------------------------------------


LAYERS, WIDTH = 10, 20


def layered_graph() -> dict[str, list[str]]:
    """200 misses in 10 layers of 20, each over 2 of the layer below (and one input that is not a
    miss); the first layer over nothing built. The misses in build order: layer by layer."""
    rng = random.Random(20240601)  # noqa: S311 - a fixed seed: the same graph every run
    inputs: dict[str, list[str]] = {}
    for i in range(LAYERS * WIDTH):
        layer = i // WIDTH
        if layer == 0:
            inputs[numbered(i)] = [SUBSTITUTED]
        else:
            below = [numbered(j) for j in range((layer - 1) * WIDTH, layer * WIDTH)]
            inputs[numbered(i)] = [*rng.sample(below, 2), IN_STORE]
    return inputs


def reached_from(root: str, inputs: Mapping[str, Sequence[str]]) -> set[str]:
    """The misses over `root`, directly or through others: a plain walk up the users."""
    users: dict[str, list[str]] = {d: [] for d in inputs}
    for user, over in inputs.items():
        for below in over:
            if below in users:
                users[below].append(user)
    seen: set[str] = set()
    stack = list(users[root])
    while stack:
        d = stack.pop()
        if d not in seen:
            seen.add(d)
            stack.extend(users[d])
    return seen


def test_a_layered_graph_of_200_has_its_first_layer_as_roots() -> None:
    inputs = layered_graph()
    missed = list(inputs)
    first = missed[:WIDTH]
    expected = {root: reached_from(root, inputs) for root in first}
    why = explain(missed, inputs)
    assert sorted(roots(why)) == sorted(first)
    assert why.unknown == ()
    assert why.misses == LAYERS * WIDTH
    for cause in why.root_causes:
        want = expected[cause.drv]
        assert set(cause.dependents) == want
        assert len(cause.dependents) == cause.caused == len(want)
    # Every miss above the first layer is under exactly the roots it is reached from.
    for d in missed[WIDTH:]:
        under = {cause.drv for cause in why.root_causes if d in cause.dependents}
        assert under == {root for root in first if d in expected[root]}
        assert under  # each was built because of something
    order = [(-cause.caused, cause.drv) for cause in why.root_causes]
    assert order == sorted(order)


def test_a_layered_graph_gives_each_root_a_path_to_its_farthest() -> None:
    inputs = layered_graph()
    why = explain(list(inputs), inputs)
    layer_of = {numbered(i): i // WIDTH for i in range(LAYERS * WIDTH)}
    for cause in why.root_causes:
        # The root, then each miss over the one before it; in a layered graph the nearest way
        # to a derivation goes one layer a step, so the farthest is in the highest layer reached.
        assert cause.path[0] == name_of(cause.drv)
        by_name = {name_of(d): d for d in inputs}
        assert all(
            by_name[before] in inputs[by_name[after]] for before, after in pairwise(cause.path)
        )
        farthest = max((layer_of[d] for d in cause.dependents), default=0)
        assert len(cause.path) == farthest + 1
    # The seed gives both kinds: roots that dragged the top layer along, and roots nothing used.
    assert any(len(cause.path) == LAYERS for cause in why.root_causes)
    assert any(
        cause.path == (name_of(cause.drv),) and not cause.caused for cause in why.root_causes
    )


# --- render/why.py ------------------------------------------------------------------------------


def named(name: str) -> str:
    return f"/nix/store/{'h' * 32}-{name}.drv"


def with_why(causes: Sequence[RootCause], unknown: Sequence[str] = (), missed: int = 0) -> Report:
    why = Why(root_causes=tuple(causes), misses=missed, unknown=tuple(unknown))
    return Report(why=why)


OPENSSL, CURL, GIT, APP = named("openssl-3.0.13"), named("curl-8.7.1"), named("git"), named("app")
ZLIB, PNG = named("zlib-1.3.1"), named("libpng-1.6")
TWO_ROOTS = with_why(
    [
        RootCause(OPENSSL, 3, names(OPENSSL, CURL, GIT, APP), (CURL, GIT, APP)),
        RootCause(ZLIB, 2, names(ZLIB, PNG, APP), (PNG, APP)),  # app again: counted once below
    ],
    missed=6,
)


def test_markdown_names_each_root_and_its_path() -> None:
    assert root_causes_markdown(TWO_ROOTS) == (
        "**2 derivations were built at the root** (none of their inputs was built here);"
        " the other 4 were built only because they"
        " depend on them:\n"
        "\n"
        "- `openssl-3.0.13`: 3 more built because of it"
        " (openssl-3.0.13 → curl-8.7.1 → git → app)\n"
        "- `zlib-1.3.1`: 2 more built because of it"
        " (zlib-1.3.1 → libpng-1.6 → app)\n"
    )
    # The store hash is never shown, nor the .drv suffix.
    assert "h" * 32 not in root_causes_markdown(TWO_ROOTS)
    assert ".drv" not in root_causes_markdown(TWO_ROOTS)


def test_markdown_for_one_root_and_for_one_that_caused_nothing() -> None:
    one = with_why([RootCause(ZLIB, 2, names(ZLIB, PNG, APP), (PNG, APP))])
    assert root_causes_markdown(one).startswith(
        "**1 derivation was built at the root** (none of its inputs was built here);"
        " the other 2 were built only because they"
        " depend on it:\n"
    )
    alone = with_why([RootCause(GIT, 0, names(GIT), ())])
    assert root_causes_markdown(alone) == (
        "**1 derivation was built at the root** (none of its inputs was built here):\n"
        "\n"
        "- `git`: nothing else built here depends on it\n"
    )
    mixed = with_why(
        [RootCause(ZLIB, 1, names(ZLIB, PNG), (PNG,)), RootCause(GIT, 0, names(GIT), ())]
    )
    text = root_causes_markdown(mixed)
    assert "the other 1 was built only because it depends on them:" in text
    assert "- `git`: nothing else built here depends on it" in text


def test_a_long_path_keeps_its_ends() -> None:
    path = tuple(named(f"p{i}") for i in range(8))
    text = root_causes_markdown(with_why([RootCause(path[0], 7, names(*path), path[1:])]))
    assert "(p0 → p1 → … → p6 → p7)" in text


def test_more_than_ten_roots_lists_ten_and_counts_the_rest() -> None:
    many = [RootCause(named(f"r{i:02}"), 0, names(named(f"r{i:02}")), ()) for i in range(13)]
    text = root_causes_markdown(with_why(many))
    assert text.startswith(
        "**13 derivations were built at the root** (none of their inputs was built here):"
    )
    items = [line for line in text.splitlines() if line.startswith("- `")]
    assert [item.split("`")[1] for item in items] == [f"r{i:02}" for i in range(10)]
    assert "- and 3 more root causes in the JSON report" in text
    terminal = root_causes_terminal(with_why(many))
    assert len(terminal) == 10
    assert "r10" not in "\n".join(terminal)
    # Eleven: one more, said in the singular.
    assert "- and 1 more root cause in the JSON report" in root_causes_markdown(with_why(many[:11]))
    assert "more root cause" not in root_causes_markdown(with_why(many[:10]))


def test_the_misses_whose_inputs_could_not_be_read_are_said() -> None:
    report = with_why([RootCause(GIT, 0, names(GIT), ())], unknown=[named("u1"), named("u2")])
    assert root_causes_markdown(report).endswith(
        "\n\nThe inputs of 2 derivations could not be read: left out of this reckoning.\n"
    )
    assert "could not be read" not in root_causes_markdown(TWO_ROOTS)


def test_nothing_to_say_gives_nothing() -> None:
    assert root_causes_markdown(Report()) == ""
    assert root_causes_terminal(Report()) == []
    # Misses, but none reckoned: no root causes, no paragraph.
    unknown_only = with_why([], unknown=[named("u")], missed=1)
    assert root_causes_markdown(unknown_only) == ""
    assert root_causes_terminal(unknown_only) == []


def test_the_terminal_gives_a_line_per_root() -> None:
    assert root_causes_terminal(TWO_ROOTS) == [
        (
            "  root cause: openssl-3.0.13: 3 more built because of it"
            " (openssl-3.0.13 → curl-8.7.1 → git → app)"
        ),
        ("  root cause: zlib-1.3.1: 2 more built because of it (zlib-1.3.1 → libpng-1.6 → app)"),
    ]


# --- nix/derivations.py: .drv files -------------------------------------------------------------

OUT = "/nix/store/" + "o" * 32 + "-hello-2.12"
DEV = "/nix/store/" + "d" * 32 + "-hello-2.12-dev"
SRC = "/nix/store/" + "s" * 32 + "-builder.sh"
SH = "/nix/store/" + "b" * 32 + "-bash-5.2/bin/bash"
# Written as Nix writes it: escapes \" \\ \n inside strings; the script ends in a backslash.
HELLO = (
    rb'Derive([("dev","' + DEV.encode() + rb'","",""),("out","' + OUT.encode() + rb'","","")],'
    rb'[],["' + SRC.encode() + rb'"],"x86_64-linux","' + SH.encode() + rb'",'
    rb'["-e","' + SRC.encode() + rb'"],'
    rb'[("name","hello-2.12"),("script","echo \"hi\" > $out\nprintf \\t\\\\"),'
    rb'("empty",""),("tab","a\tb")])'
)


def test_parse_aterm_reads_a_derivation_with_escapes() -> None:
    parsed = parse_aterm("/nix/store/x-hello-2.12.drv", HELLO)
    assert parsed is not None
    assert parsed == Derivation(
        path="/nix/store/x-hello-2.12.drv",
        input_drvs=(),
        input_srcs=(SRC,),
        env={
            "name": "hello-2.12",
            "script": 'echo "hi" > $out\nprintf \\t\\\\',
            "empty": "",
            "tab": "a\tb",
        },
        system="x86_64-linux",
        builder=SH,
        args=("-e", SRC),
        outputs={"dev": DEV, "out": OUT},
    )
    assert parsed.name == "hello-2.12"
    # A trailing newline is no trouble.
    assert parse_aterm("p", HELLO + b"\n") == replace(parsed, path="p")


def test_parse_aterm_reads_the_input_derivations_and_their_outputs() -> None:
    text = (
        b'Derive([("out","/nix/store/o-x","","")],'
        b'[("/nix/store/g-gcc.drv",["out"]),("/nix/store/l-glibc.drv",["dev","out"])],'
        b'[],"aarch64-darwin","/bin/sh",[],[])'
    )
    parsed = parse_aterm("/nix/store/p-x.drv", text)
    assert parsed is not None
    assert parsed.input_drvs == ("/nix/store/g-gcc.drv", "/nix/store/l-glibc.drv")
    assert parsed.input_srcs == ()
    assert parsed.args == ()
    assert parsed.env == {}
    assert parsed.name == ""
    assert parsed.outputs == {"out": "/nix/store/o-x"}


def test_parse_aterm_refuses_what_is_not_a_whole_derive() -> None:
    assert parse_aterm("p", b'DrvWithVersion("xp-dyn-drv",[("out","","","")])') is None
    assert parse_aterm("p", b"") is None
    assert parse_aterm("p", HELLO + b"garbage") is None
    # Six fields instead of seven: the shape is checked, not only the syntax.
    assert parse_aterm("p", b'Derive([],[],[],"x86_64-linux","/bin/sh",[])') is None
    # An environment entry that is not a pair of strings.
    assert parse_aterm("p", b'Derive([],[],[],"s","b",[],[("name")])') is None
    # A file cut anywhere (a partial write) is never read as a shorter derivation.
    for end in range(len(HELLO)):
        assert parse_aterm("p", HELLO[:end]) is None, HELLO[:end]


def escaped(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_drv(path: Path, inputs: Sequence[Path] = (), env: Mapping[str, str] | None = None) -> str:
    """A .drv file at `path` over the derivations at `inputs`; its full path, as a string."""
    pairs = ",".join(f"({escaped(k)},{escaped(v)})" for k, v in (env or {}).items())
    drvs = ",".join(f'({escaped(str(i))},["out"])' for i in inputs)
    path.write_text(
        f'Derive([("out",{escaped(str(path.with_suffix("")))},"","")],[{drvs}],'
        f'["{SRC}"],"x86_64-linux","/bin/sh",["-c","true"],[{pairs}])'
    )
    return str(path)


def test_read_derivations_reads_each_file_and_none_when_one_is_missing(tmp_path: Path) -> None:
    leaf = write_drv(tmp_path / "leaf.drv", env={"name": "leaf"})
    top = write_drv(tmp_path / "top.drv", [tmp_path / "leaf.drv"], env={"name": 'say "top"'})
    found = read_derivations([top, leaf])
    assert found is not None
    assert list(found) == [top, leaf]
    assert found[top].input_drvs == (leaf,)
    assert found[top].env == {"name": 'say "top"'}
    assert found[leaf].input_drvs == ()
    assert found[leaf].outputs == {"out": str(tmp_path / "leaf")}
    assert read_derivations([top, str(tmp_path / "gone.drv")]) is None
    # Not in the Derive form (a dynamic derivation): the caller asks Nix instead.
    dynamic = tmp_path / "dyn.drv"
    dynamic.write_text('DrvWithVersion("xp-dyn-drv",[])')
    assert read_derivations([top, str(dynamic)]) is None
    assert read_derivations([]) == {}


def test_read_input_graph_follows_the_inputs_to_their_closure(tmp_path: Path) -> None:
    leaf = tmp_path / "aaaa-leaf.drv"
    mid = tmp_path / "bbbb-mid.drv"
    top = tmp_path / "cccc-top.drv"
    write_drv(leaf)
    write_drv(mid, [leaf])
    # An environment value that looks like an input pair is not one: Nix escapes its quotes.
    ghost = f'("{tmp_path / "ghost.drv"}",["out"])'
    write_drv(top, [mid, leaf], env={"note": ghost})
    graph = read_input_graph([str(top)])
    assert graph == {
        "cccc-top.drv": {"bbbb-mid.drv", "aaaa-leaf.drv"},
        "bbbb-mid.drv": {"aaaa-leaf.drv"},
        "aaaa-leaf.drv": set(),
    }
    # Only the closure of what was asked: the leaf alone.
    assert read_input_graph([str(leaf)]) == {"aaaa-leaf.drv": set()}
    # One file of the closure missing: the whole graph cannot be read this way.
    leaf.unlink()
    assert read_input_graph([str(top)]) is None
