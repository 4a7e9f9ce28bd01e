"""Turning one source file into symbols, references and imports.

Languages with a grammar are parsed by tree-sitter and read through its queries, so the
matching runs in C and Python only sees the captured nodes. Every other language goes to a
pattern extractor that finds definitions line by line (``def``, ``class``, ``function``, ``fn``,
``func``, ``module``, …) and treats every other word as a possible reference. Either way a
symbol's enclosing symbol is the innermost definition around it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tree_sitter import Node, QueryCursor

from app.tools.index.languages import Grammar, grammar, parser_for

MAX_POSITIONS_PER_NAME = 50  # references of one name kept per file
CONTAINER_KINDS = frozenset({"class", "interface", "module", "struct", "trait", "enum"})


class ParseFailed(Exception):
    """The file could not be read as source; the message says why."""


@dataclass(frozen=True)
class Symbol:
    """A definition: 1-based line and column of its name, the line it ends on, its enclosing symbol."""

    name: str
    kind: str
    line: int
    column: int
    end_line: int
    parent: str | None = None


@dataclass
class Extraction:
    """What one file defines, uses and imports."""

    lines: int
    symbols: list[Symbol] = field(default_factory=list)
    references: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    imports: list[tuple[str, int]] = field(default_factory=list)

    def add_reference(self, name: str, line: int, column: int) -> None:
        """Record a usage of ``name`` (at most :data:`MAX_POSITIONS_PER_NAME` per name)."""
        positions = self.references.setdefault(name, [])
        if len(positions) < MAX_POSITIONS_PER_NAME:
            positions.append((line, column))


def extract(source: bytes, language: str, *, use_grammar: bool = True) -> Extraction:
    """Symbols, references and imports of ``source``; raises :class:`ParseFailed` when it is not text."""
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseFailed(f"not UTF-8 text (byte {exc.start})") from exc
    found = grammar(language) if use_grammar else None
    if found is None:
        return _with_patterns(text, language)
    return _with_grammar(found, source, text.count("\n") + (0 if text.endswith("\n") or not text else 1))


# tree-sitter

def _with_grammar(found: Grammar, source: bytes, lines: int) -> Extraction:
    tree = parser_for(found).parse(source)
    result = Extraction(lines)
    definitions: dict[tuple[int, int], tuple[Node, Node, str]] = {}  # by the name's position
    for _, captures in QueryCursor(found.definitions).matches(tree.root_node):
        if "import" in captures:
            node = captures["import"][0]
            result.imports.append((_text(node).strip("'\"`"), node.start_point[0] + 1))
            continue
        kind = next((key for key in captures if key.startswith("definition.")), None)
        if kind is None or "name" not in captures:
            continue
        name = captures["name"][0]
        earlier = definitions.get(name.start_point)
        if earlier is None or earlier[2] == "variable":  # `const f = () => …` is a function, not a variable
            definitions[name.start_point] = (captures[kind][0], name, kind.removeprefix("definition."))
    result.symbols = _nest(list(definitions.values()))
    # the hottest loop of a rebuild (every identifier of every file), so it stays plain
    references: dict[str, list[tuple[int, int]]] = {}
    for node in QueryCursor(found.references).captures(tree.root_node).get("reference", ()):
        row, column = node.start_point
        if (row, column) not in definitions:
            label = (node.text or b"").decode("utf-8", errors="replace")
            spots = references.get(label)
            if spots is None:
                references[label] = [(row + 1, column + 1)]
            else:
                spots.append((row + 1, column + 1))
    for spots in references.values():  # captures of an alternation come grouped by node type
        spots.sort()
        del spots[MAX_POSITIONS_PER_NAME:]
    result.references = references
    return result


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


def _nest(definitions: list[tuple[Node, Node, str]]) -> list[Symbol]:
    """Symbols in source order, each with the innermost definition around it as parent."""
    symbols: list[Symbol] = []
    stack: list[tuple[int, str, str]] = []  # (end byte, name, kind) of the open definitions
    for node, name, kind in sorted(definitions, key=lambda item: (item[0].start_byte, -item[0].end_byte)):
        while stack and stack[-1][0] <= node.start_byte:
            stack.pop()
        parent = stack[-1] if stack else None
        if kind == "function" and parent is not None and parent[2] in CONTAINER_KINDS:
            kind = "method"
        label = _text(name)
        symbols.append(Symbol(label, kind, name.start_point[0] + 1, name.start_point[1] + 1,
                              node.end_point[0] + 1, parent[1] if parent else None))
        stack.append((node.end_byte, label, kind))
    return symbols


# patterns

_MODIFIERS = r"(?:(?:export|default|public|private|protected|internal|static|abstract|final|sealed|open|data|" \
             r"async|pub(?:\([\w:]+\))?|unsafe|extern|inline|override|virtual|local)\s+)*"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(\s*)" + _MODIFIERS + r"(?:class|struct|interface|enum|trait|protocol|object|record|union)\s+"
                r"([A-Za-z_]\w*)"), "class"),
    (re.compile(r"^(\s*)module\s+([A-Z]\w*(?:::\w+)*)"), "module"),
    (re.compile(r"^(\s*)" + _MODIFIERS + r"def\s+(?:self\.)?([A-Za-z_]\w*[?!=]?)"), "function"),
    (re.compile(r"^(\s*)" + _MODIFIERS + r"(?:function\s*\*?|func|fun|fn|sub|defp?|proc)\s+&?"
                r"(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*(?:[.:][A-Za-z_]\w*)*)"), "function"),
    (re.compile(r"^(\s*)([A-Za-z_]\w*)\s*\(\)\s*\{"), "function"),  # shell functions
)
_IMPORTS = (
    re.compile(r"^\s*require(?:_relative)?\s*\(?\s*['\"]([^'\"]+)['\"]"),
    re.compile(r"^\s*#\s*include\s*[<\"]([^>\"]+)[>\"]"),
    re.compile(r"^\s*(?:import|use|using)\s+(?:static\s+)?([\w.:\\/]+)"),
)
_WORD = re.compile(r"[A-Za-z_]\w*[?!]?")
_KEYWORDS = frozenset((
    "def", "end", "class", "module", "if", "else", "elsif", "elif", "unless", "while", "until", "for", "in", "do",
    "return", "self", "this", "super", "nil", "null", "none", "true", "false", "and", "or", "not", "then", "begin",
    "rescue", "ensure", "yield", "function", "var", "let", "const", "new", "import", "export", "from", "use",
    "public", "private", "protected", "static", "void", "int", "fn", "func", "fun", "package", "struct", "enum",
    "trait", "impl", "match", "case", "when", "break", "continue", "try", "catch", "finally", "throw", "throws",
    "raise", "lambda", "include", "require", "require_relative", "attr_accessor", "attr_reader", "attr_writer",
    "local", "sub", "my", "our",
))


def _with_patterns(text: str, language: str) -> Extraction:
    lines = text.splitlines()
    result = Extraction(len(lines))
    open_blocks: list[tuple[int, str, str]] = []  # (indent, name, kind) of enclosing containers
    found: list[tuple[Symbol, int]] = []
    for number, line in enumerate(lines, 1):
        definition = _definition(line, language)
        for pattern in _IMPORTS:
            imported = pattern.match(line)
            if imported:
                result.imports.append((imported.group(1), number))
                break
        skip_column = None
        if definition is not None:
            indent, name, kind, column = definition
            while open_blocks and open_blocks[-1][0] >= indent:
                open_blocks.pop()
            parent = open_blocks[-1] if open_blocks else None
            if kind == "function" and parent is not None:
                kind = "method"
            found.append((Symbol(name, kind, number, column, number, parent[1] if parent else None), indent))
            if kind in CONTAINER_KINDS:
                open_blocks.append((indent, name, kind))
            skip_column = column
        _words(result, line, number, skip_column)
    result.symbols = [_with_end(symbol, indent, lines) for symbol, indent in found]
    return result


def _definition(line: str, language: str) -> tuple[int, str, str, int] | None:
    for pattern, kind in _PATTERNS:
        match = pattern.match(line)
        if match:
            if language == "ruby" and kind == "function":
                kind = "method"
            return len(match.group(1).expandtabs()), match.group(2), kind, match.start(2) + 1
    return None


def _words(result: Extraction, line: str, number: int, skip_column: int | None) -> None:
    for word in _WORD.finditer(line):
        column = word.start() + 1
        if column != skip_column and word.group() not in _KEYWORDS:
            result.add_reference(word.group(), number, column)


def _with_end(symbol: Symbol, indent: int, lines: Sequence[str]) -> Symbol:
    """``symbol`` with its last line: the closing line at its indentation, or the line before a dedent."""
    end = symbol.line
    for number in range(symbol.line, len(lines)):  # 0-based index of the line after the definition
        line = lines[number]
        stripped = line.lstrip()
        if not stripped:
            continue
        if len(line) - len(stripped) <= indent:
            if stripped.startswith(("end", "}", ")")):
                end = number + 1
            break
        end = number + 1
    return Symbol(symbol.name, symbol.kind, symbol.line, symbol.column, end, symbol.parent)
