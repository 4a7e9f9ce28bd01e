"""Writing Lynkr's section of ``CLAUDE.md`` without touching anything else in the file.

Claude Code reads ``CLAUDE.md`` as project memory and people edit it by hand, so Lynkr owns only
the text between :data:`START` and :data:`END`. When both markers are there, what lies between
them is replaced; when neither is, the section is appended; every other byte stays as it was.
A file with only one of the markers, or with them out of order, is left alone.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from app.tools.workspace import commit

START = b"<!-- lynkr:summary:start -->"
END = b"<!-- lynkr:summary:end -->"


class SectionWrite(Enum):
    """What :func:`write_section` did."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"
    MARKERS_BROKEN = "markers broken"


def write_section(path: Path, body: str) -> SectionWrite:
    """Put ``body`` between the markers in the file at ``path`` (created when missing)."""
    original = path.read_bytes() if path.exists() else b""
    updated = with_section(original, body)
    if updated is None:
        return SectionWrite.MARKERS_BROKEN
    if updated == original:
        return SectionWrite.UNCHANGED
    commit([(path, updated)])
    return SectionWrite.WRITTEN


def with_section(original: bytes, body: str) -> bytes | None:
    """``original`` with ``body`` as its marked section; None when the markers are not a pair."""
    newline = b"\r\n" if b"\r\n" in original else b"\n"
    content = newline + body.strip("\n").replace("\n", newline.decode()).encode("utf-8") + newline
    start, end = original.find(START), original.find(END)
    if start == -1 and end == -1:
        if not original:
            return START + content + END + newline
        gap = b"" if original.endswith(newline + newline) else newline if original.endswith(newline) \
            else newline + newline
        return original + gap + START + content + END + newline
    if start == -1 or end == -1 or end < start or original.find(START, start + 1) != -1:
        return None
    return original[:start + len(START)] + content + original[end:]
