"""Unified diffs, pure: parse a patch into per-file changes and apply hunks to text.

Parsing is ``unidiff``'s; this module adds what applying needs. A hunk is found by its
context and removed lines, first at the line its header names and then at the nearest line
where they all match (models often get the numbers wrong, rarely the text); nothing is
fuzzed beyond that, and line endings are compared without their ``\\r``. Nothing here
touches the disk: the caller decides what to write once every hunk of every file applied.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from unidiff import PatchSet, UnidiffParseError
from unidiff.patch import Hunk, Line, PatchedFile

DEV_NULL = "/dev/null"
_GIT_PREFIX = re.compile(r"^[ab]/")


class PatchError(ValueError):
    """A patch that cannot be read or does not fit the file; the message says where."""


@dataclass(frozen=True)
class FilePatch:
    """The changes a patch makes to one file."""

    path: str  # as written in the patch, without git's a/ and b/ prefixes
    hunks: tuple[Hunk, ...]
    created: bool = False
    deleted: bool = False


def parse_patch(text: str) -> list[FilePatch]:
    """The file changes in unified diff ``text``; raises :class:`PatchError` when malformed."""
    try:
        patch_set = PatchSet(io.StringIO(text))
    except UnidiffParseError as exc:
        raise PatchError(f"the patch is not a valid unified diff: {exc}") from exc
    if not patch_set:
        raise PatchError("the patch has no file changes (expected '--- a/path', '+++ b/path' and '@@' hunks)")
    _check_hunk_ends(list(io.StringIO(text)), patch_set)
    return [_file_patch(patched) for patched in patch_set]


def apply_hunks(original: str, patch: FilePatch) -> str:
    """``original`` with every hunk of ``patch`` applied; raises :class:`PatchError` naming the hunk."""
    lines = _split_lines(original)
    bare = [bare_line(line) for line in lines]
    eol = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    out: list[str] = []
    position = offset = 0
    for number, hunk in enumerate(patch.hunks, 1):
        old = [bare_line(line.value) for line in hunk.source_lines()]
        stated = hunk.source_start if hunk.source_length == 0 else max(hunk.source_start - 1, 0)
        start = _find(bare, old, position, stated + offset)
        if start is None:
            raise PatchError(_mismatch(patch.path, number, hunk, old))
        out.extend(lines[position:start])
        out.extend(_replacement(hunk, lines[start:start + len(old)], eol))
        position = start + len(old)
        offset = start - stated
    out.extend(lines[position:])
    result = _join(out, eol)
    if patch.deleted and result:
        raise PatchError(f"the patch deletes {patch.path} but its hunks do not remove every line")
    return result


def _file_patch(patched: PatchedFile) -> FilePatch:
    source, target = _clean(patched.source_file), _clean(patched.target_file)
    if patched.is_binary_file:
        raise PatchError(f"binary changes to {target or source} cannot be applied")
    if source != DEV_NULL and target != DEV_NULL and source != target:
        raise PatchError(f"renaming {source} to {target} is not supported; patch the file, then move it")
    if source == target == DEV_NULL or not (source or target):
        raise PatchError("a file in the patch has no path")
    return FilePatch(path=target if target != DEV_NULL else source, hunks=tuple(patched),
                     created=source == DEV_NULL, deleted=target == DEV_NULL)


def _clean(name: str | None) -> str:
    name = (name or "").strip()
    if len(name) > 1 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return _GIT_PREFIX.sub("", name, count=1)


def _check_hunk_ends(diff_lines: Sequence[str], patch_set: PatchSet) -> None:
    """Refuse hunks whose header counts fewer lines than follow it.

    unidiff ends a hunk when the header's counts are met and keeps any further ``+``/``-``/`` ``
    lines as free text, so a miscounted hunk would otherwise be applied only in part.
    """
    for patched in patch_set:
        for number, hunk in enumerate(patched, 1):
            last = max((line.diff_line_no or 0 for line in hunk), default=0)
            following = (i for i in range(last, len(diff_lines)) if _significant(diff_lines[i]))
            index = next(following, None)
            if last and index is not None and _is_hunk_body(diff_lines, index):
                raise PatchError(f"hunk {number} of {_clean(patched.target_file)} has more lines than "
                                 f"its header @@ -{hunk.source_start},{hunk.source_length} "
                                 f"+{hunk.target_start},{hunk.target_length} @@ counts; fix the counts")


def _significant(text: str) -> bool:
    return bool(text.strip()) and not text.startswith("\\")


def _is_hunk_body(diff_lines: Sequence[str], index: int) -> bool:
    text = diff_lines[index]
    if text[0] not in "+- " or text.rstrip("\r\n") == "-- ":  # "-- " ends a git format-patch mail
        return False
    next_line = diff_lines[index + 1] if index + 1 < len(diff_lines) else ""
    return not (text.startswith("--- ") and next_line.startswith("+++ "))


def _find(bare: Sequence[str], old: Sequence[str], floor: int, expected: int) -> int | None:
    """The index nearest ``expected`` (not before ``floor``) where ``old`` matches ``bare``."""
    last = len(bare) - len(old)
    if last < floor:
        return None
    expected = min(max(expected, floor), last)
    for distance in range(max(expected - floor, last - expected) + 1):
        for start in (expected - distance, expected + distance):
            if floor <= start <= last and list(bare[start:start + len(old)]) == list(old):
                return start
    return None


def _replacement(hunk: Hunk, matched: Sequence[str], eol: str) -> list[str]:
    """The lines a hunk puts in place of ``matched``: context kept verbatim, additions in ``eol``."""
    out: list[str] = []
    source = iter(matched)
    previous: Line | None = None
    for line in hunk:
        if line.is_context:
            out.append(next(source))
        elif line.is_removed:
            next(source)
        elif line.is_added:
            out.append(bare_line(line.value) + eol)
        elif line.line_type == "\\" and previous is not None and previous.is_added:
            out[-1] = bare_line(out[-1])  # "\ No newline at end of file" after an added line
        previous = line
    return out


def _mismatch(path: str, number: int, hunk: Hunk, old: Sequence[str]) -> str:
    first = next((text for text in old if text.strip()), "")
    where = f"near line {hunk.source_start}" if hunk.source_start else "at the start"
    return (f"hunk {number} of {path} does not match the file: its context and removed lines "
            f"(starting {first!r}) were not found {where} or anywhere after the previous hunk")


def _split_lines(text: str) -> list[str]:
    """``text`` as lines that keep their ``\\n``; only ``\\n`` ends a line."""
    return list(io.StringIO(text))


def bare_line(line: str) -> str:
    """``line`` without its line end (``\\n``, ``\\r\\n`` or a lone ``\\r``)."""
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def _join(lines: Sequence[str], eol: str) -> str:
    """The lines as text, adding ``eol`` to any line but the last that lacks one."""
    fixed = [line if line.endswith("\n") or index == len(lines) - 1 else line + eol
             for index, line in enumerate(lines)]
    return "".join(fixed)
