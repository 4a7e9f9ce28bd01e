"""MCP server manifests: where they are found, the two shapes they come in, and what they declare.

Every ``*.json`` in ``MCP_MANIFEST_DIRS`` (``;``, ``:`` or ``,`` separated) is read, then
``MCP_SERVER_MANIFEST``. Two shapes are accepted:

- Lynkr's: ``{"servers": [...]}`` or a bare array of ``{id|name, command, args, env, cwd,
  transport, url, headers, sandbox}``;
- Claude Code's ``.mcp.json``: ``{"mcpServers": {name: {command, args, env} | {type: "http",
  url, headers}}}``.

``${VAR}`` (and ``${VAR:-default}``) in a command, argument, env value, cwd, URL or header is
replaced from the gateway's environment — only where a manifest writes it; nothing else of the
gateway's environment reaches a server. ``sandbox: {"workspace": "read-write", "network": true}``
loosens a stdio server's sandbox. A manifest with a mistake is reported by file and field and
skipped as a whole; the others still load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.config import Config

TransportKind = Literal["stdio", "http"]
HTTP_KINDS = {"http", "streamable-http", "streamable_http", "streamableHttp"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SEPARATORS = re.compile(r"[;:,]")


class ManifestError(Exception):
    """A manifest that cannot be used: which file, which field, and what is wrong."""

    def __init__(self, path: Path, where: str, problem: str) -> None:
        super().__init__(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")
        self.path = path
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class ServerSpec:
    """One MCP server as a manifest declares it."""

    id: str
    transport: TransportKind
    source: Path
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    workspace_writable: bool = False
    network: bool = False


@dataclass(frozen=True)
class Discovery:
    """What the manifests declare: the servers, and each manifest that was skipped and why."""

    servers: tuple[ServerSpec, ...]
    problems: tuple[ManifestError, ...]


def manifest_paths(config: Config) -> list[Path]:
    """Every manifest file the settings point at, in the order they are read."""
    paths: list[Path] = []
    for entry in _SEPARATORS.split(config.mcp_manifest_dirs):
        directory = Path(entry.strip()).expanduser() if entry.strip() else None
        if directory is not None and directory.is_dir():
            paths += sorted(p for p in directory.glob("*.json") if p.is_file())
    if config.mcp_server_manifest:
        paths.append(Path(config.mcp_server_manifest).expanduser())
    return paths


def discover(config: Config, environ: Mapping[str, str]) -> Discovery:
    """The servers of every manifest; an invalid manifest is skipped and reported, a repeated id too."""
    servers: dict[str, ServerSpec] = {}
    problems: list[ManifestError] = []
    for path in manifest_paths(config):
        try:
            declared = read_manifest(path, environ)
        except ManifestError as exc:
            problems.append(exc)
            continue
        for spec in declared:
            if spec.id in servers:
                first = servers[spec.id].source
                problems.append(ManifestError(path, spec.id, f"server id already declared in {first}"))
            else:
                servers[spec.id] = spec
    return Discovery(tuple(servers.values()), tuple(problems))


def read_manifest(path: Path, environ: Mapping[str, str]) -> list[ServerSpec]:
    """The servers one manifest file declares; :class:`ManifestError` for any mistake in it."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise ManifestError(path, "", f"cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ManifestError(path, "", f"is not valid JSON ({exc})") from exc
    return [_server(path, where, entry, environ) for where, entry in _entries(path, document)]


def _entries(path: Path, document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(document, dict) and "mcpServers" in document:
        servers = document["mcpServers"]
        if not isinstance(servers, dict):
            raise ManifestError(path, "mcpServers", "must be an object of server name → server")
        for name, entry in servers.items():
            yield f"mcpServers.{name}", {"id": name, **_object(path, f"mcpServers.{name}", entry)}
        return
    if isinstance(document, dict) and "servers" in document:
        document = document["servers"]
        prefix = "servers"
    else:
        prefix = ""
    if not isinstance(document, list):
        raise ManifestError(path, prefix, "expected {\"mcpServers\": {...}}, {\"servers\": [...]} or an array")
    for index, entry in enumerate(document):
        yield f"{prefix}[{index}]", _object(path, f"{prefix}[{index}]", entry)


def _server(path: Path, where: str, entry: dict[str, Any], environ: Mapping[str, str]) -> ServerSpec:
    def text(key: str, default: str = "") -> str:
        value = entry.get(key, default)
        if not isinstance(value, str):
            raise ManifestError(path, f"{where}.{key}", "must be a string")
        return _expand(path, f"{where}.{key}", value, environ)

    def strings(key: str) -> dict[str, str]:
        value = entry.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ManifestError(path, f"{where}.{key}", "must be an object of strings")
        return {k: _expand(path, f"{where}.{key}.{k}", v, environ) for k, v in value.items()}

    server_id = entry.get("id") or entry.get("name")
    if not isinstance(server_id, str) or not server_id.strip():
        raise ManifestError(path, f"{where}.id", "every server needs an id (or name)")
    kind = entry.get("transport", entry.get("type", "stdio" if "command" in entry else "http"))
    if kind not in HTTP_KINDS | {"stdio"}:
        raise ManifestError(path, f"{where}.transport", f"'{kind}' is not supported (stdio or http)")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ManifestError(path, f"{where}.args", "must be an array of strings")
    sandbox = _object(path, f"{where}.sandbox", entry.get("sandbox", {}))
    workspace = sandbox.get("workspace", "read-only")
    if workspace not in {"read-only", "read-write"}:
        raise ManifestError(path, f"{where}.sandbox.workspace", "must be read-only or read-write")
    network = sandbox.get("network", False)
    if not isinstance(network, bool):
        raise ManifestError(path, f"{where}.sandbox.network", "must be true or false")
    spec = ServerSpec(
        id=server_id.strip(), transport="stdio" if kind == "stdio" else "http", source=path,
        command=text("command"),
        args=tuple(_expand(path, f"{where}.args[{i}]", a, environ) for i, a in enumerate(args)),
        env=strings("env"), cwd=text("cwd"), url=text("url"), headers=strings("headers"),
        workspace_writable=workspace == "read-write", network=network)
    if spec.transport == "stdio" and not spec.command:
        raise ManifestError(path, f"{where}.command", "a stdio server needs a command")
    if spec.transport == "http" and not spec.url.startswith(("http://", "https://")):
        raise ManifestError(path, f"{where}.url", "an http server needs an http:// or https:// url")
    return spec


def _expand(path: Path, where: str, value: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ManifestError(path, where, f"${{{name}}} is not set in the gateway's environment")

    return _VARIABLE.sub(replace, value)


def _object(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(path, where, "must be an object")
    return value
