#!/usr/bin/env bash
# Provision the GitHub API stand-in the contract tests run against: Prism (an OpenAPI mock
# server) and GitHub's own OpenAPI description as published for Octokit, both from npm,
# installed outside the repository (their node_modules are about 475 MB).
# Idempotent: a second run with the pinned versions in place takes well under a second.
# Prints the directory holding node_modules on its last line.
set -euo pipefail

# Prism 5.15 and later need Node 24; 5.14.2 is the newest that runs on Node 18.20.1 or later,
# which is what Debian bookworm ships and what the runners' default Node provides.
PRISM_VERSION=5.14.2
OPENAPI_VERSION=23.0.2

NODE_DIR="${NCA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nix-cache-action}/node"

installed_version() {
  local manifest="$NODE_DIR/node_modules/$1/package.json"
  [ -f "$manifest" ] || return 0
  node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "provision: apt-get install nodejs npm" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi

if [ "$(installed_version @stoplight/prism-cli)" != "$PRISM_VERSION" ] \
  || [ "$(installed_version @octokit/openapi)" != "$OPENAPI_VERSION" ] \
  || [ ! -x "$NODE_DIR/node_modules/.bin/prism" ]; then
  echo "provision: npm install Prism $PRISM_VERSION and GitHub's OpenAPI $OPENAPI_VERSION into $NODE_DIR" >&2
  mkdir -p "$NODE_DIR"
  # A package.json of our own keeps npm from walking up to some unrelated project's.
  [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' >"$NODE_DIR/package.json"
  npm install --prefix "$NODE_DIR" --save-exact --no-audit --no-fund --loglevel=error \
    "@stoplight/prism-cli@$PRISM_VERSION" "@octokit/openapi@$OPENAPI_VERSION" >&2
fi
echo "$NODE_DIR"
