"""``project_summary``: languages, managers, frameworks, lint, tests, entry points and tasks of a workspace."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.storage.models import Task, TestRun
from app.tools.base import ToolContext
from app.tools.summary import SUMMARY_TOOLS, summary_markdown

PROJECT = {
    "package.json": json.dumps({
        "main": "dist/index.js", "bin": {"shop": "bin/shop.js"},
        "scripts": {"test": "jest", "start": "node server.js"},
        "dependencies": {"react": "^18", "express": "^4"}, "devDependencies": {"jest": "^29", "typescript": "^5"},
    }),
    "yarn.lock": "",
    "pyproject.toml": '[project]\nname = "shop"\ndependencies = ["Flask>=3", "peewee"]\n'
                      '[project.scripts]\nshop = "shop.cli:main"\n[tool.ruff]\nline-length = 100\n'
                      '[tool.pytest.ini_options]\naddopts = "-q"\n',
    "requirements-dev.txt": "# tools\npytest==8.0\n-r requirements.txt\n",
    "go.mod": "module example.com/shop\n\ngo 1.22\n\nrequire github.com/gin-gonic/gin v1.9.1\n",
    "Gemfile": "source 'https://rubygems.org'\ngem 'rails', '~> 7.1'\n",
    ".eslintrc.json": "{}",
    ".prettierrc": "{}",
    "tests/test_cart.py": "def test_cart():\n    assert True\n",
    "server.js": "const express = require('express');\n",
    "shop/__main__.py": "print('shop')\n",
    "web/app.tsx": "export function App() { return null; }\n",
}


def make_project(root: Path) -> None:
    for path, text in PROJECT.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


def test_the_summary_reads_manifests_configs_and_records(database: Any, make_ctx: Any, workspace_dir: Path) -> None:
    make_project(workspace_dir)
    ctx: ToolContext = make_ctx(workspace_test_command="pytest -q")
    TestRun.create(session_id="other", command='["pytest"]', status="failed", passed=7, failed=1, skipped=2,
                   errors=0, created_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    Task.create(title="Fix checkout", status="in_progress", owner="key-1")
    Task.create(title="Done already", status="done", owner="key-1")
    Task.create(title="Someone else's", status="todo", owner="key-2")
    result = SUMMARY_TOOLS[0].run(ctx, {})
    assert result == summary_markdown(ctx)
    assert result == """# Project summary

_Written by Lynkr from the code index; edits here are replaced._

## Languages
- python: 2 files, 3 lines
- javascript: 1 file, 1 line
- ruby: 1 file, 2 lines
- tsx: 1 file, 1 line

## Package managers
- yarn (package.json)
- pip (pyproject.toml, requirements-dev.txt)
- Go modules (go.mod)
- Bundler (Gemfile)

## Frameworks and libraries
- Express, Flask, Gin, Jest, peewee, pytest, Rails, React, TypeScript

## Lint and format
- ruff (pyproject.toml [tool.ruff])
- ESLint (.eslintrc.json)
- Prettier (.prettierrc)

## Tests
- `yarn test` runs `jest` (package.json)
- pytest (pyproject.toml [tool.pytest.ini_options])
- `go test ./...` (go.mod)
- test folders: tests/
- workspace_test_run runs `pytest -q` (WORKSPACE_TEST_COMMAND)
- latest run: #1 at 2026-12-01 09:30:00 UTC, failed — 7 passed, 1 failed, 2 skipped, 0 errors
- coverage: no coverage file found (looked for: coverage/coverage-summary.json; WORKSPACE_TEST_COVERAGE_FILES)

## Entry points
- `yarn run start`: `node server.js`
- dist/index.js (package.json main)
- `shop` → bin/shop.js (package.json bin)
- `shop` → shop.cli:main (pyproject.toml)
- server.js
- shop/__main__.py

## Open tasks
- #1 [in_progress] Fix checkout
"""


def test_an_empty_workspace_says_plainly_what_is_missing(database: Any, ctx: ToolContext) -> None:
    (Path(ctx.workspace.root) / "coverage").mkdir()
    (Path(ctx.workspace.root) / "coverage/coverage-summary.json").write_text(
        json.dumps({"total": {"lines": {"pct": 81.5}, "branches": {"pct": 60}}}))
    result = summary_markdown(ctx)
    assert "## Languages\n- no source files indexed\n" in result
    assert "## Package managers\n- none found\n" in result
    assert "## Frameworks and libraries\n- none recognised\n" in result
    assert "## Lint and format\n- no configuration found\n" in result
    assert ("## Tests\n- no test setup found\n- latest run: none recorded (workspace_test_run runs the tests)\n"
            "- coverage (coverage/coverage-summary.json): lines 81.50%, branches 60.00%\n") in result
    assert result.endswith("## Entry points\n- none found\n\n## Open tasks\n- none\n")


def test_denied_manifests_are_not_read(database: Any, make_ctx: Any, workspace_dir: Path) -> None:
    (workspace_dir / "package.json").write_text(json.dumps({"dependencies": {"react": "1"}}))
    result = summary_markdown(make_ctx(policy_file_blocked_paths=("package.json",)))
    assert "## Package managers\n- none found\n" in result
    assert "React" not in result


def test_a_latest_run_without_counts_says_counts_unknown(database: Any, make_ctx: Any, workspace_dir: Path) -> None:
    ctx: ToolContext = make_ctx(workspace_test_command="make check")
    TestRun.create(session_id="s", command='["make", "check"]', status="passed", passed=0, failed=0, skipped=0,
                   errors=0, output="all good\n", created_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    assert "- latest run: #1 at 2026-12-01 09:30:00 UTC, passed — counts unknown\n" in summary_markdown(ctx)
