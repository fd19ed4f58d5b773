#!/usr/bin/env bash
# Provision the three real Nix versions the tests run against, without touching the
# system Nix's store:
#   - Nix 2.8 from Debian stable (apt package nix-bin, installed system-wide);
#   - Nix 2.34 from Debian's unstable suite, unpacked into a prefix of its own and
#     started through the prefix's dynamic loader (see shared harness notes);
#   - Determinate Nix 3.22.2 (what DeterminateSystems/nix-installer-action installs on GitHub),
#     built from its public source: unpacked from shared/tools/determinate-nix into /opt/detnix
#     (its ELF interpreter and rpath are absolute paths there). Without that tarball, the recipe
#     beside it (build-all.sh) makes one; it needs network access to the source and takes about
#     15 minutes, so this script does not run it.
# Idempotent: a second run with everything in place takes about a second.
# Prints the directory holding the `nix` wrapper for 2.34 on its last line.
set -euo pipefail

PREFIX_ROOT="${NCA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nix-cache-action}"
SID_PREFIX="$PREFIX_ROOT/nix-sid"
WRAPPER_DIR="$SID_PREFIX/wrapper"

apt_ready=0
apt_install() {
  if [ "$apt_ready" = 0 ]; then
    apt-get update -q >/dev/null
    apt_ready=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# Tools from the system's own suite.
missing=()
command -v nix >/dev/null || missing+=(nix-bin)
command -v jq >/dev/null || missing+=(jq)
command -v xz >/dev/null || missing+=(xz-utils)
command -v diffoscope >/dev/null || missing+=(diffoscope-minimal)
command -v /usr/bin/time >/dev/null || missing+=(time)
# The tests build in Nix's sandbox, where busybox is the builders' /bin/sh (sandbox-paths).
[ -x /bin/busybox ] || missing+=(busybox-static)
# A real remote builder on 127.0.0.1 for the tests: sshd in front of the system's Nix.
command -v /usr/sbin/sshd >/dev/null || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "provision: apt-get install ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

# Nix from the unstable suite, into its own prefix.
if [ ! -x "$SID_PREFIX/root/usr/bin/nix" ]; then
  echo "provision: unpacking Nix from Debian's unstable suite into $SID_PREFIX" >&2
  rm -rf "$SID_PREFIX"
  work="$SID_PREFIX/apt"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$SID_PREFIX/root" "$WRAPPER_DIR"
  # Same mirror as the system's own apt configuration; only the suite differs.
  uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "provision: no Debian mirror found in the apt configuration" >&2; exit 1; }
  echo "deb $uri sid main" >"$work/sources.list"
  opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
        -o "Dir::State::status=/dev/null" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -q >/dev/null
  # The dependency closure, less the base system (perl, debconf, login tools) that the
  # nix binary itself does not load.
  mapfile -t pkgs < <(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests \
      --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends nix-bin \
    | grep -v '^[ <]' | sort -u \
    | grep -Ev '^(perl.*|libperl.*|.*-perl|debconf|cdebconf|libdebconfclient0|libdebian-installer4|base-passwd|passwd|login.defs|debianutils|libpam.*|libnewt.*|libslang2|libtextwrap1|readline-common|dpkg|coreutils|libsemanage.*|libsepol2|libaudit.*|libcap-ng0|libdb5.3t64|libgdbm.*)$')
  (cd "$work/cache/archives" && apt-get "${opts[@]}" download "${pkgs[@]}" >/dev/null)
  for deb in "$work"/cache/archives/*.deb; do
    dpkg -x "$deb" "$SID_PREFIX/root"
  done
  rm -rf "$work"
fi
# The wrapper is written on every run, so that a change to it reaches existing prefixes.
root="$SID_PREFIX/root"
wrapper=$(cat <<WRAP
#!/bin/sh
# Nix from Debian's unstable suite, run through its own loader and libraries.
# Started this way it cannot re-exec itself as the build hook: the hook is off unless the
# caller names one (\`build-hook = <this wrapper> __build-remote\` for remote builders).
case "\${NIX_CONFIG:-}" in
  *build-hook*) ;;
  *) NIX_CONFIG="\${NIX_CONFIG:-}
build-hook = "
     export NIX_CONFIG ;;
esac
exec "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \\
  --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" \\
  "$root/usr/bin/nix" "\$@"
WRAP
)
if [ "$(cat "$WRAPPER_DIR/nix" 2>/dev/null)" != "$wrapper" ]; then
  mkdir -p "$WRAPPER_DIR"
  printf '%s\n' "$wrapper" >"$WRAPPER_DIR/nix"
  chmod +x "$WRAPPER_DIR/nix"
  "$WRAPPER_DIR/nix" --version >&2
fi
# Determinate Nix, from the shared tools beside this checkout.
DETNIX=/opt/detnix
if ! "$DETNIX/bin/nix" --version >/dev/null 2>&1; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  tarball="${NCA_DETNIX_TARBALL:-$here/../shared/tools/determinate-nix/detnix-3.22.2.tar.xz}"
  if [ -f "$tarball" ]; then
    echo "provision: unpacking Determinate Nix from $tarball into $DETNIX" >&2
    rm -rf "$DETNIX"
    tar -xJf "$tarball" -C "$(dirname "$DETNIX")"
    "$DETNIX/bin/nix" --version >&2
  elif [ "${NCA_WITHOUT_DETERMINATE:-0}" = 1 ]; then
    # Where the shared tools are not beside the checkout (GitHub's own runners): said once,
    # and the real-Nix tier skips its Determinate cases.
    echo "provision: no Determinate Nix ($tarball not found); NCA_WITHOUT_DETERMINATE=1" >&2
  else
    echo "provision: $tarball not found: Determinate Nix 3.22.2 cannot be provisioned." >&2
    echo "provision: build it with shared/tools/determinate-nix/build-all.sh (network access to" \
      "its source, about 15 minutes), set NCA_DETNIX_TARBALL to the tarball, or set" \
      "NCA_WITHOUT_DETERMINATE=1 to run without it" >&2
    exit 1
  fi
fi
echo "$WRAPPER_DIR"
