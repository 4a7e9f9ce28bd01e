"""Questions the index answers: which symbols match a name, where a name is used, where it is defined.

Names match exactly (ignoring case, exact case ranked first), by prefix (an index range scan), or
fuzzily (the letters in order, anywhere in the name, e.g. ``usrsvc`` finds ``UserService``).
``auto`` tries them in that order until ``limit`` symbols are found.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from peewee import Expression

from app.storage.db import db
from app.tools.index.build import last_rebuild
from app.tools.index.models import IndexedFile, IndexedImport, IndexedReference, IndexedSymbol, rows_of

MatchMode = Literal["auto", "exact", "prefix", "fuzzy"]
MATCH_MODES: tuple[MatchMode, ...] = ("auto", "exact", "prefix", "fuzzy")
_HIGHEST = "\U0010ffff"
_WORD = re.compile(r"[A-Za-z_$][\w$]*[?!]?")


@dataclass(frozen=True)
class SymbolHit:
    """A definition found in the index."""

    name: str
    kind: str
    path: str
    language: str
    line: int
    column: int
    end_line: int
    parent: str | None

    def describe(self) -> str:
        """``path:line:column kind name (in parent)``."""
        inside = f" (in {self.parent})" if self.parent else ""
        return f"{self.path}:{self.line}:{self.column} {self.kind} {self.name}{inside}"


@dataclass(frozen=True)
class Usage:
    """One place a name is used."""

    path: str
    line: int
    column: int


@dataclass(frozen=True)
class Filters:
    """Narrowing of a symbol search: kind, language, and a file or directory (relative to the root)."""

    kind: str | None = None
    language: str | None = None
    path: str | None = None


def search_symbols(root: Path, query: str, *, match: MatchMode = "auto", filters: Filters = Filters(),
                   limit: int = 20) -> list[SymbolHit]:
    """Symbols of ``root`` whose name matches ``query``, best first."""
    modes: Sequence[MatchMode] = ("exact", "prefix", "fuzzy") if match == "auto" else (match,)
    found: dict[tuple[str, int, int], SymbolHit] = {}
    for mode in modes:
        for hit in _ranked(_query(root, query, mode, filters, limit * 4), query, limit):
            found.setdefault((hit.path, hit.line, hit.column), hit)
        if len(found) >= limit:
            break
    return list(found.values())[:limit]


def _query(root: Path, query: str, mode: MatchMode, filters: Filters, fetch: int) -> list[SymbolHit]:
    lowered = query.lower()
    if mode == "exact":
        condition: Expression = IndexedSymbol.name_lower == lowered
    elif mode == "prefix":
        condition = (IndexedSymbol.name_lower >= lowered) & (IndexedSymbol.name_lower < lowered + _HIGHEST)
    else:
        names = _fuzzy_names(root, lowered, fetch)
        if not names:
            return []
        condition = IndexedSymbol.name_lower.in_(names)
    condition &= IndexedFile.root == str(root)
    if filters.kind:
        condition &= IndexedSymbol.kind == filters.kind
    if filters.language:
        condition &= IndexedFile.language == filters.language.lower()
    if filters.path:
        condition &= within(filters.path)
    with db.connection_context():
        rows = (IndexedSymbol.select(IndexedSymbol.name, IndexedSymbol.kind, IndexedFile.path, IndexedFile.language,
                                     IndexedSymbol.line, IndexedSymbol.column, IndexedSymbol.end_line,
                                     IndexedSymbol.parent)
                .join(IndexedFile).where(condition).order_by(IndexedSymbol.name_lower).limit(fetch))
        return [SymbolHit(*row) for row in rows_of(rows)]


@dataclass(frozen=True)
class _NameList:
    """A root's distinct lower-case symbol names, one per line, as of one rebuild."""

    rebuilt_at: float | None
    text: str


_name_lists: dict[str, _NameList] = {}
_name_lists_lock = threading.Lock()


def _fuzzy_names(root: Path, lowered: str, fetch: int) -> list[str]:
    """Names holding the letters of ``lowered`` in order, shortest first.

    A regular expression runs over every distinct name of the root at once (kept per process
    until the next rebuild), which is far quicker than a LIKE scan of every symbol row.
    """
    rebuilt_at = last_rebuild(root)
    with _name_lists_lock:
        names = _name_lists.get(str(root))
        if names is None or names.rebuilt_at != rebuilt_at:
            with db.connection_context():
                query = (IndexedSymbol.select(IndexedSymbol.name_lower).distinct().join(IndexedFile)
                         .where(IndexedFile.root == str(root)))
                names = _NameList(rebuilt_at, "\n".join(sorted(row[0] for row in rows_of(query))))
            _name_lists[str(root)] = names
    # each gap excludes the next letter, so a line is read once, without backtracking
    gaps = "".join(f"[^\\n{re.escape(letter)}]*{re.escape(letter)}" for letter in lowered)
    pattern = re.compile(f"^{gaps}[^\\n]*$", re.MULTILINE)
    found = [match.group() for match in itertools.islice(pattern.finditer(names.text), fetch * 4)]
    return sorted(found, key=len)[:fetch]


def _ranked(hits: list[SymbolHit], query: str, limit: int) -> list[SymbolHit]:
    lowered = query.lower()

    def rank(hit: SymbolHit) -> tuple[Any, ...]:
        name = hit.name.lower()
        tier = 0 if hit.name == query else 1 if name == lowered else 2 if name.startswith(lowered) else \
            3 if lowered in name else 4
        return tier, len(hit.name), hit.path, hit.line

    return sorted(hits, key=rank)[:limit]


def within(path: str) -> Expression:
    """Files at ``path`` (relative to the root) or below it."""
    if path in ("", "."):
        return IndexedFile.path.is_null(False)
    return (IndexedFile.path == path) | (IndexedFile.path.startswith(path.rstrip("/") + "/"))


def find_usages(root: Path, name: str, *, path: str | None = None, limit: int = 50) -> tuple[list[Usage], int]:
    """Where ``name`` is used (never its definition sites), and how many usages there are in all."""
    condition = (IndexedReference.name == name) & (IndexedFile.root == str(root))
    if path:
        condition &= within(path)
    with db.connection_context():
        rows = rows_of(IndexedReference.select(IndexedFile.path, IndexedReference.positions).join(IndexedFile)
                       .where(condition).order_by(IndexedFile.path))
    usages = []
    for file_path, positions in rows:
        usages += [Usage(file_path, line, column) for line, column in orjson.loads(positions)]
    return usages[:limit], len(usages)


def find_definitions(root: Path, name: str, *, prefer_path: str | None = None, limit: int = 20) -> list[SymbolHit]:
    """Definitions named exactly ``name``: those in ``prefer_path`` first, then in files it imports."""
    with db.connection_context():
        rows = (IndexedSymbol.select(IndexedSymbol.name, IndexedSymbol.kind, IndexedFile.path, IndexedFile.language,
                                     IndexedSymbol.line, IndexedSymbol.column, IndexedSymbol.end_line,
                                     IndexedSymbol.parent)
                .join(IndexedFile).where((IndexedSymbol.name_lower == name.lower()) & (IndexedSymbol.name == name)
                                         & (IndexedFile.root == str(root)))
                .order_by(IndexedFile.path, IndexedSymbol.line).limit(limit * 4))
        hits = [SymbolHit(*row) for row in rows_of(rows)]
    imported = _imported_stems(root, prefer_path) if prefer_path and len(hits) > 1 else set()
    return sorted(hits, key=lambda hit: (hit.path != prefer_path, _stem(hit.path) not in imported))[:limit]


def _imported_stems(root: Path, path: str) -> set[str]:
    """The last names of the modules the file at ``path`` imports (``./ui/widget`` → ``widget``)."""
    with db.connection_context():
        modules = rows_of(IndexedImport.select(IndexedImport.module).join(IndexedFile)
                          .where((IndexedFile.root == str(root)) & (IndexedFile.path == path)))
    return {re.split(r"[./:\\]+", module.rstrip("/"))[-1] for (module,) in modules if module}


def _stem(path: str) -> str:
    """The module name a file is imported by: its name without extension, or its folder's for an index file."""
    parts = path.split("/")
    stem = parts[-1].split(".", 1)[0]
    return parts[-2] if stem in ("__init__", "index", "mod") and len(parts) > 1 else stem


def word_at(line_text: str, column: int) -> str | None:
    """The identifier covering 1-based ``column`` of ``line_text`` (or ending just before it), if any."""
    for match in _WORD.finditer(line_text):
        if match.start() < column <= match.end() + 1:
            return match.group()
    return None
