"""End-to-end fixtures: the real ``lynkr serve`` (gunicorn master + workers) over a fake upstream.

``make_gateway(**env)`` starts ``python -m app serve`` in a temporary directory with its logs in
``gateway.log`` there, waits for ``/health/live``, and on teardown stops it with SIGTERM and
checks that no process of its group is left. ``mocked_upstream`` is a strict fake Databricks
Anthropic endpoint the gateway forwards to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.helpers import Gateway, wait_until
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

REPO = Path(__file__).resolve().parents[2]
DATABRICKS_TOKEN = "dapi-test-0123456789abcdef"
START_TIMEOUT_S = 30.0
# Variables the gateway may inherit from the test run; everything else it is given explicitly.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "COVERAGE_PROCESS_START")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an e2e test."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def mocked_upstream() -> Iterator[FakeAnthropicUpstream]:
    """A strict fake of Databricks' Anthropic endpoint that requires the test token."""
    with FakeAnthropicUpstream(strict=True, token=DATABRICKS_TOKEN) as fake:
        yield fake


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gateway_env(tmp: Path, port: int, upstream: FakeAnthropicUpstream | None,
                overrides: dict[str, Any]) -> dict[str, str]:
    """The environment ``lynkr serve`` runs with: test defaults, then ``overrides`` (None unsets)."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update({
        "HOME": str(tmp / "home"), "TMPDIR": str(tmp), "PYTHONPATH": str(REPO),
        "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2", "LYNKR_THREADS": "8",
        "SESSION_DB_PATH": str(tmp / "lynkr.db"), "MODEL_PROVIDER": "databricks",
        "DATABRICKS_API_BASE": upstream.url if upstream else "http://127.0.0.1:9",
        "DATABRICKS_API_KEY": DATABRICKS_TOKEN, "DATABRICKS_ENDPOINT_PATH": "/v1/messages",
        "LYNKR_PRESTOP_DELAY_MS": "200", "GRACEFUL_SHUTDOWN_TIMEOUT": "5000", "LOG_LEVEL": "info",
        # Scenarios repeat identical requests and expect each to reach the fake upstream.
        "PROMPT_CACHE_ENABLED": "false",
    })
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def launch_gateway(tmp: Path, upstream: FakeAnthropicUpstream | None = None, **overrides: Any) -> Gateway:
    """Start ``python -m app serve`` in ``tmp`` and wait until it is live (fails the test otherwise).

    The caller must pass the result to :func:`stop_gateway`, also when this fails.
    """
    (tmp / "home").mkdir(exist_ok=True)
    port = free_port()
    env = gateway_env(tmp, port, upstream, overrides)
    log_path = tmp / "gateway.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=tmp, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Gateway(proc=proc, port=port, workdir=tmp, log_path=log_path, env=env)


@pytest.fixture
def make_gateway(tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[Callable[..., Gateway]]:
    """Starts real gateways; ``make_gateway(upstream=fake, **ENV)``. Stops them all afterwards.

    Without ``upstream`` the gateway forwards to ``mocked_upstream`` when the test uses it.
    """
    started: list[Gateway] = []

    def start(upstream: FakeAnthropicUpstream | None = None, **overrides: Any) -> Gateway:
        if upstream is None and "mocked_upstream" in request.fixturenames:
            upstream = request.getfixturevalue("mocked_upstream")
        gateway = launch_gateway(tmp_path_factory.mktemp("gateway"), upstream, **overrides)
        started.append(gateway)
        wait_live(gateway)
        return gateway

    yield start
    problems = [problem for gateway in started if (problem := stop_gateway(gateway))]
    if problems:
        pytest.fail("; ".join(problems))


def wait_live(gateway: Gateway) -> None:
    """Wait for ``/health/live``; fails the test with the log if the gateway dies or stays silent."""
    def live() -> bool:
        if gateway.proc.poll() is not None:
            pytest.fail(f"lynkr serve exited with {gateway.proc.returncode} before it was live:\n{gateway.log_text()}")
        with contextlib.suppress(requests.RequestException):
            return requests.get(gateway.url + "/health/live", timeout=1).status_code == 200
        return False

    if not wait_until(live, timeout=START_TIMEOUT_S, interval=0.1):
        pytest.fail(f"lynkr serve was not live after {START_TIMEOUT_S:.0f} s:\n{gateway.log_text()}")


def stop_gateway(gateway: Gateway) -> str | None:
    """SIGTERM and wait; kill what is left of its process group. Returns what went wrong, if anything."""
    problem = None
    if gateway.proc.poll() is None:
        gateway.proc.send_signal(signal.SIGTERM)
        try:
            gateway.proc.wait(timeout=gateway.shutdown_budget_s())
        except subprocess.TimeoutExpired:
            problem = f"gateway on port {gateway.port} ignored SIGTERM; killed"
    if not wait_until(lambda: not gateway.group_alive(), timeout=5, interval=0.05):
        problem = problem or f"gateway on port {gateway.port} left processes behind; killed"
    if gateway.group_alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(gateway.proc.pid, signal.SIGKILL)
        gateway.proc.wait(timeout=5)
    return problem


# -- OpenAI-family upstream (appended for tests/e2e/test_openai_*.py) ------------------------------

OPENAI_TOKEN = "sk-fake-openai-0123456789abcdef"
OPENAI_MODEL = "gpt-4o"
OPENAI_MAX_OUTPUT = 16_384  # gpt-4o's completion limit; the capability table clamps max_tokens to it


@pytest.fixture
def openai_upstream() -> Iterator[Any]:
    """A strict fake OpenAI chat-completions server that requires ``OPENAI_TOKEN`` and holds
    requests to gpt-4o's limits."""
    from tests.fakes.openai_rules import Strictness
    from tests.fakes.openai_upstream import FakeOpenAIUpstream

    with FakeOpenAIUpstream(strict=True, token=OPENAI_TOKEN,
                            rules=Strictness(max_output_tokens=OPENAI_MAX_OUTPUT)) as fake:
        yield fake


def openai_env(upstream: Any, **overrides: Any) -> dict[str, Any]:
    """``make_gateway`` overrides that send every request to ``upstream`` as ``openai-compatible``
    serving ``gpt-4o``, with fallback and the prompt cache off (every request must reach the fake)."""
    return {"MODEL_PROVIDER": "openai-compatible", "OPENAI_COMPATIBLE_ENDPOINT": upstream.base_url,
            "OPENAI_COMPATIBLE_MODEL": OPENAI_MODEL, "OPENAI_COMPATIBLE_API_KEY": OPENAI_TOKEN,
            "FALLBACK_ENABLED": "false", "PROMPT_CACHE_ENABLED": "false", **overrides}


@pytest.fixture(scope="module")
def openai_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Any]]:
    """One strict OpenAI fake and one gateway to it (no retries, no breaker trips) for a whole module,
    so each test does not pay for a gateway start; tests call ``fake.reset()`` first."""
    from tests.fakes.openai_rules import Strictness
    from tests.fakes.openai_upstream import FakeOpenAIUpstream

    with FakeOpenAIUpstream(strict=True, token=OPENAI_TOKEN,
                            rules=Strictness(max_output_tokens=OPENAI_MAX_OUTPUT)) as fake:
        gateway = launch_gateway(tmp_path_factory.mktemp("openai"), None, **openai_env(
            fake, API_RETRY_MAX_RETRIES=0, CIRCUIT_BREAKER_FAILURE_THRESHOLD=1_000_000))
        try:
            wait_live(gateway)
            yield gateway, fake
        finally:
            problem = stop_gateway(gateway)
        assert problem is None, problem
