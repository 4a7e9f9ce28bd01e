"""The test-output parser counts what pytest, jest and go test print, and nothing else."""

from __future__ import annotations

import json

import pytest

from app.tools.test_output import TestCounts, parse_test_output

PYTEST_VERBOSE = """\
============================= test session starts ==============================
platform linux -- Python 3.11.9, pytest-8.3.2, pluggy-1.5.0
rootdir: /srv/project
collected 6 items

test_sample.py .F.sxX                                                    [100%]

=================================== FAILURES ===================================
___________________________________ test_bad ___________________________________

    def test_bad():
>       assert 1 == 2
E       assert 1 == 2

test_sample.py:5: AssertionError
=========================== short test summary info ============================
FAILED test_sample.py::test_bad - assert 1 == 2
========= 1 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed in 0.05s =========
"""

PYTEST_COLLECTION_ERROR = """\
collected 3 items / 1 error

==================================== ERRORS ====================================
_____________________ ERROR collecting test_broken.py _______________________
ImportError while importing test module '/srv/project/test_broken.py'.
=========================== short test summary info ============================
ERROR test_broken.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
=============================== 1 error in 0.31s ===============================
"""

JEST = """\
 PASS  src/sum.test.js
 FAIL  src/sub.test.js
  ● sub \u203a subtracts

    expect(received).toBe(expected) // Object.is equality

    Expected: 1
    Received: 2

 FAIL  src/broken.test.js
  ● Test suite failed to run

    Cannot find module './missing' from 'src/broken.test.js'

Test Suites: 2 failed, 1 passed, 3 total
Tests:       1 failed, 1 skipped, 1 todo, 4 passed, 7 total
Snapshots:   0 total
Time:        1.234 s
Ran all test suites.
"""

GO_VERBOSE = """\
=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestTable
=== RUN   TestTable/zero
=== RUN   TestTable/negative
    calc_test.go:21: got -1, want 1
--- FAIL: TestTable (0.00s)
    --- PASS: TestTable/zero (0.00s)
    --- FAIL: TestTable/negative (0.00s)
=== RUN   TestLater
    calc_test.go:30: not yet
--- SKIP: TestLater (0.00s)
FAIL
FAIL\texample.com/calc\t0.004s
# example.com/broken
broken/broken.go:3:1: syntax error: non-declaration statement outside function body
FAIL\texample.com/broken [build failed]
FAIL
"""


def go_json_events() -> str:
    events = [
        {"Action": "start", "Package": "example.com/calc"},
        {"Action": "run", "Package": "example.com/calc", "Test": "TestAdd"},
        {"Action": "output", "Package": "example.com/calc", "Test": "TestAdd", "Output": "--- PASS: TestAdd (0.00s)\n"},
        {"Action": "pass", "Package": "example.com/calc", "Test": "TestAdd", "Elapsed": 0},
        {"Action": "run", "Package": "example.com/calc", "Test": "TestSub"},
        {"Action": "fail", "Package": "example.com/calc", "Test": "TestSub", "Elapsed": 0},
        {"Action": "skip", "Package": "example.com/calc", "Test": "TestLater", "Elapsed": 0},
        {"Action": "output", "Package": "example.com/calc", "Output": "FAIL\n"},
        {"Action": "fail", "Package": "example.com/calc", "Elapsed": 0.004},
    ]
    return "\n".join(json.dumps(event) for event in events) + "\n"


@pytest.mark.parametrize(("output", "expected"), [
    pytest.param(PYTEST_VERBOSE, TestCounts(passed=3, failed=1, skipped=2, errors=0), id="pytest-verbose"),
    pytest.param(PYTEST_COLLECTION_ERROR, TestCounts(errors=1), id="pytest-collection-error"),
    pytest.param(".F\n1 failed, 1 passed, 2 warnings in 0.02s\n", TestCounts(passed=1, failed=1), id="pytest-quiet"),
    pytest.param("2 passed, 1 deselected in 0.01s\n", TestCounts(passed=2), id="pytest-deselected"),
    pytest.param("\n============================ no tests ran in 0.01s =============================\n",
                 TestCounts(), id="pytest-no-tests"),
    pytest.param("==== 1 passed, 1 warnings in 0.12 seconds ====\n", TestCounts(passed=1), id="pytest-old-seconds"),
    pytest.param(JEST, TestCounts(passed=4, failed=1, skipped=2, errors=1), id="jest"),
    pytest.param(GO_VERBOSE, TestCounts(passed=2, failed=2, skipped=1, errors=1), id="go-verbose"),
    pytest.param(go_json_events(), TestCounts(passed=1, failed=1, skipped=1, errors=0), id="go-json"),
])
def test_counts_are_read_from_each_runners_summary(output: str, expected: TestCounts) -> None:
    assert parse_test_output(output) == expected


def test_the_last_pytest_summary_wins_over_one_a_test_printed() -> None:
    output = "captured: 9 passed in 1.00s\n" + PYTEST_VERBOSE
    assert parse_test_output(output) == TestCounts(passed=3, failed=1, skipped=2, errors=0)


@pytest.mark.parametrize("output", [
    "",
    "make: *** No rule to make target 'test'.  Stop.\n",
    "bash: pytest: command not found\n",
    "ok  \texample.com/calc\t0.004s\n",  # go test without -v names no test
    '{"not": "a go event"}\n',
])
def test_output_naming_no_counts_gives_none(output: str) -> None:
    assert parse_test_output(output) is None
