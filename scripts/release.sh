#!/usr/bin/env bash
# Release the version that pyproject.toml names, from the commit checked out (HEAD):
#   1. refuse if the work tree is dirty, CHANGELOG.md has no `## <version>` section, or the tag
#      v<version> exists already (here or on the remote);
#   2. run the project's checks: scripts/test.sh and `nix flake check`;
#   3. create the annotated tag v<version> and move the major tag v<major> (v1 for 1.x.y) to the
#      same commit, then push both: `uses: <org>/nix-cache-action@v1` follows the latest 1.x.y.
#
# Environment:
#   RELEASE_REMOTE       the remote to check and push to (default: origin)
#   RELEASE_SKIP_CHECKS  1 skips step 2. Only for this script's own test
#                        (tests/release/test_release_script.py), which runs it in a throwaway
#                        repository that holds no project to check; a real release runs them.
# The tags are made by the committer identity git is configured with (or GIT_COMMITTER_NAME and
# GIT_COMMITTER_EMAIL).
set -euo pipefail
cd "$(dirname "$0")/.."

remote=${RELEASE_REMOTE:-origin}

fail() {
  echo "release: $*" >&2
  exit 1
}

version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])') \
  || fail "could not read [project] version from pyproject.toml (python3 3.11 or newer reads it)"
# A major tag only makes sense for plain X.Y.Z; a pre-release must not move v<major>.
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] \
  || fail "version '$version' in pyproject.toml is not X.Y.Z; set [project] version to a release number"
major=${version%%.*}
tag=v$version
major_tag=v$major

if [ -n "$(git status --porcelain)" ]; then
  git status --short >&2
  fail "the work tree has uncommitted changes (above); commit or stash them, then run this again"
fi

[ -f CHANGELOG.md ] || fail "CHANGELOG.md is missing; add it with a '## $version' section"
# `## 1.0.0`, `## 1.0.0 - 2026-01-31` or `## [1.0.0] - ...`, as Keep a Changelog writes it.
if ! grep -Eq "^## \[?${version//./\\.}\]?([[:space:]]|$)" CHANGELOG.md; then
  fail "CHANGELOG.md has no '## $version' section; add one that says what changed in $version"
fi

if git rev-parse --quiet --verify "refs/tags/$tag" >/dev/null; then
  fail "tag $tag exists already here; bump [project] version in pyproject.toml (and __version__) for a new release"
fi
status=0
git ls-remote --exit-code --tags "$remote" "refs/tags/$tag" >/dev/null || status=$?
case $status in
  0) fail "tag $tag exists already on $remote; bump [project] version in pyproject.toml (and __version__) for a new release" ;;
  2) ;;  # no such tag on the remote: the version is free
  *) fail "could not list the tags of remote '$remote' (git ls-remote exited $status); check RELEASE_REMOTE and access to it" ;;
esac

if [ "${RELEASE_SKIP_CHECKS:-}" = 1 ]; then
  echo "release: RELEASE_SKIP_CHECKS=1: not running scripts/test.sh and nix flake check" >&2
else
  echo "release: running scripts/test.sh" >&2
  bash scripts/test.sh
  echo "release: running nix flake check" >&2
  nix --extra-experimental-features 'nix-command flakes' flake check
  # The checks must not have changed what is being tagged.
  [ -z "$(git status --porcelain)" ] || fail "the checks left changes in the work tree; the release stops here"
fi

commit=$(git rev-parse HEAD)
git tag --annotate "$tag" --message "nix-cache-action $version" "$commit"
git tag --force --annotate "$major_tag" --message "nix-cache-action $version (latest $major.x)" "$commit"
git push "$remote" "$tag"
git push --force "$remote" "$major_tag"

echo "release: tagged $tag at $commit and pushed it to $remote"
echo "release: moved $major_tag to $commit (force-pushed to $remote)"
