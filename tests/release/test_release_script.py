"""scripts/release.sh against throwaway git repositories: a bare one as the remote, a clone to
release from. It holds copies of pyproject.toml, CHANGELOG.md and the script, committed.

The project's checks are skipped with RELEASE_SKIP_CHECKS=1 (there is no project to check in the
clone), except where stand-ins for scripts/test.sh and `nix` show that they gate the tagging.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.release

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Repos:
    remote: Path
    work: Path
    env: dict[str, str]

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd or self.work,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=TIMEOUT_SECONDS,
        )
        return done.stdout.strip()

    def release(
        self, *, skip_checks: bool = True, path: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if skip_checks:
            env["RELEASE_SKIP_CHECKS"] = "1"
        if path is not None:
            env["PATH"] = path
        return subprocess.run(
            ["bash", str(self.work / "scripts" / "release.sh")],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
        )

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def remote_tag(self, name: str) -> str | None:
        """The commit tag `name` points at on the remote, or None when it has no such tag."""
        done = subprocess.run(
            ["git", "rev-parse", "--quiet", "--verify", f"refs/tags/{name}^{{commit}}"],
            cwd=self.remote,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
        )
        return done.stdout.strip() if done.returncode == 0 else None

    def remote_tags(self) -> list[str]:
        return self.git("tag", "--list", cwd=self.remote).split()

    def set_version(self, version: str) -> None:
        pyproject = self.work / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        text, count = re.subn(r'(?m)^version = ".*"$', f'version = "{version}"', text, count=1)
        assert count == 1
        pyproject.write_text(text, encoding="utf-8")

    def add_changelog_section(self, version: str) -> None:
        changelog = self.work / "CHANGELOG.md"
        text = changelog.read_text(encoding="utf-8")
        first = text.index("\n## ") + 1
        section = f"## {version} - unreleased\n\n### Fixed\n\n- A fix.\n\n"
        changelog.write_text(text[:first] + section + text[first:], encoding="utf-8")

    def commit_all(self, message: str) -> None:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message)


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    # Nothing from the machine's or the user's git configuration (signing, hooks, aliases).
    empty_config = tmp_path / "gitconfig"
    empty_config.write_text("", encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(empty_config),
        "GIT_AUTHOR_NAME": "Release Test",
        "GIT_AUTHOR_EMAIL": "release-test@example.invalid",
        "GIT_COMMITTER_NAME": "Release Test",
        "GIT_COMMITTER_EMAIL": "release-test@example.invalid",
    }
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    repos = Repos(remote=remote, work=work, env=env)
    repos.git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=tmp_path)
    repos.git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    (work / "scripts").mkdir()
    shutil.copy2(REPO / "pyproject.toml", work / "pyproject.toml")
    shutil.copy2(REPO / "CHANGELOG.md", work / "CHANGELOG.md")
    shutil.copy2(REPO / "scripts" / "release.sh", work / "scripts" / "release.sh")
    # The cases below speak of 1.0.0 and 1.0.1, whatever the project's version is today.
    repos.set_version("1.0.0")
    repos.git("checkout", "--quiet", "-b", "main")
    repos.commit_all("The project")
    repos.git("push", "--quiet", "origin", "main")
    return repos


def test_a_release_tags_the_version_and_the_major_on_the_remote(repos: Repos) -> None:
    done = repos.release()
    assert done.returncode == 0, done.stderr
    head = repos.head()
    assert repos.remote_tag("v1.0.0") == head
    assert repos.remote_tag("v1") == head
    # Annotated tags: they carry who made them and when.
    assert repos.git("cat-file", "-t", "v1.0.0", cwd=repos.remote) == "tag"
    assert repos.git("cat-file", "-t", "v1", cwd=repos.remote) == "tag"
    assert "tagged v1.0.0" in done.stdout
    assert "moved v1" in done.stdout


def test_a_second_run_refuses_because_the_tag_exists(repos: Repos) -> None:
    assert repos.release().returncode == 0
    done = repos.release()
    assert done.returncode == 1
    assert "tag v1.0.0 exists already here" in done.stderr
    assert "bump [project] version in pyproject.toml" in done.stderr


def test_a_tag_that_only_the_remote_has_is_refused_too(repos: Repos) -> None:
    assert repos.release().returncode == 0
    repos.git("tag", "--delete", "v1.0.0")
    done = repos.release()
    assert done.returncode == 1
    assert "tag v1.0.0 exists already on origin" in done.stderr


def test_a_dirty_tree_is_refused(repos: Repos) -> None:
    (repos.work / "CHANGELOG.md").write_text("## 1.0.0\n\nedited\n", encoding="utf-8")
    done = repos.release()
    assert done.returncode == 1
    assert "uncommitted changes" in done.stderr
    assert "commit or stash them" in done.stderr
    assert repos.remote_tags() == []


def test_an_untracked_file_makes_the_tree_dirty(repos: Repos) -> None:
    (repos.work / "stray.txt").write_text("x\n", encoding="utf-8")
    done = repos.release()
    assert done.returncode == 1
    assert "uncommitted changes" in done.stderr


def test_a_changelog_without_the_versions_heading_is_refused(repos: Repos) -> None:
    repos.set_version("1.0.1")
    repos.commit_all("1.0.1 without a changelog section")
    done = repos.release()
    assert done.returncode == 1
    assert "CHANGELOG.md has no '## 1.0.1' section" in done.stderr
    assert repos.remote_tags() == []


def test_a_patch_release_moves_the_major_tag_and_keeps_the_old_one(repos: Repos) -> None:
    assert repos.release().returncode == 0
    first = repos.head()
    repos.set_version("1.0.1")
    repos.add_changelog_section("1.0.1")
    repos.commit_all("1.0.1")
    second = repos.head()
    assert second != first

    done = repos.release()
    assert done.returncode == 0, done.stderr
    assert repos.remote_tag("v1.0.1") == second
    assert repos.remote_tag("v1") == second
    assert repos.remote_tag("v1.0.0") == first


def test_a_version_that_is_not_x_y_z_is_refused(repos: Repos) -> None:
    repos.set_version("1.1.0rc1")
    repos.commit_all("a pre-release")
    done = repos.release()
    assert done.returncode == 1
    assert "is not X.Y.Z" in done.stderr
    assert repos.remote_tags() == []


def write_executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def test_without_the_skip_the_checks_run_and_a_failing_one_stops_the_release(
    repos: Repos,
) -> None:
    write_executable(repos.work / "scripts" / "test.sh", "echo test.sh ran >&2\nexit 3\n")
    repos.commit_all("a failing check")
    done = repos.release(skip_checks=False)
    assert done.returncode == 3
    assert "test.sh ran" in done.stderr
    assert repos.remote_tags() == []
    assert repos.git("tag", "--list") == ""


def test_without_the_skip_both_checks_run_before_the_tags(repos: Repos, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    write_executable(repos.work / "scripts" / "test.sh", f'echo "test.sh $*" >> {calls}\n')
    repos.commit_all("a passing check")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in `nix` first on PATH: real Nix would need the project and nixpkgs.
    write_executable(bin_dir / "nix", f'#!/bin/sh\necho "nix $*" >> {calls}\n')
    done = repos.release(skip_checks=False, path=f"{bin_dir}:{repos.env['PATH']}")
    assert done.returncode == 0, done.stderr
    assert calls.read_text(encoding="utf-8").splitlines() == [
        "test.sh ",
        "nix --extra-experimental-features nix-command flakes flake check",
    ]
    assert repos.remote_tag("v1.0.0") == repos.head()
