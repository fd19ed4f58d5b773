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
# RECORD_VERSIONS="det3.22" records only the versions it names.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nix34="$(bash "$here/../../scripts/provision-nix.sh" | tail -n 1)/nix"
work=/tmp/nca-record
base_conf=$'experimental-features = nix-command flakes\nsandbox = false\nbuild-users-group = \nnarinfo-cache-negative-ttl = 0\neval-cache = false\nrequire-sigs = false\nconnect-timeout = 2'

serve_error() {  # port code narinfo STOREDIR | port code nar CACHEDIR
  # narinfo: nix-cache-info for STOREDIR, every other request answers `code`.
  # nar: CACHEDIR's own files, but every NAR answers `code`.
  python3 - "$@" >/dev/null 2>&1 <<'PY' &
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
  echo $!
}

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
  (cd "$work/cache" && exec python3 -m http.server 37515 --bind 127.0.0.1 >/dev/null 2>&1) & srv=$!
  sleep 1
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37515' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/substitute-$v.log"
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_error 37516 418 narinfo "$work/store"); sleep 1
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37516' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/cache418-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  srv=$(serve_error 37517 500 nar "$work/cache"); sleep 1
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:37517\nfallback = true\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/nar500-$v.log" || true
  kill "$srv"; wait "$srv" 2>/dev/null || true
  rm -rf "$work/store" "$work/state" "$work/xdg"
  NIX_CONFIG="$conf"$'\nsubstituters = http://127.0.0.1:9\ndownload-attempts = 2' \
    nix_ build --log-format internal-json -v --no-link .#default 2>"$here/unreachable-$v.log" || true
  nix_ build --log-format internal-json -v --no-link --max-jobs 2 .#fails-late .#slow \
    2>"$here/cancel-$v.log" || true
  cd "$here"
done
rm -rf "$work"
wc -l "$here"/*.log
