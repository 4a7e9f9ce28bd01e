"""Pushing and pulling: which remote, whether it may be reached, and with which credentials.

The model names a remote configured in the repository (never a URL). Its host is vetted like a
``web_fetch`` target: every address it resolves to must be public unless
``WEB_FETCH_ALLOW_PRIVATE`` is on, and it must be in ``WEB_SEARCH_ALLOWED_HOSTS`` when that is set.
A remote that is a path on this machine is the user's own configuration and is allowed.
Credentials come from the settings only (``GIT_HTTP_TOKEN`` for http(s), ``GIT_SSH_KEY_PATH``
for ssh); whatever dulwich reports is passed through :func:`redact` before anyone sees it.
"""

from __future__ import annotations

import io
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from dulwich import porcelain
from dulwich.errors import GitProtocolError, HangupException
from dulwich.repo import Repo

from app.config import Config
from app.tools.git.repo import GitError, check_branch_name, current_branch, has_ref, resolve
from app.tools.netguard import BlockedURLError, Resolver, URLGuard

_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(\[[^\]]+\]|[^:/\s]+):(?!//)")
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
DEFAULT_PORTS = {"ssh": 22, "git": 9418, "http": 80, "https": 443}


class RemoteRefused(GitError):
    """The remote may not be reached from this gateway; the message says why."""


@dataclass(frozen=True)
class Remote:
    """A configured remote: its name and URL."""

    name: str
    url: str


def find_remote(repo: Repo, name: str) -> Remote:
    """The remote called ``name`` in the repository's config; :class:`GitError` when there is none."""
    config = repo.get_config()
    try:
        url = config.get((b"remote", name.encode()), b"url").decode("utf-8", errors="replace")
    except KeyError:
        names = sorted(section[1].decode() for section in config.sections()
                       if len(section) == 2 and section[0] == b"remote")
        raise GitError(f"no remote named '{name}' (configured: {', '.join(names) or 'none'})") from None
    return Remote(name, url)


def network_host(url: str) -> tuple[str, int] | None:
    """The host and port a remote URL connects to, or None for a path on this machine."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in DEFAULT_PORTS or scheme.startswith(("git+", "ssh+")):
        try:
            port = parts.port
        except ValueError as exc:
            raise RemoteRefused(f"the remote URL {redact(url)} has an invalid port") from exc
        return (parts.hostname or "").rstrip("."), port or DEFAULT_PORTS.get(scheme.split("+")[-1], 22)
    if scheme in ("", "file") or len(scheme) == 1:  # a path (a one-letter scheme is a Windows drive)
        scp = _SCP_LIKE.match(url) if scheme == "" else None
        return (scp.group(1).strip("[]"), 22) if scp else None
    raise RemoteRefused(f"the remote URL scheme '{scheme}' is not supported")


def check_remote(config: Config, remote: Remote, resolver: Resolver = socket.getaddrinfo) -> None:
    """Refuse a remote whose host is not public (unless allowed) or not among the allowed hosts."""
    target = network_host(remote.url)
    if target is None:
        return
    host, port = target
    if not host:
        raise RemoteRefused(f"remote '{remote.name}' has no host in its URL")
    guard = URLGuard.from_config(config, resolver)
    try:
        guard.check(f"https://{'[' + host + ']' if ':' in host else host}:{port}/")
    except BlockedURLError as exc:
        detail = str(exc).split(": ", 1)[-1].removesuffix("; web_fetch only reaches public addresses")
        raise RemoteRefused(f"refused to reach remote '{remote.name}' ({host}): {detail}. Git remotes, like web_fetch "
                            "targets, must be public hosts unless the operator allows more (WEB_FETCH_ALLOW_PRIVATE, "
                            "WEB_SEARCH_ALLOWED_HOSTS)") from exc


@dataclass(frozen=True)
class Credentials:
    """What dulwich is given to authenticate: a user name and token, or an ssh key file."""

    username: str | None = None
    password: str | None = None
    key_filename: str | None = None


def credentials(config: Config, remote: Remote) -> Credentials:
    """The operator's credentials for ``remote`` (none for a local path or an unconfigured kind)."""
    scheme = urlsplit(remote.url).scheme.lower()
    if scheme in ("http", "https"):
        return Credentials(config.git_http_username, config.git_http_token) if config.git_http_token else Credentials()
    if scheme != "git" and network_host(remote.url) is not None and config.git_ssh_key_path:
        return Credentials(key_filename=config.git_ssh_key_path)
    return Credentials()


def redact(text: str, config: Config | None = None) -> str:
    """``text`` without credentials in URLs, nor the configured token anywhere."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    if config is not None and config.git_http_token:
        text = text.replace(config.git_http_token, "***")
    return text


def push(config: Config, repo: Repo, remote: Remote, branch: str | None) -> str:
    """Push ``branch`` (default: the current one) to ``remote``; returns what happened."""
    branch = branch or current_branch(repo)
    if branch is None:
        raise GitError("HEAD is detached; name the branch to push")
    check_branch_name(branch)
    if not has_ref(repo, f"refs/heads/{branch}"):
        raise GitError(f"no local branch named '{branch}'")
    ref = f"refs/heads/{branch}"
    try:
        auth = credentials(config, remote)
        result = porcelain.push(repo, remote.url, f"{ref}:{ref}", outstream=io.BytesIO(), errstream=io.BytesIO(),
                                env={}, username=auth.username, password=auth.password,
                                key_filename=auth.key_filename)
    except (porcelain.Error, GitProtocolError, HangupException, OSError, KeyError, ValueError) as exc:
        raise GitError(redact(f"push to '{remote.name}' failed: {exc}", config)) from exc
    rejected = {name.decode(): reason for name, reason in (result.ref_status or {}).items() if reason}
    if rejected:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in rejected.items())
        raise GitError(redact(f"the remote '{remote.name}' rejected the push ({reasons}); pull first", config))
    return f"Pushed {branch} ({resolve(repo, ref).decode()[:7]}) to {remote.name}."


def pull(config: Config, repo: Repo, remote: Remote, branch: str | None, *, ff_only: bool = True) -> str:
    """Fetch ``branch`` (default: the current one) from ``remote`` and bring it into the current branch."""
    current = current_branch(repo)
    branch = branch or current
    if branch is None:
        raise GitError("HEAD is detached; name the branch to pull")
    check_branch_name(branch)
    before = resolve(repo, "HEAD") if has_ref(repo, "HEAD") else None
    auth = credentials(config, remote)
    try:
        porcelain.pull(repo, remote.url, f"refs/heads/{branch}", outstream=io.BytesIO(), errstream=io.BytesIO(),
                       ff_only=ff_only, env={}, username=auth.username, password=auth.password,
                       key_filename=auth.key_filename)
    except porcelain.DivergedBranches as exc:
        raise GitError(f"'{branch}' on '{remote.name}' has diverged from the local branch, so it cannot be "
                       "fast-forwarded; pull with ff_only: false to merge") from exc
    except (porcelain.Error, GitProtocolError, HangupException, OSError, KeyError, ValueError) as exc:
        raise GitError(redact(f"pull from '{remote.name}' failed: {exc}", config)) from exc
    after = resolve(repo, "HEAD")
    if after == before:
        return f"Already up to date with {remote.name}/{branch}."
    return f"Updated {current} from {remote.name}/{branch}: {(before or b'').decode()[:7]}..{after.decode()[:7]}."
