"""``project_summary``: what a newcomer (or a model) needs to know about the workspace, in Markdown.

The language mix comes from the code index (rebuilt first when the workspace was never indexed);
package managers, frameworks, lint and format tools, the test setup and entry points are read
from the manifests and configuration files at the workspace root; the latest test run, open tasks
and coverage come from the existing test and task tools' records. Every file goes through
:meth:`~app.tools.paths.Workspace.resolve`, so denied files are never read.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.storage.db import db
from app.storage.models import Task, TestRun
from app.tools.base import Tool, ToolContext
from app.tools.index.build import language_mix, last_rebuild, rebuild
from app.tools.index.models import IndexedFile, rows_of
from app.tools.paths import PathRefused
from app.tools.tests import counts_text, read_coverage

MANIFEST_MAX_BYTES = 1024**2
OPEN_TASKS_SHOWN = 10

FRAMEWORKS = {
    "flask": "Flask", "django": "Django", "fastapi": "FastAPI", "starlette": "Starlette", "tornado": "Tornado",
    "aiohttp": "aiohttp", "pyramid": "Pyramid", "celery": "Celery", "sqlalchemy": "SQLAlchemy", "peewee": "peewee",
    "pydantic": "Pydantic", "pytest": "pytest", "react": "React", "next": "Next.js", "vue": "Vue", "nuxt": "Nuxt",
    "svelte": "Svelte", "@sveltejs/kit": "SvelteKit", "@angular/core": "Angular", "express": "Express",
    "fastify": "Fastify", "koa": "Koa", "@nestjs/core": "NestJS", "electron": "Electron", "jest": "Jest",
    "vitest": "Vitest", "mocha": "Mocha", "playwright": "Playwright", "@playwright/test": "Playwright",
    "cypress": "Cypress", "typescript": "TypeScript", "vite": "Vite", "webpack": "webpack",
    "github.com/gin-gonic/gin": "Gin", "github.com/labstack/echo/v4": "Echo", "github.com/gofiber/fiber/v2": "Fiber",
    "github.com/spf13/cobra": "Cobra", "actix-web": "Actix Web", "axum": "Axum", "rocket": "Rocket", "tokio": "Tokio",
    "serde": "Serde", "clap": "clap", "rails": "Rails", "sinatra": "Sinatra", "rspec": "RSpec", "minitest": "Minitest",
    "laravel/framework": "Laravel", "symfony/framework-bundle": "Symfony",
}
LINT_FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ESLint", (".eslintrc", ".eslintrc.js", ".eslintrc.cjs", ".eslintrc.json", ".eslintrc.yml", ".eslintrc.yaml",
                "eslint.config.js", "eslint.config.mjs", "eslint.config.cjs", "eslint.config.ts")),
    ("Prettier", (".prettierrc", ".prettierrc.json", ".prettierrc.yml", ".prettierrc.yaml", ".prettierrc.js",
                  "prettier.config.js", "prettier.config.cjs", "prettier.config.mjs")),
    ("Biome", ("biome.json", "biome.jsonc")),
    ("ruff", ("ruff.toml", ".ruff.toml")),
    ("flake8", (".flake8",)),
    ("pylint", (".pylintrc", "pylintrc")),
    ("mypy", ("mypy.ini", ".mypy.ini")),
    ("black", (".black",)),
    ("isort", (".isort.cfg",)),
    ("pre-commit", (".pre-commit-config.yaml",)),
    ("golangci-lint", (".golangci.yml", ".golangci.yaml", ".golangci.toml", ".golangci.json")),
    ("rustfmt", ("rustfmt.toml", ".rustfmt.toml")),
    ("clippy", ("clippy.toml", ".clippy.toml")),
    ("RuboCop", (".rubocop.yml",)),
    ("Stylelint", (".stylelintrc", ".stylelintrc.json", "stylelint.config.js")),
    ("EditorConfig", (".editorconfig",)),
)
PYPROJECT_TOOLS = {"ruff": "ruff", "black": "black", "mypy": "mypy", "isort": "isort", "pylint": "pylint",
                   "flake8": "flake8"}
SETUP_CFG_TOOLS = {"flake8": "flake8", "mypy": "mypy", "isort": "isort", "pylint": "pylint"}
TEST_FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pytest", ("pytest.ini", "conftest.py")), ("tox", ("tox.ini",)), ("nox", ("noxfile.py",)),
    ("Jest", ("jest.config.js", "jest.config.ts", "jest.config.cjs", "jest.config.mjs", "jest.config.json")),
    ("Vitest", ("vitest.config.ts", "vitest.config.js", "vitest.config.mts")),
    ("Mocha", (".mocharc.js", ".mocharc.json", ".mocharc.yml")), ("Karma", ("karma.conf.js",)),
    ("Playwright", ("playwright.config.ts", "playwright.config.js")), ("RSpec", (".rspec",)),
)
TEST_DIRS = ("tests", "test", "spec", "__tests__", "e2e")
ROOT_ENTRY_FILES = ("manage.py", "app.py", "main.py", "wsgi.py", "asgi.py", "server.js", "index.js", "index.ts",
                    "main.go", "src/main.rs", "src/main.ts", "src/index.ts", "src/index.js", "config.ru")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_GEM = re.compile(r"""^\s*gem\s+['"]([^'"]+)['"]""", re.MULTILINE)
_GO_REQUIRE = re.compile(r"^\s*(?:require\s+)?([a-z0-9.-]+\.[a-z]+/[^\s]+)\s+v[0-9]", re.MULTILINE)


@dataclass
class _Facts:
    managers: list[str] = field(default_factory=list)
    dependencies: set[str] = field(default_factory=set)
    linters: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    entry_points: list[str] = field(default_factory=list)

    def lint(self, name: str, where: str) -> None:
        self.linters.append(f"{name} ({where})")


def project_summary(ctx: ToolContext, args: Mapping[str, Any]) -> str:
    """The workspace summary in Markdown (indexing the workspace first if it never was)."""
    if last_rebuild(ctx.workspace.root) is None:
        rebuild(ctx.workspace, ctx.config.index_max_file_bytes)
    return summary_markdown(ctx)


def summary_markdown(ctx: ToolContext) -> str:
    """The summary of the workspace as it is indexed now."""
    facts = _Facts()
    paths = _indexed_paths(ctx)
    _node(ctx, facts)
    _python(ctx, facts)
    _others(ctx, facts)
    _configs(ctx, facts, paths)
    sections = [
        ("Languages", _languages(ctx)),
        ("Package managers", facts.managers or ["none found"]),
        ("Frameworks and libraries", [", ".join(sorted({FRAMEWORKS[d] for d in facts.dependencies
                                                        if d in FRAMEWORKS}, key=str.lower)) or "none recognised"]),
        ("Lint and format", facts.linters or ["no configuration found"]),
        ("Tests", [*(facts.tests or ["no test setup found"]), *_test_records(ctx)]),
        ("Entry points", facts.entry_points or ["none found"]),
        ("Open tasks", _open_tasks(ctx)),
    ]
    lines = ["# Project summary", "", "_Written by Lynkr from the code index; edits here are replaced._"]
    for title, items in sections:
        lines += ["", f"## {title}", *(f"- {item}" for item in items)]
    return "\n".join(lines) + "\n"


def _languages(ctx: ToolContext) -> list[str]:
    mix = language_mix(ctx.workspace.root)
    if not mix:
        return ["no source files indexed"]
    return [f"{language}: {files} file{'s' if files != 1 else ''}, {lines:,} line{'s' if lines != 1 else ''}"
            for language, files, lines in mix]


def _indexed_paths(ctx: ToolContext) -> list[str]:
    with db.connection_context():
        return [row[0] for row in rows_of(IndexedFile.select(IndexedFile.path)
                                          .where(IndexedFile.root == str(ctx.workspace.root)))]


def _read(ctx: ToolContext, name: str) -> str | None:
    """The text of a file at the root, or None when it is missing, refused, too large or unreadable."""
    try:
        real = ctx.workspace.resolve(name)
        if not real.is_file() or real.stat().st_size > MANIFEST_MAX_BYTES:
            return None
        return real.read_text(encoding="utf-8", errors="replace")
    except (PathRefused, OSError):
        return None


def _exists(ctx: ToolContext, name: str) -> bool:
    try:
        return ctx.workspace.resolve(name).exists()
    except PathRefused:
        return False


def _json(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _toml(text: str | None) -> dict[str, Any]:
    try:
        return tomllib.loads(text or "")
    except tomllib.TOMLDecodeError:
        return {}


def _node(ctx: ToolContext, facts: _Facts) -> None:
    package = _json(_read(ctx, "package.json"))
    if not package and not _exists(ctx, "package.json"):
        return
    locks = (("pnpm", "pnpm-lock.yaml"), ("yarn", "yarn.lock"), ("bun", "bun.lockb"), ("bun", "bun.lock"),
             ("npm", "package-lock.json"))
    manager = next((name for name, lock in locks if _exists(ctx, lock)), "npm")
    facts.managers.append(f"{manager} (package.json)")
    for key in ("dependencies", "devDependencies", "peerDependencies"):
        if isinstance(package.get(key), dict):
            facts.dependencies.update(package[key])
    if "eslintConfig" in package:
        facts.lint("ESLint", "package.json eslintConfig")
    if "prettier" in package:
        facts.lint("Prettier", "package.json prettier")
    scripts: dict[str, Any] = package["scripts"] if isinstance(package.get("scripts"), dict) else {}
    if scripts.get("test"):
        facts.tests.append(f"`{manager} test` runs `{scripts['test']}` (package.json)")
    for name in ("start", "dev"):
        if scripts.get(name):
            facts.entry_points.append(f"`{manager} run {name}`: `{scripts[name]}`")
    if isinstance(package.get("main"), str):
        facts.entry_points.append(f"{package['main']} (package.json main)")
    binaries = package.get("bin")
    if isinstance(binaries, str):
        facts.entry_points.append(f"{binaries} (package.json bin)")
    elif isinstance(binaries, dict):
        facts.entry_points.extend(f"`{name}` → {target} (package.json bin)" for name, target in binaries.items())


def _python(ctx: ToolContext, facts: _Facts) -> None:
    pyproject = _toml(_read(ctx, "pyproject.toml"))
    setup_cfg = _read(ctx, "setup.cfg")
    requirements = sorted(path.name for path in ctx.workspace.root.glob("requirements*.txt")
                          if _read(ctx, path.name) is not None)
    if not (pyproject or setup_cfg or requirements or _exists(ctx, "setup.py") or _exists(ctx, "Pipfile")):
        return
    locks = (("poetry", "poetry.lock"), ("uv", "uv.lock"), ("pdm", "pdm.lock"), ("pipenv", "Pipfile"))
    manager = next((name for name, lock in locks if _exists(ctx, lock)), "pip")
    sources = [name for name in ("pyproject.toml", "setup.cfg", "setup.py") if _exists(ctx, name)] + requirements
    facts.managers.append(f"{manager} ({', '.join(sources)})")
    project = pyproject.get("project", {})
    facts.dependencies.update(_requirement_names(project.get("dependencies", [])))
    for extra in project.get("optional-dependencies", {}).values():
        facts.dependencies.update(_requirement_names(extra))
    tools = pyproject.get("tool", {})
    facts.dependencies.update(name.lower() for name in tools.get("poetry", {}).get("dependencies", {}))
    for section, name in PYPROJECT_TOOLS.items():
        if section in tools:
            facts.lint(name, f"pyproject.toml [tool.{section}]")
    if "ini_options" in tools.get("pytest", {}):
        facts.tests.append("pytest (pyproject.toml [tool.pytest.ini_options])")
    facts.entry_points.extend(f"`{name}` → {target} (pyproject.toml)" for name, target
                              in project.get("scripts", {}).items())
    for name in requirements:
        facts.dependencies.update(_requirement_names((_read(ctx, name) or "").splitlines()))
    if setup_cfg is not None:
        _setup_cfg(setup_cfg, facts)


def _requirement_names(lines: Iterable[Any]) -> set[str]:
    names = set()
    for line in lines:
        match = _REQUIREMENT_NAME.match(str(line)) if not str(line).lstrip().startswith(("#", "-")) else None
        if match:
            names.add(match.group(1).lower())
    return names


def _setup_cfg(text: str, facts: _Facts) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return
    facts.dependencies.update(_requirement_names(parser.get("options", "install_requires", fallback="").splitlines()))
    if parser.has_section("options.extras_require"):
        for _, value in parser.items("options.extras_require"):
            facts.dependencies.update(_requirement_names(value.splitlines()))
    for section, name in SETUP_CFG_TOOLS.items():
        if parser.has_section(section):
            facts.lint(name, f"setup.cfg [{section}]")
    if parser.has_section("tool:pytest"):
        facts.tests.append("pytest (setup.cfg [tool:pytest])")
    scripts = parser.get("options.entry_points", "console_scripts", fallback="")
    facts.entry_points.extend(f"`{line.split('=')[0].strip()}` → {line.split('=', 1)[1].strip()} (setup.cfg)"
                              for line in scripts.splitlines() if "=" in line)


def _others(ctx: ToolContext, facts: _Facts) -> None:
    go_mod = _read(ctx, "go.mod")
    if go_mod is not None:
        facts.managers.append("Go modules (go.mod)")
        facts.dependencies.update(_GO_REQUIRE.findall(go_mod))
        facts.tests.append("`go test ./...` (go.mod)")
    cargo = _toml(_read(ctx, "Cargo.toml"))
    if cargo or _exists(ctx, "Cargo.toml"):
        facts.managers.append("Cargo (Cargo.toml)")
        for key in ("dependencies", "dev-dependencies"):
            facts.dependencies.update(cargo.get(key, {}))
        facts.tests.append("`cargo test` (Cargo.toml)")
        facts.entry_points.extend(f"binary `{item.get('name')}` ({item.get('path', 'src/bin')})"
                                  for item in cargo.get("bin", []) if isinstance(item, dict))
    gemfile = _read(ctx, "Gemfile")
    if gemfile is not None:
        facts.managers.append("Bundler (Gemfile)")
        facts.dependencies.update(_GEM.findall(gemfile))
    composer = _json(_read(ctx, "composer.json"))
    if composer:
        facts.managers.append("Composer (composer.json)")
        facts.dependencies.update(composer.get("require", {}))
    for name, manifest in (("Maven", "pom.xml"), ("Gradle", "build.gradle"), ("Gradle", "build.gradle.kts")):
        if _exists(ctx, manifest):
            facts.managers.append(f"{name} ({manifest})")


def _configs(ctx: ToolContext, facts: _Facts, paths: list[str]) -> None:
    for name, files in LINT_FILES:
        found = [file for file in files if _exists(ctx, file)]
        if found:
            facts.lint(name, ", ".join(found))
    for name, files in TEST_FILES:
        found = [file for file in files if _exists(ctx, file)]
        if found:
            facts.tests.append(f"{name} ({', '.join(found)})")
    folders = [folder + "/" for folder in TEST_DIRS if _exists(ctx, folder)]
    if folders:
        facts.tests.append("test folders: " + ", ".join(folders))
    if ctx.config.workspace_test_command:
        facts.tests.append(f"workspace_test_run runs `{ctx.config.workspace_test_command}` (WORKSPACE_TEST_COMMAND)")
    facts.entry_points.extend(f"{name}" for name in ROOT_ENTRY_FILES if name in paths)
    facts.entry_points.extend(path for path in sorted(paths)
                              if path.endswith("/__main__.py") or re.fullmatch(r"cmd/[^/]+/main\.go", path))


def _test_records(ctx: ToolContext) -> list[str]:
    with db.connection_context():
        latest = TestRun.select().order_by(TestRun.created_at.desc()).first()
    if latest is None:
        lines = ["latest run: none recorded (workspace_test_run runs the tests)"]
    else:
        when = latest.created_at.strftime("%Y-%m-%d %H:%M:%S")
        lines = [f"latest run: #{latest.get_id()} at {when} UTC, {latest.status} — {counts_text(latest)}"]
    coverage = read_coverage(ctx)
    if not coverage:
        files = ", ".join(ctx.config.workspace_test_coverage_files) or "none configured"
        lines.append(f"coverage: no coverage file found (looked for: {files}; WORKSPACE_TEST_COVERAGE_FILES)")
    for entry in coverage:
        parts = [f"{kind} {entry[kind]:.2f}%" for kind in ("lines", "statements", "functions", "branches")
                 if entry.get(kind) is not None]
        lines.append(f"coverage ({entry['file']}): " + (", ".join(parts) or "no totals in the file"))
    return lines


def _open_tasks(ctx: ToolContext) -> list[str]:
    owned = Task.owner.is_null() if ctx.api_key is None else Task.owner == ctx.api_key
    with db.connection_context():
        query = Task.select().where(owned & (Task.status != "done")).order_by(Task.created_at)
        total = query.count()
        tasks = list(query.limit(OPEN_TASKS_SHOWN))
    if not tasks:
        return ["none"]
    lines = [f"#{task.get_id()} [{task.status}] {task.title}" for task in tasks]
    if total > len(tasks):
        lines.append(f"… {total - len(tasks)} more (workspace_tasks_list)")
    return lines


SUMMARY_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="project_summary",
        description=("Summarise the workspace: languages (files and lines), package managers and frameworks, lint "
                     "and format configuration, the test setup with the latest run and coverage, entry points and "
                     "open tasks."),
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        run=project_summary,
    ),
)
