"""Finding things in the workspace: which files the tools may see, and ``workspace_search``.

The walk skips dependency and VCS directories, .gitignored paths, denied files and symlinks that
lead out of the root. ``workspace_search`` runs ripgrep (an argv list, never a shell string,
with a timeout) told to skip the same things, and falls back to a Python search over the same
walk when ``rg`` is not installed; both backends visit files in the same order (entries sorted
by name, depth first, as ``rg --sort path``) so they give the same answers, and every hit is
checked against the workspace's deny list before it is shown.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pathspec import GitIgnoreSpec

from app.tools.base import Tool, ToolContext, ToolError, bool_arg, int_arg, str_arg, truncate
from app.tools.paths import Workspace
from app.tools.process import child_env, run_process

SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv"})
MAX_GLOB_ALTERNATIVES = 64
MAX_FILE_BYTES = 10 * 1024 * 1024  # larger files are not searched (ripgrep's --max-filesize)
MAX_LINE_CHARS = 500  # a matching line is shown up to this many characters
MAX_SEARCH_LIMIT = 1000
# run_process keeps the first half of this: room for MAX_SEARCH_LIMIT + 1 lines of 4 KB path and 2 KB text
MAX_RG_OUTPUT_BYTES = 16 * 1024 * 1024
SEARCH_TIMEOUT_S = 30.0
DEFAULT_SEARCH_LIMIT = 100
_BRACES = re.compile(r"\{([^{}]*)\}")


def glob_spec(pattern: str) -> GitIgnoreSpec:
    """A matcher for a glob with .gitignore rules (no ``/``: any depth) and ripgrep's ``{a,b}``."""
    patterns = [pattern]
    while any(_BRACES.search(p) for p in patterns):
        patterns = [alt for p in patterns for alt in _expand_first_braces(p)]
        if len(patterns) > MAX_GLOB_ALTERNATIVES:
            raise ToolError(f"the glob {pattern!r} has too many {{…}} alternatives")
    return GitIgnoreSpec.from_lines(patterns)


def _expand_first_braces(pattern: str) -> list[str]:
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [head + alternative + tail for alternative in match.group(1).split(",")]


class _GitIgnores:
    """The .gitignore files met on a walk; a deeper file's verdict overrides a shallower one's."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.specs: list[tuple[Path, GitIgnoreSpec]] = []

    @classmethod
    def above(cls, root: Path, start: Path) -> _GitIgnores:
        """The rules in force at ``start``; none when ``start`` itself is ignored (asked for by name)."""
        ignores, directory = cls(), root
        for part in start.relative_to(root).parts:
            ignores.load(directory)
            directory = directory / part
            if ignores.ignored(directory, is_dir=True):
                return cls(enabled=False)
        return ignores

    def load(self, directory: Path) -> None:
        """Add ``directory``'s own .gitignore, if it has one (a symlinked one is not read)."""
        path = directory / ".gitignore"
        if not self.enabled or not path.is_file() or path.is_symlink():
            return
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return  # an unreadable .gitignore hides nothing
        self.specs.append((directory, GitIgnoreSpec.from_lines(lines)))

    def ignored(self, path: Path, *, is_dir: bool) -> bool:
        """Whether the .gitignore files loaded so far exclude ``path``."""
        verdict = False
        for base, spec in self.specs:
            if path != base and path.is_relative_to(base):
                relative = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                include = spec.check_file(relative).include
                verdict = verdict if include is None else include
        return verdict


def iter_files(ws: Workspace, start: Path, *, follow_links: bool = True) -> Iterator[Path]:
    """The files under ``start`` (a resolved path in the root) that tools may show.

    Entries come sorted by name, depth first (``rg --sort path`` order). Skips :data:`SKIP_DIRS`,
    .gitignored and denied paths and symlinks leading out of the root (every symlink unless
    ``follow_links``); never descends into a symlinked directory.
    """
    if not start.is_dir():
        if _visible_file(ws, start, follow_links):
            yield start
        return
    ignores = _GitIgnores.above(ws.root, start)
    stack = [_entries(start, ignores)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if _keep_dir(ws, ignores, path):
                stack.append(_entries(path, ignores))
        elif not ignores.ignored(path, is_dir=False) and _visible_file(ws, path, follow_links):
            yield path


def _entries(directory: Path, ignores: _GitIgnores) -> Iterator[os.DirEntry[str]]:
    ignores.load(directory)
    try:
        with os.scandir(directory) as scan:
            return iter(sorted(scan, key=lambda entry: entry.name))
    except OSError:
        return iter(())  # an unreadable directory shows nothing


def _keep_dir(ws: Workspace, ignores: _GitIgnores, path: Path) -> bool:
    return path.name not in SKIP_DIRS and ws.allowed(path) and not ignores.ignored(path, is_dir=True)


def _visible_file(ws: Workspace, path: Path, follow_links: bool) -> bool:
    if not ws.allowed(path):
        return False
    if not path.is_symlink():
        return path.is_file()
    real = Path(os.path.realpath(path))
    return follow_links and real.is_relative_to(ws.root) and real.is_file() and ws.allowed(real)


@dataclass(frozen=True)
class Match:
    """One matching line: its file relative to the root, its 1-based number, and its text."""

    path: str
    line: int
    text: str


@dataclass(frozen=True)
class _Query:
    pattern: str
    base: Path
    glob: str | None
    ignore_case: bool
    limit: int


def search_workspace(ctx: ToolContext, args: dict[str, Any], *, use_ripgrep: bool | None = None) -> str:
    """Run ``workspace_search``: with ripgrep when ``use_ripgrep`` (default: when rg is installed), else Python.

    Raises :class:`ToolError` for a refused path, a bad pattern, a timeout, or a missing rg when asked for.
    """
    query = _query(ctx, args)
    rg = shutil.which("rg") if use_ripgrep is not False else None
    if use_ripgrep is None:
        use_ripgrep = rg is not None
    if not use_ripgrep:
        matches, more = _python_search(ctx.workspace, query)
    elif rg is None:
        raise ToolError("ripgrep (rg) is not installed")
    else:
        matches, more = _ripgrep_search(ctx, query, rg)
    if not matches:
        return f"No matches for '{query.pattern}'"
    lines = [f"{match.path}:{match.line}:{_clip(match.text)}" for match in matches]
    if more:
        lines.append("… [more matches not shown; narrow the pattern, path or glob, or raise limit]")
    return truncate("\n".join(lines), ctx.config.tool_result_max_chars)


def _query(ctx: ToolContext, args: dict[str, Any]) -> _Query:
    pattern = str_arg(args, "pattern", "query", required=True) or ""
    if not pattern:
        raise ToolError("argument 'pattern' is empty")
    shown = str_arg(args, "path") or "."
    base = ctx.workspace.resolve(shown)
    if not base.exists():
        raise ToolError(f"'{shown}' does not exist")
    ignore_case = bool_arg(args, "case_insensitive", "-i")
    limit = min(int_arg(args, "limit", default=DEFAULT_SEARCH_LIMIT, minimum=1) or 1, MAX_SEARCH_LIMIT)
    return _Query(pattern, base, str_arg(args, "glob") or None, ignore_case, limit)


def _python_search(ws: Workspace, query: _Query) -> tuple[list[Match], bool]:
    """Matches in walk order, at most ``limit``, and whether there were more."""
    try:
        regex = re.compile(query.pattern, re.IGNORECASE if query.ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {query.pattern!r}: {exc}") from exc
    wanted = _glob_filter(query.glob) if query.glob and query.base.is_dir() else None
    matches: list[Match] = []
    for path in iter_files(ws, query.base, follow_links=False):  # rg does not follow symlinks either
        shown = ws.relative(path)
        if wanted is not None and not wanted(shown):
            continue
        for number, line in _text_lines(path):
            if regex.search(line):
                matches.append(Match(shown, number, line))
                if len(matches) > query.limit:
                    return matches[:query.limit], True
    return matches, False


def _glob_filter(glob: str) -> Callable[[str], bool]:
    """Whether a root-relative path passes ``glob``, as rg's ``--glob`` (``!`` excludes)."""
    negated = glob.startswith("!")
    spec = glob_spec(glob[1:] if negated else glob)
    return lambda shown: spec.match_file(shown) != negated


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a text file; nothing for a binary, unreadable or too large one."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return
        data = path.read_bytes()
    except OSError:
        return
    if b"\0" in data:
        return
    for number, line in enumerate(io.StringIO(data.decode("utf-8", errors="replace")), 1):
        yield number, line.removesuffix("\n")


def _ripgrep_search(ctx: ToolContext, query: _Query, rg: str) -> tuple[list[Match], bool]:
    """Matches from ripgrep (the executable ``rg``), filtered through the deny list, and whether there were more."""
    ws = ctx.workspace
    result = run_process(_ripgrep_argv(rg, query, ws), cwd=ws.root, env=child_env(ctx.config),
                         timeout_s=SEARCH_TIMEOUT_S, max_output_bytes=MAX_RG_OUTPUT_BYTES)
    if result.timed_out:
        raise ToolError(f"the search took longer than {SEARCH_TIMEOUT_S:.0f} s; narrow the path or glob")
    matches: list[Match] = []
    for raw in result.output.split("\n"):
        match = _parse_ripgrep_line(raw)
        if match is None:
            break  # the end, an error message, or where run_process left out the middle of a long output
        if ws.allowed(ws.root / match.path):
            matches.append(match)
            if len(matches) > query.limit:
                return matches[:query.limit], True
    if not matches and result.exit_code not in (0, 1):
        raise ToolError(f"ripgrep failed: {result.output.strip()[:1000]}")
    return matches, result.truncated


def _ripgrep_argv(rg: str, query: _Query, ws: Workspace) -> list[str]:
    """rg's arguments: only .gitignore files are honoured, hidden files searched, symlinks not followed."""
    argv = [rg, "--no-config", "--no-messages", "--null", "--line-number", "--with-filename", "--no-heading",
            "--color=never", "--hidden", "--no-require-git", "--no-ignore-dot", "--no-ignore-global",
            "--no-ignore-exclude", "--sort=path", f"--max-count={query.limit + 1}",
            f"--max-filesize={MAX_FILE_BYTES}", f"--max-columns={MAX_LINE_CHARS * 4}", "--max-columns-preview"]
    if query.ignore_case:
        argv.append("--ignore-case")
    if query.glob:
        argv += ["--glob", query.glob]
    for pattern in (*sorted(SKIP_DIRS), *ws.deny):
        argv += ["--glob", "!" + pattern]
    argv += ["--regexp", query.pattern, "--"]
    if query.base != ws.root:
        argv.append(ws.relative(query.base))
    return argv


def _parse_ripgrep_line(raw: str) -> Match | None:
    """A ``path NUL line:text`` line of ``rg --null`` output; None for anything else (messages)."""
    path, nul, rest = raw.partition("\0")
    number, colon, text = rest.partition(":")
    if not (nul and colon and number.isdigit()):
        return None
    return Match(path, int(number), text)


def _clip(text: str) -> str:
    text = text.removesuffix("\r")
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + " …"


WORKSPACE_SEARCH = Tool(
    name="workspace_search",
    description=("Search the text of workspace files for a regular expression and list the matching lines as "
                 "path:line:text. Paths are relative to the workspace root; ignored (.gitignore), dependency and "
                 "secret files are not searched."),
    input_schema={"type": "object", "properties": {
        "pattern": {"type": "string", "description": "regular expression to look for"},
        "path": {"type": "string", "description": "file or directory to search, relative to the workspace root; "
                 "default the root"},
        "glob": {"type": "string", "description": "only files matching this glob, e.g. *.py or src/**/*.ts"},
        "case_insensitive": {"type": "boolean", "description": "ignore case; default false"},
        "limit": {"type": "integer", "minimum": 1, "description": f"most matching lines to show; default "
                  f"{DEFAULT_SEARCH_LIMIT}, at most {MAX_SEARCH_LIMIT}"},
    }, "required": ["pattern"]},
    run=search_workspace, duplicates=("Grep",),
)

SEARCH_TOOLS: tuple[Tool, ...] = (WORKSPACE_SEARCH,)
