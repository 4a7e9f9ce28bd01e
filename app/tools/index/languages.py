"""Which language a file is written in, and the tree-sitter grammar and queries for it.

Grammars come from the PyPI packages (``tree-sitter-python`` and friends) and are loaded on
first use; a language whose package is missing has no grammar, and its files go to the pattern
extractor instead. Each definition query names definitions ``@definition.<kind>`` with the
defined name as ``@name``, and imported modules ``@import``; the reference query captures every
identifier-like node as ``@reference`` (the extractor drops the definition sites).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

from tree_sitter import Language, Parser, Query

LANGUAGE_BY_SUFFIX = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".rb": "ruby", ".rake": "ruby",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".cs": "csharp", ".php": "php", ".kt": "kotlin", ".kts": "kotlin", ".swift": "swift",
    ".scala": "scala", ".lua": "lua", ".sh": "shell", ".bash": "shell", ".pl": "perl", ".ex": "elixir",
    ".exs": "elixir", ".dart": "dart",
}
LANGUAGE_BY_NAME = {"Rakefile": "ruby", "Gemfile": "ruby", "Dockerfile": "dockerfile"}

# (module, function returning the language pointer)
_GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}

_JS_DEFINITIONS = """
(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(method_definition name: (property_identifier) @name) @definition.method
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @definition.function
(program (lexical_declaration (variable_declarator name: (identifier) @name) @definition.variable))
(program (variable_declaration (variable_declarator name: (identifier) @name) @definition.variable))
(program (export_statement (lexical_declaration (variable_declarator name: (identifier) @name) @definition.variable)))
(import_statement source: (string) @import)
(call_expression function: (identifier) @_require arguments: (arguments . (string) @import)
  (#eq? @_require "require"))
"""

_TS_DEFINITIONS = """
(interface_declaration name: (type_identifier) @name) @definition.interface
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
(class_declaration name: (type_identifier) @name) @definition.class
(abstract_class_declaration name: (type_identifier) @name) @definition.class
(method_signature name: (property_identifier) @name) @definition.method
(abstract_method_signature name: (property_identifier) @name) @definition.method
(function_signature name: (identifier) @name) @definition.function
""" + _JS_DEFINITIONS

REFERENCE_NODES = {
    "python": ("identifier",),
    "javascript": ("identifier", "property_identifier", "shorthand_property_identifier"),
    "typescript": ("identifier", "type_identifier", "property_identifier", "shorthand_property_identifier"),
    "tsx": ("identifier", "type_identifier", "property_identifier", "shorthand_property_identifier"),
    "go": ("identifier", "type_identifier", "field_identifier"),
    "rust": ("identifier", "type_identifier", "field_identifier"),
    "java": ("identifier", "type_identifier"),
    "ruby": ("identifier", "constant"),
}

QUERIES = {
    "python": """
(class_definition name: (identifier) @name) @definition.class
(function_definition name: (identifier) @name) @definition.function
(module (expression_statement (assignment left: (identifier) @name) @definition.variable))
(import_statement name: [(dotted_name) (aliased_import name: (dotted_name))] @import)
(import_from_statement module_name: (_) @import)
""",
    "javascript": """
(class_declaration name: (identifier) @name) @definition.class
""" + _JS_DEFINITIONS,
    "typescript": _TS_DEFINITIONS,
    "tsx": _TS_DEFINITIONS,
    "go": """
(function_declaration name: (identifier) @name) @definition.function
(method_declaration name: (field_identifier) @name) @definition.method
(type_spec name: (type_identifier) @name) @definition.type
(source_file (const_declaration (const_spec name: (identifier) @name) @definition.constant))
(source_file (var_declaration (var_spec name: (identifier) @name) @definition.variable))
(import_spec path: (interpreted_string_literal) @import)
""",
    "rust": """
(function_item name: (identifier) @name) @definition.function
(function_signature_item name: (identifier) @name) @definition.function
(struct_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(trait_item name: (type_identifier) @name) @definition.trait
(type_item name: (type_identifier) @name) @definition.type
(mod_item name: (identifier) @name) @definition.module
(macro_definition name: (identifier) @name) @definition.macro
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.variable
(use_declaration argument: (_) @import)
""",
    "java": """
(class_declaration name: (identifier) @name) @definition.class
(interface_declaration name: (identifier) @name) @definition.interface
(enum_declaration name: (identifier) @name) @definition.enum
(record_declaration name: (identifier) @name) @definition.class
(method_declaration name: (identifier) @name) @definition.method
(constructor_declaration name: (identifier) @name) @definition.constructor
(import_declaration (scoped_identifier) @import)
""",
    "ruby": """
(class name: [(constant) (scope_resolution)] @name) @definition.class
(module name: [(constant) (scope_resolution)] @name) @definition.module
(method name: (_) @name) @definition.method
(singleton_method name: (_) @name) @definition.method
(call method: (identifier) @_require arguments: (argument_list . (string (string_content) @import))
  (#match? @_require "^require"))
""",
}


def language_of(path: str) -> str | None:
    """The language of the file at ``path`` (by suffix or well-known name), or None when not source."""
    pure = PurePosixPath(path)
    return LANGUAGE_BY_NAME.get(pure.name) or LANGUAGE_BY_SUFFIX.get(pure.suffix.lower())


@dataclass(frozen=True)
class Grammar:
    """A loaded tree-sitter language with its compiled queries."""

    name: str
    language: Language
    definitions: Query
    references: Query


@cache
def grammar(name: str) -> Grammar | None:
    """The grammar for language ``name``, or None when no grammar package is installed for it."""
    source = _GRAMMARS.get(name)
    if source is None:
        return None
    try:
        module = importlib.import_module(source[0])
    except ImportError:
        return None
    language = Language(getattr(module, source[1])())
    references = "[" + " ".join(f"({node})" for node in REFERENCE_NODES[name]) + "] @reference"
    return Grammar(name, language, Query(language, QUERIES[name]), Query(language, references))


_parsers = threading.local()


def parser_for(found: Grammar) -> Parser:
    """This thread's parser for ``found`` (a parser is not safe to share between threads)."""
    cached: dict[str, Parser] = _parsers.__dict__.setdefault("by_name", {})
    if found.name not in cached:
        cached[found.name] = Parser(found.language)
    return cached[found.name]
