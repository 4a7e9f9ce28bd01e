"""The POLICY_GIT_* rules: push permission, commit message pattern, tests before a commit."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from app.config import Config
from app.storage.models import TestRun
from app.tools.git.policy import PolicyRefused, check_message, check_push, check_tests, required_test_command


def run_at(moment: float, status: str, command: list[str]) -> None:
    TestRun.create(command=json.dumps(command), status=status, created_at=datetime.fromtimestamp(moment, UTC))


def test_push_is_refused_by_default_naming_the_setting() -> None:
    with pytest.raises(PolicyRefused, match=r"POLICY_GIT_ALLOW_PUSH=false\); the operator must set "
                                            r"POLICY_GIT_ALLOW_PUSH=true"):
        check_push(Config())
    check_push(Config(policy_git_allow_push=True))


def test_the_commit_message_rule() -> None:
    check_message(Config(), "anything")
    config = Config(policy_git_commit_regex=r"^(feat|fix)(\(\w+\))?: .+")
    check_message(config, "fix(cart): round totals")
    with pytest.raises(PolicyRefused, match="does not match the required pattern .* "
                                            r"\(POLICY_GIT_COMMIT_REGEX\); reword it"):
        check_message(config, "Round totals")
    with pytest.raises(PolicyRefused, match="POLICY_GIT_COMMIT_REGEX is not a valid regular expression"):
        check_message(Config(policy_git_commit_regex="("), "x")


def test_the_required_command_is_the_policys_or_the_workspaces() -> None:
    assert required_test_command(Config(workspace_test_command="pytest -q")) == ["pytest", "-q"]
    assert required_test_command(Config(workspace_test_command="pytest", policy_git_test_command="make test")) == \
        ["make", "test"]
    assert required_test_command(Config()) == []


def test_without_the_rule_any_commit_passes(database: Any) -> None:
    check_tests(Config(), time.time())


def test_with_the_rule_and_no_test_command_the_commit_is_refused_saying_so(database: Any) -> None:
    with pytest.raises(PolicyRefused, match=r"no test command is configured .* refused rather than allowed untested"):
        check_tests(Config(policy_git_require_tests=True), 0)


def test_a_commit_needs_a_passing_run_of_the_command_after_the_last_change(database: Any) -> None:
    config = Config(policy_git_require_tests=True, workspace_test_command="pytest -q")
    changed = time.time() - 100
    with pytest.raises(PolicyRefused, match=r"no run of `pytest -q` since the working tree last changed .* "
                                            r"run the tests \(workspace_test_run\)"):
        check_tests(config, changed)
    run_at(changed - 10, "passed", ["pytest", "-q"])  # before the change: does not count
    run_at(changed + 10, "passed", ["npm", "test"])  # another command: does not count
    with pytest.raises(PolicyRefused, match="no run of `pytest -q`"):
        check_tests(config, changed)
    run_at(changed + 20, "failed", ["pytest", "-q", "tests/unit"])
    with pytest.raises(PolicyRefused, match=r"the latest run of `pytest -q` \(#3\) failed; fix the failures"):
        check_tests(config, changed)
    run_at(changed + 30, "passed", ["pytest", "-q"])
    check_tests(config, changed)
