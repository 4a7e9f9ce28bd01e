"""Local git operations on the workspace's repository, through dulwich.

The repository is the workspace root itself (a root inside a larger repository is refused: its
``.git`` lies outside what the tools may touch). Every path the model names goes through
:meth:`~app.tools.paths.Workspace.resolve`; files on the deny list are never staged, and their
hunks are left out of every diff, so a secret never reaches a commit or a tool result through
these tools. No hook runs (not even post-commit): it would execute outside any sandbox.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dulwich import porcelain
from dulwich.errors import NotGitRepository, RefFormatError
from dulwich.index import IndexEntry
from dulwich.objects import Commit, ObjectID, Tree
from dulwich.objectspec import parse_commit
from dulwich.refs import Ref
from dulwich.repo import Repo

from app.tools.base import ToolError
from app.tools.paths import Workspace

_DIFF_FILE = re.compile(rb"^diff --git a/(.*?) b/", re.MULTILINE)
_BRANCH = re.compile(r"[\w.+/-]+")
_ANCESTRY = re.compile(r"(.+?)((?:[~^]\d*)+)")
_STEP = re.compile(r"([~^])(\d*)")


class GitError(ToolError):
    """A git operation failed or was refused; the message says why."""


@dataclass
class Status:
    """The repository's state: the branch, staged changes by kind, unstaged and untracked paths."""

    branch: str | None
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unstaged: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)

    @property
    def staged(self) -> list[str]:
        """Every path with a staged change."""
        return sorted({*self.added, *self.modified, *self.deleted})

    def changed(self) -> list[str]:
        """Every path that differs from HEAD (staged, unstaged or untracked)."""
        return sorted({*self.staged, *self.unstaged, *self.untracked})


@contextmanager
def open_repo(workspace: Workspace) -> Iterator[Repo]:
    """The repository at the workspace root, closed afterwards; :class:`GitError` when there is none."""
    try:
        repo = Repo(str(workspace.root))
    except NotGitRepository as exc:
        raise GitError("the workspace root is not a git repository") from exc
    repo.hooks.clear()  # dulwich would run .git/hooks scripts on the host, outside any sandbox
    try:
        yield repo
    finally:
        repo.close()


def current_branch(repo: Repo) -> str | None:
    """The checked-out branch's short name, or None on a detached HEAD."""
    try:
        return porcelain.active_branch(repo).decode("utf-8", errors="replace")
    except (KeyError, IndexError, ValueError):
        return None


def status(workspace: Workspace, repo: Repo) -> Status:
    """The repository's status, leaving out denied paths."""
    # every untracked file by name: a folder shown whole could hide a denied file inside it
    raw = porcelain.status(repo, untracked_files="all")

    def shown(paths: Sequence[bytes | str]) -> list[str]:
        names = (path.decode("utf-8", errors="replace") if isinstance(path, bytes) else path for path in paths)
        return sorted(name for name in names if workspace.allowed(workspace.root / name))

    return Status(current_branch(repo), shown(raw.staged["add"]), shown(raw.staged["modify"]),
                  shown(raw.staged["delete"]), shown(raw.unstaged), shown(raw.untracked))


def describe_status(state: Status) -> str:
    """``git status``-like text."""
    lines = [f"On branch {state.branch}" if state.branch else "HEAD detached"]
    staged = [*(f"  added: {p}" for p in state.added), *(f"  modified: {p}" for p in state.modified),
              *(f"  deleted: {p}" for p in state.deleted)]
    for title, entries in (("Staged (will be committed):", staged),
                           ("Not staged:", [f"  {p}" for p in state.unstaged]),
                           ("Untracked:", [f"  {p}" for p in state.untracked])):
        if entries:
            lines += [title, *entries]
    if not state.changed():
        lines.append("Nothing to commit, working tree clean.")
    return "\n".join(lines)


def relative_paths(workspace: Workspace, names: Sequence[str]) -> list[str]:
    """The model's paths as repository paths; refused when outside the root, denied, or in ``.git``."""
    paths = []
    for name in names:
        relative = workspace.relative(workspace.resolve(name, allow_root=False))
        if relative == ".git" or relative.startswith(".git/"):
            raise GitError(f"'{name}' is inside .git; stage work-tree files only")
        paths.append(relative)
    return paths


def diff(workspace: Workspace, repo: Repo, *, staged: bool = False, base: str | None = None,
         target: str | None = None, paths: Sequence[str] = ()) -> str:
    """A unified diff: the working tree against the index, the index against HEAD (``staged``), or
    ``base`` against ``target`` (or against the working tree when only ``base`` is given)."""
    buffer = io.BytesIO()
    porcelain.diff(repo, commit=resolve(repo, base) if base else None,
                   commit2=resolve(repo, target) if target else None, staged=staged, paths=list(paths) or None,
                   outstream=buffer)
    return _without_denied(workspace, buffer.getvalue()).decode("utf-8", errors="replace")


def _without_denied(workspace: Workspace, patch: bytes) -> bytes:
    starts = [match.start() for match in _DIFF_FILE.finditer(patch)]
    kept = [patch[:starts[0]] if starts else patch]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(patch)
        match = _DIFF_FILE.match(patch, start)
        name = match.group(1).decode("utf-8", errors="replace") if match else ""
        if workspace.allowed(workspace.root / name):
            kept.append(patch[start:end])
    return b"".join(kept)


def stage(workspace: Workspace, repo: Repo, paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Stage ``paths`` (repository paths of files, deletions included); returns those staged and those
    left out because .gitignore covers them."""
    _, ignored = porcelain.add(repo, [str(workspace.root / path) for path in paths])
    skipped = sorted(str(name) for name in ignored)  # repository paths, like ours
    return [path for path in paths if path not in ignored], skipped


def unstage(repo: Repo, paths: Sequence[str]) -> list[str]:
    """Put the index entries of ``paths`` back to HEAD's (leaving the files alone); returns those changed."""
    index = repo.open_index()
    changed = []
    for path in paths:
        key = path.encode("utf-8")
        entry = index[key] if key in index else None  # noqa: SIM401 (dulwich.Index has no get)
        in_head = _head_entry(repo, key)
        if in_head is None:
            if entry is not None:
                del index[key]
                changed.append(path)
            continue
        mode, sha = in_head
        if isinstance(entry, IndexEntry) and entry.sha == sha and entry.mode == mode:
            continue
        # no stat data, so the next status hashes the file instead of trusting a matching mtime
        index[key] = IndexEntry(ctime=(0, 0), mtime=(0, 0), dev=0, ino=0, mode=mode, uid=0, gid=0, size=0, sha=sha)
        changed.append(path)
    index.write()
    return changed


def _head_entry(repo: Repo, path: bytes) -> tuple[int, ObjectID] | None:
    """The mode and blob id of ``path`` in HEAD's tree, or None when HEAD has no such file (or no commit)."""
    try:
        head = repo[repo.head()]
        assert isinstance(head, Commit)
        tree = repo[head.tree]
        assert isinstance(tree, Tree)
        return tree.lookup_path(repo.object_store.__getitem__, path)
    except KeyError:
        return None


def commit(repo: Repo, message: str, author: bytes, *, amend: bool = False) -> bytes:
    """Commit what is staged; returns the new commit's id."""
    try:
        return porcelain.commit(repo, message=message.encode("utf-8"), author=author, committer=author,
                                amend=amend, no_verify=True, env={})
    except (porcelain.Error, ValueError, KeyError) as exc:
        raise GitError(f"commit failed: {exc}") from exc


def identity(repo: Repo, name: str, email: str) -> bytes:
    """``Name <email>`` from the settings, else the repository's ``user.name``/``user.email``."""
    config = repo.get_config_stack()

    def configured(key: bytes) -> str:
        try:
            return config.get((b"user",), key).decode("utf-8", errors="replace")
        except KeyError:
            return ""

    name, email = name or configured(b"name"), email or configured(b"email")
    if not name or not email:
        raise GitError("no commit author: the operator must set GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL, or "
                       "user.name and user.email in the repository's config")
    return f"{name} <{email}>".encode()


def branches(repo: Repo) -> tuple[list[str], list[str]]:
    """Local branch names and remote-tracking ones (``origin/main``), sorted."""
    local = sorted(name.decode("utf-8", errors="replace") for name in repo.refs.keys(base=Ref(b"refs/heads/")))
    remote = sorted(name.decode("utf-8", errors="replace") for name in repo.refs.keys(base=Ref(b"refs/remotes/"))
                    if not name.endswith(b"/HEAD"))
    return local, remote


def check_branch_name(name: str) -> None:
    """Refuse a name that is not a plain branch name (refspecs, options, ``HEAD``, ``..``)."""
    if name == "HEAD" or name.startswith(("-", "/")) or ".." in name or not _BRANCH.fullmatch(name):
        raise GitError(f"'{name}' cannot be a branch name")


def checkout(repo: Repo, branch: str, *, create: bool = False) -> None:
    """Switch to ``branch`` (created from HEAD first when ``create``); refuses to overwrite local changes."""
    check_branch_name(branch)
    try:
        if create:
            porcelain.checkout(repo, "HEAD", new_branch=branch)
        else:
            if not has_ref(repo, f"refs/heads/{branch}"):
                raise GitError(f"no branch named '{branch}' (create it with create: true)")
            porcelain.checkout(repo, branch)
    except porcelain.Error as exc:
        raise GitError(str(exc)) from exc
    except RefFormatError as exc:
        raise GitError(f"'{branch}' is not a valid branch name") from exc
    except (KeyError, ValueError) as exc:
        raise GitError(f"cannot check out '{branch}': {exc}") from exc


def has_ref(repo: Repo, name: str) -> bool:
    """Whether the ref ``name`` (e.g. ``refs/heads/main``) exists."""
    return Ref(name.encode()) in repo.refs.allkeys()


def resolve(repo: Repo, ref: str) -> ObjectID:
    """The commit id ``ref`` names: HEAD, a branch, a tag, a remote-tracking branch or a (short) id,
    with any ``~N`` / ``^N`` ancestry suffixes (``HEAD~2``, ``main^``)."""
    match = _ANCESTRY.fullmatch(ref)
    name, steps = (match.group(1), _STEP.findall(match.group(2))) if match else (ref, [])
    sha = _named(repo, name)
    for kind, count in steps:
        for _ in range(int(count or 1) if kind == "~" else 1):
            found = repo[sha]
            parents = found.parents if isinstance(found, Commit) else []
            index = int(count or 1) - 1 if kind == "^" else 0
            if index >= len(parents):
                raise GitError(f"unknown revision '{ref}': the history is not that deep")
            sha = parents[index]
    return sha


def _named(repo: Repo, ref: str) -> ObjectID:
    for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/remotes/{ref}"):
        if has_ref(repo, candidate):
            return repo.refs[Ref(candidate.encode())]
    try:
        return parse_commit(repo, ref.encode()).id  # a full or abbreviated commit id
    except (KeyError, ValueError, TypeError) as exc:
        if ref == "HEAD":
            raise GitError("the repository has no commits yet") from exc
        raise GitError(f"unknown revision '{ref}'") from exc


@dataclass(frozen=True)
class LogEntry:
    """One commit, as the log shows it."""

    sha: str
    when: datetime
    author: str
    subject: str

    def line(self) -> str:
        """``abc1234 2026-12-07 10:00 Author: subject``."""
        return f"{self.sha[:7]} {self.when:%Y-%m-%d %H:%M} {self.author}: {self.subject}"


def log(repo: Repo, *, limit: int, ref: str | None = None, path: str | None = None) -> list[LogEntry]:
    """Up to ``limit`` commits reachable from ``ref`` (default HEAD), newest first, touching ``path`` if given."""
    include = [resolve(repo, ref) if ref else resolve(repo, "HEAD")]
    walker = repo.get_walker(include=include, max_entries=limit, paths=[path.encode()] if path else None)
    entries = []
    for item in walker:
        found = item.commit
        author = found.author.decode("utf-8", errors="replace").split(" <")[0]
        subject = found.message.decode("utf-8", errors="replace").strip().splitlines()[0] if found.message else ""
        entries.append(LogEntry(found.id.decode(), datetime.fromtimestamp(found.author_time, UTC), author, subject))
    return entries


def last_change(workspace: Workspace, state: Status) -> float:
    """When the working tree last changed, as far as its changed files tell (epoch seconds; 0 when clean).

    A deleted file's time is its directory's last change.
    """
    latest = 0.0
    for path in state.changed():
        target = workspace.root / path
        try:
            latest = max(latest, target.stat().st_mtime)
        except FileNotFoundError:
            parent = target.parent
            while not parent.exists() and parent != workspace.root:
                parent = parent.parent
            latest = max(latest, parent.stat().st_mtime)
    return latest


def short(sha: bytes | str) -> str:
    """The first 7 hex digits of a commit id."""
    return (sha.decode() if isinstance(sha, bytes) else sha)[:7]
