"""The ``workspace_git_*`` tools and ``workspace_diff``, with the Node Lynkr's argument names.

Aliases are accepted (``paths|path|file``, ``message|msg``, ``branch|ref``, ``branch|name``) and
the first of each is advertised. Commit commits what is staged and says so when nothing is;
push and pull name a configured remote (default ``origin``) and a branch (default the current one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.tools.base import Tool, ToolContext, ToolError, arg, bool_arg, int_arg, str_arg, truncate
from app.tools.git import policy, remote
from app.tools.git.repo import (
    GitError,
    branches,
    checkout,
    commit,
    current_branch,
    describe_status,
    diff,
    identity,
    last_change,
    log,
    open_repo,
    relative_paths,
    short,
    stage,
    status,
    unstage,
)

LOG_DEFAULT = 20
LOG_MAX = 200


def _status(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    with open_repo(ctx.workspace) as repo:
        return describe_status(status(ctx.workspace, repo))


def _diff(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    base, target = str_arg(args, "from", "base"), str_arg(args, "to", "target")
    staged = bool_arg(args, "staged", "cached")
    if target is not None and base is None:
        raise ToolError("argument 'to' needs 'from' as well")
    if staged and base is not None:
        raise ToolError("give either staged or from/to, not both")
    shown = str_arg(args, "path", "file")
    paths = relative_paths(ctx.workspace, [shown]) if shown else []
    with open_repo(ctx.workspace) as repo:
        text = diff(ctx.workspace, repo, staged=staged, base=base, target=target, paths=paths)
    if not text.strip():
        what = "staged changes" if staged else f"differences between {base} and {target or 'the working tree'}" \
            if base else "unstaged changes"
        return f"No {what}" + (f" in {paths[0]}." if paths else ".")
    return truncate(text, ctx.config.tool_result_max_chars)


def _path_list(args: Mapping[str, Any]) -> list[str]:
    value = arg(args, "paths", "path", "file", default=[])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ToolError("argument 'paths' must be a path or a list of paths")
    return value


def _chosen(ctx: ToolContext, args: Mapping[str, Any], candidates: list[str]) -> list[str]:
    """The paths the model names, a directory standing for the ``candidates`` under it (``all``: every one).

    Directories are expanded here rather than by git, so a denied file inside one is never included.
    """
    names, everything = _path_list(args), bool_arg(args, "all")
    if not names and not everything:
        raise ToolError("give paths, or all: true")
    if everything:
        return candidates
    chosen: list[str] = []
    for path in relative_paths(ctx.workspace, names):
        if (ctx.workspace.root / path).is_dir():
            chosen += [candidate for candidate in candidates if candidate.startswith(path + "/")]
        else:
            chosen.append(path)
    return sorted(set(chosen))


def _stage(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    with open_repo(ctx.workspace) as repo:
        state = status(ctx.workspace, repo)
        paths = _chosen(ctx, args, sorted({*state.unstaged, *state.untracked}))
        if not paths:
            return "Nothing to stage: the working tree matches the index."
        staged, ignored = stage(ctx.workspace, repo, paths)
    lines = [f"Staged {len(staged)} path{'s' if len(staged) != 1 else ''}: " + (", ".join(staged) or "none")]
    if ignored:
        lines.append("Not staged, ignored by .gitignore: " + ", ".join(ignored))
    return "\n".join(lines)


def _unstage(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    with open_repo(ctx.workspace) as repo:
        paths = _chosen(ctx, args, status(ctx.workspace, repo).staged)
        changed = unstage(repo, paths)
    if not changed:
        return "Nothing to unstage."
    return f"Unstaged {len(changed)} path{'s' if len(changed) != 1 else ''} (the files keep their changes): " + \
        ", ".join(changed)


def _commit(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    message = (str_arg(args, "message", "msg", required=True) or "").strip()
    if not message:
        raise ToolError("argument 'message' is empty")
    amend = bool_arg(args, "amend")
    config = ctx.config
    with open_repo(ctx.workspace) as repo:
        state = status(ctx.workspace, repo)
        if not state.staged and not amend:
            unstaged = len(state.unstaged) + len(state.untracked)
            hint = f" ({unstaged} changed or new files are not staged)" if unstaged else ""
            return f"Nothing is staged, so nothing was committed{hint}. Stage files with workspace_git_stage first."
        policy.check_message(config, message)
        policy.check_tests(config, last_change(ctx.workspace, state))
        author = identity(repo, config.git_author_name, config.git_author_email)
        sha = commit(repo, message, author, amend=amend)
        branch = current_branch(repo) or "detached HEAD"
    verb = "Amended" if amend else "Committed"
    count = len(state.staged)
    return f"{verb} {short(sha)} on {branch}: {message.splitlines()[0]} ({count} file{'s' if count != 1 else ''})"


def _push(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    policy.check_push(ctx.config)
    name = str_arg(args, "remote", default="origin") or "origin"
    branch = str_arg(args, "branch", "ref")
    with open_repo(ctx.workspace) as repo:
        target = remote.find_remote(repo, name)
        remote.check_remote(ctx.config, target)
        return remote.push(ctx.config, repo, target, branch)


def _pull(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    name = str_arg(args, "remote", default="origin") or "origin"
    branch = str_arg(args, "branch", "ref")
    ff_only = bool_arg(args, "ff_only", default=True)
    with open_repo(ctx.workspace) as repo:
        state = status(ctx.workspace, repo)
        if state.staged or state.unstaged:
            raise GitError("the working tree has uncommitted changes to tracked files; commit them (or unstage and "
                           "undo them) before pulling")
        target = remote.find_remote(repo, name)
        remote.check_remote(ctx.config, target)
        return remote.pull(ctx.config, repo, target, branch, ff_only=ff_only)


def _branches(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    with open_repo(ctx.workspace) as repo:
        local, tracking = branches(repo)
        current = current_branch(repo)
    lines = [f"{'*' if name == current else ' '} {name}" for name in local] or ["(no branches yet)"]
    if tracking:
        lines += ["Remote-tracking:", *(f"  {name}" for name in tracking)]
    return "\n".join(lines)


def _checkout(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    branch = (str_arg(args, "branch", "name", required=True) or "").strip()
    if not branch:
        raise ToolError("argument 'branch' is empty")
    create = bool_arg(args, "create")
    with open_repo(ctx.workspace) as repo:
        checkout(repo, branch, create=create)
    return f"Switched to {'a new ' if create else ''}branch '{branch}'."


def _log(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    limit = min(int_arg(args, "limit", "n", "max_count", default=LOG_DEFAULT, minimum=1) or LOG_DEFAULT, LOG_MAX)
    ref = str_arg(args, "ref", "branch")
    shown = str_arg(args, "path", "file")
    path = relative_paths(ctx.workspace, [shown])[0] if shown else None
    with open_repo(ctx.workspace) as repo:
        entries = log(repo, limit=limit, ref=ref, path=path)
    if not entries:
        return "No commits" + (f" touch {path}." if path else ".")
    return "\n".join(entry.line() for entry in entries)


def _schema(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_PATHS = {"type": "array", "items": {"type": "string"}, "description": "files relative to the workspace root"}
_REMOTE = {"type": "string", "description": "a configured remote; default origin"}
_BRANCH = {"type": "string", "description": "the branch; default the current one"}

GIT_TOOLS: tuple[Tool, ...] = (
    Tool("workspace_git_status", "Show the git status of the workspace: branch, staged, unstaged and untracked files.",
         _schema({}), _status),
    Tool("workspace_diff",
         "Show a unified diff: unstaged changes (default), staged changes, or between two revisions (from/to).",
         _schema({"path": {"type": "string", "description": "only this file"},
                  "staged": {"type": "boolean", "description": "the staged changes instead"},
                  "from": {"type": "string", "description": "a revision (branch, tag, commit)"},
                  "to": {"type": "string", "description": "a second revision; default the working tree"}}), _diff),
    Tool("workspace_git_stage", "Stage files for the next commit (deletions too), or every change with all: true.",
         _schema({"paths": _PATHS, "all": {"type": "boolean"}}), _stage),
    Tool("workspace_git_unstage", "Unstage files (their changes stay in the working tree), or everything with all.",
         _schema({"paths": _PATHS, "all": {"type": "boolean"}}), _unstage),
    Tool("workspace_git_commit", "Commit what is staged with a message (amend: replace the last commit).",
         _schema({"message": {"type": "string", "minLength": 1}, "amend": {"type": "boolean"}}, "message"), _commit),
    Tool("workspace_git_push", "Push a branch to a configured remote (if the gateway's policy allows pushing).",
         _schema({"remote": _REMOTE, "branch": _BRANCH}), _push),
    Tool("workspace_git_pull", "Pull a branch from a configured remote into the current branch, fast-forward only "
         "unless ff_only is false.",
         _schema({"remote": _REMOTE, "branch": _BRANCH, "ff_only": {"type": "boolean", "default": True}}), _pull),
    Tool("workspace_git_branches", "List local and remote-tracking branches; * marks the current one.",
         _schema({}), _branches),
    Tool("workspace_git_checkout", "Switch to a branch, or create it from HEAD with create: true.",
         _schema({"branch": {"type": "string", "minLength": 1}, "create": {"type": "boolean"}}, "branch"), _checkout),
    Tool("workspace_git_log", "Show recent commits, newest first: id, date, author and subject.",
         _schema({"limit": {"type": "integer", "minimum": 1, "maximum": LOG_MAX, "default": LOG_DEFAULT},
                  "ref": {"type": "string", "description": "start from this branch, tag or commit; default HEAD"},
                  "path": {"type": "string", "description": "only commits touching this file"}}), _log),
)
