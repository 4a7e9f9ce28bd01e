"""The stdio transport against real child processes: framing, the reason it ended, its environment, stopping it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.mcp import stdio
from app.mcp.jsonrpc import ProtocolError
from app.mcp.stdio import StdioTransport
from app.mcp.transport import TransportClosed, TransportError
from tests.fakes.mcp_sink import RecordingSink

ECHO = """
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": message["params"]}), flush=True)
"""


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., StdioTransport]]:
    """``spawn(script, sink)``: a transport running ``python -c script``, opened on ``sink``; closed after the test."""
    opened: list[StdioTransport] = []

    def start(script: str, sink: Any, *, env: dict[str, str] | None = None) -> StdioTransport:
        transport = StdioTransport("srv", [sys.executable, "-c", script],
                                   env=env if env is not None else {"PATH": os.environ["PATH"]}, cwd=tmp_path)
        opened.append(transport)
        transport.open(sink)
        return transport

    yield start
    for transport in opened:
        transport.close()


@pytest.fixture
def quick_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stdio, "STOP_GRACE_S", 0.3)


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its new parent to reap it counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_each_message_is_one_json_line_each_way(spawn: Callable[..., StdioTransport]) -> None:
    sink = RecordingSink()
    transport = spawn(ECHO, sink)
    transport.send({"jsonrpc": "2.0", "id": 1, "method": "m", "params": {"text": "première"}})
    transport.send({"jsonrpc": "2.0", "id": "two", "method": "m", "params": {"n": [1, 2]}})
    sink.wait(messages=2)
    assert sink.messages == [{"jsonrpc": "2.0", "id": 1, "result": {"text": "première"}},
                             {"jsonrpc": "2.0", "id": "two", "result": {"n": [1, 2]}}]
    assert sink.failures == []
    assert sink.reasons == []


def test_lines_that_are_not_json_are_logged_and_skipped(spawn: Callable[..., StdioTransport],
                                                         log_records: Callable[[str], list[logging.LogRecord]],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lynkr.mcp.stdio")
    records = log_records("lynkr.mcp.stdio")
    sink = RecordingSink()
    spawn("print('hello, not JSON'); print(); print('  '); print('{\"a\": 1}'); print('[{\"b\": 2}]')", sink)
    sink.wait(reasons=1)
    assert sink.messages == [{"a": 1}, [{"b": 2}]]
    assert sink.reasons == ["it exited with code 0"]
    assert [r.getMessage() for r in records] == [
        "MCP server srv wrote a line that is not JSON to stdout: hello, not JSON"]
    assert records[0].levelno == logging.WARNING
    assert records[0].mcp_server == "srv"  # type: ignore[attr-defined]


def test_a_message_the_sink_rejects_as_a_protocol_error_does_not_stop_delivery(
        spawn: Callable[..., StdioTransport]) -> None:
    class Picky(RecordingSink):
        def message(self, payload: Any) -> None:
            if payload == {"bad": True}:
                raise ProtocolError("not JSON-RPC")
            super().message(payload)

    sink = Picky()
    spawn("print('{\"bad\": true}'); print('{\"good\": true}')", sink)
    sink.wait(reasons=1)
    assert sink.messages == [{"good": True}]
    assert sink.reasons == ["it exited with code 0"]


def test_the_exit_reason_carries_the_last_stderr_line_redacted(spawn: Callable[..., StdioTransport],
                                                              log_records: Callable[[str], list[logging.LogRecord]],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lynkr.mcp.stdio")
    records = log_records("lynkr.mcp.stdio")
    sink = RecordingSink()
    spawn("import sys; sys.stderr.write('starting\\n\\nbad token sk-live-0123456789abcdef\\n'); sys.exit(4)", sink)
    sink.wait(reasons=1)
    assert sink.reasons == ["it exited with code 4 (its last words: bad token [REDACTED])"]
    assert [r.getMessage() for r in records] == ["[srv] starting", "[srv] bad token sk-live-0123456789abcdef"]
    assert all(r.levelno == logging.INFO and r.mcp_server == "srv" for r in records)  # type: ignore[attr-defined]


def test_a_child_killed_by_a_signal_says_which(spawn: Callable[..., StdioTransport]) -> None:
    sink = RecordingSink()
    spawn("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", sink)
    sink.wait(reasons=1)
    assert sink.reasons == ["it was killed by signal 9"]


@pytest.mark.usefixtures("quick_stop")
def test_a_child_that_closes_its_output_but_lives_on_is_reported_so(spawn: Callable[..., StdioTransport]) -> None:
    sink = RecordingSink()
    transport = spawn("import os, time; os.close(1); time.sleep(30)", sink)
    sink.wait(reasons=1)
    assert sink.reasons == ["it closed its output"]
    transport.close()
    assert transport.process is not None
    assert transport.process.returncode == -signal.SIGTERM  # its input closed did not end it; SIGTERM did


def test_the_child_gets_exactly_the_given_environment_and_directory(spawn: Callable[..., StdioTransport],
                                                                   tmp_path: Path) -> None:
    sink = RecordingSink()
    script = "import json, os; print(json.dumps({'env': sorted(os.environ), 'cwd': os.getcwd(), " \
             "'given': os.environ.get('GIVEN')}))"
    spawn(script, sink, env={"PATH": os.environ["PATH"], "GIVEN": "by the manifest"})
    sink.wait(messages=1)
    seen = sink.messages[0]
    # Python itself may add LC_CTYPE (PEP 538 locale coercion) when no locale is set.
    assert [name for name in seen["env"] if name != "LC_CTYPE"] == ["GIVEN", "PATH"]
    assert seen["given"] == "by the manifest"
    assert seen["cwd"] == str(tmp_path)


def test_a_command_that_cannot_start_is_a_transport_error(tmp_path: Path) -> None:
    transport = StdioTransport("srv", ["/nonexistent/mcp-server"], env={}, cwd=tmp_path)
    with pytest.raises(TransportError, match=r"^could not start /nonexistent/mcp-server: No such file or directory$"):
        transport.open(RecordingSink())
    assert transport.pid is None


def test_send_before_open_and_after_close_is_transport_closed(spawn: Callable[..., StdioTransport],
                                                              tmp_path: Path) -> None:
    unopened = StdioTransport("srv", [sys.executable, "-c", ECHO], env={}, cwd=tmp_path)
    with pytest.raises(TransportClosed, match=r"^MCP server 'srv' is not running$"):
        unopened.send({"jsonrpc": "2.0", "method": "x"})
    unopened.close()  # nothing to stop: no error
    transport = spawn(ECHO, RecordingSink())
    transport.close()
    with pytest.raises(TransportClosed, match=r"^MCP server 'srv' is not running$"):
        transport.send({"jsonrpc": "2.0", "method": "x"})


@pytest.mark.usefixtures("quick_stop")
def test_a_child_that_stopped_reading_is_transport_closed(spawn: Callable[..., StdioTransport]) -> None:
    sink = RecordingSink()
    transport = spawn("import os, sys, time; os.close(0); print('{}', flush=True); time.sleep(30)", sink)
    sink.wait(messages=1)
    with pytest.raises(TransportClosed, match=r"^MCP server 'srv' is not reading its input \(.*Broken pipe"):
        transport.send({"jsonrpc": "2.0", "method": "x"})


def test_a_child_that_exited_is_transport_closed_with_its_exit_and_last_words(
        spawn: Callable[..., StdioTransport]) -> None:
    sink = RecordingSink()
    transport = spawn("import sys; sys.stderr.write('no config found\\n'); sys.exit(2)", sink)
    assert transport.process is not None
    transport.process.wait(timeout=10)
    with pytest.raises(TransportClosed,
                       match=r"^MCP server 'srv' stopped: it exited with code 2 \(its last words: no config found\)$"):
        transport.send({"jsonrpc": "2.0", "method": "x"})


def test_close_ends_a_well_behaved_child_by_closing_its_input(spawn: Callable[..., StdioTransport]) -> None:
    sink = RecordingSink()
    transport = spawn(ECHO, sink)
    assert isinstance(transport.pid, int)
    started = time.monotonic()
    transport.close()
    assert time.monotonic() - started < stdio.STOP_GRACE_S
    assert transport.process is not None
    assert transport.process.returncode == 0  # it saw end of input and left: no signal was needed
    sink.wait(reasons=1)
    assert sink.reasons == ["it was stopped"]
    transport.close()  # a second close is harmless


@pytest.mark.usefixtures("quick_stop")
def test_close_kills_a_child_that_ignores_its_input_and_sigterm_and_what_it_started(
        spawn: Callable[..., StdioTransport]) -> None:
    script = """
import json, signal, subprocess, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
helper = subprocess.Popen(["sleep", "60"])
print(json.dumps({"helper": helper.pid}), flush=True)
while True:
    time.sleep(1)
"""
    sink = RecordingSink()
    transport = spawn(script, sink)
    sink.wait(messages=1)
    helper = sink.messages[0]["helper"]
    started = time.monotonic()
    transport.close()
    assert time.monotonic() - started < 3
    assert transport.process is not None
    assert transport.process.returncode == -signal.SIGKILL
    assert wait_for(lambda: gone(helper)), "the server's own child outlived it"
    sink.wait(reasons=1)
    assert sink.reasons == ["it was stopped"]


def test_negotiated_changes_nothing_on_stdio(spawn: Callable[..., StdioTransport]) -> None:
    sink = RecordingSink()
    transport = spawn(ECHO, sink)
    transport.negotiated("2025-11-25")
    transport.send({"jsonrpc": "2.0", "id": 7, "method": "m", "params": {}})
    sink.wait(messages=1)
    assert sink.messages == [{"jsonrpc": "2.0", "id": 7, "result": {}}]


def test_a_nul_byte_in_the_environment_is_a_start_failure(tmp_path: Path) -> None:
    transport = StdioTransport("srv", [sys.executable, "-c", "pass"], env={"A": "x\0y"}, cwd=tmp_path)
    with pytest.raises(TransportError, match=r"could not start .*python.*: embedded null byte"):
        transport.open(RecordingSink())
