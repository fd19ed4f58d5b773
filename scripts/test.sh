#!/usr/bin/env bash
# The project's whole check, as CI runs it: set-up (idempotent), the GitHub API stand-in,
# ruff, mypy (strict) and every test tier (unit, real Nix 2.8 and 2.34, GitHub API contract,
# the action under a real runner). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/provision-node.sh >/dev/null

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -p no:cacheprovider "$@"
