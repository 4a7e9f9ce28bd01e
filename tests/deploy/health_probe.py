"""A stand-in ``/health/live`` on loopback, to run the deployment files' health-check commands against."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Live(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/live" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silent."""


@contextlib.contextmanager
def live_server() -> Iterator[int]:
    """A server answering 200 on ``/health/live``; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Live)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_check(argv: Sequence[str], port: int, cwd: Path) -> int:
    """Run a health-check command with ``PORT=port`` and ``python`` meaning this interpreter."""
    env = {"PORT": str(port), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, timeout=30).returncode
