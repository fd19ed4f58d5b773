"""Every Nix command's argv and how its output is read, per Nix version, through the fake Nix.

The versions are the ones whose differences the code handles: upstream 2.8 (no `^` output
selectors, `show-derivation`, path-info as a list), one of 2.19 to 2.32 (path-info keyed by
path), 2.34 (`--json-format 1`, the `{"derivations": ...}` wrapper with base names), Determinate
Nix (the 2.35 CLI) and Lix (2.91, forked from 2.18, keeps the old path-info flags).
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

import pytest

from nix_cache_action.errors import NixError
from nix_cache_action.nix.commands import (
    NIX_NOT_FOUND,
    NIX_PATH_UNUSABLE,
    TIMEOUT_NIX_VERSION,
    TIMEOUT_QUERY_SECONDS,
    Evaluated,
    Nix,
    PathInfo,
)
from nix_cache_action.nix.process import Tee
from nix_cache_action.nix.version import parse_version

# pytest puts this folder on sys.path (tests are not a package); mypy names it from the root.
if TYPE_CHECKING:
    from tests.unit.fake_nix import FakeNix, RunCall, ScriptMismatchError, StreamCall
else:
    from fake_nix import FakeNix, RunCall, ScriptMismatchError, StreamCall

NIX_2_8 = "nix (Nix) 2.8.0"
NIX_2_26 = "nix (Nix) 2.26.3"
NIX_2_34 = "nix (Nix) 2.34.8"
DETERMINATE = "nix (Determinate Nix 3.22.2) 2.35.2"
LIX = "nix (Lix, like Nix) 2.91.1"
VERSIONS = [NIX_2_8, NIX_2_26, NIX_2_34, DETERMINATE, LIX]
# Versions with `drv^out` selectors (2.13+, and Lix, which forked later).
WITH_SELECTORS = [NIX_2_26, NIX_2_34, DETERMINATE, LIX]
# Versions whose `derivation show` wraps its answer and names paths by base name (2.33+).
WRAPPED = {NIX_2_34, DETERMINATE}

NIX = ["nix", "--extra-experimental-features", "nix-command flakes"]
BUILD = [*NIX, "build", "--log-format", "internal-json", "--no-link"]

HELLO_DRV = "/nix/store/qnavcbp5ydyd12asgz7rpr7is7hlswaz-hello-2.12.1.drv"
HELLO = "/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1"
ZLIB_DRV = "/nix/store/b8m2bfg1lzk9i8v4x6r5gwi7i3dqa8nc-zlib-1.3.1.drv"
ZLIB = "/nix/store/8xzmjg1bwq5q7vw1rh0zz2hp4d1rx9p2-zlib-1.3.1"
ZLIB_DEV = "/nix/store/3a7lx0z9k6fs2cqywm0j2ns1r5hbyh0d-zlib-1.3.1-dev"
MISSING = "/nix/store/0000000000000000000000000000000a-missing"
HELLO_HASH = "sha256-KHIDZcXnR2oBHk9DrAA+5fFiR6JjudYjqoXtMR1zvzk="
ZLIB_HASH = "sha256-n5EWH0NDPkmm3m22gNefYBWfLkrJFyYhoShGQoFYRAs="

NO_ATTRIBUTE = (
    "flake 'path:/home/ci/project' does not provide attribute 'packages.x86_64-linux.nope',"
    " 'legacyPackages.x86_64-linux.nope' or 'nope'"
)


def config_call(exe: str = "nix", config: str = "{}") -> RunCall:
    """The settings, asked by the name every Nix knows."""
    return RunCall([exe, *NIX[1:], "show-config", "--json"], stdout=config)


def probed(version: str, *script: RunCall | StreamCall, exe: str = "nix") -> tuple[Nix, FakeNix]:
    """A Nix of `version` (asked with `--version`, as the code does), then `script`."""
    fake = FakeNix([RunCall([exe, "--version"], stdout=version + "\n"), *script])
    return Nix.probe(exe, fake), fake


def base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def ignore_lines(_lines: list[bytes], _now: float) -> None:
    return None


TEE = Tee(on_lines=ignore_lines)


# --- the fake itself ----------------------------------------------------------------------------


def test_the_fake_shows_expected_and_actual_argv_and_keeps_the_first_mismatch() -> None:
    fake = FakeNix([RunCall(["nix", "--version"])])
    with pytest.raises(ScriptMismatchError) as raised:
        fake.run(["nix", "version"])
    text = str(raised.value)
    assert "expected RunCall ['nix', '--version']" in text
    assert "actual   RunCall ['nix', 'version']" in text
    # The engine swallows exceptions into the report, so assert_done raises the mismatch again.
    with pytest.raises(ScriptMismatchError, match="expected RunCall"):
        fake.assert_done()


def test_the_fake_tells_a_stream_from_a_run_and_counts_what_was_never_called() -> None:
    fake = FakeNix([StreamCall(["nix", "build"]), RunCall(["nix", "hash"])])
    with pytest.raises(ScriptMismatchError, match="expected StreamCall"):
        fake.run(["nix", "build"])
    unfinished = FakeNix([RunCall(["nix", "--version"], stdout=NIX_2_34)])
    with pytest.raises(AssertionError, match=r"never made:\n  \['nix', '--version'\]"):
        unfinished.assert_done()


def test_the_fake_feeds_lines_after_on_start_and_interrupts_at_the_line_asked() -> None:
    events: list[object] = []
    fake = FakeNix([StreamCall(["nix", "build"], lines=[b"a\n", b"b\n", b"c\n"], raise_at=2)])
    tee = Tee(
        on_lines=lambda lines, now: events.extend((line, now) for line in lines),
        on_start=events.append,
    )
    with pytest.raises(Exception, match="SIGTERM") as raised:
        fake.stream(["nix", "build"], tee)
    assert type(raised.value).__name__ == "Interrupted"
    # The argv first, then each line with the next reading of the counter clock.
    assert events == [("nix", "build"), (b"a\n", 2.0), (b"b\n", 3.0)]
    fake.assert_done()


# --- probe --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "flavour", "label"),
    [
        (NIX_2_8, "nix", "2.8.0"),
        (NIX_2_26, "nix", "2.26.3"),
        (NIX_2_34, "nix", "2.34.8"),
        (DETERMINATE, "determinate", "2.35.2"),
        (LIX, "lix", "2.91.1"),
    ],
)
def test_probe_asks_version_and_reads_flavour_and_number(
    text: str, flavour: str, label: str
) -> None:
    nix, fake = probed(text)
    assert (nix.version.flavour, nix.version.label, nix.version.text) == (flavour, label, text)
    # No feature flags on --version: 2.8 knows --version alone.
    assert fake.calls == [("nix", "--version")]
    fake.assert_done()


def test_probe_reads_a_version_printed_on_stderr() -> None:
    fake = FakeNix([RunCall(["nix", "--version"], stderr=NIX_2_34 + "\n")])
    assert Nix.probe("nix", fake).version.version == (2, 34, 8)


def test_a_missing_nix_on_path_names_it_and_says_how_to_install() -> None:
    fake = FakeNix([RunCall(["nix", "--version"], error=FileNotFoundError(2, "No such file"))])
    with pytest.raises(NixError) as raised:
        Nix.probe("nix", fake)
    assert str(raised.value) == NIX_NOT_FOUND.format(exe="nix")
    # It names what was looked for, and how to get it.
    assert "`nix` was not found on PATH" in str(raised.value)
    assert "Install Nix" in str(raised.value)


@pytest.mark.parametrize("error", [FileNotFoundError(2, "No such file"), PermissionError(13, "")])
def test_a_wrong_nix_path_names_the_path_and_says_what_to_pass(error: OSError) -> None:
    exe = "/opt/nix/bin/nix"
    fake = FakeNix([RunCall([exe, "--version"], error=error)])
    with pytest.raises(NixError) as raised:
        Nix.probe(exe, fake)
    # A path the user gave: not the advice to install Nix, but to fix the path.
    assert str(raised.value) == NIX_PATH_UNUSABLE.format(exe=exe)
    assert f"`{exe}` does not exist" in str(raised.value)
    assert "Install Nix" not in str(raised.value)


def test_a_nix_that_hangs_on_version_is_a_nix_error_with_the_cause() -> None:
    hangs = RunCall(["nix", "--version"], error=subprocess.TimeoutExpired("nix", 60))
    fake = FakeNix([hangs])
    with pytest.raises(NixError, match=r"`nix --version` did not answer \(.*timed out after 60"):
        Nix.probe("nix", fake)


def test_the_executable_given_is_the_first_word_of_every_command() -> None:
    exe = "/opt/nix/bin/nix"
    nix, fake = probed(NIX_2_34, RunCall([exe, *NIX[1:], "hash", "path", HELLO]), exe=exe)
    nix.hash_path(HELLO)
    fake.assert_done()


# --- build --------------------------------------------------------------------------------------


def build_json(version: str, outputs: dict[str, dict[str, str]]) -> str:
    """`nix build --json` stdout; newer Nix adds the build's start and stop times."""
    times = {} if version == NIX_2_8 else {"startTime": 1764612000, "stopTime": 1764612003}
    entries = [{"drvPath": drv, "outputs": outs, **times} for drv, outs in outputs.items()]
    return json.dumps(entries)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("keep_going", "fallback", "flags"),
    [
        (True, True, ["--keep-going", "--fallback"]),
        (False, True, ["--fallback"]),
        (True, False, ["--keep-going"]),
        (False, False, []),
    ],
)
def test_build_argv_and_outputs_from_json(
    version: str, *, keep_going: bool, fallback: bool, flags: list[str]
) -> None:
    lines = [b'@nix {"action":"msg","level":3,"msg":"these 2 derivations will be built:"}\n']
    stdout = build_json(
        version, {HELLO_DRV: {"out": HELLO}, ZLIB_DRV: {"out": ZLIB, "dev": ZLIB_DEV}}
    )
    argv = [*BUILD, "--json", *flags, ".#hello", ".#zlib"]
    nix, fake = probed(version, StreamCall(argv, lines=lines, stdout=stdout))
    seen: list[bytes] = []
    built = nix.build(
        [".#hello", ".#zlib"],
        keep_going=keep_going,
        fallback=fallback,
        tee=Tee(lambda read, _t: seen.extend(read)),
    )
    assert built.outputs == {HELLO_DRV: {"out": HELLO}, ZLIB_DRV: {"out": ZLIB, "dev": ZLIB_DEV}}
    assert built.streamed.returncode == 0
    assert seen == lines  # the log goes to the tee, line by line
    fake.assert_done()


@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param("  \n", id="whitespace"),
        pytest.param(
            json.dumps({"drvPath": HELLO_DRV, "outputs": {"out": HELLO}}), id="not-a-list"
        ),
        # A store-path installable: Nix answers with `path` only, as nothing was built for it.
        pytest.param(json.dumps([{"path": HELLO}]), id="no-drvPath"),
        pytest.param("[{", id="not-json"),
    ],
)
def test_build_stdout_without_a_list_of_built_derivations_gives_no_outputs(stdout: str) -> None:
    argv = [*BUILD, "--json", "--keep-going", HELLO]
    nix, fake = probed(NIX_2_34, StreamCall(argv, stdout=stdout))
    assert nix.build([HELLO], keep_going=True, fallback=False, tee=TEE).outputs == {}
    fake.assert_done()


def test_build_keeps_the_entries_that_name_a_derivation() -> None:
    stdout = json.dumps([{"path": ZLIB}, {"drvPath": HELLO_DRV, "outputs": {"out": HELLO}}])
    argv = [*BUILD, "--json", "--keep-going", ZLIB, ".#hello"]
    nix, fake = probed(NIX_2_34, StreamCall(argv, stdout=stdout))
    assert nix.build([ZLIB, ".#hello"], keep_going=True, fallback=False, tee=TEE).outputs == {
        HELLO_DRV: {"out": HELLO}
    }
    fake.assert_done()


def test_a_failed_build_gives_no_outputs_even_with_json_on_stdout() -> None:
    # With --keep-going the outputs that did build are not trusted: each installable is asked
    # for on its own afterwards (engine), which tells a failed one from a built one.
    stdout = build_json(NIX_2_34, {HELLO_DRV: {"out": HELLO}})
    argv = [*BUILD, "--json", "--keep-going", ".#hello"]
    nix, fake = probed(NIX_2_34, StreamCall(argv, returncode=1, stdout=stdout))
    built = nix.build([".#hello"], keep_going=True, fallback=False, tee=TEE)
    assert (built.outputs, built.streamed.returncode) == ({}, 1)
    fake.assert_done()


def test_a_retry_names_the_caches_to_ask_in_place_of_the_configured_ones() -> None:
    rest = ["http://a", "https://cache.example?priority=10"]
    argv = [*BUILD, "--json", "--keep-going", "--fallback"]
    argv += ["--option", "substituters", " ".join(rest), ".#hello"]
    nix, fake = probed(NIX_2_8, StreamCall(argv))
    nix.build([".#hello"], keep_going=True, fallback=True, tee=TEE, substituters=rest)
    fake.assert_done()


SETTINGS = {
    "substituters": {"value": ["http://a", "http://127.0.0.1:37515?trusted=1"]},
    "max-jobs": {"value": 2, "description": "..."},
    "odd": "not an object",
}


@pytest.mark.parametrize("version", VERSIONS)
def test_config_reads_the_settings_asked_once_by_the_name_every_nix_knows(version: str) -> None:
    nix, fake = probed(version, config_call(config=json.dumps(SETTINGS)))
    nix.start_config()
    nix.start_config()  # started once
    expected = {"substituters": ["http://a", "http://127.0.0.1:37515?trusted=1"], "max-jobs": 2}
    assert nix.config() == expected
    assert nix.config() == expected  # asked once: no second query
    assert nix.substituters() == expected["substituters"]
    fake.assert_done()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_nix_without_show_config_is_asked_by_the_name_its_version_gives(version: str) -> None:
    parsed = parse_version(version)
    old = parsed.flavour == "lix" or not parsed.at_least(2, 20)
    command = ["show-config", "--json"] if old else ["config", "show", "--json"]
    early = [RunCall(["nix", "--version"], stdout=version + "\n"), config_call()]
    early[1] = RunCall(early[1].argv, returncode=1)
    fake = FakeNix([*early, RunCall([*NIX, *command], stdout=json.dumps(SETTINGS))])
    nix = Nix.probe("nix", fake)
    assert nix.config()["max-jobs"] == 2
    fake.assert_done()


@pytest.mark.parametrize("stdout", ["", "not json", "[]"])
def test_a_config_nix_cannot_give_is_empty(stdout: str) -> None:
    nix, fake = probed(NIX_2_34, config_call(config=stdout))
    assert nix.substituters() == []
    fake.assert_done()


# --- rebuild ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_rebuild_argv_keeps_the_copy_and_goes_on_after_a_difference(version: str) -> None:
    targets = [f"{HELLO_DRV}^out", ".#zlib"]
    argv = [*BUILD, "--rebuild", "--keep-failed", "--keep-going", *targets]
    nix, fake = probed(version, StreamCall(argv, returncode=1))
    assert nix.rebuild(targets, TEE).returncode == 1
    fake.assert_done()


@pytest.mark.parametrize("version", WITH_SELECTORS)
def test_rebuild_target_names_the_built_outputs_of_the_drv(version: str) -> None:
    nix, fake = probed(version)
    # Sorted, so that the same outputs always give the same argv.
    assert nix.rebuild_target(".#zlib", ZLIB_DRV, ["out", "dev"]) == f"{ZLIB_DRV}^dev,out"
    assert nix.rebuild_target(".#hello", HELLO_DRV, ["out"]) == f"{HELLO_DRV}^out"
    fake.assert_done()  # nothing is asked of Nix


def test_rebuild_target_on_2_8_is_the_installable() -> None:
    nix, _ = probed(NIX_2_8)
    # Before 2.13 there is no `^`; a bare .drv would mean all outputs, so the installable it is.
    assert nix.rebuild_target(".#zlib", ZLIB_DRV, ["out", "dev"]) == ".#zlib"


@pytest.mark.parametrize("version", VERSIONS)
def test_rebuild_target_without_drv_or_outputs_is_the_installable(version: str) -> None:
    nix, _ = probed(version)
    assert nix.rebuild_target(".#hello", None, ["out"]) == ".#hello"
    assert nix.rebuild_target(".#hello", HELLO_DRV, []) == ".#hello"


@pytest.mark.parametrize(
    ("version", "target"),
    [
        (NIX_2_8, ZLIB_DRV),
        (NIX_2_26, f"{ZLIB_DRV}^*"),
        (NIX_2_34, f"{ZLIB_DRV}^*"),
        (DETERMINATE, f"{ZLIB_DRV}^*"),
        (LIX, f"{ZLIB_DRV}^*"),
    ],
)
def test_all_outputs_of_a_drv(version: str, target: str) -> None:
    nix, _ = probed(version)
    assert nix.all_outputs(ZLIB_DRV) == target


# --- evaluate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_evaluate_asks_path_info_derivation_and_takes_the_last_line(version: str) -> None:
    argv = [*NIX, "path-info", "--derivation", ".#hello"]
    nix, fake = probed(version, RunCall(argv, stdout=f"{ZLIB_DRV}\n{HELLO_DRV}\n"))
    assert nix.evaluate(".#hello") == Evaluated(drv=HELLO_DRV, error=None)
    fake.assert_done()


def test_an_evaluation_error_is_one_line_without_prefix_colours_or_trace_advice() -> None:
    # Nix 2.8's wording, with its colours.
    stderr = (
        "\x1b[31;1merror:\x1b[0m flake '\x1b[35;1mpath:/home/ci/project\x1b[0m' does not provide"
        " attribute 'packages.x86_64-linux.nope', 'legacyPackages.x86_64-linux.nope' or 'nope'\n"
        "(use '--show-trace' to show detailed location information)\n"
    )
    argv = [*NIX, "path-info", "--derivation", ".#nope"]
    nix, fake = probed(NIX_2_8, RunCall(argv, returncode=1, stderr=stderr))
    assert nix.evaluate(".#nope") == Evaluated(drv=None, error=NO_ATTRIBUTE)
    fake.assert_done()


def test_a_multi_line_evaluation_error_is_joined_and_loses_the_trace_advice() -> None:
    # 2.34's layout: the first `error:` on a line of its own, the context indented under it.
    stderr = (
        "\x1b[31;1merror:\x1b[0m\n"
        "       … while evaluating the attribute 'packages.x86_64-linux.default'\n"
        "\n"
        "       (stack trace truncated; use '--show-trace' to show the full, detailed trace)\n"
        "\n"
        "       error: undefined variable '\x1b[35;1mnope\x1b[0m'\n"
    )
    argv = [*NIX, "path-info", "--derivation", ".#default"]
    nix, fake = probed(NIX_2_34, RunCall(argv, returncode=1, stderr=stderr))
    error = nix.evaluate(".#default").error
    assert error is not None
    assert error.startswith("… while evaluating the attribute 'packages.x86_64-linux.default'")
    assert error.endswith("error: undefined variable 'nope'")
    assert "\n" not in error
    assert "show-trace" not in error
    assert "\x1b" not in error
    fake.assert_done()


def test_an_evaluation_that_fails_silently_says_the_exit_status() -> None:
    argv = [*NIX, "path-info", "--derivation", ".#hello"]
    nix, _ = probed(NIX_2_34, RunCall(argv, returncode=137))
    assert nix.evaluate(".#hello") == Evaluated(drv=None, error="nix exited with status 137")


@pytest.mark.parametrize("version", VERSIONS)
def test_outputs_of_an_installable_are_the_paths_path_info_prints(version: str) -> None:
    argv = [*NIX, "path-info", ".#zlib"]
    nix, fake = probed(version, RunCall(argv, stdout=f"{ZLIB_DEV}\n{ZLIB}\n"))
    assert nix.outputs_of(".#zlib") == [ZLIB_DEV, ZLIB]
    fake.assert_done()


def test_outputs_of_an_installable_that_is_not_built_are_none() -> None:
    stderr = f"error: path '{HELLO}' is not valid\n"
    argv = [*NIX, "path-info", ".#hello"]
    nix, _ = probed(NIX_2_34, RunCall(argv, returncode=1, stdout=f"{HELLO}\n", stderr=stderr))
    assert nix.outputs_of(".#hello") == []


# --- derivation outputs -------------------------------------------------------------------------


def show_derivation_json(version: str) -> str:
    """What each version prints for hello and zlib (zlib also has a floating CA output `doc`,
    whose path is not known before it is built)."""
    wrapped = version in WRAPPED
    name: dict[str, str] = {p: base(p) if wrapped else p for p in (HELLO, ZLIB, ZLIB_DEV)}
    drvs = {
        HELLO_DRV: {
            "args": ["-e", "builder.sh"],
            "builder": "/nix/store/4bj2kxdm1462fzcc2i2s4dn33g2angcc-bash-5.2p37/bin/bash",
            "env": {"name": "hello-2.12.1", "out": name[HELLO]},
            "inputSrcs": [],
            "name": "hello-2.12.1",
            "outputs": {"out": {"path": name[HELLO]}},
            "system": "x86_64-linux",
        },
        ZLIB_DRV: {
            "name": "zlib-1.3.1",
            "outputs": {
                "dev": {"path": name[ZLIB_DEV]},
                "doc": {"hashAlgo": "sha256", "method": "nar"},
                "out": {"path": name[ZLIB]},
            },
            "system": "x86_64-linux",
        },
    }
    if not wrapped:
        return json.dumps(drvs, indent=2)
    return json.dumps(
        {"derivations": {base(d): {**v, "version": 4} for d, v in drvs.items()}, "version": 4}
    )


@pytest.mark.parametrize(
    ("version", "command"),
    [
        (NIX_2_8, ["show-derivation"]),
        (NIX_2_26, ["derivation", "show"]),
        (NIX_2_34, ["derivation", "show"]),
        (DETERMINATE, ["derivation", "show"]),
        (LIX, ["derivation", "show"]),
    ],
)
def test_derivation_outputs_in_every_shape_are_full_paths(version: str, command: list[str]) -> None:
    argv = [*NIX, *command, HELLO_DRV, ZLIB_DRV]
    nix, fake = probed(version, RunCall(argv, stdout=show_derivation_json(version)))
    assert nix.derivation_outputs([HELLO_DRV, ZLIB_DRV]) == {
        HELLO_DRV: {"out": HELLO},
        # `doc` has no path yet: left out, not given as None.
        ZLIB_DRV: {"dev": ZLIB_DEV, "out": ZLIB},
    }
    fake.assert_done()


def test_derivation_outputs_of_nothing_asks_nothing() -> None:
    nix, fake = probed(NIX_2_34)
    assert nix.derivation_outputs([]) == {}
    fake.assert_done()


@pytest.mark.parametrize(
    ("returncode", "stdout"), [(1, show_derivation_json(NIX_2_34)), (0, " \n")]
)
def test_derivation_outputs_after_a_failure_or_empty_answer_are_none(
    returncode: int, stdout: str
) -> None:
    argv = [*NIX, "derivation", "show", HELLO_DRV]
    nix, fake = probed(NIX_2_34, RunCall(argv, returncode=returncode, stdout=stdout))
    assert nix.derivation_outputs([HELLO_DRV]) == {}
    fake.assert_done()


@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param("[]", id="a-list"),
        pytest.param('{"derivations": []}', id="wrapped-list"),
        pytest.param(json.dumps({HELLO_DRV: None}), id="null-body"),
        pytest.param(json.dumps({HELLO_DRV: {"outputs": ["out"]}}), id="outputs-a-list"),
        pytest.param(json.dumps({HELLO_DRV: {"outputs": {"out": 7}}}), id="output-a-number"),
        pytest.param(
            json.dumps({HELLO_DRV: {"outputs": {"out": {"path": 7}}}}), id="path-a-number"
        ),
    ],
)
def test_derivation_outputs_of_another_shape_are_left_out(stdout: str) -> None:
    argv = [*NIX, "derivation", "show", HELLO_DRV]
    nix, fake = probed(NIX_2_34, RunCall(argv, stdout=stdout))
    assert nix.derivation_outputs([HELLO_DRV]) in ({}, {HELLO_DRV: {}})
    fake.assert_done()


def test_derivation_outputs_that_are_not_json_are_none_like_path_info() -> None:
    argv = [*NIX, "derivation", "show", HELLO_DRV]
    nix, _ = probed(NIX_2_34, RunCall(argv, stdout="warning: unknown setting 'foo'\n"))
    assert nix.derivation_outputs([HELLO_DRV]) == {}


# --- path-info ----------------------------------------------------------------------------------


def path_info_json(version: str) -> str:
    """`nix path-info --json HELLO ZLIB MISSING` as each version prints it."""
    hello = {
        "ca": None,
        "deriver": HELLO_DRV,
        "narHash": HELLO_HASH,
        "narSize": 226560,
        "references": [HELLO],
        "registrationTime": 1764612003,
        "signatures": [],
        "ultimate": True,
    }
    zlib = {**hello, "deriver": ZLIB_DRV, "narHash": ZLIB_HASH, "narSize": 125792}
    if version in {NIX_2_8, LIX}:
        # To 2.18 (and Lix, forked from it): a list with `path`; an invalid path has no hash.
        return json.dumps(
            [
                {"path": HELLO, **hello},
                {"path": ZLIB, **zlib},
                {"path": MISSING, "valid": False},
            ]
        )
    return json.dumps({HELLO: hello, ZLIB: zlib, MISSING: None})


@pytest.mark.parametrize(
    ("version", "flags"),
    [
        (NIX_2_8, ["--json"]),
        (NIX_2_26, ["--json"]),
        (NIX_2_34, ["--json", "--json-format", "1"]),
        (DETERMINATE, ["--json", "--json-format", "1"]),
        (LIX, ["--json"]),
    ],
)
def test_path_info_in_every_shape(version: str, flags: list[str]) -> None:
    argv = [*NIX, "path-info", *flags, HELLO, ZLIB, MISSING]
    nix, fake = probed(version, RunCall(argv, stdout=path_info_json(version)))
    assert nix.path_info([HELLO, ZLIB, MISSING]) == {
        HELLO: PathInfo(nar_hash=HELLO_HASH, nar_size=226560),
        ZLIB: PathInfo(nar_hash=ZLIB_HASH, nar_size=125792),
    }
    fake.assert_done()


@pytest.mark.parametrize(
    "stdout",
    [
        pytest.param("", id="empty"),
        pytest.param("warning: '--json' without '--json-format' is deprecated\n", id="not-json"),
        pytest.param("42", id="not-an-object"),
        pytest.param('[{"narHash": "sha256-x"}, 7, null]', id="list-items-without-path"),
        pytest.param(json.dumps({HELLO: {"narHash": 7}}), id="hash-a-number"),
        pytest.param(json.dumps({HELLO: ["narHash"]}), id="info-a-list"),
    ],
)
def test_path_info_that_is_not_json_of_either_shape_is_none(stdout: str) -> None:
    argv = [*NIX, "path-info", "--json", "--json-format", "1", HELLO]
    nix, fake = probed(NIX_2_34, RunCall(argv, stdout=stdout))
    assert nix.path_info([HELLO]) == {}
    fake.assert_done()


def test_path_info_of_nothing_asks_nothing() -> None:
    nix, fake = probed(NIX_2_8)
    assert nix.path_info([]) == {}
    fake.assert_done()


@pytest.mark.parametrize(
    ("version", "flags"),
    [
        (NIX_2_26, ["--json"]),
        (NIX_2_34, ["--json", "--json-format", "1"]),
        (DETERMINATE, ["--json", "--json-format", "1"]),
        (LIX, ["--json"]),
    ],
)
def test_path_info_started_ahead_is_told_the_paths_on_its_standard_input(
    version: str, flags: list[str]
) -> None:
    ahead = [*NIX, "path-info", *flags, "--stdin"]
    answer = path_info_json(version)
    nix, fake = probed(version, RunCall(ahead, stdout=answer, stdin=f"{HELLO}\n{ZLIB}\n"))
    nix.start_path_info()
    assert fake.started_ahead == [tuple(ahead)]
    assert nix.path_info([HELLO, ZLIB]) == {
        HELLO: PathInfo(nar_hash=HELLO_HASH, nar_size=226560),
        ZLIB: PathInfo(nar_hash=ZLIB_HASH, nar_size=125792),
    }
    nix.close()
    assert fake.stopped == []  # it answered: nothing left to stop
    fake.assert_done()


def test_path_info_started_ahead_answers_once_then_asks_the_usual_way() -> None:
    flags = ["--json", "--json-format", "1"]
    nix, fake = probed(
        NIX_2_34,
        RunCall([*NIX, "path-info", *flags, "--stdin"], stdout="{}", stdin=f"{HELLO}\n"),
        RunCall([*NIX, "path-info", *flags, ZLIB], stdout=path_info_json(NIX_2_34)),
    )
    nix.start_path_info()
    assert nix.path_info([HELLO]) == {}
    assert ZLIB in nix.path_info([ZLIB])
    fake.assert_done()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(RunCall([], returncode=1, stderr="error: unrecognised flag"), id="failed"),
        pytest.param(RunCall([], error=OSError(32, "Broken pipe")), id="broken-pipe"),
    ],
)
def test_a_path_info_started_ahead_that_fails_is_asked_again_the_usual_way(
    answer: RunCall,
) -> None:
    # What it fails on is then said by the usual query (the same answer, or the same failure).
    flags = ["--json", "--json-format", "1"]
    ahead = RunCall(
        [*NIX, "path-info", *flags, "--stdin"],
        returncode=answer.returncode,
        stderr=answer.stderr,
        error=answer.error,
        stdin=f"{HELLO}\n",
    )
    again = RunCall([*NIX, "path-info", *flags, HELLO], stdout=path_info_json(NIX_2_34))
    nix, fake = probed(NIX_2_34, ahead, again)
    nix.start_path_info()
    assert nix.path_info([HELLO])[HELLO] == PathInfo(nar_hash=HELLO_HASH, nar_size=226560)
    fake.assert_done()


def test_a_path_info_started_ahead_that_does_not_answer_is_a_nix_error() -> None:
    flags = ["--json", "--json-format", "1"]
    late = subprocess.TimeoutExpired("nix", 60)
    ahead = RunCall([*NIX, "path-info", *flags, "--stdin"], error=late, stdin=f"{HELLO}\n")
    nix, fake = probed(NIX_2_34, ahead)
    nix.start_path_info()
    with pytest.raises(NixError, match="path-info --stdin"):
        nix.path_info([HELLO])
    fake.assert_done()


def test_a_path_with_a_space_is_not_told_on_standard_input_but_passed_as_an_argument() -> None:
    # Nix reads its standard input as words.
    spaced = HELLO.replace("hello", "hel lo")
    flags = ["--json", "--json-format", "1"]
    nix, fake = probed(NIX_2_34, RunCall([*NIX, "path-info", *flags, spaced], stdout="{}"))
    nix.start_path_info()
    assert nix.path_info([spaced]) == {}
    assert fake.stopped == [(*NIX, "path-info", *flags, "--stdin")]
    fake.assert_done()


def test_a_path_info_of_another_store_is_not_the_one_started_ahead() -> None:
    flags = ["--json", "--json-format", "1"]
    cache = "http://127.0.0.1:8080"
    nix, fake = probed(
        NIX_2_34, RunCall([*NIX, "path-info", "--store", cache, *flags, HELLO], stdout="{}")
    )
    nix.start_path_info()
    assert nix.path_info([HELLO], store=cache) == {}
    nix.close()  # the one started ahead was never asked: stopped
    assert fake.stopped == [(*NIX, "path-info", *flags, "--stdin")]
    fake.assert_done()


@pytest.mark.parametrize("version", ["nix (Nix) 2.14.1", "nix (Nix) 2.16.2"])
def test_nix_before_2_17_starts_nothing_ahead_and_is_asked_the_usual_way(version: str) -> None:
    # Before 2.15 there is no --stdin; before 2.17 a standard input that ends with no word
    # means `.`: a query never told its paths would evaluate the flake in the directory.
    nix, fake = probed(
        version,
        RunCall([*NIX, "path-info", "--json", HELLO], stdout=path_info_json(NIX_2_8)),
    )
    nix.start_path_info()
    assert fake.started_ahead == []
    assert HELLO in nix.path_info([HELLO])
    fake.assert_done()


# --- the boundaries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "target", "show", "json_flags"),
    [
        ("nix (Nix) 2.12.1", ".#zlib", ["show-derivation"], ["--json"]),
        ("nix (Nix) 2.13.0", f"{ZLIB_DRV}^dev,out", ["show-derivation"], ["--json"]),
        ("nix (Nix) 2.14.1", f"{ZLIB_DRV}^dev,out", ["show-derivation"], ["--json"]),
        ("nix (Nix) 2.15.0", f"{ZLIB_DRV}^dev,out", ["derivation", "show"], ["--json"]),
        ("nix (Nix) 2.32.4", f"{ZLIB_DRV}^dev,out", ["derivation", "show"], ["--json"]),
        (
            "nix (Nix) 2.33.0",
            f"{ZLIB_DRV}^dev,out",
            ["derivation", "show"],
            ["--json", "--json-format", "1"],
        ),
    ],
)
def test_each_difference_starts_at_its_version(
    version: str, target: str, show: list[str], json_flags: list[str]
) -> None:
    nix, fake = probed(
        version,
        RunCall([*NIX, *show, ZLIB_DRV], returncode=1),
        RunCall([*NIX, "path-info", *json_flags, ZLIB], returncode=1),
    )
    assert nix.rebuild_target(".#zlib", ZLIB_DRV, ["out", "dev"]) == target
    nix.derivation_outputs([ZLIB_DRV])
    nix.path_info([ZLIB])
    fake.assert_done()


# --- hash path ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_hash_path_of_a_check_copy(version: str) -> None:
    check = HELLO + ".check"
    nix, fake = probed(version, RunCall([*NIX, "hash", "path", check], stdout=HELLO_HASH + "\n"))
    assert nix.hash_path(check) == HELLO_HASH
    fake.assert_done()


@pytest.mark.parametrize(("returncode", "stdout"), [(1, HELLO_HASH), (0, "\n")])
def test_hash_path_that_fails_or_prints_nothing_is_none(returncode: int, stdout: str) -> None:
    argv = [*NIX, "hash", "path", MISSING]
    nix, _ = probed(NIX_2_34, RunCall(argv, returncode=returncode, stdout=stdout))
    assert nix.hash_path(MISSING) is None


def test_every_query_has_a_time_limit_and_a_stuck_one_is_a_clear_error() -> None:
    argv = [*NIX, "path-info", "--derivation", ".#hello"]
    stuck = subprocess.TimeoutExpired(argv, TIMEOUT_QUERY_SECONDS)
    nix, fake = probed(NIX_2_34, RunCall(argv, error=stuck))
    with pytest.raises(NixError, match=r"`nix path-info --derivation '.#hello'` did not answer"):
        nix.evaluate(".#hello")
    # The version probe has its own, shorter limit; the query the common one.
    assert fake.timeouts == [TIMEOUT_NIX_VERSION, TIMEOUT_QUERY_SECONDS]
