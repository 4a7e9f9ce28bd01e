"""Tables for the code index (app/tools/index): roots with their rebuild lease, files, symbols,
references and imports."""

from peewee import (
    BigIntegerField,
    CharField,
    Database,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)


class IndexRoot(Model):
    root = CharField(primary_key=True, max_length=1024)
    lease_owner = CharField(max_length=64, null=True)
    lease_until = FloatField(null=True)
    started_at = FloatField(null=True)
    finished_at = FloatField(null=True)
    stats = TextField(null=True)

    class Meta:
        table_name = "index_roots"


class IndexedFile(Model):
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


class IndexedSymbol(Model):
    file = ForeignKeyField(IndexedFile, on_delete="CASCADE", index=True)
    name = CharField(max_length=255)
    name_lower = CharField(max_length=255, index=True)
    kind = CharField(max_length=32)
    line = IntegerField()
    column = IntegerField()
    end_line = IntegerField()
    parent = CharField(max_length=255, null=True)

    class Meta:
        table_name = "index_symbols"


class IndexedReference(Model):
    file = ForeignKeyField(IndexedFile, on_delete="CASCADE", index=True)
    name = CharField(max_length=255, index=True)
    positions = TextField()

    class Meta:
        table_name = "index_references"


class IndexedImport(Model):
    file = ForeignKeyField(IndexedFile, on_delete="CASCADE", index=True)
    module = CharField(max_length=512)
    line = IntegerField()

    class Meta:
        table_name = "index_imports"


def up(database: Database) -> None:
    tables = [IndexRoot, IndexedFile, IndexedSymbol, IndexedReference, IndexedImport]
    with database.bind_ctx(tables):
        database.create_tables(tables, safe=True)
