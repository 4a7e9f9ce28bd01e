"""The code index's tables, as peewee models bound to the gateway's database.

``index_roots`` holds one row per indexed workspace root: the rebuild lease (who holds it and
until when) and the last finished rebuild's time and counts. ``index_files`` lists the indexed
files of a root; ``index_symbols``, ``index_references`` (one row per name and file, with every
position) and ``index_imports`` hang off a file and go with it. The schema is created by
``migrations/0004_code_index.py``.
"""

from __future__ import annotations

from typing import Any

from peewee import AutoField, BigIntegerField, CharField, FloatField, ForeignKeyField, IntegerField, TextField

from app.storage.models import BaseModel

NAME_MAX = 255  # longer names are cut to this when stored


class IndexRoot(BaseModel):
    root = CharField(primary_key=True, max_length=1024)
    lease_owner = CharField(max_length=64, null=True)
    lease_until = FloatField(null=True)
    started_at = FloatField(null=True)
    finished_at = FloatField(null=True)
    stats = TextField(null=True)

    class Meta:
        table_name = "index_roots"


class IndexedFile(BaseModel):
    id = AutoField()
    root = CharField(max_length=1024)
    path = CharField(max_length=1024)
    language = CharField(max_length=32)
    size = BigIntegerField()
    mtime = FloatField()
    hash = CharField(max_length=64)
    lines = IntegerField(default=0)
    error = TextField(null=True)

    class Meta:
        table_name = "index_files"
        indexes = ((("root", "path"), True),)


class IndexedSymbol(BaseModel):
    id = AutoField()
    file = ForeignKeyField(IndexedFile, on_delete="CASCADE", index=True)
    name = CharField(max_length=NAME_MAX)
    name_lower = CharField(max_length=NAME_MAX, index=True)
    kind = CharField(max_length=32)
    line = IntegerField()
    column = IntegerField()
    end_line = IntegerField()
    parent = CharField(max_length=NAME_MAX, null=True)

    class Meta:
        table_name = "index_symbols"


class IndexedReference(BaseModel):
    id = AutoField()
    file = ForeignKeyField(IndexedFile, on_delete="CASCADE", index=True)
    name = CharField(max_length=NAME_MAX, index=True)
    positions = TextField()  # JSON [[line, column], …]

    class Meta:
        table_name = "index_references"


class IndexedImport(BaseModel):
    id = AutoField()
    file = ForeignKeyField(IndexedFile, on_delete="CASCADE", index=True)
    module = CharField(max_length=512)
    line = IntegerField()

    class Meta:
        table_name = "index_imports"


def rows_of(query: Any) -> list[tuple[Any, ...]]:
    """A select query's rows as plain tuples."""
    return list(query.tuples())


INDEX_TABLES = (IndexRoot, IndexedFile, IndexedSymbol, IndexedReference, IndexedImport)
