"""`nix --version` across flavours, and the flags that follow from it."""

from __future__ import annotations

import pytest

from nix_cache_action.errors import NixError
from nix_cache_action.nix.version import parse_version


@pytest.mark.parametrize(
    ("text", "flavour", "version"),
    [
        ("nix (Nix) 2.8.0\n", "nix", (2, 8, 0)),
        ("nix (Nix) 2.34.8", "nix", (2, 34, 8)),
        ("nix (Nix) 2.33.0pre20251101_e4e4063", "nix", (2, 33, 0)),
        ("nix (Determinate Nix 3.21.9) 2.34.8", "determinate", (2, 34, 8)),
        ("nix (Determinate Nix 3.4.1) 2.28.2", "determinate", (2, 28, 2)),
        ("nix (Lix, like Nix) 2.91.1\nSystem type: x86_64-linux\n", "lix", (2, 91, 1)),
    ],
)
def test_flavours(text: str, flavour: str, version: tuple[int, int, int]) -> None:
    parsed = parse_version(text)
    assert (parsed.flavour, parsed.version) == (flavour, version)


def test_per_version_flags() -> None:
    old, new = parse_version("nix (Nix) 2.8.0"), parse_version("nix (Nix) 2.34.8")
    lix = parse_version("nix (Lix, like Nix) 2.91.1")
    assert old.path_info_json_flags() == ["--json"]
    assert new.path_info_json_flags() == ["--json", "--json-format", "1"]
    assert lix.path_info_json_flags() == ["--json"]  # Lix never took --json-format
    assert old.all_outputs("/s/a.drv") == "/s/a.drv"
    assert new.all_outputs("/s/a.drv") == "/s/a.drv^*"
    assert old.some_outputs("/s/a.drv", ["out", "dev"]) is None  # no `^` before 2.13
    assert new.some_outputs("/s/a.drv", ["out", "dev"]) == "/s/a.drv^dev,out"
    assert lix.some_outputs("/s/a.drv", ["out"]) == "/s/a.drv^out"
    assert old.derivation_show() == ["show-derivation"]
    assert new.derivation_show() == ["derivation", "show"]


def test_too_old_names_the_version_and_the_fix() -> None:
    with pytest.raises(NixError, match=r"nix 2\.3\.16 is too old.*2\.8 or newer.*Upgrade Nix"):
        parse_version("nix (Nix) 2.3.16")


def test_not_a_version() -> None:
    with pytest.raises(NixError, match="could not read the Nix version"):
        parse_version("bash: nix: command not found")
