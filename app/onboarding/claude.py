"""``lynkr env`` and ``lynkr claude``: point the Claude Code CLI at this gateway.

:func:`claude_env` is the environment Claude Code needs: the gateway's URL, a key it accepts,
``CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1`` (a retry without streaming would resend a whole
turn), and, when the configured provider's model is not Claude, ``CLAUDE_CODE_AUTO_COMPACT_WINDOW``
set to that model's context window from the capability table, so Claude Code compacts before the
model's window is full rather than at Claude's 200k. ``lynkr claude`` starts ``lynkr serve`` in
the background first when nothing answers at that URL, then runs ``claude`` in its place.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from app.config import Config
from app.providers.capabilities import CapabilityTable
from app.routing import is_claude_model

OPEN_MODE_KEY = "sk-lynkr-local"  # any value works when the gateway has no keys
START_TIMEOUT_S = 30.0
INSTALL_CLAUDE = "npm install -g @anthropic-ai/claude-code"
# Claude Code sends a bearer token instead of x-api-key when this is set: the user's own
# Anthropic token must not go to the gateway, nor override the key chosen here.
DROPPED = ("ANTHROPIC_AUTH_TOKEN",)


class ClaudeNotFound(Exception):
    """No ``claude`` executable on PATH."""


class GatewayDidNotStart(Exception):
    """``lynkr serve`` was started but did not answer in time."""


@dataclass(frozen=True)
class StartedGateway:
    """A ``lynkr serve`` this command started in the background."""

    pid: int
    log_path: Path


def gateway_url(config: Config) -> str:
    """The URL a local client reaches the gateway at (a wildcard bind is reached on loopback)."""
    host = config.host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}"


def client_key(config: Config, explicit: str | None = None) -> str:
    """The key Claude Code sends: ``explicit``, else the first LYNKR_API_KEYS / LYNKR_ADMIN_KEYS key,
    else a placeholder (a gateway without keys takes any)."""
    return explicit or next(iter((*config.api_keys, *config.admin_keys)), OPEN_MODE_KEY)


def compact_window(config: Config, capabilities: CapabilityTable) -> int | None:
    """The context window of the model the configured provider serves, when it is not Claude."""
    from app.providers import build_providers
    from app.providers.base import PROBE_MODEL

    provider = build_providers(config, capabilities)[config.model_provider]
    model = provider.upstream_model(PROBE_MODEL)
    if is_claude_model(model) or "claude" in model.lower():
        return None
    return capabilities.model(model).context_window


def claude_env(config: Config, capabilities: CapabilityTable, key: str | None = None) -> dict[str, str]:
    """The variables Claude Code needs to use this gateway, in the order ``lynkr env`` prints them."""
    env = {"ANTHROPIC_BASE_URL": gateway_url(config), "ANTHROPIC_API_KEY": client_key(config, key),
           "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1"}
    window = compact_window(config, capabilities)
    if window is not None:
        env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] = str(window)
    return env


def shell_exports(env: Mapping[str, str]) -> str:
    """``unset``/``export`` lines for a POSIX shell (``eval "$(lynkr env)"``)."""
    lines = [f"unset {name}" for name in DROPPED]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    return "\n".join(lines) + "\n"


def answering(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers at ``url`` (any status counts)."""
    try:
        requests.get(url + "/health/live", timeout=timeout)
    except requests.RequestException:
        return False
    return True


def start_gateway(url: str, *, timeout: float = START_TIMEOUT_S) -> StartedGateway:
    """Start ``lynkr serve`` in its own session with its output in a log file; wait until it answers.

    Raises :class:`GatewayDidNotStart` (naming the log) when it exits or stays silent.
    """
    handle, log_name = tempfile.mkstemp(prefix="lynkr-serve-", suffix=".log")
    with os.fdopen(handle, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GatewayDidNotStart(f"lynkr serve exited with {proc.returncode}; see {log_name}")
        if answering(url, timeout=1.0):
            return StartedGateway(proc.pid, Path(log_name))
        time.sleep(0.2)
    raise GatewayDidNotStart(f"lynkr serve did not answer at {url} within {timeout:.0f} s; see {log_name}")


def find_claude() -> str:
    """The ``claude`` executable on PATH; raises :class:`ClaudeNotFound`."""
    found = shutil.which("claude")
    if found is None:
        raise ClaudeNotFound(f"the Claude Code CLI is not on PATH; install it with: {INSTALL_CLAUDE}")
    return found


def exec_claude(executable: str, args: Sequence[str], env: Mapping[str, str]) -> None:
    """Replace this process by ``claude ARGS…`` with ``env`` over the current environment."""
    child = {k: v for k, v in os.environ.items() if k not in DROPPED}
    child.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, [executable, *args], child)  # noqa: S606 - the CLI the user asked to run
