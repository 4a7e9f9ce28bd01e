"""Remotes: which host a URL reaches, whether it may, which credentials go with it, and redaction."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from app.config import Config
from app.tools.git.remote import (
    Credentials,
    GitError,
    Remote,
    RemoteRefused,
    check_remote,
    credentials,
    find_remote,
    network_host,
    redact,
)


def resolver(address: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


@pytest.mark.parametrize(("url", "host"), [
    ("https://github.com/o/r.git", ("github.com", 443)), ("http://git.example.com:8080/r", ("git.example.com", 8080)),
    ("ssh://git@github.com/o/r.git", ("github.com", 22)), ("ssh://git@host:2222/r", ("host", 2222)),
    ("git@github.com:o/r.git", ("github.com", 22)), ("git://example.org/r", ("example.org", 9418)),
    ("/srv/git/r.git", None), ("../r.git", None), ("file:///srv/git/r.git", None), ("C:/repos/r", None),
])
def test_the_host_a_remote_url_reaches(url: str, host: tuple[str, int] | None) -> None:
    assert network_host(url) == host


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(RemoteRefused, match="scheme 'ftp' is not supported"):
        network_host("ftp://example.org/r")


def test_private_hosts_are_refused_unless_allowed() -> None:
    remote = Remote("origin", "https://git.internal/r.git")
    with pytest.raises(RemoteRefused, match=r"refused to reach remote 'origin' \(git.internal\): git.internal is a "
                                            r"private address \(10.1.2.3\)\. Git remotes, like web_fetch targets"):
        check_remote(Config(), remote, resolver("10.1.2.3"))
    check_remote(Config(web_fetch_allow_private=True), remote, resolver("10.1.2.3"))
    check_remote(Config(), Remote("origin", "git@github.com:o/r.git"), resolver("140.82.112.3"))
    with pytest.raises(RemoteRefused, match="loopback"):
        check_remote(Config(), Remote("origin", "ssh://127.0.0.1/r"), resolver("127.0.0.1"))
    check_remote(Config(), Remote("origin", "/srv/git/r.git"), resolver("10.0.0.1"))  # a local path


def test_the_allowed_hosts_list_applies_to_remotes_too() -> None:
    config = Config(web_search_allowed_hosts=("github.com",))
    check_remote(config, Remote("origin", "https://github.com/o/r"), resolver("140.82.112.3"))
    with pytest.raises(RemoteRefused, match="not in WEB_SEARCH_ALLOWED_HOSTS"):
        check_remote(config, Remote("origin", "https://gitlab.com/o/r"), resolver("172.65.251.78"))


def test_credentials_come_from_the_settings_by_kind_of_remote() -> None:
    config = Config(git_http_token="tok-123", git_ssh_key_path="/keys/id")
    assert credentials(config, Remote("o", "https://github.com/o/r")) == Credentials("x-access-token", "tok-123")
    assert credentials(config, Remote("o", "git@github.com:o/r.git")) == Credentials(key_filename="/keys/id")
    assert credentials(config, Remote("o", "/srv/r.git")) == Credentials()
    assert credentials(Config(), Remote("o", "https://github.com/o/r")) == Credentials()


def test_redaction_removes_url_credentials_and_the_token() -> None:
    config = Config(git_http_token="tok-123")
    assert redact("failed: https://user:pw@host/r and tok-123 again", config) == \
        "failed: https://***@host/r and *** again"


def test_only_configured_remotes_are_used(git_repo: Path, bare_remote: Path) -> None:
    with Repo(str(git_repo)) as repo:
        assert find_remote(repo, "origin") == Remote("origin", str(bare_remote))
        with pytest.raises(GitError, match=r"no remote named 'https://evil\.example/x' \(configured: origin\)"):
            find_remote(repo, "https://evil.example/x")
