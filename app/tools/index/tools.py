"""The code index tools: rebuild it, search symbols, find references, go to a definition.

Argument names are the Node Lynkr's, with its aliases (``query|name|symbol``, ``path|file``,
``line|row``, ``column|col``); the first of each is the one the schema advertises. The query
tools index the workspace first when it never was; ``workspace_index_rebuild`` (and ``lynkr
index``) also write the project summary into ``CLAUDE.md`` unless ``INDEX_WRITE_CLAUDE_MD=false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.tools.base import Tool, ToolContext, ToolError, int_arg, str_arg, truncate
from app.tools.claude_md import SectionWrite, write_section
from app.tools.index.build import Progress, RebuildStats, last_rebuild, rebuild
from app.tools.index.lookup import (
    MATCH_MODES,
    Filters,
    MatchMode,
    find_definitions,
    find_usages,
    search_symbols,
    word_at,
)
from app.tools.paths import PathRefused
from app.tools.summary import summary_markdown

SEARCH_DEFAULT = 20
SEARCH_MAX = 200
USAGES_DEFAULT = 50
USAGES_MAX = 500
FAILURES_SHOWN = 20


def rebuild_workspace(ctx: ToolContext, progress: Progress | None = None) -> tuple[RebuildStats, str]:
    """Rebuild the index, then write the summary into CLAUDE.md; returns the stats and what happened to it."""
    stats = rebuild(ctx.workspace, ctx.config.index_max_file_bytes, progress=progress)
    if not ctx.config.index_write_claude_md:
        return stats, "CLAUDE.md not written (INDEX_WRITE_CLAUDE_MD=false)"
    try:
        target = ctx.workspace.resolve("CLAUDE.md", allow_root=False)
    except PathRefused as exc:
        return stats, f"CLAUDE.md not written: {exc}"
    outcome = write_section(target, summary_markdown(ctx))
    notes = {
        SectionWrite.WRITTEN: "CLAUDE.md: the project summary section was written",
        SectionWrite.UNCHANGED: "CLAUDE.md: the project summary section is up to date",
        SectionWrite.MARKERS_BROKEN: "CLAUDE.md not written: it has an unpaired lynkr:summary marker; fix or "
                                     "remove it by hand",
    }
    return stats, notes[outcome]


def _rebuild(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    stats, note = rebuild_workspace(ctx)
    lines = [stats.line(), note]
    lines += [f"failed: {path}: {reason}" for path, reason in stats.failed[:FAILURES_SHOWN]]
    if len(stats.failed) > FAILURES_SHOWN:
        lines.append(f"… {len(stats.failed) - FAILURES_SHOWN} more files failed")
    return "\n".join(lines)


def _ensure_index(ctx: ToolContext) -> None:
    if last_rebuild(ctx.workspace.root) is None:
        rebuild(ctx.workspace, ctx.config.index_max_file_bytes)


def _relative_path(ctx: ToolContext, args: Mapping[str, Any]) -> str | None:
    shown = str_arg(args, "path", "file")
    if shown is None or not shown.strip():
        return None
    return ctx.workspace.relative(ctx.workspace.resolve(shown))


def _search(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    query = (str_arg(args, "query", "name", "symbol", required=True) or "").strip()
    if not query:
        raise ToolError("argument 'query' is empty")
    match = str_arg(args, "match", default="auto")
    mode: MatchMode | None = next((known for known in MATCH_MODES if known == match), None)
    if mode is None:
        raise ToolError(f"argument 'match' must be one of {', '.join(MATCH_MODES)}")
    filters = Filters(str_arg(args, "kind"), str_arg(args, "language", "lang"), _relative_path(ctx, args))
    limit = min(int_arg(args, "limit", default=SEARCH_DEFAULT, minimum=1) or SEARCH_DEFAULT, SEARCH_MAX)
    _ensure_index(ctx)
    hits = search_symbols(ctx.workspace.root, query, match=mode, filters=filters, limit=limit)
    if not hits:
        return f"No symbols match '{query}'."
    return truncate("\n".join(hit.describe() for hit in hits), ctx.config.tool_result_max_chars)


def _references(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    name = (str_arg(args, "name", "symbol", "query", required=True) or "").strip()
    if not name:
        raise ToolError("argument 'name' is empty")
    path = _relative_path(ctx, args)
    limit = min(int_arg(args, "limit", default=USAGES_DEFAULT, minimum=1) or USAGES_DEFAULT, USAGES_MAX)
    _ensure_index(ctx)
    usages, total = find_usages(ctx.workspace.root, name, path=path, limit=limit)
    if not usages:
        return f"No references to '{name}'" + (f" in {path}." if path else ".")
    lines = [f"{usage.path}:{usage.line}:{usage.column}: {_source_line(ctx, usage.path, usage.line)}"
             for usage in usages]
    if total > len(usages):
        lines.append(f"… {total - len(usages)} more references (raise limit or narrow with path)")
    return truncate("\n".join(lines), ctx.config.tool_result_max_chars)


def _source_line(ctx: ToolContext, path: str, line: int) -> str:
    try:
        text = _line_of(ctx.workspace.resolve(path), line)
    except (PathRefused, OSError):
        return ""
    return (text or "").strip()[:200]


def _definition(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    path = _relative_path(ctx, args)
    line = int_arg(args, "line", "row", minimum=1)
    column = int_arg(args, "column", "col", minimum=1)
    name = str_arg(args, "name", "symbol")
    if name is None:
        if path is None or line is None or column is None:
            raise ToolError("give a name, or a path with line and column")
        name = _name_at(ctx, path, line, column)
    _ensure_index(ctx)
    hits = find_definitions(ctx.workspace.root, name, prefer_path=path)
    if not hits:
        return f"No definition of '{name}' in the index (workspace_index_rebuild refreshes it after changes)."
    return "\n".join(hit.describe() + f": {_source_line(ctx, hit.path, hit.line)}" for hit in hits)


def _name_at(ctx: ToolContext, path: str, line: int, column: int) -> str:
    real: Path = ctx.workspace.resolve(path)
    if not real.is_file():
        raise ToolError(f"'{path}' is not a file")
    text = _line_of(real, line)
    if text is None:
        raise ToolError(f"'{path}' has fewer than {line} lines")
    name = word_at(text, column)
    if name is None:
        raise ToolError(f"no identifier at {path}:{line}:{column}")
    return name


def _line_of(real: Path, line: int) -> str | None:
    with real.open(encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, 1):
            if number == line:
                return text.rstrip("\r\n")
    return None


_PATH = {"type": "string", "description": "a file or directory relative to the workspace root"}

INDEX_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="workspace_index_rebuild",
        description=("Rebuild the workspace's code index (symbols, references, imports; only changed files are "
                     "parsed) and refresh the project summary in CLAUDE.md. Run it after larger changes."),
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        run=_rebuild,
    ),
    Tool(
        name="workspace_symbol_search",
        description=("Find functions, classes, methods, types and other definitions by name in the workspace index: "
                     "exact, prefix or fuzzy (letters in order) match, filtered by kind, language or path."),
        input_schema={"type": "object", "properties": {
            "query": {"type": "string", "minLength": 1, "description": "the name or part of it"},
            "path": _PATH,
            "language": {"type": "string", "description": "e.g. python, typescript, tsx, javascript, go, ruby"},
            "kind": {"type": "string", "description": "e.g. class, function, method, interface, type, variable"},
            "match": {"type": "string", "enum": list(MATCH_MODES), "default": "auto"},
            "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_MAX, "default": SEARCH_DEFAULT},
        }, "required": ["query"]},
        run=_search,
    ),
    Tool(
        name="workspace_symbol_references",
        description=("List where a name is used in the workspace (from the code index), with each line; definition "
                     "sites are not listed."),
        input_schema={"type": "object", "properties": {
            "name": {"type": "string", "minLength": 1, "description": "the exact symbol name"},
            "path": {**_PATH, "description": "only usages in this file or directory"},
            "limit": {"type": "integer", "minimum": 1, "maximum": USAGES_MAX, "default": USAGES_DEFAULT},
        }, "required": ["name"]},
        run=_references,
    ),
    Tool(
        name="workspace_goto_definition",
        description=("Find where a symbol is defined: give its name, or a file with the 1-based line and column of "
                     "a usage."),
        input_schema={"type": "object", "properties": {
            "path": {"type": "string", "description": "the file containing the usage"},
            "line": {"type": "integer", "minimum": 1},
            "column": {"type": "integer", "minimum": 1},
            "name": {"type": "string", "description": "the symbol's name (instead of a position)"},
        }},
        run=_definition,
    ),
)
