"""Queries whose SQL peewee renders once; each later run only binds new values.

Peewee renders a query's SQL from its expression tree on every execution. For the rows written
per request (the usage row, its attempts, transcript turns) that rendering cost ~130 µs a
statement — ten times the database's own work, and a third of a request's CPU. A
:class:`Prepared` query is built once per dialect (and *shape*, e.g. ``IS NULL`` versus ``=``)
with placeholder nodes where values go; peewee renders it, so dialect, quoting and placeholders
stay its own, and the order of its parameters tells where each value is bound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from peewee import Database, Field, Model, Node, Query, Value


class _Slot:
    """Stands for the value at ``index`` while peewee renders the query."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class Prepared:
    """A query built by ``build(*placeholders, shape=shape)``, one placeholder per value.

    It is rendered once per kind of database (its class: the dialect), shape and number of values;
    keep the shapes few.
    """

    def __init__(self, build: Callable[..., Query]) -> None:
        self._build = build
        self._rendered: dict[tuple[type, Hashable, int], tuple[str, list[int]]] = {}
        self._lock = threading.Lock()

    def execute(self, database: Database, values: Sequence[Any], shape: Hashable = None) -> Any:
        """Run the query with ``values`` (already database values); returns the cursor."""
        key = (type(database), shape, len(values))
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = self._render(database, shape, len(values))
            with self._lock:
                self._rendered[key] = rendered
        sql, order = rendered
        return database.execute_sql(sql, [values[i] for i in order])

    def _render(self, database: Database, shape: Hashable, arity: int) -> tuple[str, list[int]]:
        placeholders = [Value(_Slot(i), converter=False) for i in range(arity)]
        sql, params = database.get_sql_context().sql(self._build(*placeholders, shape=shape)).query()
        if not all(isinstance(p, _Slot) for p in params):
            raise TypeError(f"{sql!r} binds a value that is not a placeholder")
        return sql, [p.index for p in params]


class InsertRow:
    """``INSERT`` of one ``model`` row (every column but an auto-increment key), returning its key.

    With ``ignore_conflicts`` a row that clashes with a unique key is skipped and the insert
    returns None (never a stale id, which SQLite's ``lastrowid`` would give).
    """

    def __init__(self, model: type[Model], *, ignore_conflicts: bool = False) -> None:
        key = model._meta.primary_key
        self.fields: list[Field] = [f for f in model._meta.sorted_fields
                                    if not (f is key and model._meta.auto_increment)]

        def build(*placeholders: Node, shape: Hashable) -> Query:
            query = model.insert(dict(zip(self.fields, placeholders, strict=True)))
            if ignore_conflicts:
                query = query.on_conflict_ignore()
            return query.returning(model._meta.primary_key)

        self._prepared = Prepared(build)

    @property
    def columns(self) -> tuple[str, ...]:
        """The field names a row must give, in the order they are bound."""
        return tuple(field.name for field in self.fields)

    def execute(self, database: Database, row: dict[str, Any]) -> Any:
        """Insert ``row`` (Python values keyed by field name, all of them); the new key, or None if
        it was skipped."""
        values = [field.db_value(row[field.name]) for field in self.fields]
        found = self._prepared.execute(database, values).fetchone()
        return found[0] if found else None
