#!/usr/bin/env bash
# Re-records the small internal-json logs in this folder from the flake in ./flake, with
# Debian's Nix 2.8 (/usr/bin/nix), Nix 2.34 and Determinate Nix 3.22.2 (V = det3.22, at
# /opt/detnix; both from scripts/provision-nix.sh). Each log is what
# `nix build --log-format internal-json -v ...` wrote on stderr, unchanged.
#   build-V.log      cold build of .#default and .#nondet (4 derivations, no caches)
#   rebuild-V.log    then `--rebuild --keep-failed --keep-going` of both (nondet differs)
#   fail-V.log       `--keep-going .#fails .#default` after that (fails exits 3)
#   substitute-V.log .#default from a binary cache on 127.0.0.1:37515 (Magic Nix Cache's address)
#   cache418-V.log   .#default with a substituter that answers every .narinfo with HTTP 418
#   nar500-V.log     .#default from a copy of that cache whose NARs answer HTTP 500, with
#                    `fallback = true` and 2 download attempts (Nix builds what it cannot fetch)
#   unreachable-V.log .#default with a substituter nothing listens on (connection refused),
#                    2 download attempts
#   cancel-V.log     `--max-jobs 2 .#fails-late .#slow` without --keep-going: Nix stops slow
#   cache429-V.log   .#default with a substituter that answers every .narinfo with HTTP 429,
#                    2 download attempts (Nix 2.29 and later wait a minute or more before
#                    retrying a 429: the default 5 attempts take a quarter of an hour)
#   narinfo500-V.log .#default with a substituter that answers every .narinfo with HTTP 500,
#                    2 download attempts
#   corrupt-V.log    .#default from a copy of the cache whose every NAR has 16 bytes in its
#                    middle overwritten (it no longer decompresses), `fallback = true`, 2 attempts
#   deadgood-V.log   .#default with `substituters = http://127.0.0.1:9 http://127.0.0.1:37515`
#                    (nothing listens on :9; the cache of substitute-V.log on 37515), 2 attempts
#   interrupt-V.log  .#slow (its dependency leaf is there from cancel-V.log), SIGINT to Nix once
#                    the log says "slow started"
#   remote-V.log     `--keep-going .#mid .#fails` of tests/fixtures/flakes/remote (@MARKER@ made
#                    new each time) on a real remote builder: sshd on 127.0.0.1 in front of the
#                    machine's own Nix on /nix/store, `builders = ssh-ng://nca-builder`,
#                    `max-jobs = 0`, a chroot store under /tmp/nca-record
# RECORD_VERSIONS="det3.22" records only the versions it names.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nix34="$(bash "$here/../../scripts/provision-nix.sh" | tail -n 1)/nix"
work=/tmp/nca-record
base_conf=$'experimental-features = nix-command flakes\nsandbox = false\nbuild-users-group = \nnarinfo-cache-negative-ttl = 0\neval-cache = false\nrequire-sigs = false\nconnect-timeout = 2'

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

serve() {  # PORT COMMAND...: COMMAND, a server on 127.0.0.1:PORT, in the background; prints its pid
  # The real-Nix tests use 37515 (Magic Nix Cache's address) too: wait until it is free, and
  # check that the server listening is this one.
  local port=$1 pid; shift
  for _ in $(seq 300); do
    if port_free "$port"; then
      "$@" >/dev/null 2>&1 & pid=$!
      sleep 1
      if kill -0 "$pid" 2>/dev/null && ! port_free "$port"; then echo "$pid"; return; fi
    fi
    sleep 1
  done
  echo "record.sh: port $port stayed busy" >&2; return 1
}

# port code narinfo STOREDIR: nix-cache-info for STOREDIR, every other request answers `code`.
# port code nar CACHEDIR: CACHEDIR's own files, but every NAR answers `code`.
error_server=$(cat <<'PY'
import http.server, sys
port, code, failing, where = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=where if failing == "nar" else None, **kwargs)
    def do_GET(self):
        if failing == "nar" and not self.path.startswith("/nar/"):
            return super().do_GET()
        if failing == "narinfo" and self.path.endswith("nix-cache-info"):
            body = f"StoreDir: {where}\nWantMassQuery: 1\nPriority: 30\n".encode()
            self.send_response(200)
        else:
            body = b"throttled"
            self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
)
serve_error() { serve "$1" python3 -c "$error_server" "$@"; }
serve_dir() { serve "$1" python3 -m http.server "$1" --bind 127.0.0.1 --directory "$2"; }  # PORT DIR

# remote-V.log's builder: sshd on a free port of 127.0.0.1 (as tests/nix/conftest.py's
# remote_builder), reached as nca-builder through an ssh config file of its own.
ssh_dir=/tmp/nca-record-ssh
rm -rf "$ssh_dir"; mkdir -p "$ssh_dir"
for key in client host; do ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/$key"; done
cp "$ssh_dir/client.pub" "$ssh_dir/authorized_keys"
ssh_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$ssh_dir/sshd_config" <<SSHD
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $ssh_dir/host
AuthorizedKeysFile $ssh_dir/authorized_keys
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
SetEnv PATH=/usr/bin:/bin "NIX_CONFIG=substituters ="
SSHD
cat >"$ssh_dir/ssh_config" <<SSH
Host nca-builder
  HostName 127.0.0.1
  Port $ssh_port
  User root
  IdentityFile $ssh_dir/client
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
SSH
mkdir -p /run/sshd  # sshd's privilege separation
/usr/sbin/sshd -D -f "$ssh_dir/sshd_config" -E "$ssh_dir/sshd.log" & sshd=$!
trap 'kill "$sshd" 2>/dev/null || true; wait "$sshd" 2>/dev/null || true; rm -rf "$ssh_dir"' EXIT
for _ in $(seq 100); do port_free "$ssh_port" || break; sleep 0.1; done

for v in ${RECORD_VERSIONS:-2.8 2.34 det3.22}; do
  nix=/usr/bin/nix; [ "$v" = 2.34 ] && nix=$nix34
  conf=$base_conf
  # Unpacked outside its own store layout, Determinate Nix cannot start itself as the build hook.
  [ "$v" = det3.22 ] && nix=/opt/detnix/bin/nix && conf+=$'\nbuild-hook = '

  rm -rf "$work"; mkdir -p "$work"; cp -r "$here/flake" "$work/flake"; cd "$work/flake"
  export NIX_STORE_DIR=$work/store NIX_STATE_DIR=$work/state NIX_LOG_DIR=$work/log XDG_CACHE_HOME=$work/xdg
  export NIX_CONFIG="$conf"$'\nsubstituters = '
  nix_() { "$nix" --extra-experimental-features 'nix-command flakes' "$@"; }
  nix_ build --log-format internal-json -v --no-link .#default .#nondet 2>"$here/build-$v.log"
  nix_ build --log-format internal-json -v --no-link --rebuild --keep-failed --keep-going .#default .#nondet 2>"$here/rebuild-$v.log" || true
  nix_ build --log-format internal-json -v --no-link --keep-going .#fails .#default 2>"$here/fail-$v.log" || true
  nix_ copy --to "file://$work/cache" .#default
  # A consumer with a fresh database: the store files go, the cache brings them back.
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_dir 37515 "$work/cache")
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37515' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/substitute-$v.log"
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_error 37516 418 narinfo "$work/store")
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37516' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/cache418-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_error 37517 500 nar "$work/cache")
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37517\nfallback = true\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/nar500-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_error 37518 429 narinfo "$work/store")
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37518\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/cache429-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_error 37519 500 narinfo "$work/store")
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37519\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/narinfo500-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  # The cache's own files, but 16 bytes in the middle of each NAR overwritten.
  cp -r "$work/cache" "$work/corrupt"
  for nar in "$work/corrupt"/nar/*; do
    size=$(stat -c %s "$nar")
    printf 'corrupt-corrupt!' | dd of="$nar" bs=1 seek=$((size / 2 - 8)) conv=notrunc status=none
  done
  srv=$(serve_dir 37520 "$work/corrupt")
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37520\nfallback = true\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/corrupt-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_dir 37515 "$work/cache")
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:9 http://127.0.0.1:37515\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/deadgood-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:9\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/unreachable-$v.log" || true
  nix_ build --log-format internal-json -v --no-link --max-jobs 2 .#fails-late .#slow \
    2>"$here/cancel-$v.log" || true
  # A script's background job ignores SIGINT; under job control (set -m) Nix gets it.
  set -m
  "$nix" --extra-experimental-features 'nix-command flakes' build --log-format internal-json -v \
    --no-link .#slow 2>"$here/interrupt-$v.log" & pid=$!
  set +m
  for _ in $(seq 300); do grep -q 'slow started' "$here/interrupt-$v.log" && break; sleep 0.1; done
  kill -INT "$pid" || true; wait "$pid" || true

  # The chroot store's directory is /nix/store, the builder's: no NIX_STORE_DIR or NIX_STATE_DIR.
  remote_conf=$base_conf$'\nsubstituters = \n'"store = $work/chroot"
  remote_conf+=$'\nbuilders = ssh-ng://nca-builder x86_64-linux\nmax-jobs = 0'
  # 2.8 finds its own build hook; the unpacked 2.34 and Determinate Nix must be told.
  [ "$v" != 2.8 ] && remote_conf+=$'\n'"build-hook = $nix __build-remote"
  cp -r "$here/../fixtures/flakes/remote" "$work/remote"
  marker=nca-record-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  sed -i "s/@MARKER@/$marker/" "$work/remote/flake.nix"
  # Determinate Nix keeps its ssh master socket under TMPDIR: a short one.
  rm -rf /tmp/nca-record-tmp; mkdir -p /tmp/nca-record-tmp
  (cd "$work/remote" && env -u NIX_STORE_DIR -u NIX_STATE_DIR -u NIX_LOG_DIR \
    NIX_CONFIG="$remote_conf" NIX_SSHOPTS="-F $ssh_dir/ssh_config" TMPDIR=/tmp/nca-record-tmp \
    "$nix" --extra-experimental-features 'nix-command flakes' build --log-format internal-json \
    -v --no-link --keep-going .#mid .#fails 2>"$here/remote-$v.log") || true
  rm -rf /tmp/nca-record-tmp
  cd "$here"
done
rm -rf "$work"
wc -l "$here"/*.log
