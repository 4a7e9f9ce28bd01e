"""``workspace_diff_review`` and ``workspace_release_notes``: the configured model reads the repository's
changes and answers in Markdown.

Both ask the model through :attr:`~app.tools.base.ToolContext.ask_model`, the gateway's own model
call (same routing, fallback and budgets as the request itself); without it they refuse. The diff and
the history go through the git tools' rules first: denied files are left out, and the text sent is
capped at :data:`MAX_INPUT_CHARS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dulwich.objects import Commit
from dulwich.repo import Repo

from app.tools.base import ModelCall, Tool, ToolContext, ToolError, bool_arg, str_arg, truncate
from app.tools.git.repo import diff, open_repo, relative_paths, resolve

MAX_INPUT_CHARS = 60_000
MAX_COMMITS = 500

REVIEW_SYSTEM = ("You are a careful senior engineer reviewing a change. Answer in Markdown with three sections: "
                 "'Risks' (bugs, security and behaviour changes, most serious first), 'Missing tests' (what the "
                 "change needs tested and is not), and 'Notes per file' (one bullet list per changed file). Be "
                 "specific and brief; cite file names and lines from the diff.")
NOTES_SYSTEM = ("You write release notes from a git history. Answer in Markdown: a one-paragraph summary, then "
                "sections 'Features', 'Fixes' and 'Other changes' (leave out empty ones), one bullet per user-visible "
                "change, merging commits that belong together. Do not invent changes the commits do not show.")


def _model(ctx: ToolContext) -> ModelCall:
    if ctx.ask_model is None:
        raise ToolError("this tool needs the gateway's model, which is not available to tools here")
    return ctx.ask_model


def review_diff(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """The model's review of the staged, unstaged or between-revisions diff."""
    ask = _model(ctx)
    base, target = str_arg(args, "from", "base"), str_arg(args, "to", "target")
    staged = bool_arg(args, "staged", "cached")
    shown = str_arg(args, "path", "file")
    paths = relative_paths(ctx.workspace, [shown]) if shown else []
    with open_repo(ctx.workspace) as repo:
        text = diff(ctx.workspace, repo, staged=staged, base=base, target=target, paths=paths)
    if not text.strip():
        return "No changes to review."
    return ask(REVIEW_SYSTEM, "Review this diff:\n\n" + truncate(text, MAX_INPUT_CHARS))


def release_notes(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """Release notes for the commits after ``from`` up to ``to`` (default HEAD), written by the model."""
    ask = _model(ctx)
    base = str_arg(args, "from", "base", "since", required=True) or ""
    target = str_arg(args, "to", "target") or "HEAD"
    with open_repo(ctx.workspace) as repo:
        history = commits_between(repo, base, target)
    if not history:
        return f"No commits between {base} and {target}."
    listing = "\n\n".join(history)
    return ask(NOTES_SYSTEM, f"Commits after {base} up to {target}, newest first:\n\n"
               + truncate(listing, MAX_INPUT_CHARS))


def commits_between(repo: Repo, base: str, target: str) -> list[str]:
    """Each commit reachable from ``target`` but not from ``base``, as ``id author: message``, newest first."""
    walker = repo.get_walker(include=[resolve(repo, target)], exclude=[resolve(repo, base)], max_entries=MAX_COMMITS)
    entries = []
    for item in walker:
        found: Commit = item.commit
        author = found.author.decode("utf-8", errors="replace").split(" <")[0]
        message = found.message.decode("utf-8", errors="replace").strip()
        entries.append(f"{found.id.decode()[:7]} {author}: {message}")
    return entries


REVIEW_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="workspace_diff_review",
        description=("Have the model review a diff (unstaged by default, staged, or between two revisions): risks, "
                     "missing tests and notes per file."),
        input_schema={"type": "object", "properties": {
            "path": {"type": "string", "description": "only this file"},
            "staged": {"type": "boolean", "description": "review the staged changes"},
            "from": {"type": "string", "description": "a revision (branch, tag, commit)"},
            "to": {"type": "string", "description": "a second revision; default the working tree"},
        }},
        run=review_diff,
    ),
    Tool(
        name="workspace_release_notes",
        description="Have the model write release notes for the commits after one revision up to another.",
        input_schema={"type": "object", "properties": {
            "from": {"type": "string", "description": "the previous release (tag, branch or commit)"},
            "to": {"type": "string", "description": "the new release; default HEAD"},
        }, "required": ["from"]},
        run=release_notes,
    ),
)
