"""Offered names (provider-safe, unique, mapped back exactly) and the allow-list."""

from __future__ import annotations

import re

from app.config import Config
from app.mcp.tools import allowed, tool_name

PROVIDER_RULE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def test_a_plain_name_is_prefixed() -> None:
    assert tool_name("fs", "read_file") == "mcp_fs_read_file"


def test_other_characters_become_underscores() -> None:
    assert tool_name("my.server", "files/read v2") == "mcp_my_server_files_read_v2"


def test_a_long_name_is_cut_with_a_hash_and_stays_unique() -> None:
    first = tool_name("s" * 40, "a" * 40)
    second = tool_name("s" * 40, "a" * 39 + "b")
    assert len(first) == 64
    assert PROVIDER_RULE.match(first)
    assert first != second
    assert first[:55] == second[:55]
    assert tool_name("s" * 40, "a" * 40) == first


def test_the_allow_list_narrows_only_the_servers_it_names() -> None:
    config = Config(mcp_tool_allowlist=("fs/read_file", "fs/list_directory", "git/*"))
    assert allowed(config, "fs", "read_file")
    assert not allowed(config, "fs", "write_file")
    assert allowed(config, "git", "commit")
    assert allowed(config, "other", "anything")


def test_disallowed_tools_name_the_offered_name() -> None:
    config = Config(policy_disallowed_tools=("mcp_fs_write_file",))
    assert not allowed(config, "fs", "write_file")
    assert allowed(config, "fs", "read_file")
