"""A real nginx (Debian's ``nginx``) on loopback, run from a temporary prefix with the shipped site.

:func:`site_for_test` derives a runnable copy of ``deploy/nginx.conf`` (its listen address, its
upstream port and, for the slow-client test, a short ``client_body_timeout``) and refuses when
the shipped file no longer has exactly one of each line it replaces, so the test keeps testing
the shipped file. :func:`main_config` wraps a site in the ``events``/``http`` blocks that
``/etc/nginx/nginx.conf`` provides on a real host, with every path inside the prefix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
SHIPPED_SITE = REPO / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    """The nginx executable; fails (never skips) when it is missing, since ``make test`` installs it."""
    path = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if path is None:
        pytest.fail("nginx is not installed: `make test` installs Debian's nginx (apt-get install nginx)")
    return path


def _replace_once(text: str, old: str, new: str) -> str:
    count = text.count(old)
    assert count == 1, f"deploy/nginx.conf should contain {old!r} exactly once, found {count}"
    return text.replace(old, new)


def site_for_test(listen_port: int, upstream_port: int, *, client_body_timeout: str | None = None) -> str:
    """The shipped site with its listen address and upstream moved to loopback test ports."""
    site = SHIPPED_SITE.read_text()
    site = _replace_once(site, "\n    listen 80;", f"\n    listen 127.0.0.1:{listen_port};")
    site = _replace_once(site, "server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};")
    if client_body_timeout is not None:
        site = _replace_once(site, "\n    client_body_timeout 30s;",
                              f"\n    client_body_timeout {client_body_timeout};")
    return site


def main_config(prefix: Path, site_path: Path) -> str:
    """A main ``nginx.conf`` including ``site_path``, keeping pid, logs and temp files in ``prefix``."""
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                             "uwsgi", "scgi"))
    # As root the workers would switch to "nobody", who cannot enter pytest's private temp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} info;\nworker_processes 1;\n"
            f"events {{ worker_connections 256; }}\n"
            f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n    include {site_path};\n}}\n")


def write_config(prefix: Path, site: str) -> Path:
    """Write ``site`` and a main config around it into ``prefix``; returns the main config's path."""
    prefix.mkdir(parents=True, exist_ok=True)
    site_path = prefix / "lynkr.conf"
    site_path.write_text(site)
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site_path))
    return conf


def check_config(conf: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on ``conf``."""
    prefix = conf.parent
    return subprocess.run([nginx_binary(), "-t", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


@dataclass
class Nginx:
    """A running nginx master and where it writes its error log."""

    proc: subprocess.Popen[bytes]
    port: int
    prefix: Path

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def log(self, name: str) -> str:
        """Everything nginx has written to ``error.log`` or ``access.log`` so far."""
        path = self.prefix / name
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_nginx(prefix: Path, site: str, port: int) -> Iterator[Nginx]:
    """Start nginx in the foreground on ``site``; stops it (SIGQUIT, then SIGKILL) on exit."""
    conf = write_config(prefix, site)
    checked = check_config(conf)
    assert checked.returncode == 0, f"nginx -t failed:\n{checked.stderr}"
    proc = subprocess.Popen([nginx_binary(), "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf),
                             "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    nginx = Nginx(proc, port, prefix)

    def accepting() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    try:
        if not wait_until(accepting, timeout=10, interval=0.05):
            pytest.fail(f"nginx did not listen on {port}:\n{nginx.log('error.log')}")
        yield nginx
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
