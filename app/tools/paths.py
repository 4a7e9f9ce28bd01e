"""Safe path resolution inside the workspace root.

Every path a tool touches goes through :meth:`Workspace.resolve`: it is joined to the root,
every symlink on the way is resolved, and the real result must still lie inside the (real)
root. ``..``, absolute paths elsewhere, symlinks pointing out and NUL bytes are refused before
anything is opened. A deny list applies even inside the root: environment files, private keys,
the gateway's own database and metrics files, plus the operator's ``POLICY_FILE_BLOCKED_PATHS``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from pathlib import Path

from app.tools.base import ToolError

# Names refused anywhere in the workspace, matched against every component of the path (a pattern
# with a '/' against the path from the root).
BUILTIN_DENY = (
    ".env", ".env.*", "*.env", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",
    "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "*.db", "*.db-wal", "*.db-shm", "*.sqlite", "*.sqlite3",
    # git runs what these name on the user's machine, outside any sandbox (hooks, core.fsmonitor, …)
    ".git/hooks", ".git/config",
)


class PathRefused(ToolError, ValueError):
    """A path a tool may not touch; the message says why, without leaking outside paths.

    A :class:`ToolError`, so the model sees it as an error result like any other refusal.
    """


def _any_of(patterns: Iterable[str]) -> re.Pattern[str]:
    """One expression matching what any of the shell-style ``patterns`` matches (never, when there are none)."""
    return re.compile("|".join(fnmatch.translate(pattern) for pattern in patterns) or "(?!)")


class Workspace:
    """The directory server-side tools work in, and what they may not touch there."""

    def __init__(self, root: str | os.PathLike[str], *, deny: Iterable[str] = (),
                 protected: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.root = Path(os.path.realpath(root))
        self.deny = (*BUILTIN_DENY, *(pattern.strip("/") for pattern in deny if pattern.strip("/")))
        # a pattern with a '/' names a path from the root (and all below it); one without, any name.
        # Each kind is one regular expression: a crawl of the workspace checks every file.
        self._deny_paths = _any_of(pattern for pattern in self.deny if "/" in pattern)
        self._deny_names = _any_of(pattern for pattern in self.deny if "/" not in pattern)
        self.protected = tuple(Path(os.path.realpath(p)) for p in protected if str(p))

    def resolve(self, path: str, *, allow_root: bool = True) -> Path:
        """The real path of ``path`` (relative to the root, or absolute inside it).

        Raises :class:`PathRefused` when it leaves the root, names a denied file, or is malformed.
        """
        if not isinstance(path, str) or not path.strip():
            raise PathRefused("a path is required")
        if "\0" in path:
            raise PathRefused("a path may not contain NUL bytes")
        candidate = Path(path) if os.path.isabs(path) else self.root / path
        real = Path(os.path.realpath(candidate))
        if real != self.root and not real.is_relative_to(self.root):
            raise PathRefused(f"'{path}' is outside the workspace")
        if real == self.root and not allow_root:
            raise PathRefused("the workspace root itself cannot be used here")
        self.check_allowed(real, shown=path)
        return real

    def check_allowed(self, real: Path, *, shown: str | None = None) -> None:
        """Refuse a resolved path that the deny list or the protected paths cover."""
        shown = shown if shown is not None else self.relative(real)
        for protected in self.protected:
            if real == protected or real.is_relative_to(protected):
                raise PathRefused(f"'{shown}' is protected by the gateway")
        parts = real.relative_to(self.root).parts
        denied = any(self._deny_names.match(name) for name in parts)
        if not denied:
            prefixes = ["/".join(parts[:count]) for count in range(1, len(parts) + 1)]
            denied = any(self._deny_paths.match(prefix) for prefix in prefixes)
        if denied:
            raise PathRefused(f"'{shown}' matches the deny list and cannot be used by tools")

    def allowed(self, real: Path) -> bool:
        """Whether an already resolved path inside the root may be shown or touched."""
        try:
            self.check_allowed(real)
        except PathRefused:
            return False
        return True

    def relative(self, real: Path) -> str:
        """``real`` as the model should see it: relative to the root, with ``/``."""
        try:
            rel = real.relative_to(self.root)
        except ValueError:
            return real.name
        return rel.as_posix() or "."
