#!/usr/bin/env bash
# Set up a fresh Debian machine (as root) to run nix-cache-action from this checkout: Debian's
# Nix, and a venv at .venv with the runtime dependencies from the hash-locked requirements.lock
# and the project itself. Nothing else: what the tests need besides (two more Nix versions, an
# ssh server, the checkers) is provisioned by scripts/test.sh. Idempotent; a second run takes a
# second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

# A bare Debian (a CI container) may lack these; a full machine has them already.
missing=()
command -v git >/dev/null || missing+=(git)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v nix >/dev/null || missing+=(nix-bin)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: ${missing[*]} missing; run this as root, or install them first" >&2
    exit 1
  fi
  echo "setup: apt-get install ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" ca-certificates >/dev/null
fi

# Debian's Nix runs single-user as root here: no build users, no sandbox, flakes enabled.
# Only settings that are not set already are added, so an existing nix.conf keeps its choices.
conf=/etc/nix/nix.conf
if [ -w /etc ] && [ "$(id -u)" = 0 ]; then
  mkdir -p /etc/nix
  touch "$conf"
  # Debian's file has no final newline; appending must not glue two settings together.
  if [ -s "$conf" ] && [ -n "$(tail -c 1 "$conf")" ]; then echo >>"$conf"; fi
  add() { grep -q "^[[:space:]]*$1[[:space:]]*=" "$conf" || echo "$1 = $2" >>"$conf"; }
  add experimental-features "nix-command flakes"
  getent group nixbld >/dev/null || add build-users-group ""
  add sandbox false
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" >"$stamp"
fi
# An editable install leaves the project's own modules uncompiled; where the environment says
# PYTHONDONTWRITEBYTECODE, every start would compile them again (benchmarks/startup.py).
# Compiling once here costs well under a second.
.venv/bin/python -m compileall -q src >/dev/null
echo "setup: ready ($(nix --version), $(.venv/bin/python --version))" >&2
