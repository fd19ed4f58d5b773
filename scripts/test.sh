#!/usr/bin/env bash
# The project's whole check, as CI runs it, on a fresh Debian machine as root: the main job's
# set-up (scripts/setup.sh), then what only the tests need (the three Nix versions and the
# tools of scripts/provision-nix.sh, the checkers in the venv, the GitHub API stand-in), then
# ruff, mypy (strict) and every test tier. Idempotent. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/provision-nix.sh >/dev/null
stamp=.venv/.installed-dev
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" >"$stamp"
fi
bash scripts/provision-node.sh >/dev/null

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -p no:cacheprovider "$@"
