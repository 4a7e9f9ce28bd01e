"""Sandboxes for model-written commands: bubblewrap on this host, or a docker container.

A sandbox only rewrites an argv: :meth:`Sandbox.wrap` returns the argv that runs the command
confined, and :func:`app.tools.process.run_process` runs that like any other child (clean
environment, timeout, output cap). :func:`detect_sandbox` picks one from the settings.

bubblewrap layout, in mount order (later mounts cover earlier ones):

- ``/`` bound read-only, so compilers, interpreters and libraries work as on the host;
- fresh ``/dev`` and ``/proc`` (the proc of the new PID namespace: the gateway's
  ``/proc/<pid>/environ`` is not there) and a private tmpfs on ``/tmp``, with the gateway's
  own installation (its Python prefix and source tree) bound back read-only when it lives there
  (a checkout and its venv under the system temp directory), so commands see what they would
  see with the checkout anywhere else: the venv's python, a script of the checkout;
- a tmpfs over ``/run``: its Unix sockets (docker, PostgreSQL, D-Bus, ssh and gpg agents) stay
  connectable on a read-only mount and are not behind the network namespace. With network
  allowed, a ``resolv.conf`` that lives there is bound back so DNS works;
- the workspace root bound read-write — the only place a command leaves anything behind;
- the gateway's protected paths hidden: a tmpfs over a directory, ``/dev/null`` over a file
  (and over SQLite's ``-wal``/``-shm``/``-journal`` files beside it, which hold recent rows);
- every namespace unshared (no network unless allowed) and every capability dropped: bwrap
  started by root otherwise keeps them all, and with ``CAP_SYS_ADMIN`` a command could simply
  unmount what hides a protected file;
- ``--die-with-parent`` and ``--new-session`` (no terminal to push keystrokes into). Killing
  bwrap ends its PID namespace, so a timeout takes every process the command started with it.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from app.config import Config

SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
RUNTIME_DIRS = ("/run", "/var/run")  # where daemons keep their sockets; /var/run is usually a link
RESOLV_CONF = "/etc/resolv.conf"
# The sandbox's own /tmp: a fresh tmpfs per run, never the host's, so S108 does not apply.
SANDBOX_TMP = "/tmp"  # noqa: S108
SANDBOX_HOME = SANDBOX_TMP  # private to each sandboxed run, gone when it ends


class Sandbox(Protocol):
    """A way to run an argv confined to the workspace."""

    @property
    def name(self) -> str:
        """The runtime's name, as logs and settings spell it."""
        ...

    def wrap(self, argv: Sequence[str], *, root: Path, cwd: Path | None = None, protected: Sequence[Path] = (),
             allow_network: bool = False, env_names: Sequence[str] = (),
             timeout_s: float | None = None, writable_root: bool = True, keep_stdin: bool = False) -> list[str]:
        """The argv that runs ``argv`` in ``cwd`` (default ``root``) inside the sandbox.

        ``root`` is mounted read-write unless ``writable_root`` is false (an MCP server's default);
        ``keep_stdin`` keeps the command's stdin connected (an MCP server reads its requests there).
        """
        ...


@dataclass(frozen=True)
class Bubblewrap:
    """bubblewrap (``bwrap``): namespaces on this host, no daemon."""

    executable: str
    name: str = "bubblewrap"
    kept_visible: tuple[str, ...] = field(default_factory=lambda: gateway_install())

    def wrap(self, argv: Sequence[str], *, root: Path, cwd: Path | None = None, protected: Sequence[Path] = (),
             allow_network: bool = False, env_names: Sequence[str] = (),
             timeout_s: float | None = None, writable_root: bool = True, keep_stdin: bool = False) -> list[str]:
        """The bwrap argv for ``argv``; the environment is inherited, the timeout is the caller's."""
        args = [self.executable, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", SANDBOX_TMP,
                *under_private_tmp(self.kept_visible), *_runtime_dirs(allow_network),
                "--bind" if writable_root else "--ro-bind", str(root), str(root)]
        for path in git_controls(root):
            args += ["--ro-bind", str(path), str(path)]
        for kind, path in hidden_paths(protected):
            args += ["--tmpfs", str(path)] if kind == "dir" else ["--ro-bind", "/dev/null", str(path)]
        args.append("--unshare-all")
        if allow_network:
            args.append("--share-net")
        args += ["--cap-drop", "ALL", "--die-with-parent", "--new-session", "--chdir", str(cwd or root), "--"]
        return args + list(argv)


@dataclass(frozen=True)
class Docker:
    """A throw-away docker container of ``image``, with the workspace bound at the same path."""

    executable: str
    image: str
    name: str = "docker"

    def wrap(self, argv: Sequence[str], *, root: Path, cwd: Path | None = None, protected: Sequence[Path] = (),
             allow_network: bool = False, env_names: Sequence[str] = (),
             timeout_s: float | None = None, writable_root: bool = True, keep_stdin: bool = False) -> list[str]:
        """The ``docker run`` argv for ``argv``.

        Killing the docker client does not stop its container, so with ``timeout_s`` the command
        runs under ``timeout -s KILL`` inside the container as well.
        """
        args = [self.executable, "run", "--rm", *(["--interactive"] if keep_stdin else []), "--read-only",
                "--cap-drop", "ALL",
                "--security-opt", "no-new-privileges", "--user", f"{os.getuid()}:{os.getgid()}",
                "--tmpfs", SANDBOX_TMP,
                "--mount", f"type=bind,source={root},target={root}" + ("" if writable_root else ",readonly"),
                "--workdir", str(cwd or root)]
        if not allow_network:
            args += ["--network", "none"]
        for path in git_controls(root):
            if path.is_relative_to(root):  # a link out of the workspace points where nothing is mounted
                args += ["--mount", f"type=bind,source={path},target={path},readonly"]
        inside = [path for path in protected if path.is_relative_to(root)]  # nothing else is mounted
        for kind, path in hidden_paths(inside):
            args += (["--tmpfs", str(path)] if kind == "dir"
                     else ["--mount", f"type=bind,source=/dev/null,target={path},readonly"])
        for name in env_names:
            args += ["--env", name]  # the value comes from the docker client's own environment
        args.append(self.image)
        if timeout_s is not None:
            args += ["timeout", "-s", "KILL", str(math.ceil(timeout_s))]
        return args + list(argv)


def gateway_install() -> tuple[str, ...]:
    """Where the gateway itself lives: its Python prefixes and the directory holding the ``app`` package."""
    return sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parents[2])


def under_private_tmp(paths: Sequence[str]) -> list[str]:
    """Read-only binds for those of ``paths`` the sandbox's fresh ``/tmp`` would hide."""
    args: list[str] = []
    for path in dict.fromkeys(os.path.realpath(p) for p in paths):
        if path.startswith(SANDBOX_TMP + "/"):
            args += ["--ro-bind", path, path]
    return args


def _runtime_dirs(allow_network: bool) -> list[str]:
    """bwrap mounts hiding the daemons' socket directories (keeping DNS when network is allowed)."""
    args: list[str] = []
    for directory in RUNTIME_DIRS:
        if os.path.isdir(directory) and not os.path.islink(directory):
            args += ["--tmpfs", directory]
    resolv = os.path.realpath(RESOLV_CONF)
    if allow_network and resolv.startswith(tuple(d + "/" for d in RUNTIME_DIRS)) and os.path.isfile(resolv):
        args += ["--ro-bind", resolv, resolv]
    return args


def hidden_paths(protected: Sequence[Path]) -> Iterator[tuple[str, Path]]:
    """``("dir" | "file", path)`` for each existing protected path and its SQLite side files."""
    for path in protected:
        if path.is_dir():
            yield "dir", path
            continue
        for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDECARS)):
            if candidate.exists():
                yield "file", candidate


def detect_sandbox(config: Config, which: Callable[[str], str | None] = shutil.which) -> Sandbox | None:
    """The sandbox the settings ask for, or ``None`` when it is disabled or not installed."""
    if not config.sandbox_enabled:
        return None
    if config.sandbox_runtime == "docker":
        docker = which("docker")
        return Docker(docker, config.sandbox_image) if docker and config.sandbox_image else None
    bwrap = which("bwrap")
    return Bubblewrap(bwrap) if bwrap else None


def unavailable_reason(config: Config) -> str:
    """A sentence saying why :func:`detect_sandbox` found no sandbox, and what to set."""
    if not config.sandbox_enabled:
        return "the sandbox is turned off (MCP_SANDBOX_ENABLED=false)"
    if config.sandbox_runtime == "docker":
        return "MCP_SANDBOX_RUNTIME=docker but no docker client is installed or MCP_SANDBOX_IMAGE is unset"
    return "bubblewrap (bwrap) is not installed; install it or set MCP_SANDBOX_RUNTIME=docker"


def git_controls(root: Path) -> list[Path]:
    """The workspace repository's hooks directory and config, to be mounted read-only.

    A sandboxed command may commit, but must not plant a hook or a config command
    (``core.fsmonitor``, ``core.hooksPath``) that git would later run on the host. The hooks
    directory is created first when missing, so there is something to mount over.
    """
    git_dir = root / ".git"
    if not git_dir.is_dir():
        return []
    hooks = git_dir / "hooks"
    if not hooks.exists() and not hooks.is_symlink():
        hooks.mkdir()
    # Symlinks are followed: it is the file or directory git reads that must not change.
    return [path.resolve() for path in (hooks, git_dir / "config") if path.exists()]
