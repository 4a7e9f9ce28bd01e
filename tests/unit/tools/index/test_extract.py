"""Symbols, references and imports from source: tree-sitter where there is a grammar, patterns elsewhere."""

from __future__ import annotations

import pytest

from app.tools.index.extract import MAX_POSITIONS_PER_NAME, Extraction, ParseFailed, Symbol, extract

PYTHON = b'''import os
from app.models import Base, helper_base

class Repo(Base):
    def save(self, item):
        return helper(item)

def helper(value):
    return Repo().save(value)
helper(1)

LIMIT = 10
'''

TYPESCRIPT = b'''import { Widget } from "./widget";
export interface Props { size: number }
export type Size = "s" | "m";
export enum Color { Red, Blue }
export class Panel extends Widget {
  render(props: Props): void { const w = new Widget(); }
}
export const makePanel = (p: Props) => new Panel();
export function build(): Panel { return makePanel({ size: 1 }); }
const retries = 3;
'''

RUBY = b'''require "json"
require_relative "cart/item"

module Shop
  class Cart
    def add_item(item)
      items << item
    end

    def self.build
      new
    end
  end
end
'''


def kinds(extraction: Extraction) -> list[tuple[str, str, int, str | None]]:
    return [(s.name, s.kind, s.line, s.parent) for s in extraction.symbols]


def test_python_definitions_nest_and_methods_are_told_from_functions() -> None:
    found = extract(PYTHON, "python")
    assert found.symbols == [
        Symbol("Repo", "class", 4, 7, 6, None), Symbol("save", "method", 5, 9, 6, "Repo"),
        Symbol("helper", "function", 8, 5, 9, None), Symbol("LIMIT", "variable", 12, 1, 12, None),
    ]
    assert found.imports == [("os", 1), ("app.models", 2)]
    assert found.lines == 12


def test_references_are_usages_never_the_definition_site() -> None:
    found = extract(PYTHON, "python")
    assert found.references["helper"] == [(6, 16), (10, 1)]  # two calls, never line 8's definition
    assert found.references["Repo"] == [(9, 12)]
    assert found.references["Base"] == [(2, 24), (4, 12)]


def test_typescript_definitions_of_every_kind() -> None:
    found = extract(TYPESCRIPT, "typescript")
    assert kinds(found) == [
        ("Props", "interface", 2, None), ("Size", "type", 3, None), ("Color", "enum", 4, None),
        ("Panel", "class", 5, None), ("render", "method", 6, "Panel"), ("makePanel", "function", 8, None),
        ("build", "function", 9, None), ("retries", "variable", 10, None),
    ]
    assert found.imports == [("./widget", 1)]
    assert found.references["Widget"] == [(1, 10), (5, 28), (6, 46)]
    assert found.references["Props"] == [(6, 17), (8, 30)]


def test_tsx_and_javascript_parse_with_their_own_grammars() -> None:
    tsx = extract(b"export function App(): JSX.Element { return <div>{title}</div>; }\n", "tsx")
    assert kinds(tsx) == [("App", "function", 1, None)]
    js = extract(b"const fs = require('fs');\nclass A { go() {} }\nfunction b() { return new A(); }\n",
                 "javascript")
    assert kinds(js) == [("fs", "variable", 1, None), ("A", "class", 2, None), ("go", "method", 2, "A"),
                         ("b", "function", 3, None)]
    assert js.imports == [("fs", 1)]


@pytest.mark.parametrize(("language", "source", "expected"), [
    ("go", b'package main\nimport "fmt"\ntype T struct{}\nfunc (t T) Run() {}\nfunc main() { fmt.Println(1) }\n',
     [("T", "type", 3, None), ("Run", "method", 4, None), ("main", "function", 5, None)]),
    ("rust", b"use std::io;\nstruct S;\ntrait Greet { fn hi(&self); }\nfn main() {}\n",
     [("S", "struct", 2, None), ("Greet", "trait", 3, None), ("hi", "method", 3, "Greet"),
      ("main", "function", 4, None)]),
    ("java", b"import java.util.List;\npublic class A {\n  public A() {}\n  void run() {}\n}\n",
     [("A", "class", 2, None), ("A", "constructor", 3, "A"), ("run", "method", 4, "A")]),
])
def test_go_rust_and_java(language: str, source: bytes, expected: list[tuple[str, str, int, str | None]]) -> None:
    assert kinds(extract(source, language)) == expected


@pytest.mark.parametrize("use_grammar", [True, False])
def test_ruby_methods_are_found_with_the_grammar_and_by_the_patterns_alone(use_grammar: bool) -> None:
    found = extract(RUBY, "ruby", use_grammar=use_grammar)
    assert kinds(found) == [("Shop", "module", 4, None), ("Cart", "class", 5, "Shop"),
                            ("add_item", "method", 6, "Cart"), ("build", "method", 10, "Cart")]
    assert found.imports == [("json", 1), ("cart/item", 2)]
    assert [s.end_line for s in found.symbols] == [14, 13, 8, 12]


def test_languages_without_a_grammar_use_the_patterns() -> None:
    php = extract(b"<?php\nfunction total($a) {}\nclass Bill {\n  public function pay() { total(1); }\n}\n", "php")
    assert kinds(php) == [("total", "function", 2, None), ("Bill", "class", 3, None), ("pay", "method", 4, "Bill")]
    assert php.references["total"] == [(4, 27)]
    kotlin = extract(b"data class User(val id: Int)\nfun greet(user: User) = println(user)\n", "kotlin")
    assert kinds(kotlin) == [("User", "class", 1, None), ("greet", "function", 2, None)]
    shell = extract(b"#!/bin/sh\ndeploy() {\n  echo hi\n}\n", "shell")
    assert kinds(shell) == [("deploy", "function", 2, None)]


def test_text_that_is_not_utf8_fails_to_parse() -> None:
    with pytest.raises(ParseFailed, match="not UTF-8 text"):
        extract(b"def f():\n    return '\xff'\n", "python")


def test_a_name_used_very_often_keeps_only_the_first_positions() -> None:
    source = b"".join(b"x = value + value\n" for _ in range(MAX_POSITIONS_PER_NAME))
    found = extract(source, "python")
    assert len(found.references["value"]) == MAX_POSITIONS_PER_NAME
    assert found.references["value"][:2] == [(1, 5), (1, 13)]


def test_broken_source_still_yields_what_parses() -> None:
    found = extract(b"def ok():\n    pass\n\ndef broken(:\n", "python")
    assert ("ok", "function", 1, None) in kinds(found)
