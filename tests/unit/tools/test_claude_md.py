"""Lynkr's CLAUDE.md section: only the text between the markers is ever Lynkr's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.tools.claude_md import END, START, SectionWrite, with_section, write_section


def test_a_new_file_holds_just_the_section() -> None:
    assert with_section(b"", "# Summary\n") == START + b"\n# Summary\n" + END + b"\n"


@pytest.mark.parametrize(("original", "gap"), [
    (b"# My notes\nKeep this.", b"\n\n"), (b"# My notes\nKeep this.\n", b"\n"), (b"# My notes\n\n", b""),
])
def test_without_markers_the_section_is_appended_after_every_original_byte(original: bytes, gap: bytes) -> None:
    assert with_section(original, "body") == original + gap + START + b"\nbody\n" + END + b"\n"


def test_between_markers_only_the_section_changes() -> None:
    before = (b"# Mine\r\nhand-written \xe2\x9c\x93 text\r\n" + START + b"\r\nold\r\n" + END
              + b"\r\ntrailing, no newline")
    after = with_section(before, "new\nlines")
    assert after == (b"# Mine\r\nhand-written \xe2\x9c\x93 text\r\n" + START + b"\r\nnew\r\nlines\r\n" + END
                     + b"\r\ntrailing, no newline")


@pytest.mark.parametrize("broken", [START + b"\nno end", b"only end " + END, END + b" then " + START,
                                    START + START + END])
def test_unpaired_or_repeated_markers_are_left_alone(broken: bytes) -> None:
    assert with_section(broken, "body") is None


def test_write_section_writes_only_when_the_section_changes(tmp_path: Path) -> None:
    target = tmp_path / "CLAUDE.md"
    target.write_bytes(b"# Notes\n")
    assert write_section(target, "one") is SectionWrite.WRITTEN
    os.utime(target, (1_000_000, 1_000_000))
    assert write_section(target, "one") is SectionWrite.UNCHANGED
    assert target.stat().st_mtime == 1_000_000
    assert write_section(target, "two") is SectionWrite.WRITTEN
    assert target.read_bytes() == b"# Notes\n\n" + START + b"\ntwo\n" + END + b"\n"
    (tmp_path / "broken.md").write_bytes(START)
    assert write_section(tmp_path / "broken.md", "x") is SectionWrite.MARKERS_BROKEN
    assert write_section(tmp_path / "new.md", "x") is SectionWrite.WRITTEN
