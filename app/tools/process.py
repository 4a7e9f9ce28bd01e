"""Running a child process for a tool: argv only, a clean environment, a timeout, capped output.

Nothing here builds a shell string. The child gets a new session (so a timeout kills its whole
process group), an environment holding only the names the operator passes through — never a
value the gateway treats as a secret — and its combined stdout/stderr is kept up to a byte cap.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.config import Config


@dataclass(frozen=True)
class ProcessResult:
    """How a child process ended and what it printed."""

    exit_code: int | None  # None when it was killed for running too long
    output: str
    timed_out: bool
    truncated: bool
    duration_ms: float


def child_env(config: Config, extra: Mapping[str, str] | None = None,
              source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a tool's child process gets.

    Only ``MCP_SANDBOX_PASSTHROUGH_ENV`` names are copied from ``source`` (default: this
    process's environment), and any value equal to a configured secret is dropped.
    """
    source = os.environ if source is None else source
    secrets = set(config.secrets())
    env = {name: source[name] for name in config.sandbox_passthrough_env if name in source}
    env.update(extra or {})
    return {name: value for name, value in env.items() if value not in secrets}


def run_process(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout_s: float,
                max_output_bytes: int) -> ProcessResult:
    """Run ``argv`` to completion (or until ``timeout_s``) and collect its output."""
    started = time.perf_counter()
    try:
        child = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return ProcessResult(None, f"could not start {argv[0]}: {exc.strerror or exc}", False, False,
                             _ms(started))
    output = _CappedOutput(max_output_bytes)
    assert isinstance(child.stdout, io.BufferedReader)  # stdout=PIPE, buffered: read1 is there
    stdout = child.stdout

    def drain() -> None:
        for chunk in iter(lambda: stdout.read1(65536), b""):
            output.add(chunk)

    reader = threading.Thread(target=drain, name="tool-output", daemon=True)
    reader.start()
    timed_out = False
    try:
        child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(child)
        child.wait()
    reader.join(timeout=5)
    stdout.close()
    return ProcessResult(None if timed_out else child.returncode, output.text(), timed_out, output.truncated,
                         _ms(started))


class _CappedOutput:
    """The first and last halves of a stream up to ``limit`` bytes; the middle is dropped.

    Both ends matter: a command's first lines say what went wrong, a test run's last lines hold
    its summary.
    """

    def __init__(self, limit: int) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.half = max(limit // 2, 1)
        self.total = 0

    @property
    def truncated(self) -> bool:
        return self.total > 2 * self.half

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head.extend(chunk[:room])
            chunk = chunk[room:]
        if chunk:
            self.tail.extend(chunk)
            del self.tail[:-self.half]

    def text(self) -> str:
        skipped = self.total - len(self.head) - len(self.tail)
        middle = f"\n… [{skipped} bytes of output left out] …\n".encode() if skipped > 0 else b""
        return bytes(self.head + middle + self.tail).decode("utf-8", errors="replace")


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
