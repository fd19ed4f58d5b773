#!/usr/bin/env bash
# Provision the real browser the browser tier (tests/browser) shows job summaries in:
#   - Debian's Chromium (/usr/bin/chromium) and the colour emoji font for the status marks;
#   - from npm, outside the repository: playwright-core (drives Chromium; it never downloads a
#     browser of its own, and `npx playwright install` must not be run: it fails offline),
#     github-markdown-css (GitHub's own markdown styles) and mermaid 11 (what GitHub draws
#     ```mermaid blocks with).
# Idempotent: a second run with everything in place takes well under a second.
# Prints the directory holding node_modules on its last line.
set -euo pipefail

# playwright-core 1.61.1 is the newest that runs on Node 18 (what Debian bookworm's apt gives a
# bare CI container; 1.62 and later need Node 20); it drives Debian's Chromium 156 here.
PLAYWRIGHT_VERSION=1.61.1
MARKDOWN_CSS_VERSION=5.9.0
MERMAID_VERSION=11.17.2

BROWSER_DIR="${NCA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nix-cache-action}/browser"

installed_version() {
  local manifest="$BROWSER_DIR/node_modules/$1/package.json"
  [ -f "$manifest" ] || return 0
  node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true
}

apt_ready=0
apt_install() {
  if [ "$apt_ready" = 0 ]; then
    apt-get update -q >/dev/null
    apt_ready=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The summary's status marks (✅ ❌ ⚠️ ⚪) are emoji: without a colour font they are boxes.
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "provision: apt-get install ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

if [ "$(installed_version playwright-core)" != "$PLAYWRIGHT_VERSION" ] \
  || [ "$(installed_version github-markdown-css)" != "$MARKDOWN_CSS_VERSION" ] \
  || [ "$(installed_version mermaid)" != "$MERMAID_VERSION" ]; then
  echo "provision: npm install playwright-core $PLAYWRIGHT_VERSION, github-markdown-css" \
    "$MARKDOWN_CSS_VERSION and mermaid $MERMAID_VERSION into $BROWSER_DIR" >&2
  mkdir -p "$BROWSER_DIR"
  # A package.json of our own keeps npm from walking up to some unrelated project's.
  [ -f "$BROWSER_DIR/package.json" ] || echo '{"private": true}' >"$BROWSER_DIR/package.json"
  # playwright-core has no install script that fetches a browser; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD
  # keeps it that way should a later version add one.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$BROWSER_DIR" --save-exact \
    --no-audit --no-fund --loglevel=error \
    "playwright-core@$PLAYWRIGHT_VERSION" "github-markdown-css@$MARKDOWN_CSS_VERSION" \
    "mermaid@$MERMAID_VERSION" >&2
fi
echo "$BROWSER_DIR"
