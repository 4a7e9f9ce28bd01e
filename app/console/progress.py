"""Progress of a long command: a redrawn bar on a terminal, plain lines otherwise.

``with Progress("migrating", total=4) as progress: progress.advance("0003_agent_tools")`` — on a
TTY one line is redrawn in place (at most every ``REDRAW_S`` seconds, and always for the last
step) and ended with a newline on close; in a log or a pipe each step is one line,
``migrating: 3/4 0003_agent_tools``, or, with ``min_interval``, at most one line that often
(the last step is always written). ``total=None`` counts without a bar. Writes to stderr by
default, so a command's own output on stdout stays parseable.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

REDRAW_S = 0.1
BAR_WIDTH = 28
CLEAR_LINE = "\r\x1b[2K"


class Progress:
    """Counts steps of one task and shows them (see the module docstring)."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 tty: bool | None = None, min_interval: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.min_interval = min_interval
        self.clock = clock
        self.done = 0
        self._shown_at: float | None = None
        self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def advance(self, item: str = "", steps: int = 1) -> None:
        """Count ``steps`` more done, ``item`` naming the last one."""
        self.done += steps
        now = self.clock()
        last = self.total is not None and self.done >= self.total
        interval = REDRAW_S if self.tty else self.min_interval
        if not last and self._shown_at is not None and now - self._shown_at < interval:
            return
        self._shown_at = now
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(CLEAR_LINE + self.render(item)[:width])
            self._drawn = True
        else:
            self.stream.write(f"{self.label}: {self._count()}{' ' + item if item else ''}\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line on a terminal (nothing to do for plain lines)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def render(self, item: str = "") -> str:
        """The bar's text: label, bar (when the total is known), count and item."""
        bar = ""
        if self.total:
            filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
            bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "] "
        return f"{self.label} {bar}{self._count()}{' ' + item if item else ''}"

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)
