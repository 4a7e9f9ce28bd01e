"""Unified diffs, pure: parsing into file patches and applying hunks to text."""

from __future__ import annotations

import pytest

from app.tools.patch import PatchError, apply_hunks, parse_patch


def apply_one(original: str, diff: str) -> str:
    """Apply a one-file diff to ``original``."""
    (file_patch,) = parse_patch(diff)
    return apply_hunks(original, file_patch)


def test_git_style_patch_over_several_files() -> None:
    diff = ("diff --git a/src/a.py b/src/a.py\nindex 1111111..2222222 100644\n--- a/src/a.py\n+++ b/src/a.py\n"
            "@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 3\n"
            "diff --git a/new.txt b/new.txt\nnew file mode 100644\nindex 0000000..3333333\n--- /dev/null\n"
            "+++ b/new.txt\n@@ -0,0 +1 @@\n+hello\n")
    first, second = parse_patch(diff)
    assert (first.path, first.created, first.deleted, len(first.hunks)) == ("src/a.py", False, False, 1)
    assert (second.path, second.created, second.deleted) == ("new.txt", True, False)
    assert apply_hunks("x = 1\ny = 2\n", first) == "x = 1\ny = 3\n"
    assert apply_hunks("", second) == "hello\n"


def test_plain_diff_paths_and_deletion() -> None:
    (patch,) = parse_patch("--- old/notes.md\t2024-01-01\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n")
    assert (patch.path, patch.deleted) == ("old/notes.md", True)
    assert apply_hunks("bye\n", patch) == ""


def test_deleting_a_file_must_remove_every_line() -> None:
    (patch,) = parse_patch("--- a/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n")
    with pytest.raises(PatchError, match=r"its hunks do not remove every line"):
        apply_hunks("a\nb\n", patch)


def test_two_hunks_apply_in_order() -> None:
    original = "".join(f"line {n}\n" for n in range(1, 11))
    diff = ("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n line 1\n-line 2\n+LINE 2\n line 3\n"
            "@@ -8,3 +8,4 @@\n line 8\n line 9\n+inserted\n line 10\n")
    expected = original.replace("line 2\n", "LINE 2\n").replace("line 9\n", "line 9\ninserted\n")
    assert apply_one(original, diff) == expected


def test_hunk_is_found_when_its_line_numbers_are_off() -> None:
    diff = "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
    assert apply_one("z\nz\nz\na\nb\nc\n", diff) == "z\nz\nz\na\nB\nc\n"


def test_nearest_occurrence_to_the_stated_line_wins() -> None:
    diff = "--- a/f\n+++ b/f\n@@ -5,1 +5,1 @@\n-x\n+y\n"
    assert apply_one("x\n.\n.\n.\nx\n.\n", diff) == "x\n.\n.\n.\ny\n.\n"


def test_context_mismatch_names_the_hunk() -> None:
    diff = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n@@ -3,1 +3,1 @@\n-nope\n+yes\n"
    with pytest.raises(PatchError) as failed:
        apply_one("a\nb\nc\n", diff)
    assert str(failed.value) == ("hunk 2 of f does not match the file: its context and removed lines (starting "
                                 "'nope') were not found near line 3 or anywhere after the previous hunk")


def test_insertion_after_a_line() -> None:
    assert apply_one("a\nb\n", "--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+between\n") == "a\nbetween\nb\n"


def test_no_newline_at_end_of_file_markers() -> None:
    drop = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n\\ No newline at end of file\n"
    assert apply_one("a\nb\n", drop) == "a\nB"
    add = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
    assert apply_one("a\nb", add) == "a\nb\n"


def test_lines_added_after_a_last_line_without_newline_are_separated() -> None:
    assert apply_one("a\nb", "--- a/f\n+++ b/f\n@@ -2 +2,2 @@\n b\n+c\n") == "a\nb\nc\n"


def test_windows_line_endings_are_kept() -> None:
    diff = "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
    assert apply_one("a\r\nb\r\nc\r\n", diff) == "a\r\nB\r\nc\r\n"


def test_removed_line_that_looks_like_a_header() -> None:
    assert apply_one("-- comment\nselect 1;\n", "--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1 @@\n--- comment\n select 1;\n") \
        == "select 1;\n"


def test_hunk_longer_than_its_header_is_refused_not_half_applied() -> None:
    diff = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n-c\n+C\n"
    with pytest.raises(PatchError) as failed:
        parse_patch(diff)
    assert str(failed.value) == "hunk 1 of f has more lines than its header @@ -1,2 +1,2 @@ counts; fix the counts"


def test_hunk_shorter_than_its_header_is_refused() -> None:
    with pytest.raises(PatchError, match=r"not a valid unified diff: Hunk is shorter than expected"):
        parse_patch("--- a/f\n+++ b/f\n@@ -1,5 +1,5 @@\n a\n")


@pytest.mark.parametrize(("diff", "message"), [
    ("just some text\n", "the patch has no file changes"),
    ("--- a/one\n+++ b/two\n@@ -1 +1 @@\n-a\n+b\n", "renaming one to two is not supported"),
    ("diff --git a/i.png b/i.png\nindex 1..2 100644\nBinary files a/i.png and b/i.png differ\n",
     "binary changes to i.png cannot be applied"),
])
def test_unusable_patches_are_refused(diff: str, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        parse_patch(diff)
