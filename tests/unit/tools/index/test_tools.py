"""The index tools as the model calls them: Node Lynkr argument names and aliases, and the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.tools.base import ToolContext, ToolError
from app.tools.claude_md import END, START
from app.tools.index.tools import INDEX_TOOLS

TOOLS = {tool.name: tool for tool in INDEX_TOOLS}


def call(ctx: ToolContext, tool: str, **args: Any) -> str:
    result = TOOLS[tool].run(ctx, args)
    assert isinstance(result, str)
    return result


@pytest.fixture
def project(workspace_dir: Path) -> Path:
    (workspace_dir / "src").mkdir()
    (workspace_dir / "src/widget.ts").write_text("export class Widget {\n  draw(): void {}\n}\n")
    (workspace_dir / "src/panel.ts").write_text(
        "import { Widget } from './widget';\nexport const panel = new Widget();\npanel.draw();\n")
    return workspace_dir


def test_schemas_advertise_the_node_lynkr_names() -> None:
    assert list(TOOLS) == ["workspace_index_rebuild", "workspace_symbol_search", "workspace_symbol_references",
                           "workspace_goto_definition"]
    assert TOOLS["workspace_index_rebuild"].input_schema == {"type": "object", "properties": {},
                                                             "additionalProperties": False}
    search = TOOLS["workspace_symbol_search"].input_schema
    assert list(search["properties"]) == ["query", "path", "language", "kind", "match", "limit"]
    assert search["required"] == ["query"]
    references = TOOLS["workspace_symbol_references"].input_schema
    assert (list(references["properties"]), references["required"]) == (["name", "path", "limit"], ["name"])
    definition = TOOLS["workspace_goto_definition"].input_schema
    assert list(definition["properties"]) == ["path", "line", "column", "name"]
    assert "required" not in definition


def test_rebuild_reports_counts_and_writes_the_summary_into_claude_md(
        database: Any, ctx: ToolContext, project: Path) -> None:
    result = call(ctx, "workspace_index_rebuild")
    first, second = result.splitlines()
    assert first.startswith("Indexed 2 files (2 parsed, 0 unchanged, 0 removed, 0 skipped, 0 failed): 3 symbols in ")
    assert second == "CLAUDE.md: the project summary section was written"
    text = (project / "CLAUDE.md").read_text()
    assert text.startswith(START.decode() + "\n# Project summary\n")
    assert "- typescript: 2 files, 6 lines\n" in text
    assert text.endswith(END.decode() + "\n")
    assert call(ctx, "workspace_index_rebuild").splitlines()[1] == \
        "CLAUDE.md: the project summary section is up to date"


def test_rebuild_leaves_claude_md_alone_when_told(database: Any, make_ctx: Any, project: Path) -> None:
    result = call(make_ctx(index_write_claude_md=False), "workspace_index_rebuild")
    assert result.splitlines()[1] == "CLAUDE.md not written (INDEX_WRITE_CLAUDE_MD=false)"
    assert not (project / "CLAUDE.md").exists()


def test_rebuild_reports_an_unpaired_marker_and_files_that_failed(
        database: Any, ctx: ToolContext, project: Path) -> None:
    (project / "CLAUDE.md").write_bytes(b"# Notes\n" + START + b"\n")
    (project / "bad.py").write_bytes(b"x = '\xff'\n")
    lines = call(ctx, "workspace_index_rebuild").splitlines()
    assert lines[1:] == ["CLAUDE.md not written: it has an unpaired lynkr:summary marker; fix or remove it by hand",
                         "failed: bad.py: not UTF-8 text (byte 5)"]
    assert (project / "CLAUDE.md").read_bytes() == b"# Notes\n" + START + b"\n"


def test_search_indexes_a_never_indexed_workspace_first_and_accepts_aliases(
        database: Any, ctx: ToolContext, project: Path) -> None:
    assert call(ctx, "workspace_symbol_search", symbol="widg") == "src/widget.ts:1:14 class Widget"
    assert call(ctx, "workspace_symbol_search", name="draw", file="src", lang="typescript", kind="method") == \
        "src/widget.ts:2:3 method draw (in Widget)"
    assert call(ctx, "workspace_symbol_search", query="nothing") == "No symbols match 'nothing'."
    with pytest.raises(ToolError, match="argument 'match' must be one of auto, exact, prefix, fuzzy"):
        call(ctx, "workspace_symbol_search", query="x", match="regex")
    with pytest.raises(ToolError, match="outside the workspace"):
        call(ctx, "workspace_symbol_search", query="x", path="../outside")


def test_references_show_each_usage_line_and_never_the_definition(
        database: Any, ctx: ToolContext, project: Path) -> None:
    assert call(ctx, "workspace_symbol_references", symbol="Widget") == (
        "src/panel.ts:1:10: import { Widget } from './widget';\n"
        "src/panel.ts:2:26: export const panel = new Widget();")
    assert call(ctx, "workspace_symbol_references", query="Widget", limit=1) == (
        "src/panel.ts:1:10: import { Widget } from './widget';\n"
        "… 1 more references (raise limit or narrow with path)")
    assert call(ctx, "workspace_symbol_references", name="Widget", file="src/widget.ts") == \
        "No references to 'Widget' in src/widget.ts."


def test_goto_definition_by_name_or_by_position(database: Any, ctx: ToolContext, project: Path) -> None:
    expected = "src/widget.ts:1:14 class Widget: export class Widget {"
    assert call(ctx, "workspace_goto_definition", symbol="Widget") == expected
    assert call(ctx, "workspace_goto_definition", file="src/panel.ts", row=2, col=28) == expected
    assert call(ctx, "workspace_goto_definition", path="src/panel.ts", line=3, column=8) == \
        "src/widget.ts:2:3 method draw (in Widget): draw(): void {}"
    assert call(ctx, "workspace_goto_definition", name="Missing") == \
        "No definition of 'Missing' in the index (workspace_index_rebuild refreshes it after changes)."
    with pytest.raises(ToolError, match="give a name, or a path with line and column"):
        call(ctx, "workspace_goto_definition", path="src/panel.ts", line=2)
    with pytest.raises(ToolError, match=r"no identifier at src/panel\.ts:2:20"):
        call(ctx, "workspace_goto_definition", path="src/panel.ts", line=2, column=20)
    with pytest.raises(ToolError, match=r"'src/panel\.ts' has fewer than 9 lines"):
        call(ctx, "workspace_goto_definition", path="src/panel.ts", line=9, column=1)
