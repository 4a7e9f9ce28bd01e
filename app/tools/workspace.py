"""Workspace file tools: read, write, edit or patch, and list the files under the workspace root.

Every path goes through :meth:`Workspace.resolve` (a refusal becomes a :class:`ToolError`), so
nothing outside the root, no denied file and nothing through a symlink pointing out is opened.
Writes are atomic: the new content goes to a temporary file beside the target, which then
replaces it, so a crash never leaves half a file; a patch stages every file before renaming any.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.tools.base import Tool, ToolContext, ToolError, arg, bool_arg, int_arg, str_arg, truncate
from app.tools.patch import PatchError, apply_hunks, bare_line, parse_patch
from app.tools.search import glob_spec, iter_files

SNIFF_BYTES = 8192  # a NUL byte in this much of a file makes it binary
DEFAULT_LIST_LIMIT = 1000


def check_text_file(real: Path, shown: str) -> None:
    """Refuse a path that is missing, a directory, not a regular file, or binary."""
    _check_regular(real, shown)
    try:
        with real.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise ToolError(f"cannot read '{shown}': {exc.strerror or exc}") from exc
    _refuse_binary(head, shown)


def _check_regular(real: Path, shown: str) -> None:
    try:
        mode = real.stat().st_mode
    except FileNotFoundError as exc:
        raise ToolError(f"'{shown}' does not exist") from exc
    except OSError as exc:
        raise ToolError(f"cannot read '{shown}': {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        raise ToolError(f"'{shown}' is a directory; use workspace_list to see its files")
    if not stat.S_ISREG(mode):
        raise ToolError(f"'{shown}' is not a regular file")


def _refuse_binary(head: bytes, shown: str) -> None:
    if b"\0" in head[:SNIFF_BYTES]:
        raise ToolError(f"'{shown}' is a binary file; these tools handle text only")


# fs_read

def _read(ctx: ToolContext, args: dict[str, Any]) -> str:
    shown = str_arg(args, "path", "file_path", required=True) or ""
    real = ctx.workspace.resolve(shown)
    first = int_arg(args, "offset", "line_start", default=1, minimum=1) or 1
    count = _line_count(args, first)
    check_text_file(real, shown)
    budget = ctx.config.tool_result_max_chars
    with real.open(encoding="utf-8", errors="replace", newline="\n") as handle:
        lines, last_seen, stopped_at = _numbered(handle, first, count, budget)
    if not lines and last_seen == 0:
        return f"{ctx.workspace.relative(real)} is empty"
    if not lines:
        raise ToolError(f"'{shown}' has {last_seen} lines; offset {first} is past the end")
    text = truncate("\n".join(lines), budget)
    if stopped_at is not None:
        text += f"\n… [output limit of {budget} characters reached; read on with offset={stopped_at}]"
    return text


def _line_count(args: Mapping[str, Any], first: int) -> int | None:
    count = int_arg(args, "limit", minimum=1)
    last = int_arg(args, "line_end", minimum=1)
    if count is None and last is not None:
        if last < first:
            raise ToolError(f"line_end {last} is before the first line {first}")
        count = last - first + 1
    return count


def _numbered(lines: Iterable[str], first: int, count: int | None, budget: int
              ) -> tuple[list[str], int, int | None]:
    """``cat -n`` lines from ``first``, stopping after ``count`` lines or once past ``budget`` chars.

    Returns the lines, the last line number read and, when the budget stopped it, the next line.
    """
    out: list[str] = []
    size = number = 0
    for number, line in enumerate(lines, 1):
        if number < first:
            continue
        if count is not None and number >= first + count:
            break
        entry = f"{number:>6}\t{bare_line(line)}"
        if budget and out and size + len(entry) + 1 > budget:
            return out, number, number
        out.append(entry)
        size += len(entry) + 1
    return out, number, None


# fs_write

def _write(ctx: ToolContext, args: dict[str, Any]) -> str:
    shown = str_arg(args, "path", "file_path", required=True) or ""
    content = str_arg(args, "content", required=True) or ""
    real = ctx.workspace.resolve(shown, allow_root=False)
    if real.is_dir():
        raise ToolError(f"'{shown}' is a directory")
    data = content.encode("utf-8")
    commit([(real, data)])
    return f"Wrote {len(data)} bytes to {ctx.workspace.relative(real)}"


def commit(writes: Sequence[tuple[Path, bytes]], deletes: Sequence[Path] = ()) -> None:
    """Write every file atomically: stage each beside its target, then rename them into place.

    Raises :class:`ToolError` when a file cannot be written; when staging fails, no file has changed.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in writes:
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.append((_stage(target, data), target))
        for temporary, target in staged:
            os.replace(temporary, target)
        for path in deletes:
            path.unlink()
    except OSError as exc:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise ToolError(f"could not write {exc.filename or 'the file'}: {exc.strerror or exc}") from exc


def _stage(target: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``target``, with the target's permissions."""
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, mode)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


# edit_patch

def _edit(ctx: ToolContext, args: dict[str, Any]) -> str:
    patch = str_arg(args, "patch", "diff")
    shown = str_arg(args, "path", "file_path", required=patch is None)
    if patch is not None:
        if arg(args, "old_string", "edits") is not None:
            raise ToolError("give either a patch or old_string/new_string edits, not both")
        return _apply_patch(ctx, patch, shown)
    real = ctx.workspace.resolve(shown or "", allow_root=False)
    text = read_text(real, shown or "")
    edits = _edits(args)
    replaced = 0
    for number, (old, new, replace_all) in enumerate(edits, 1):
        label = f"edit {number}: " if len(edits) > 1 else ""
        text, count = _replace(text, old, new, replace_all=replace_all, where=f"{label}'{shown}'")
        replaced += count
    commit([(real, text.encode("utf-8"))])
    plural = "s" if replaced != 1 else ""
    return f"Replaced {replaced} occurrence{plural} in {ctx.workspace.relative(real)}"


def read_text(real: Path, shown: str) -> str:
    """The UTF-8 text of an existing text file; raises :class:`ToolError` otherwise."""
    _check_regular(real, shown)
    try:
        data = real.read_bytes()
    except OSError as exc:
        raise ToolError(f"cannot read '{shown}': {exc.strerror or exc}") from exc
    _refuse_binary(data, shown)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"'{shown}' is not UTF-8 text, so it cannot be edited safely") from exc


def _edits(args: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    items = arg(args, "edits")
    if items is None:
        items = [args]
    elif not isinstance(items, list) or not items or not all(isinstance(i, Mapping) for i in items):
        raise ToolError("argument 'edits' must be a non-empty list of {old_string, new_string} objects")
    return [(str_arg(item, "old_string", required=True) or "", str_arg(item, "new_string", required=True) or "",
             bool_arg(item, "replace_all")) for item in items]


def _replace(text: str, old: str, new: str, *, replace_all: bool, where: str) -> tuple[str, int]:
    """``text`` with ``old`` replaced by ``new``, and how many times it was."""
    if not old:
        raise ToolError(f"{where}: old_string is empty; use fs_write to create or overwrite a file")
    if old == new:
        raise ToolError(f"{where}: old_string and new_string are the same, so there is nothing to change")
    count = text.count(old)
    if count == 0 and "\r\n" in text and "\n" in old and "\r\n" not in old:
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")  # the file has Windows line ends
        count = text.count(old)
    if count == 0:
        raise ToolError(f"{where}: old_string was not found; read the file and copy the text exactly")
    if count > 1 and not replace_all:
        raise ToolError(f"{where}: old_string occurs {count} times; include more surrounding text to make "
                        "it unique, or set replace_all to change every occurrence")
    return text.replace(old, new, -1 if replace_all else 1), count if replace_all else 1


def _apply_patch(ctx: ToolContext, patch: str, path: str | None) -> str:
    if path and not re.search(r"^--- ", patch, re.MULTILINE):
        patch = f"--- a/{path}\n+++ b/{path}\n{patch}"  # bare hunks for the file named by 'path'
    try:
        file_patches = parse_patch(patch)
    except PatchError as exc:
        raise ToolError(str(exc)) from exc
    contents: dict[Path, str | None] = {}
    done: list[str] = []
    for file_patch in file_patches:
        real = ctx.workspace.resolve(file_patch.path, allow_root=False)
        original = _patch_base(real, file_patch.path, file_patch.created, contents)
        try:
            patched = apply_hunks(original, file_patch)  # a deletion too must match the whole file
        except PatchError as exc:
            raise ToolError(f"{exc}; no file was changed") from exc
        contents[real] = None if file_patch.deleted else patched
        verb = "created" if file_patch.created else "deleted" if file_patch.deleted else "modified"
        hunks = len(file_patch.hunks)
        done.append(f"{verb} {ctx.workspace.relative(real)} ({hunks} hunk{'s' if hunks != 1 else ''})")
    commit([(real, text.encode("utf-8")) for real, text in contents.items() if text is not None],
           [real for real, text in contents.items() if text is None])
    return f"Patched {len(contents)} file{'s' if len(contents) != 1 else ''}:\n" + "\n".join(done)


def _patch_base(real: Path, shown: str, created: bool, contents: Mapping[Path, str | None]) -> str:
    """The text a file patch applies to: an earlier patch's result, nothing, or the file."""
    if real in contents:
        earlier = contents[real]
        if earlier is None:
            raise ToolError(f"the patch changes {shown} after deleting it; no file was changed")
        return earlier
    if created:
        if real.exists():
            raise ToolError(f"the patch creates {shown}, which already exists; no file was changed")
        return ""
    return read_text(real, shown)


# workspace_list

def _list(ctx: ToolContext, args: dict[str, Any]) -> str:
    pattern = str_arg(args, "pattern", "glob") or "**/*"
    shown = str_arg(args, "path") or "."
    limit = int_arg(args, "limit", default=DEFAULT_LIST_LIMIT, minimum=1) or DEFAULT_LIST_LIMIT
    base = ctx.workspace.resolve(shown)
    if not base.is_dir():
        raise ToolError(f"'{shown}' is not a directory" if base.exists() else f"'{shown}' does not exist")
    spec = glob_spec(pattern)
    found = sorted(ctx.workspace.relative(path) for path in iter_files(ctx.workspace, base)
                   if spec.match_file(path.relative_to(base).as_posix()))
    if not found:
        return f"No files match '{pattern}' in {ctx.workspace.relative(base)}"
    lines = found[:limit]
    if len(found) > limit:
        lines.append(f"… [{len(found) - limit} more files not shown; narrow the pattern or raise limit]")
    return truncate("\n".join(lines), ctx.config.tool_result_max_chars)


_PATH = {"type": "string", "description": "file path relative to the workspace root"}

FS_READ = Tool(
    name="fs_read",
    description=("Read a text file in the workspace, shown with line numbers like `cat -n`. Paths are relative "
                 "to the workspace root; use offset and limit to read part of a long file."),
    input_schema={"type": "object", "properties": {
        "path": _PATH,
        "offset": {"type": "integer", "minimum": 1, "description": "first line to show (1-based); default 1"},
        "limit": {"type": "integer", "minimum": 1, "description": "how many lines to show; default all"},
    }, "required": ["path"]},
    run=_read, duplicates=("Read",),
)

FS_WRITE = Tool(
    name="fs_write",
    description=("Create or overwrite a file in the workspace with the given content, creating missing parent "
                 "directories. Paths are relative to the workspace root."),
    input_schema={"type": "object", "properties": {
        "path": _PATH, "content": {"type": "string", "description": "the complete new content of the file"},
    }, "required": ["path", "content"]},
    run=_write, duplicates=("Write",),
)

EDIT_PATCH = Tool(
    name="edit_patch",
    description=("Edit workspace files: replace old_string with new_string in the file at path (it must occur "
                 "exactly once unless replace_all), or apply a unified diff given as patch, all or nothing. "
                 "Paths are relative to the workspace root."),
    input_schema={"type": "object", "properties": {
        "path": _PATH,
        "old_string": {"type": "string", "description": "exact text to replace, copied from the file"},
        "new_string": {"type": "string", "description": "the text to put in its place"},
        "replace_all": {"type": "boolean", "description": "replace every occurrence; default false"},
        "edits": {"type": "array", "description": "several replacements in one file, applied in order",
                  "items": {"type": "object", "properties": {
                      "old_string": {"type": "string"}, "new_string": {"type": "string"},
                      "replace_all": {"type": "boolean"}}, "required": ["old_string", "new_string"]}},
        "patch": {"type": "string", "description": "a unified diff (--- a/path, +++ b/path, @@ hunks); "
                  "may change several files and create new ones from /dev/null"},
    }, "required": []},
    run=_edit, duplicates=("Edit", "MultiEdit"),
)

WORKSPACE_LIST = Tool(
    name="workspace_list",
    description=("List the files in the workspace matching a glob such as `**/*.py` or `src/*.ts`, sorted. Paths "
                 "are relative to the workspace root; ignored (.gitignore), dependency and secret files are left "
                 "out."),
    input_schema={"type": "object", "properties": {
        "pattern": {"type": "string", "description": "glob relative to path; without '/' it matches file names "
                    "at any depth; default **/*"},
        "path": {"type": "string", "description": "directory to list, relative to the workspace root; default the "
                 "root"},
        "limit": {"type": "integer", "minimum": 1, "description": f"most files to list; default "
                  f"{DEFAULT_LIST_LIMIT}"},
    }, "required": []},
    run=_list, duplicates=("Glob", "LS"),
)

WORKSPACE_TOOLS: tuple[Tool, ...] = (FS_READ, FS_WRITE, EDIT_PATCH, WORKSPACE_LIST)
