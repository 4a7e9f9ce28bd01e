"""Symbol search (exact, prefix, fuzzy, filters), usages and definitions from the index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.tools.index.build import rebuild
from app.tools.index.lookup import Filters, Usage, find_definitions, find_usages, search_symbols, word_at
from app.tools.paths import Workspace


@pytest.fixture
def root(database: Any, workspace_dir: Path) -> Path:
    files = {
        "src/user_service.ts": "export class UserService {\n  find(id: string) { return id; }\n}\n"
                               "export function userService() { return new UserService(); }\n",
        "src/app.ts": "import { UserService } from './user_service';\nconst service = new UserService();\n"
                      "service.find('1');\n",
        "lib/users.py": "class UserStore:\n    def find(self, key):\n        return key\n",
        "lib/user_store_test.py": "from lib.users import UserStore\n\ndef test_find():\n    UserStore().find(1)\n",
    }
    for path, text in files.items():
        (workspace_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace_dir / path).write_text(text)
    rebuild(Workspace(workspace_dir), 1024**2)
    return workspace_dir


def names(hits: list[Any]) -> list[str]:
    return [hit.describe() for hit in hits]


def test_exact_match_ignores_case_and_ranks_the_exact_case_first(root: Path) -> None:
    assert names(search_symbols(root, "userservice", match="exact")) == [
        "src/user_service.ts:1:14 class UserService", "src/user_service.ts:4:17 function userService"]
    assert names(search_symbols(root, "userService", match="exact")) == [
        "src/user_service.ts:4:17 function userService", "src/user_service.ts:1:14 class UserService"]
    assert names(search_symbols(root, "UserService", match="exact")) == [
        "src/user_service.ts:1:14 class UserService", "src/user_service.ts:4:17 function userService"]


def test_prefix_and_fuzzy_matches(root: Path) -> None:
    assert names(search_symbols(root, "UserS", match="prefix")) == [  # shorter names first
        "lib/users.py:1:7 class UserStore", "src/user_service.ts:1:14 class UserService",
        "src/user_service.ts:4:17 function userService"]
    assert names(search_symbols(root, "usrstr", match="fuzzy")) == ["lib/users.py:1:7 class UserStore"]
    assert search_symbols(root, "zzz") == []


def test_auto_goes_from_exact_to_prefix_to_fuzzy_until_the_limit(root: Path) -> None:
    assert names(search_symbols(root, "find")) == [
        "lib/users.py:2:9 method find (in UserStore)", "src/user_service.ts:2:3 method find (in UserService)",
        "lib/user_store_test.py:3:5 function test_find"]
    assert names(search_symbols(root, "find", limit=1)) == ["lib/users.py:2:9 method find (in UserStore)"]


def test_filters_by_kind_language_and_path(root: Path) -> None:
    assert names(search_symbols(root, "find", filters=Filters(kind="method", language="TypeScript"))) == [
        "src/user_service.ts:2:3 method find (in UserService)"]
    assert names(search_symbols(root, "find", filters=Filters(path="lib/users.py"))) == [
        "lib/users.py:2:9 method find (in UserStore)"]
    assert names(search_symbols(root, "user", filters=Filters(path="src"))) == [
        "src/user_service.ts:1:14 class UserService", "src/user_service.ts:4:17 function userService"]


def test_usages_are_in_other_files_and_lines_never_the_definition(root: Path) -> None:
    usages, total = find_usages(root, "UserService")
    assert usages == [Usage("src/app.ts", 1, 10), Usage("src/app.ts", 2, 21), Usage("src/user_service.ts", 4, 44)]
    assert total == 3
    assert find_usages(root, "UserService", path="src/app.ts", limit=1) == ([Usage("src/app.ts", 1, 10)], 2)
    assert find_usages(root, "Nothing") == ([], 0)


def test_definitions_by_exact_name_with_the_preferred_file_first(root: Path) -> None:
    assert names(find_definitions(root, "find")) == ["lib/users.py:2:9 method find (in UserStore)",
                                                     "src/user_service.ts:2:3 method find (in UserService)"]
    assert names(find_definitions(root, "find", prefer_path="src/user_service.ts"))[0] == \
        "src/user_service.ts:2:3 method find (in UserService)"
    assert find_definitions(root, "userservice") == []


@pytest.mark.parametrize(("column", "word"), [(1, "const"), (7, "service"), (14, "service"), (15, None),
                                              (21, "UserService"), (31, "UserService"), (33, None)])
def test_the_word_at_a_column(column: int, word: str | None) -> None:
    assert word_at("const service = new UserService();", column) == word


def test_a_definition_in_an_imported_file_comes_before_one_elsewhere(database: Any, workspace_dir: Path) -> None:
    files = {"src/aaa.ts": "export class Widget {}\n", "src/ui/index.ts": "export class Widget {}\n",
             "src/widget.ts": "export class Widget {}\n",
             "src/panel.ts": "import { Widget } from './widget';\nnew Widget();\n",
             "src/page.ts": "import { Widget } from './ui';\nnew Widget();\n"}
    for path, text in files.items():
        (workspace_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace_dir / path).write_text(text)
    rebuild(Workspace(workspace_dir), 1024**2)
    assert [hit.path for hit in find_definitions(workspace_dir, "Widget")] == [
        "src/aaa.ts", "src/ui/index.ts", "src/widget.ts"]
    assert [hit.path for hit in find_definitions(workspace_dir, "Widget", prefer_path="src/panel.ts")] == [
        "src/widget.ts", "src/aaa.ts", "src/ui/index.ts"]
    assert [hit.path for hit in find_definitions(workspace_dir, "Widget", prefer_path="src/page.ts")] == [
        "src/ui/index.ts", "src/aaa.ts", "src/widget.ts"]
