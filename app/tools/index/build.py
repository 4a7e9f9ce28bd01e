"""The incremental rebuild of one workspace root's index, under a lease in the database.

A rebuild walks the files the workspace tools may see (``.gitignore``, dependency directories and
the deny list respected, symlinks not followed), skips files over the size cap and binaries, and
parses only what changed: a file whose size and mtime match its row is not read, and one whose
content hash matches is not parsed. Files no longer found lose their rows. Writes go in batches,
each its own short transaction, so other writers of the database are not held up for long.

Only one rebuild of a root runs at a time, across threads, workers and instances sharing the
database: it holds the root's lease in ``index_roots`` (taken by a conditional UPDATE, renewed
after every batch, expiring after :data:`LEASE_S` if its holder died). Another rebuild waits for
the lease and then runs, finding almost everything unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from peewee import SqliteDatabase, fn

from app.storage.db import db
from app.tools.base import ToolError
from app.tools.index.extract import Extraction, ParseFailed, extract
from app.tools.index.languages import language_of
from app.tools.index.models import (
    NAME_MAX,
    IndexedFile,
    IndexedImport,
    IndexedReference,
    IndexedSymbol,
    IndexRoot,
    rows_of,
)
from app.tools.paths import Workspace
from app.tools.search import iter_files

LEASE_S = 120.0  # a holder that stops renewing loses the lease after this long
WAIT_POLL_S = 0.1
WAIT_MAX_S = 600.0
BATCH_FILES = 200
INSERT_CHUNK = 500
SNIFF_BYTES = 8192
PATH_MAX = 1024  # index_files.path's width
FILE_COLUMNS = ("language", "size", "mtime", "hash", "lines", "error")

Progress = Callable[[int, int], None]  # (files looked at, files found)


class IndexBusy(ToolError):
    """Another rebuild of this root held the lease for too long, or took it over."""


@dataclass
class RebuildStats:
    """What one rebuild did, and the index's size after it."""

    files: int = 0
    parsed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    symbols: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """One line of counts and time, e.g. for the end of ``lynkr index``."""
        return (f"Indexed {self.files} files ({self.parsed} parsed, {self.unchanged} unchanged, {self.removed} "
                f"removed, {self.skipped} skipped, {len(self.failed)} failed): {self.symbols} symbols "
                f"in {self.seconds:.2f} s")


@dataclass(frozen=True)
class _Found:
    path: str
    real: Path
    language: str
    size: int
    mtime: float


@dataclass
class _Changed:
    found: _Found
    digest: str
    old_id: int | None
    extraction: Extraction | None = None
    error: str | None = None


def rebuild(workspace: Workspace, max_file_bytes: int, *, progress: Progress | None = None) -> RebuildStats:
    """Bring the index of ``workspace``'s root up to date; waits while another rebuild of it runs.

    Raises :class:`IndexBusy` when the lease cannot be had within :data:`WAIT_MAX_S`.
    """
    root = str(workspace.root)
    with _lease(root) as renew:
        started = time.perf_counter()
        stats = _run(workspace, root, max_file_bytes, renew, progress)
        stats.seconds = time.perf_counter() - started
        with db.connection_context():
            IndexRoot.update(finished_at=time.time(), stats=json.dumps(asdict(stats))).where(
                IndexRoot.root == root).execute()
    return stats


def last_rebuild(root: Path) -> float | None:
    """When the last rebuild of ``root`` finished (epoch seconds), or None if it never did."""
    with db.connection_context():
        row = IndexRoot.get_or_none(IndexRoot.root == str(root))
    return None if row is None else row.finished_at


@contextmanager
def _lease(root: str) -> Iterator[Callable[[], None]]:
    """Hold ``root``'s rebuild lease for the block; yields a function that renews it."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + WAIT_MAX_S
    with db.connection_context():
        IndexRoot.insert(root=root).on_conflict_ignore().execute()
    while not _take(root, owner):
        if time.monotonic() > deadline:
            raise IndexBusy(f"another index rebuild of this workspace has run for over {WAIT_MAX_S:.0f} s; "
                            "try again later")
        time.sleep(WAIT_POLL_S)

    def renew() -> None:
        with db.connection_context():
            held = IndexRoot.update(lease_until=time.time() + LEASE_S).where(
                (IndexRoot.root == root) & (IndexRoot.lease_owner == owner)).execute()
        if not held:
            raise IndexBusy("this index rebuild stalled and another one took over; its result stands")

    try:
        yield renew
    finally:
        with db.connection_context():
            IndexRoot.update(lease_owner=None, lease_until=None).where(
                (IndexRoot.root == root) & (IndexRoot.lease_owner == owner)).execute()


def _take(root: str, owner: str) -> bool:
    now = time.time()
    with db.connection_context():
        return bool(IndexRoot.update(lease_owner=owner, lease_until=now + LEASE_S, started_at=now).where(
            (IndexRoot.root == root) & (IndexRoot.lease_until.is_null() | (IndexRoot.lease_until < now))).execute())


def _run(workspace: Workspace, root: str, max_file_bytes: int, renew: Callable[[], None],
         progress: Progress | None) -> RebuildStats:
    stats = RebuildStats()
    with db.connection_context():
        known = {row[1]: row for row in rows_of(IndexedFile.select(
            IndexedFile.id, IndexedFile.path, IndexedFile.size, IndexedFile.mtime, IndexedFile.hash,
        ).where(IndexedFile.root == root))}
    found = _walk(workspace, max_file_bytes, stats)
    seen: set[str] = set()
    changed: list[_Changed] = []
    touched: list[tuple[int, float]] = []
    for count, item in enumerate(found, 1):
        if progress is not None:
            progress(count, len(found))
        old = known.get(item.path)
        if old is not None and old[2] == item.size and old[3] == item.mtime:
            seen.add(item.path)
            stats.unchanged += 1
            continue
        data = _read(item.real)
        if data is None:
            stats.skipped += 1
            continue
        seen.add(item.path)
        digest = hashlib.blake2b(data, digest_size=20).hexdigest()
        if old is not None and old[4] == digest:
            touched.append((old[0], item.mtime))
            stats.unchanged += 1
            continue
        entry = _Changed(item, digest, old[0] if old is not None else None)
        try:
            entry.extraction = extract(data, item.language)
        except ParseFailed as exc:
            entry.error = str(exc)
            stats.failed.append((item.path, entry.error))
        changed.append(entry)
        stats.parsed += 1
        if len(changed) >= BATCH_FILES:
            _store(root, changed)
            changed.clear()
            renew()
    _store(root, changed)
    _touch(touched)
    gone = [row[0] for path, row in known.items() if path not in seen]
    _remove(gone)
    stats.removed = len(gone)
    with db.connection_context():
        stats.files = IndexedFile.select().where(IndexedFile.root == root).count()
        stats.symbols = IndexedSymbol.select().join(IndexedFile).where(IndexedFile.root == root).count()
        if isinstance(db.obj, SqliteDatabase) and (stats.parsed + stats.removed) * 10 > stats.files:
            # without statistics SQLite filters symbols by root (every row) rather than by name
            db.execute_sql("ANALYZE index_files")
            db.execute_sql("ANALYZE index_symbols")
    return stats


def _walk(workspace: Workspace, max_file_bytes: int, stats: RebuildStats) -> list[_Found]:
    found = []
    for real in iter_files(workspace, workspace.root, follow_links=False):
        path = workspace.relative(real)
        language = language_of(path)
        if language is None:
            continue
        try:
            info = real.stat()
        except OSError:
            continue  # gone since the walk saw it
        if info.st_size > max_file_bytes or len(path) > PATH_MAX:
            stats.skipped += 1
            continue
        found.append(_Found(path, real, language, info.st_size, info.st_mtime))
    return found


def _read(real: Path) -> bytes | None:
    """The file's bytes, or None when it is binary or unreadable."""
    try:
        data = real.read_bytes()
    except OSError:
        return None
    return None if b"\0" in data[:SNIFF_BYTES] else data


def _store(root: str, changed: Sequence[_Changed]) -> None:
    """Replace the rows of ``changed`` files, in one transaction."""
    if not changed:
        return
    with db.connection_context(), db.atomic():
        _delete_children([entry.old_id for entry in changed if entry.old_id is not None])
        fresh = [entry for entry in changed if entry.old_id is None]
        updates = [(*_file_values(entry), entry.old_id) for entry in changed if entry.old_id is not None]
        if updates:
            columns = ", ".join(f'"{name}" = {db.param}' for name in FILE_COLUMNS)
            db.cursor().executemany(f"UPDATE index_files SET {columns} WHERE id = {db.param}", updates)  # noqa: S608
        _insert("index_files", ("root", "path", *FILE_COLUMNS),
                [(root, entry.found.path, *_file_values(entry)) for entry in fresh])
        ids = _ids(root, [entry.found.path for entry in fresh])
        for entry in fresh:
            entry.old_id = ids[entry.found.path]
        symbols: list[tuple[Any, ...]] = []
        references: list[tuple[Any, ...]] = []
        imports: list[tuple[Any, ...]] = []
        for entry in changed:
            file_id, extraction = entry.old_id, entry.extraction
            if extraction is None:
                continue
            symbols.extend((file_id, s.name[:NAME_MAX], s.name[:NAME_MAX].lower(), s.kind, s.line, s.column,
                            s.end_line, s.parent[:NAME_MAX] if s.parent else None) for s in extraction.symbols)
            references.extend((file_id, name[:NAME_MAX], orjson.dumps(spots).decode())
                              for name, spots in extraction.references.items())
            imports.extend((file_id, module[:512], line) for module, line in extraction.imports)
        _insert("index_symbols", ("file_id", "name", "name_lower", "kind", "line", "column", "end_line", "parent"),
                symbols)
        _insert("index_references", ("file_id", "name", "positions"), references)
        _insert("index_imports", ("file_id", "module", "line"), imports)


def _file_values(entry: _Changed) -> tuple[Any, ...]:
    item, extraction = entry.found, entry.extraction
    return (item.language, item.size, item.mtime, entry.digest, extraction.lines if extraction else 0, entry.error)


def _insert(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` with one prepared statement (peewee's per-row SQL building costs more than the insert)."""
    if rows:
        names = ", ".join(f'"{column}"' for column in columns)
        marks = ", ".join(db.param for _ in columns)
        db.cursor().executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608


def _ids(root: str, paths: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(paths), INSERT_CHUNK):
        query = IndexedFile.select(IndexedFile.path, IndexedFile.id).where(
            (IndexedFile.root == root) & IndexedFile.path.in_(paths[start:start + INSERT_CHUNK]))
        found.update(dict(rows_of(query)))
    return found


def _delete_children(file_ids: Sequence[int]) -> None:
    for start in range(0, len(file_ids), INSERT_CHUNK):
        chunk = file_ids[start:start + INSERT_CHUNK]
        for model in (IndexedSymbol, IndexedReference, IndexedImport):
            model.delete().where(model.file.in_(chunk)).execute()


def _touch(touched: Sequence[tuple[int, float]]) -> None:
    """Record new mtimes of files whose content did not change."""
    if not touched:
        return
    with db.connection_context(), db.atomic():
        for file_id, mtime in touched:
            IndexedFile.update(mtime=mtime).where(IndexedFile.id == file_id).execute()


def _remove(file_ids: Sequence[int]) -> None:
    if not file_ids:
        return
    with db.connection_context(), db.atomic():
        _delete_children(file_ids)
        for start in range(0, len(file_ids), INSERT_CHUNK):
            IndexedFile.delete().where(IndexedFile.id.in_(file_ids[start:start + INSERT_CHUNK])).execute()


def language_mix(root: Path) -> list[tuple[str, int, int]]:
    """``(language, files, lines)`` of ``root``'s index, most files first."""
    with db.connection_context():
        rows = rows_of(IndexedFile.select(IndexedFile.language, fn.COUNT(IndexedFile.id), fn.SUM(IndexedFile.lines))
                       .where(IndexedFile.root == str(root)).group_by(IndexedFile.language))
        return sorted(((language, files, int(lines or 0)) for language, files, lines in rows),
                      key=lambda row: (-row[1], row[0]))
