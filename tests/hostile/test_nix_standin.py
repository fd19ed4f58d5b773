"""Nix misbehaving (standin_nix.py): bytes that are not UTF-8, `--json` output that is not what
it should be, broken `@nix` records, a crash by signal, a version it cannot read, and text far
too long. No exception may yield `ok`, nothing may be lost without a word, and every error names
the installable it is about."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tests.hostile.conftest import Hostile, Outcome

CUT = re.compile(r"cut|truncat|…|\.\.\.", re.IGNORECASE)
TEXT_LIMIT = 8 * 1024


def _texts(data: Mapping[str, Any]) -> list[str]:
    """Every free text of a report: errors, warnings, notes, log tails, build errors, stopped."""
    texts = [*data["errors"], *data["warnings"], *data["notes"]]
    texts += [line for b in data["builds"] for line in b["log_tail"]]
    texts += [b["error"] for b in data["builds"] if b["error"]]
    texts += [i["error"] for i in data["installables"] if i["error"]]
    texts += [c["reason"] for c in data["checks"] if c["reason"]]
    if data["stopped"]:
        texts.append(data["stopped"])
    return texts


def bounded(data: Mapping[str, Any], *, cut_expected: bool = True) -> None:
    """Every text at most a few KiB, and a visible cut marker where something was cut."""
    long = [t for t in _texts(data) if len(t.encode()) > TEXT_LIMIT]
    assert not long, f"{len(long)} texts over {TEXT_LIMIT} bytes, the first {len(long[0])} long"
    if cut_expected:
        marked = [t for t in _texts(data) if CUT.search(t)]
        assert marked, "nothing in the report says that text was cut"


def not_silently_ok(
    run: Outcome, data: Mapping[str, Any], about: str = ".#default", *, hashes_said: bool = False
) -> None:
    """Bad data from Nix: the run stops (failed, the error naming `about`, one ::error for
    it), or, where the build clearly succeeded, it may pass only with nothing lost and a note
    saying what was wrong. With `hashes_said`, NAR hashes Nix would not give may be missing
    when a note says they are unknown (Nix's own --rebuild still compared the outputs)."""
    if data["verdict"] == "ok":
        said = " ".join(data["notes"] + data["warnings"])
        for item in data["installables"]:
            assert item["outputs"], f"{item['name']} passed without its outputs"
            if hashes_said and "NAR hash" in said:
                continue
            assert item["nar_hashes"], f"{item['name']} passed without its NAR hashes"
        said = " ".join(data["notes"] + data["warnings"])
        assert said, "verdict ok and not a word about what Nix printed"
        return
    assert data["verdict"] == "failed", data["verdict"]
    assert isinstance(data["stopped"], str), f"failed, yet stopped is {data['stopped']!r}"
    assert data["stopped"].strip()
    assert about in data["stopped"] or any(about in e for e in data["errors"]), (
        f"no error names {about}: {data['errors']}"
    )
    stopped = [c for c in run.annotations("error") if c.data == data["stopped"]]
    assert len(stopped) == 1, f"{len(stopped)} ::error annotations of why the run stopped"


# --- bytes that are not UTF-8 --------------------------------------------------------------------


def test_nix_error_with_bytes_that_are_not_utf8(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode="error-bytes")
    data = run.check(exit=1, verdict="failed")
    assert any("bad" in e and "bytes" in e for e in data["errors"]), data["errors"]
    (item,) = data["installables"]
    assert item["name"] == ".#default"
    assert item["status"] != "built"


def test_evaluation_error_with_bytes_names_the_installable(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default .#second", mode="error-bytes", when="eval", match=".#second")
    data = run.check(exit=1, verdict="failed")
    by_name = {i["name"]: i for i in data["installables"]}
    assert by_name[".#default"]["status"] == "built", by_name
    assert by_name[".#second"]["status"] == "error", by_name
    assert ".#second" in by_name[".#second"]["error"]
    assert ".#default" not in (by_name[".#second"]["error"] or "")
    titles = [c.title for c in run.annotations("error")]
    assert ".#second" in titles, titles


@pytest.mark.parametrize("mode", ["trace-bytes", "plain-bytes"])
def test_successful_build_with_bytes_that_are_not_utf8(hostile: Hostile, mode: str) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode=mode)
    data = run.check(exit=0, verdict="ok")
    (item,) = data["installables"]
    assert item["nar_hashes"], item


def test_cli_trace_with_bytes_that_are_not_utf8(hostile: Hostile) -> None:
    text = "(builtins.readFile ./bad.txt)"
    hostile.flake(
        files={"bad.txt": b"bad \xff\xfe bytes\n"},
        extra=f'      traced = builtins.trace {text} (mk "traced" ./scripts/s0.sh);',
    )
    run = hostile.cli("build", ".#traced", mode="trace-bytes")
    run.check(exit=0, verdict="ok")


# --- `nix build --json` printing something else --------------------------------------------------

JSON_VARIANTS = [
    "whitespace",
    "empty-list",
    "string",
    "object",
    "null",
    "invalid",
    "nothing",
    "bytes",
    "wrong-types",
    "nested",
]


@pytest.mark.parametrize("variant", JSON_VARIANTS)
def test_build_json_that_is_not_a_list_of_outputs(hostile: Hostile, variant: str) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode=f"json:{variant}")
    data = run.check(exit={0, 1})
    not_silently_ok(run, data)


def test_an_output_path_that_is_not_a_path_is_said_not_blamed_on_a_dependency(
    hostile: Hostile,
) -> None:
    """`nix build --json` exits 0 with `{"out": 5}`: the report says Nix's JSON could not be
    used, in a note, and asks each installable on its own instead."""
    hostile.flake()
    run = hostile.cli("build", ".#default", mode="json:output-number")
    data = run.check(exit={0, 1})
    notes = " ".join(data["notes"])
    assert "where an output's path belongs" in notes, data["notes"]
    errors = " ".join(i.get("error") or "" for i in data["installables"])
    assert "dependency" not in errors, data["installables"]


def test_cli_build_json_invalid(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.cli("build", ".#default", mode="json:invalid")
    data = run.check(exit={0, 1})
    not_silently_ok(run, data)


# --- path-info answering wrongly -----------------------------------------------------------------


@pytest.mark.parametrize("variant", ["wrong-types", "object-hash", "not-json", "string"])
def test_path_info_that_is_wrong(hostile: Hostile, variant: str) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode=f"path-info:{variant}", when="path-info")
    data = run.check(exit={0, 1})
    not_silently_ok(run, data, hashes_said=True)
    # What it printed never reaches the report as a hash.
    for item in data["installables"]:
        assert all(isinstance(h, str) for h in item["nar_hashes"].values()), item


def test_evaluation_printing_garbage_names_the_installable(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default .#second", mode="eval-garbage", when="eval", match=".#second")
    data = run.check(exit={0, 1})
    if data["verdict"] == "ok":
        not_silently_ok(run, data, about=".#second")
    else:
        assert ".#second" in " ".join(data["errors"]), data["errors"]
        assert any(".#second" in f"{c.title} {c.data}" for c in run.annotations("error"))
    by_name = {i["name"]: i for i in data["installables"]}
    assert by_name[".#default"]["status"] == "built", by_name
    # Whatever it did with .#second, the report does not call garbage a derivation.
    drv = by_name[".#second"]["drv"]
    assert drv is None or drv.endswith(".drv"), f".#second's drv is {drv!r}"


# --- crashes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("signal_name", ["SIGSEGV", "SIGKILL", "SIGABRT"])
def test_build_killed_by_a_signal(hostile: Hostile, signal_name: str) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode=f"signal:{signal_name}")
    data = run.check(exit=1, verdict="failed", stopped=True)
    said = " ".join([data["stopped"], *data["errors"], *data["notes"]])
    assert "signal" in said.lower(), said


def test_build_killed_after_it_built(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(
        ".#default", mode="signal:SIGKILL", env={"NCA_HOSTILE_SIGNAL_WHEN": "after"}
    )
    data = run.check(exit=1, verdict="failed", stopped=True)
    assert data["runs"][0]["exit_status"] in (-9, 137, None), data["runs"]


def test_rebuild_killed_by_a_signal(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode="signal:SIGSEGV", when="rebuild")
    data = run.check(exit={0, 1})
    (check,) = data["checks"]
    assert check["verdict"] == "not-checked", check
    assert "signal" in (check["reason"] or ""), check


@pytest.mark.parametrize("mode", ["garbage", "empty", "fail", "signal:SIGSEGV", "error-bytes"])
def test_nix_version_unreadable(hostile: Hostile, mode: str) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode=mode, when="version")
    data = run.check(exit=1, verdict="failed", stopped=True)
    assert "nix" in data["stopped"].lower(), data["stopped"]
    assert hostile.nix_calls("build") == [], "it built with a Nix it could not identify"


# --- broken records ------------------------------------------------------------------------------

BROKEN = [
    "truncated",
    "list",
    "string",
    "wrong-types",
    "wrong-fields",
    "msg-list",
    "stop-object",
    "nan",
    "nested",
    "bytes",
    "empty",
    "null-id",
    "huge-id",
]


@pytest.mark.parametrize("variant", BROKEN)
def test_broken_nix_record(hostile: Hostile, variant: str) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode=f"broken:{variant}")
    data = run.check(exit={0, 1})
    if data["verdict"] == "ok":
        # Read as a line of text and said so, or the run stopped: never lost without a word.
        assert any(r["plain_lines"] for r in data["runs"]), data["runs"]
        assert data["notes"], "a line that was not read, and no note"
    else:
        assert data["stopped"], data


# --- far too much text ---------------------------------------------------------------------------


def test_plain_line_of_20_mb_from_nix(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode="huge-line")
    data = run.check(exit=0, verdict="ok")
    bounded(data, cut_expected=False)


def test_error_of_20_mb_from_nix(hostile: Hostile) -> None:
    hostile.flake()
    run = hostile.action(".#default", mode="huge-error")
    data = run.check(exit=1, verdict="failed")
    bounded(data)
    assert any(CUT.search(c.data) for c in run.annotations("error")), "no cut marker shown"


def test_builder_line_of_20_mb(hostile: Hostile) -> None:
    script = "head -c 20000000 /dev/zero | tr '\\0' y\necho\necho the end >&2\nexit 1\n"
    hostile.flake({"huge": script})
    run = hostile.action(".#huge")
    data = run.check(exit=1, verdict="failed")
    bounded(data)
    (build,) = [b for b in data["builds"] if b["status"] == "failed"]
    assert build["log_tail"], build
    assert "the end" in build["log_tail"][-1]


def test_cli_builder_line_of_20_mb(hostile: Hostile) -> None:
    script = "head -c 20000000 /dev/zero | tr '\\0' y\necho\nexit 1\n"
    hostile.flake({"huge": script})
    run = hostile.cli("build", ".#huge")
    data = run.check(exit=1, verdict="failed")
    bounded(data)


def test_builder_log_of_50_mb(hostile: Hostile) -> None:
    script = (
        "line=$(head -c 1000 /dev/zero | tr '\\0' z)\n"
        'i=0; while [ $i -lt 50000 ]; do echo "$i $line"; i=$((i+1)); done\n'
        "exit 1\n"
    )
    hostile.flake({"biglog": script})
    run = hostile.action(".#biglog")
    data = run.check(exit=1, verdict="failed")
    bounded(data, cut_expected=False)
    (build,) = [b for b in data["builds"] if b["status"] == "failed"]
    assert build["log_tail"][-1].startswith("49999 "), build["log_tail"][-1][:50]
