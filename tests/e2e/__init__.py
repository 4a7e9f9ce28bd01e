import pytest

# The shared test helpers assert on behalf of the tests: give their failures pytest's detail too.
pytest.register_assert_rewrite("tests.e2e.cli_helpers", "tests.e2e.replay_helpers")
