"""The index models describe exactly the tables migration 0004 creates, and rows_of gives plain tuples."""

from __future__ import annotations

from typing import Any

import pytest

from app.storage.db import db
from app.tools.index.models import INDEX_TABLES, IndexedFile, rows_of


@pytest.mark.parametrize("model", INDEX_TABLES, ids=lambda model: model._meta.table_name)
def test_each_model_matches_its_migrated_table(database: Any, model: Any) -> None:
    columns = {column.name for column in db.get_columns(model._meta.table_name)}
    assert columns == {field.column_name for field in model._meta.sorted_fields}
    indexes = {tuple(index.columns) for index in db.get_indexes(model._meta.table_name)}
    assert {(field.column_name,) for field in model._meta.sorted_fields if field.index} <= indexes


def test_files_are_unique_per_root_and_path(database: Any) -> None:
    assert ("root", "path") in {tuple(index.columns) for index in db.get_indexes("index_files") if index.unique}


def test_rows_of_gives_tuples_in_the_selected_order(database: Any) -> None:
    IndexedFile.create(root="/r", path="a.py", language="python", size=3, mtime=1.5, hash="h", lines=1)
    assert rows_of(IndexedFile.select(IndexedFile.path, IndexedFile.size, IndexedFile.mtime)) == [("a.py", 3, 1.5)]
