"""start.py: a `build` asks Nix its version before the CLI is imported, from the
executable and directory it reads off the command line; cli.main asks again where that reading
was not the whole story."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.cli import run_cli

from nix_cache_action.nix.process import Subprocesses
from nix_cache_action.start import early_probe


@pytest.mark.parametrize(
    ("argv", "executable", "directory"),
    [
        (["build"], "nix", None),
        (["build", ".#a", "--nix", "/opt/nix"], "/opt/nix", None),
        (["build", "--nix=/opt/nix", "-C", "{tmp}"], "/opt/nix", "{tmp}"),
        (["build", "-C{tmp}"], "nix", "{tmp}"),
        (["build", "--directory={tmp}", "--", "--nix"], "nix", "{tmp}"),
    ],
)
def test_a_build_starts_the_probe_of_the_nix_and_directory_it_names(
    tmp_path: Path, argv: list[str], executable: str, directory: str | None
) -> None:
    words = [w.replace("{tmp}", str(tmp_path)) for w in argv]
    # A Nix that does not exist: the probe starts nothing, and says so when asked.
    probe = early_probe([w.replace("/opt/nix", str(tmp_path / "no-nix")) for w in words])
    assert probe is not None
    assert probe.executable == executable.replace("/opt/nix", str(tmp_path / "no-nix"))
    assert isinstance(probe.runner, Subprocesses)
    expected = None if directory is None else directory.replace("{tmp}", str(tmp_path))
    assert probe.runner.cwd == expected
    assert probe.asks(probe.executable, None if expected is None else Path(expected))
    assert not probe.asks("other-nix", None if expected is None else Path(expected))


@pytest.mark.parametrize(
    "argv",
    [[], ["analyze", "x.log"], ["build", "--help"], ["build", "-C", "/no/such/directory"]],
)
def test_anything_else_starts_nothing(argv: list[str]) -> None:
    assert early_probe(argv) is None


def test_an_abbreviated_nix_option_is_asked_again_by_the_cli(tmp_path: Path) -> None:
    # start.py does not read `--ni` as --nix (argparse does): it asks `nix`, and the CLI,
    # seeing another executable, asks the one named.
    missing = tmp_path / "no-nix"
    done = run_cli(tmp_path, "build", "--ni", str(missing))
    assert done.returncode == 1
    assert f"`{missing}` does not exist or cannot be run" in done.stderr
