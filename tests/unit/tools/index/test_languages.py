"""Which language a file is, and the grammars and queries for the languages that have one."""

from __future__ import annotations

import pytest

from app.tools.index.languages import QUERIES, grammar, language_of, parser_for


@pytest.mark.parametrize(("path", "language"), [
    ("src/app.py", "python"), ("types.pyi", "python"), ("web/main.JS", "javascript"), ("x.mjs", "javascript"),
    ("a/b.ts", "typescript"), ("view.tsx", "tsx"), ("main.go", "go"), ("lib.rs", "rust"), ("A.java", "java"),
    ("cart.rb", "ruby"), ("Rakefile", "ruby"), ("Gemfile", "ruby"), ("util.c", "c"), ("index.php", "php"),
    ("README.md", None), ("data.json", None), ("Makefile", None),
])
def test_the_language_comes_from_the_suffix_or_a_well_known_name(path: str, language: str | None) -> None:
    assert language_of(path) == language


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_grammar_loads_and_its_queries_compile(name: str) -> None:
    found = grammar(name)
    assert found is not None
    assert found.name == name
    assert found.definitions.pattern_count > 0
    assert found.references.pattern_count == 1
    assert parser_for(found) is parser_for(found)  # one parser per thread and language


def test_a_language_without_a_grammar_package_has_none() -> None:
    assert grammar("php") is None
    assert grammar("c") is None
