"""How a declared server becomes a transport: its environment, its sandbox, its process.

A stdio server's child gets only its manifest's ``env`` plus an allow-list of the gateway's
environment (``PATH``, ``HOME``, ``LANG`` and ``MCP_SANDBOX_PASSTHROUGH_ENV``); any value equal to
a configured secret is dropped, even when a manifest asks for it. With ``MCP_SANDBOX_ENABLED``
(the default) it runs under the shell tool's sandbox runtime, the workspace read-only unless the
manifest asks for read-write, without network unless the manifest or
``MCP_SANDBOX_ALLOW_NETWORKING`` allows it; with no runtime available the server is refused, never
run unconfined. Unsandboxed, ``setpriv --pdeathsig`` ties the child's life to the gateway's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from app.config import Config
from app.mcp.http import HttpTransport
from app.mcp.manifest import ServerSpec
from app.mcp.stdio import StdioTransport
from app.mcp.transport import Transport
from app.tools.process import child_env
from app.tools.sandbox import detect_sandbox, unavailable_reason

ALWAYS_PASSED = ("PATH", "HOME", "LANG")


class LaunchRefused(Exception):
    """The server may not be started as configured (no sandbox, no workspace); retrying will not help."""


def transport_for(spec: ServerSpec, config: Config, *, environ: Mapping[str, str] | None = None,
                  which: Callable[[str], str | None] = shutil.which) -> Transport:
    """The transport that reaches ``spec``'s server; :class:`LaunchRefused` when it may not run."""
    if spec.transport == "http":
        return HttpTransport(spec.id, spec.url, headers=spec.headers,
                             read_timeout_s=max(config.mcp_call_timeout_ms, config.mcp_startup_timeout_ms) / 1000)
    source = os.environ if environ is None else environ
    env = server_env(spec, config, source)
    root = Path(config.workspace_root).resolve() if config.workspace_root else None
    cwd = _cwd(spec, root)
    argv = [spec.command, *spec.args]
    if not config.sandbox_enabled:
        setpriv = which("setpriv")
        prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        return StdioTransport(spec.id, [*prefix, *argv], env=env, cwd=cwd)
    box = detect_sandbox(config, which)
    if box is None:
        raise LaunchRefused(f"no sandbox to run it in: {unavailable_reason(config)}")
    if root is None:
        raise LaunchRefused("a sandboxed MCP server needs WORKSPACE_ROOT")
    wrapped = box.wrap(argv, root=root, cwd=cwd, protected=protected_paths(config),
                       allow_network=spec.network or config.sandbox_allow_networking, env_names=sorted(env),
                       writable_root=spec.workspace_writable, keep_stdin=True)
    return StdioTransport(spec.id, wrapped, env=env, cwd=root)


def server_env(spec: ServerSpec, config: Config, source: Mapping[str, str]) -> dict[str, str]:
    """The child's whole environment: the allow-list from ``source``, then the manifest's ``env``."""
    passed = {name: source[name] for name in ALWAYS_PASSED if name in source}
    return child_env(config, {**passed, **spec.env}, source=source)


def protected_paths(config: Config) -> list[Path]:
    """The gateway's own files a sandboxed server must not see (as for the shell tool)."""
    return [Path(p).resolve() for p in (config.session_db_path, config.prometheus_multiproc_dir, ".env") if p]


def _cwd(spec: ServerSpec, root: Path | None) -> Path:
    if spec.cwd:
        path = Path(spec.cwd).expanduser()
        return path if path.is_absolute() else (root or spec.source.parent) / path
    return root or spec.source.parent
