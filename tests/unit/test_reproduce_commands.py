"""The commands that reproduce a check start from the repository root."""

from __future__ import annotations

import pytest

from nix_cache_action.render.format import from_root, reproduce_commands
from nix_cache_action.report import Check


@pytest.mark.parametrize(
    ("installable", "where", "expected"),
    [
        (".#app", None, ".#app"),
        (".#app", ".", ".#app"),
        (".#app", "nix", "./nix#app"),
        (
            ".#checks.x86_64-linux.t",
            "tests/logs/flake/",
            "./tests/logs/flake#checks.x86_64-linux.t",
        ),
        (".", "nix", "./nix"),
        ("./sub#x", "nix", "./nix/sub#x"),
        ("github:owner/repo#x", "nix", "github:owner/repo#x"),
        ("/abs/flake#x", "nix", "/abs/flake#x"),
    ],
)
def test_an_installable_reads_from_the_root(
    installable: str, where: str | None, expected: str
) -> None:
    assert from_root(installable, where) == expected


def test_the_reproduce_commands_use_it() -> None:
    check = Check(
        drv="/s/a-x.drv", output="out", path="/s/b-x", verdict="differs", installable=".#x"
    )
    build, compare = reproduce_commands(check, "tests/logs/flake")
    assert build == "nix build './tests/logs/flake#x' --rebuild --keep-failed"
    assert compare == "diffoscope /s/b-x /s/b-x.check"
