"""Counting passed, failed, skipped and errored tests in a test runner's output (pure).

Recognised, in this order: pytest's summary line (``1 failed, 2 passed in 0.12s``), jest's
``Tests:`` line, ``go test -json`` events and plain ``go test -v`` result lines. Anything else
gives ``None``: a run whose output names no counts is not reported as zero tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True, slots=True)
class TestCounts:
    """How many tests passed, failed, were skipped, or errored outside a test."""

    __test__ = False  # not a pytest test class
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0


_FIELDS = tuple(f.name for f in fields(TestCounts))

# pytest: "==== 1 failed, 1 passed, 2 skipped in 0.12s ====" (or without the rules under -q).
_PYTEST_SUMMARY = re.compile(
    r"^[=\s]*(?:((?:\d+ [a-z]+(?:, )?)+)|no tests ran) in [\d.]+\s?s(?:econds)?\b", re.MULTILINE
)
_PYTEST_WORDS = {"passed": "passed", "xpassed": "passed", "failed": "failed", "skipped": "skipped",
                 "xfailed": "skipped", "error": "errors", "errors": "errors"}
# jest: "Tests:       1 failed, 2 skipped, 3 passed, 6 total".
_JEST_TESTS = re.compile(r"^Tests:\s+((?:\d+ [a-z]+(?:, )?)+)$", re.MULTILINE)
_JEST_WORDS = {"passed": "passed", "failed": "failed", "skipped": "skipped", "todo": "skipped"}
_JEST_SUITE_ERROR = "● Test suite failed to run"
# go test -v: "--- PASS: TestAdd (0.00s)", subtests indented; a package that did not build.
_GO_RESULT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): \S+", re.MULTILINE)
_GO_WORDS = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}
_GO_BROKEN = re.compile(r"^FAIL\s+\S+\s+\[(?:build|setup) failed\]", re.MULTILINE)


def parse_test_output(text: str) -> TestCounts | None:
    """The counts a recognised test runner printed in ``text``, or ``None``."""
    for parse in (_pytest, _jest, _go_json, _go_plain):
        counts = parse(text)
        if counts is not None:
            return counts
    return None


def _tally(phrase: str, words: dict[str, str]) -> TestCounts:
    """Add up ``"3 passed, 1 failed"`` using ``words`` to name each count's field."""
    totals = dict.fromkeys(_FIELDS, 0)
    for number, word in re.findall(r"(\d+) ([a-z]+)", phrase):
        if word in words:
            totals[words[word]] += int(number)
    return TestCounts(**totals)


def _pytest(text: str) -> TestCounts | None:
    matches = list(_PYTEST_SUMMARY.finditer(text))
    if not matches:
        return None
    return _tally(matches[-1].group(1) or "", _PYTEST_WORDS)


def _jest(text: str) -> TestCounts | None:
    matches = list(_JEST_TESTS.finditer(text))
    if not matches:
        return None
    counts = _tally(matches[-1].group(1), _JEST_WORDS)
    return replace(counts, errors=text.count(_JEST_SUITE_ERROR))


def _go_json(text: str) -> TestCounts | None:
    totals = dict.fromkeys(_FIELDS, 0)
    seen = False
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or "Action" not in event:
            continue
        seen = True
        field = {"pass": "passed", "fail": "failed", "skip": "skipped"}.get(event["Action"])
        if field and event.get("Test"):
            totals[field] += 1
    return TestCounts(**totals) if seen else None


def _go_plain(text: str) -> TestCounts | None:
    results = _GO_RESULT.findall(text)
    broken = len(_GO_BROKEN.findall(text))
    if not results and not broken:
        return None
    totals = dict.fromkeys(_FIELDS, 0)
    for word in results:
        totals[_GO_WORDS[word]] += 1
    totals["errors"] = broken
    return TestCounts(**totals)
