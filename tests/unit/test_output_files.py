"""The report and summary files: atomic for regular files, never a replaced device."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nix_cache_action.errors import InputError
from nix_cache_action.files import check_target, write_text


def test_a_regular_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.json"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temporary left


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text(link, "data")
    assert link.is_symlink()
    assert real.read_text() == "data"


def test_a_device_is_written_in_place_never_replaced() -> None:
    write_text(Path("/dev/null"), "gone")
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)
    with pytest.raises(OSError, match="No space left"):
        write_text(Path("/dev/full"), "x" * 100_000)
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)


def test_a_directory_is_refused_with_the_option_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--report: .* is a directory; name a file in it"):
        check_target(tmp_path, "--report", "report.json")
    with pytest.raises(IsADirectoryError):
        write_text(tmp_path, "x")
    check_target(tmp_path / "new" / "report.json", "--report", "report.json")
    assert (tmp_path / "new").is_dir()
