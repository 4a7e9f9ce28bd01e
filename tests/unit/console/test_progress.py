from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from app.console.progress import CLEAR_LINE, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_each_step_is_one_line() -> None:
    out = io.StringIO()
    with Progress("migrating", total=3, stream=out, tty=False) as progress:
        for name in ("0001_initial", "0002_keys", "0003_tools"):
            progress.advance(name)
    assert out.getvalue() == ("migrating: 1/3 0001_initial\nmigrating: 2/3 0002_keys\n"
                              "migrating: 3/3 0003_tools\n")


def test_min_interval_thins_plain_lines_but_keeps_the_last() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("indexing", total=5, stream=out, tty=False, min_interval=1.0, clock=clock)
    for step in range(5):
        clock.now += 0.4
        progress.advance(f"f{step}.py")
    assert out.getvalue() == "indexing: 1/5 f0.py\nindexing: 4/5 f3.py\nindexing: 5/5 f4.py\n"


def test_without_a_total_it_counts() -> None:
    out = io.StringIO()
    Progress("scanning", stream=out, tty=False).advance("a", steps=2)
    assert out.getvalue() == "scanning: 2 a\n"


def test_on_a_terminal_one_line_is_redrawn_and_ended() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("checking", total=4, stream=out, tty=True, clock=clock) as progress:
        progress.advance("one")
        progress.advance("two")  # within the redraw interval: skipped
        clock.now += 1
        progress.advance("three")
        progress.advance("four")  # the last step is always drawn
    bar = "checking [{}] {}/4 {}"
    assert out.getvalue() == (CLEAR_LINE + bar.format("#" * 7 + "." * 21, 1, "one")
                              + CLEAR_LINE + bar.format("#" * 21 + "." * 7, 3, "three")
                              + CLEAR_LINE + bar.format("#" * 28, 4, "four") + "\n")


def test_a_real_terminal_is_detected() -> None:
    script = ("from app.console.progress import Progress\n"
              "with Progress('x', total=1) as p: p.advance('done')\n")
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=child, stdout=child, stderr=child,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 1024)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(main)
    assert b"".join(chunks) == b"\r\x1b[2Kx [############################] 1/1 done\r\n"
