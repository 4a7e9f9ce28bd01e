"""Manifest discovery: both shapes, ${VAR} where written, and a bad manifest skipped with its file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.config import Config
from app.mcp.manifest import ManifestError, ServerSpec, discover, manifest_paths, read_manifest


def write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_the_lynkr_shape_with_servers_and_as_a_bare_array(tmp_path: Path) -> None:
    wrapped = write(tmp_path / "a.json", {"servers": [
        {"id": "git", "command": "git-mcp", "args": ["--repo", "."], "env": {"A": "1"}, "cwd": "sub"},
        {"name": "web", "transport": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"X-K": "v"}},
    ]})
    bare = write(tmp_path / "b.json", [{"id": "x", "command": "x", "sandbox": {"workspace": "read-write",
                                                                               "network": True}}])
    assert read_manifest(wrapped, {}) == [
        ServerSpec("git", "stdio", wrapped, command="git-mcp", args=("--repo", "."), env={"A": "1"}, cwd="sub"),
        ServerSpec("web", "http", wrapped, url="http://127.0.0.1:9/mcp", headers={"X-K": "v"}),
    ]
    assert read_manifest(bare, {}) == [ServerSpec("x", "stdio", bare, command="x", workspace_writable=True,
                                                  network=True)]


def test_the_claude_code_mcp_json_shape(tmp_path: Path) -> None:
    path = write(tmp_path / ".mcp.json", {"mcpServers": {
        "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/w"]},
        "remote": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer t"}},
    }})
    assert read_manifest(path, {}) == [
        ServerSpec("fs", "stdio", path, command="npx", args=("-y", "@modelcontextprotocol/server-filesystem", "/w")),
        ServerSpec("remote", "http", path, url="https://mcp.example.com/mcp", headers={"Authorization": "Bearer t"}),
    ]


def test_variables_are_expanded_only_where_written(tmp_path: Path) -> None:
    path = write(tmp_path / "m.json", {"mcpServers": {"gh": {
        "command": "${TOOLS}/gh-mcp", "args": ["--org=${ORG:-acme}"], "env": {"TOKEN": "${GH_TOKEN}", "PLAIN": "$HOME"},
    }}})
    spec = read_manifest(path, {"TOOLS": "/opt", "GH_TOKEN": "ghp_1", "HOME": "/root", "OTHER": "x"})[0]
    assert (spec.command, spec.args, dict(spec.env)) == ("/opt/gh-mcp", ("--org=acme",),
                                                         {"TOKEN": "ghp_1", "PLAIN": "$HOME"})


@pytest.mark.parametrize(("document", "field", "problem"), [
    ({"mcpServers": {"a": {"command": "x", "env": {"T": "${MISSING}"}}}}, "mcpServers.a.env.T",
     "${MISSING} is not set in the gateway's environment"),
    ({"servers": [{"command": "x"}]}, "servers[0].id", "every server needs an id (or name)"),
    ({"servers": [{"id": "a", "command": 3}]}, "servers[0].command", "must be a string"),
    ({"servers": [{"id": "a", "command": "x", "args": "-v"}]}, "servers[0].args", "must be an array of strings"),
    ({"servers": [{"id": "a", "transport": "sse", "url": "http://h"}]}, "servers[0].transport",
     "'sse' is not supported (stdio or http)"),
    ({"servers": [{"id": "a", "transport": "http", "url": "ftp://h"}]}, "servers[0].url",
     "an http server needs an http:// or https:// url"),
    ({"servers": [{"id": "a", "transport": "stdio"}]}, "servers[0].command", "a stdio server needs a command"),
    ({"servers": [{"id": "a", "command": "x", "sandbox": {"workspace": "rw"}}]}, "servers[0].sandbox.workspace",
     "must be read-only or read-write"),
    ({"mcpServers": ["a"]}, "mcpServers", "must be an object of server name → server"),
    ({"servers": {"a": {}}}, "servers", 'expected {"mcpServers": {...}}, {"servers": [...]} or an array'),
])
def test_a_mistake_names_the_file_and_the_field(tmp_path: Path, document: Any, field: str, problem: str) -> None:
    path = write(tmp_path / "bad.json", document)
    with pytest.raises(ManifestError) as raised:
        read_manifest(path, {})
    assert (raised.value.path, raised.value.where, raised.value.problem) == (path, field, problem)
    assert str(raised.value) == f"{path}: {field}: {problem}"


def test_discovery_reads_every_directory_and_the_extra_file_and_skips_only_the_bad_manifest(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write(one / "a.json", [{"id": "a", "command": "a"}])
    write(one / "b.json", [{"id": "b", "command": 1}])
    (one / "notes.txt").write_text("not a manifest")
    write(two / "c.json", {"mcpServers": {"a": {"command": "again"}, "c": {"command": "c"}}})
    (two / "broken.json").write_text("{not json")
    extra = write(tmp_path / "extra.json", {"servers": [{"id": "d", "command": "d"}]})
    config = Config(mcp_manifest_dirs=f"{one};{tmp_path / 'absent'}:{two}", mcp_server_manifest=str(extra))
    assert manifest_paths(config) == [one / "a.json", one / "b.json", two / "broken.json", two / "c.json", extra]
    found = discover(config, {})
    assert [spec.id for spec in found.servers] == ["a", "c", "d"]
    assert [str(problem) for problem in found.problems] == [
        f"{one / 'b.json'}: [0].command: must be a string",
        f"{two / 'broken.json'}: is not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        f"{two / 'c.json'}: a: server id already declared in {one / 'a.json'}",
    ]


def test_comma_separated_directories_and_a_missing_extra_file(tmp_path: Path) -> None:
    write(tmp_path / "x" / "s.json", [{"id": "s", "command": "s"}])
    config = Config(mcp_manifest_dirs=f"{tmp_path / 'x'},{tmp_path / 'y'}",
                    mcp_server_manifest=str(tmp_path / "no.json"))
    found = discover(config, {})
    assert [spec.id for spec in found.servers] == ["s"]
    assert [problem.where for problem in found.problems] == [""]
    assert str(found.problems[0]).startswith(f"{tmp_path / 'no.json'}: cannot be read (")
