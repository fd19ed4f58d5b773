"""A binary cache directory served over HTTP on 127.0.0.1: the one static server of the tests,
the benchmarks and the scripts.

Why not `python -m http.server`: its listen backlog is socketserver's default of 5. Nix opens up
to `http-connections` (25) connections at once, the kernel drops the SYNs past the backlog, and
each dropped one is retried after a second. Substituting a 201-path closure from it took 10 to
17 s instead of about 0.5 s, so the server, not Nix, was what a run measured.

In-process (a thread):  with serve(directory) as url: ...
As its own process:     python tests/support/http_cache.py DIRECTORY --port PORT
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

BACKLOG = 128  # above Nix's http-connections default (25), with room for several clients


class CacheServer(http.server.ThreadingHTTPServer):
    request_queue_size = BACKLOG
    daemon_threads = True


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    # Headers and body are separate writes; without TCP_NODELAY a small response can wait for
    # the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its signature
        """Quiet: a line per store path would drown what the caller prints."""


def make_server(directory: Path, port: int = 0) -> CacheServer:
    handler = functools.partial(_QuietFiles, directory=str(directory))
    return CacheServer(("127.0.0.1", port), handler)


@contextlib.contextmanager
def serve(directory: Path, port: int = 0) -> Iterator[str]:
    """`directory` over HTTP for the block's length (a free port unless `port` is given);
    yields its URL."""
    server = make_server(directory, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    make_server(args.directory, args.port).serve_forever()


if __name__ == "__main__":
    main()
