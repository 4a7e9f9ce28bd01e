"""The operator's git rules: whether pushing is allowed, which commit messages are, and whether a
commit needs a passing test run first.

``POLICY_GIT_ALLOW_PUSH`` (off by default) covers ``workspace_git_push`` and ``git push`` typed
into ``shell``. With ``POLICY_GIT_REQUIRE_TESTS`` a commit is refused until the newest run of the
test command (``POLICY_GIT_TEST_COMMAND``, else ``WORKSPACE_TEST_COMMAND``) recorded after the
working tree last changed has passed; without a test command it is refused and says so.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime

from app.config import Config
from app.storage.db import db
from app.storage.models import TestRun
from app.tools.base import ToolError

RECENT_RUNS = 50  # test runs looked at for the commit rule

PUSH_REFUSED = ("pushing is disabled by the gateway's policy (POLICY_GIT_ALLOW_PUSH=false); the operator must set "
                "POLICY_GIT_ALLOW_PUSH=true to allow it")


class PolicyRefused(ToolError):
    """An operation the ``POLICY_GIT_*`` settings do not allow; the message names the setting."""


def check_push(config: Config) -> None:
    """Refuse unless ``POLICY_GIT_ALLOW_PUSH`` is on."""
    if not config.policy_git_allow_push:
        raise PolicyRefused(PUSH_REFUSED)


def check_message(config: Config, message: str) -> None:
    """Refuse a commit message that ``POLICY_GIT_COMMIT_REGEX`` does not match."""
    rule = config.policy_git_commit_regex
    if not rule:
        return
    try:
        matched = re.search(rule, message)
    except re.error as exc:
        raise PolicyRefused(f"POLICY_GIT_COMMIT_REGEX is not a valid regular expression ({exc}); the operator "
                            "must fix it") from exc
    if matched is None:
        raise PolicyRefused(f"the commit message does not match the required pattern {rule!r} "
                            "(POLICY_GIT_COMMIT_REGEX); reword it")


def required_test_command(config: Config) -> list[str]:
    """The argv whose passing run a commit needs (empty when none is configured)."""
    command = config.policy_git_test_command or config.workspace_test_command
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise PolicyRefused(f"the test command {command!r} cannot be split into arguments: {exc}") from exc


def check_tests(config: Config, changed_at: float) -> None:
    """Refuse a commit, under ``POLICY_GIT_REQUIRE_TESTS``, without a passing run after ``changed_at``."""
    if not config.policy_git_require_tests:
        return
    argv = required_test_command(config)
    if not argv:
        raise PolicyRefused("POLICY_GIT_REQUIRE_TESTS is on but no test command is configured (POLICY_GIT_TEST_COMMAND "
                            "or WORKSPACE_TEST_COMMAND), so the commit is refused rather than allowed untested")
    since = datetime.fromtimestamp(changed_at, UTC)
    with db.connection_context():
        runs = list(TestRun.select().order_by(TestRun.created_at.desc()).limit(RECENT_RUNS))
    fresh = [run for run in runs if _aware(run.created_at) > since and json.loads(run.command)[:len(argv)] == argv]
    shown = shlex.join(argv)
    if not fresh:
        raise PolicyRefused(f"POLICY_GIT_REQUIRE_TESTS: no run of `{shown}` since the working tree last changed "
                            f"({since:%Y-%m-%d %H:%M:%S} UTC); run the tests (workspace_test_run) and commit once "
                            "they pass")
    if fresh[0].status != "passed":
        raise PolicyRefused(f"POLICY_GIT_REQUIRE_TESTS: the latest run of `{shown}` (#{fresh[0].get_id()}) "
                            f"{fresh[0].status}; fix the failures and run the tests again before committing")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
